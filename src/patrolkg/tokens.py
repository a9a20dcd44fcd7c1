"""Write tokens: who may write, until when.

Tokens come from ``PATROLKG_WRITE_TOKEN`` (``TOKEN`` or ``NAME:TOKEN,...``; they never
expire) and from a token file, ``PATROLKG_WRITE_TOKENS_FILE``, which holds no token
itself, only its SHA-256, one per line::

    # name:sha256:expires (UTC; empty for never)
    alice:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8:2027-03-01T00:00:00Z

The file is read again whenever it changes, so a token is revoked by deleting its line,
without a restart. ``patrolkg token new NAME --days 90`` makes a token, prints it once
and appends its line. Presented tokens are compared in constant time, on their hashes.

>>> entry = token_entry("alice", "correct horse battery staple", datetime(2030, 1, 1, tzinfo=timezone.utc))
>>> entry.line()
'alice:c4bbcb1fbec99d65bf59d85c8cb62ee2db963f0fe106f483d9afa73bd4e39a8a:2030-01-01T00:00:00Z'
>>> check_token("correct horse battery staple", [entry], now=datetime(2029, 1, 1, tzinfo=timezone.utc))
Verdict(holder='alice', expired=False)
>>> check_token("correct horse battery staple", [entry], now=datetime(2031, 1, 1, tzinfo=timezone.utc))
Verdict(holder=None, expired=True)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .errors import ConfigError

__all__ = ["TokenEntry", "TokenFile", "WriteTokens", "Verdict", "token_entry", "parse_token_file", "check_token", "new_token", "expiring", "MIN_TOKEN_LENGTH"]

#: Shortest token accepted anywhere (a token made by ``patrolkg token new`` has 43).
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class TokenEntry:
    """One token holder: the name recorded as submitter, the token's SHA-256, and when
    it stops working (None: never)."""

    name: str
    digest: bytes
    expires: datetime | None = None

    def line(self) -> str:
        """The entry as a line of the token file."""
        expires = self.expires.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if self.expires else ""
        return f"{self.name}:{self.digest.hex()}:{expires}"


@dataclass(frozen=True)
class Verdict:
    """Whose token it is (None: nobody's), and whether it matched one that expired."""

    holder: str | None
    expired: bool = False


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_entry(name: str, token: str, expires: datetime | None = None) -> TokenEntry:
    """The entry for ``token`` (which is not kept, only its hash)."""
    return TokenEntry(name, _digest(token), expires)


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _parse_expiry(text: str) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_token_file(text: str, source: str) -> list[TokenEntry]:
    """The entries of a token file; blank lines and ``#`` comments are skipped.

    :raises ConfigError: naming the file and line of a malformed entry.
    """
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        digest, _, expires = rest.partition(":")
        try:
            if not name.strip() or len(digest) != 64:
                raise ValueError("expected NAME:SHA256:EXPIRES")
            entries.append(TokenEntry(name.strip(), bytes.fromhex(digest), _parse_expiry(expires.strip())))
        except ValueError as exc:
            raise ConfigError(
                f"{source}, line {number}: not a token entry ({exc})",
                hint="each line is NAME:SHA256-OF-TOKEN:EXPIRES (ISO 8601, UTC, or empty); make one with `patrolkg token new NAME`",
            ) from None
    return entries


def check_token(presented: str, entries: Iterable[TokenEntry], *, now: datetime | None = None) -> Verdict:
    """Who holds ``presented``: every entry is compared, in constant time, each time."""
    now = now or datetime.now(timezone.utc)
    digest = _digest(presented)
    holder, expired = None, False
    for entry in entries:
        if hmac.compare_digest(digest, entry.digest):
            if entry.expires is not None and entry.expires <= now:
                expired = True
            elif holder is None:
                holder = entry.name
    return Verdict(holder, expired and holder is None)


class TokenFile:
    """A token file, read again when it changes (revocation without restart).

    :raises ConfigError: from :meth:`entries`, if the file is missing or malformed (a
        write is then refused, never let through).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._entries: list[TokenEntry] = []

    def entries(self) -> list[TokenEntry]:
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {self.path}: {exc.strerror}", hint="check PATROLKG_WRITE_TOKENS_FILE") from None
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if seen != self._seen:
                try:
                    text = self.path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise ConfigError(f"cannot read the token file {self.path}: {exc.strerror}", hint="check PATROLKG_WRITE_TOKENS_FILE") from None
                self._entries = parse_token_file(text, str(self.path))
                self._seen = seen
            return self._entries

    def add(self, entry: TokenEntry) -> None:
        """Append ``entry`` (the file is created, readable by its owner only)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(entry.line() + "\n")

    def remove(self, name: str) -> int:
        """Delete every entry of ``name``; how many there were."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip().startswith("#") or line.split(":", 1)[0].strip() != name]
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)
        return len(lines) - len(kept)


def expiring(entries: Sequence[TokenEntry], within: timedelta, *, now: datetime | None = None) -> list[TokenEntry]:
    """The entries that expire within ``within`` from now (and have not yet)."""
    now = now or datetime.now(timezone.utc)
    return [e for e in entries if e.expires is not None and now < e.expires <= now + within]


class WriteTokens:
    """Every token that may write: those of ``PATROLKG_WRITE_TOKEN`` (``NAME, TOKEN``
    pairs, never expiring) and those of the token file, if one is configured."""

    def __init__(self, static: Sequence[tuple[str, str]] | None = None, file: Path | None = None) -> None:
        self._static = [token_entry(name, token) for name, token in static or ()]
        self.file = TokenFile(file) if file is not None else None

    @property
    def configured(self) -> bool:
        """Whether any way to write is configured (with none, every write is refused)."""
        return bool(self._static) or self.file is not None

    def entries(self) -> list[TokenEntry]:
        """:raises ConfigError: the token file cannot be read."""
        return [*self._static, *(self.file.entries() if self.file is not None else ())]

    def check(self, presented: str) -> Verdict:
        """:raises ConfigError: the token file cannot be read."""
        return check_token(presented, self.entries())
