"""The one settings object: every limit and switch, declared once with its default,
its environment variable and its help text. The CLI flags and the README's table are
generated from :data:`SETTINGS`.

>>> s = Settings.from_env({"PATROLKG_MAX_ROWS": "50"})
>>> s.max_rows
50
>>> Settings.from_env({}, query_timeout=2.5).query_timeout
2.5
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["Setting", "SETTINGS", "Settings"]


@dataclass(frozen=True)
class Setting:
    """How one setting is named, parsed and explained."""

    name: str  # attribute of Settings
    env: str  # environment variable
    flag: str  # CLI flag
    help: str
    parse: Callable[[str], Any]
    default: Any
    secret: bool = False


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number of seconds, 0 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _url_list(text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    for item in items:
        if not item.startswith(("http://", "https://")):
            raise ValueError(f"{item!r} is not an http(s) URL")
    return items


def _url(text: str) -> str | None:
    text = text.strip()
    if text and not text.startswith(("http://", "https://")):
        raise ValueError(f"{text!r} is not an http(s) URL")
    if "@" in urlsplit(text).netloc:
        raise ValueError("credentials do not belong in the URL: set PATROLKG_STORE_USER and PATROLKG_STORE_PASSWORD, or PATROLKG_STORE_TOKEN")
    return text or None


def _union_mode(text: str) -> str:
    if text not in ("explicit", "engine"):
        raise ValueError("must be explicit or engine")
    return text


def _optional_text(text: str) -> str | None:
    return text or None


def _origin_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _optional_path(text: str) -> Path | None:
    """A path, ``~`` and ``~user`` expanded.

    >>> _optional_path("~no-such-user-here/tokens")
    Traceback (most recent call last):
    ...
    ValueError: ~no-such-user-here is not a known user's home; write the path in full
    """
    if not text:
        return None
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~name of no user on this machine
        raise ValueError(f"{text.split('/', 1)[0]} is not a known user's home; write the path in full") from None


def _write_tokens(text: str) -> tuple[tuple[str, str], ...] | None:
    """``TOKEN`` or ``NAME:TOKEN[,NAME:TOKEN...]``; a bare token's holder is "editor"."""
    if not text.strip():
        return None
    pairs = []
    for item in text.split(","):
        item = item.strip()
        name, sep, token = item.partition(":")
        if not sep:
            name, token = "editor", item
        name, token = name.strip(), token.strip()
        if not name or len(token) < 16:
            raise ValueError("each token must be at least 16 characters (NAME:TOKEN, comma-separated)")
        pairs.append((name, token))
    return tuple(pairs)


def _base_iri(text: str) -> str:
    if not text.startswith(("http://", "https://")) or not text.endswith("/"):
        raise ValueError("must be an http(s) IRI ending in '/'")
    return text


SETTINGS: tuple[Setting, ...] = (
    Setting("store", "PATROLKG_STORE", "--store", "Directory of the persistent store (default: $XDG_DATA_HOME/patrolkg/store).", _optional_path, None),
    Setting("store_url", "PATROLKG_STORE_URL", "--store-url", "SPARQL 1.1 query endpoint of a remote store (Fuseki, GraphDB, QLever, ...) to use instead of a directory; see docs/deployment.md.", _url, None),
    Setting("store_update_url", "PATROLKG_STORE_UPDATE_URL", "--update-url", "SPARQL 1.1 Update endpoint of the remote store (default: the query URL, with a final /query replaced by /update).", _url, None),
    Setting("store_gsp_url", "PATROLKG_STORE_GSP_URL", "--gsp-url", "Graph Store Protocol endpoint of the remote store, to read whole graphs (default: none; SPARQL queries read them).", _url, None),
    Setting("store_union", "PATROLKG_STORE_UNION", "--store-union", "How the remote store's union default graph is made: explicit (each query lists the named graphs; any engine) or engine (the engine's own union default graph, checked at start-up).", _union_mode, "explicit"),
    Setting("store_user", "PATROLKG_STORE_USER", "--store-user", "User name for HTTP basic authentication to the remote store.", _optional_text, None),
    Setting("store_password", "PATROLKG_STORE_PASSWORD", "--store-password", "Password for HTTP basic authentication to the remote store (set it in the environment, not on the command line).", _optional_text, None, secret=True),
    Setting("store_token", "PATROLKG_STORE_TOKEN", "--store-token", "Bearer token for the remote store, instead of a user and password (set it in the environment, not on the command line).", _optional_text, None, secret=True),
    Setting("query_timeout", "PATROLKG_QUERY_TIMEOUT", "--query-timeout", "Seconds a query may run before it is stopped (503).", _positive_float, 10.0),
    Setting("max_rows", "PATROLKG_MAX_ROWS", "--max-rows", "Most result rows a query may return; a larger result is truncated and flagged.", _positive_int, 10_000),
    Setting("max_body_bytes", "PATROLKG_MAX_BODY_BYTES", "--max-body-bytes", "Largest request body accepted, in bytes (413 beyond).", _positive_int, 10 * 1024 * 1024),
    Setting("min_free_bytes", "PATROLKG_MIN_FREE_BYTES", "--min-free-bytes", "Free space, in bytes, the disk of a store on disk must keep: a write that would leave less is refused (503) before it reaches the engine.", _non_negative_int, 64 * 1024 * 1024),
    Setting("client_timeout", "PATROLKG_CLIENT_TIMEOUT", "--client-timeout", "Seconds a client may take to send a request's headers, or pause while sending its body, before its connection is closed.", _positive_float, 15.0),
    Setting("keep_alive", "PATROLKG_KEEP_ALIVE", "--keep-alive", "Seconds an idle connection is kept open for its client's next request. Longer than clients keep theirs (httpx and Node's 4-5 s, aiohttp's 15 s), so that none sends a request on a connection the server is closing at that moment: the client would find it reset.", _positive_float, 75.0),
    Setting("query_workers", "PATROLKG_QUERY_WORKERS", "--query-workers", "Query workers: how many queries on a store on disk run at once, in worker processes (a process is killed and replaced when a query of it times out).", _positive_int, 2),
    Setting("worker_threads", "PATROLKG_WORKER_THREADS", "--worker-threads", "Query workers to a worker process, as threads reading one engine: a query that reads the whole store fills the engine's caches once per process, not once per worker. When a query kills its process, the others it had run again in another. 1: a process to each worker.", _positive_int, 2),
    Setting("worker_memory", "PATROLKG_WORKER_MEMORY", "--worker-memory", "Resident memory, in bytes, past which a worker process is replaced once a query of it is answered and none of its workers has a query, or at once past twice this (the engine's caches of a store it has read whole, and the heap a large answer left, start afresh). 0: never.", _non_negative_int, 128_000_000),
    Setting("inline_budget", "PATROLKG_INLINE_BUDGET", "--inline-budget", "Seconds a query may run in the server process itself, without the hop to a worker process: a bounded query (a lookup, DESCRIBE, a walk out of a named entity or into one with few subjects), or one that a worker answered since the last commit within 2 ms, or within half this budget while it is the only request in progress; past it, it is stopped and handed to a worker. 0 sends every query to the workers.", _non_negative_float, 0.02),
    Setting("compact_after", "PATROLKG_COMPACT_AFTER", "--compact-after", "Seconds without a write after which the server compacts a store on disk that took writes (at the latest ten times that after the first, if writes keep coming): until then, the files each commit leaves slow queries down. 0: never.", _non_negative_float, 30.0),
    Setting("readers", "PATROLKG_READERS", "--readers", "Reader processes that answer bounded queries by GET /sparql on their share of the connections, and queries a worker answered within 2 ms on the same snapshot, from the newest snapshot of a store on disk, and hand every other request back to the server: more cores for lookups. 0: the server answers everything itself.", _non_negative_int, 1),
    Setting("service_allowlist", "PATROLKG_SERVICE_ALLOWLIST", "--service-allowlist", "Comma-separated SPARQL endpoint URLs that federated queries (SERVICE) and link discovery may call (none by default).", _url_list, ()),
    Setting("cors_origins", "PATROLKG_CORS_ORIGINS", "--cors-origins", "Comma-separated origins allowed to read cross-site ('*' for any; reads only, no credentials).", _origin_list, ("*",)),
    Setting("base_iri", "PATROLKG_BASE_IRI", "--base-iri", "Public base IRI of the data; /id/... pages answer for <base>id/...", _base_iri, "https://w3id.org/patrolkg/"),
    Setting("write_token", "PATROLKG_WRITE_TOKEN", "--write-token", "Bearer token(s) that authorize writes, as TOKEN or NAME:TOKEN[,NAME:TOKEN...]; the name is recorded as the submitter. They never expire: prefer a token file. With neither, every write is refused.", _write_tokens, None, secret=True),
    Setting("write_tokens_file", "PATROLKG_WRITE_TOKENS_FILE", "--write-tokens-file", "File of write tokens with expiry dates, one NAME:SHA256:EXPIRES per line (made by `patrolkg token new`), read again when it changes: delete a line to revoke a token without a restart.", _optional_path, None),
)


@dataclass(frozen=True)
class Settings:
    """Every setting with its value. Build with :meth:`from_env`."""

    store: Path | None = None
    store_url: str | None = None
    store_update_url: str | None = None
    store_gsp_url: str | None = None
    store_union: str = "explicit"
    store_user: str | None = None
    store_password: str | None = None
    store_token: str | None = None
    query_timeout: float = 10.0
    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    min_free_bytes: int = 64 * 1024 * 1024
    client_timeout: float = 15.0
    keep_alive: float = 75.0
    query_workers: int = 2
    worker_threads: int = 2
    worker_memory: int = 128_000_000
    inline_budget: float = 0.02
    compact_after: float = 30.0
    readers: int = 1
    service_allowlist: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ("*",)
    base_iri: str = "https://w3id.org/patrolkg/"
    write_token: tuple[tuple[str, str], ...] | None = None
    write_tokens_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from environment variables, then ``overrides`` (None means unset).

        :raises ConfigError: naming the variable and what is wrong with its value.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            if raw is not None:
                values[setting.name] = _parse(setting, raw, setting.env)
        for name, value in overrides.items():
            if value is None:
                continue
            setting = _by_name(name)
            values[name] = _parse(setting, value, setting.flag) if isinstance(value, str) else value
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The settings with secrets masked, for logs and the service description."""
        shown = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            shown[setting.name] = ("***" if value else None) if setting.secret else value
        return shown

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _by_name(name: str) -> Setting:
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    raise ConfigError(f"unknown setting {name!r}")


def _parse(setting: Setting, raw: str, where: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{where}={raw!r} is not valid: {exc}", hint=f"{setting.help}"
        ) from None
