"""Quad stores: the interface and its implementations."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .base import QueryResult, Store, TripleStream, query_has_dataset
from .oxigraph import OxigraphStore

if TYPE_CHECKING:
    from ..settings import Settings
    from .remote import RemoteStore

__all__ = [
    "Store",
    "QueryResult",
    "TripleStream",
    "OxigraphStore",
    "RemoteStore",
    "open_store",
    "open_configured_store",
    "store_location",
    "store_limitations",
    "default_store_path",
    "query_has_dataset",
]


def __getattr__(name: str) -> object:
    # The remote store (and its HTTP client) is imported when first named: the query
    # workers and readers of a server on the embedded store never load it.
    if name == "RemoteStore":
        from .remote import RemoteStore

        return RemoteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_remote(store: Store) -> bool:
    """Whether ``store`` is a :class:`RemoteStore` (if one was ever made, its module is
    loaded; if not, it is not one)."""
    remote = sys.modules.get(f"{__name__}.remote")
    return remote is not None and isinstance(store, remote.RemoteStore)


def default_store_path() -> Path:
    """Where the persistent store lives when no ``--store`` is given.

    ``$XDG_DATA_HOME/patrolkg/store``, i.e. ``~/.local/share/patrolkg/store`` by default.
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "patrolkg" / "store"


def open_store(path: Path | str | None) -> Store:
    """Open the embedded store at ``path``; None gives a fresh in-memory store; an
    http(s) URL opens the remote store at that SPARQL query endpoint (without
    credentials: see :func:`open_configured_store`).

    >>> store = open_store(None)
    >>> store.graph_names()
    []
    >>> open_store("http://localhost:7878/query")
    RemoteStore('http://localhost:7878/query')
    """
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        from .remote import RemoteStore

        return RemoteStore(path)
    return OxigraphStore(path)


def open_configured_store(settings: Settings, *, bulk_writes: bool = False) -> Store:
    """The store the settings name: the remote store at ``store_url`` when it is set,
    else the embedded store in the ``store`` directory (or the default one).

    :raises patrolkg.errors.StoreError: if the directory cannot be opened (a remote
        store is only reached when first used).
    """
    if settings.store_url:
        from .remote import RemoteStore
        from .sparql_client import Credentials

        return RemoteStore(
            settings.store_url,
            update_url=settings.store_update_url,
            gsp_url=settings.store_gsp_url,
            union=settings.store_union,
            credentials=Credentials(settings.store_user, settings.store_password, settings.store_token),
            timeout=settings.query_timeout,
        )
    return OxigraphStore(settings.store or default_store_path(), min_free_bytes=settings.min_free_bytes, bulk_writes=bulk_writes)


def store_location(store: Store) -> str:
    """Where a store keeps its data, for people: a directory, a URL or "in memory"."""
    if _is_remote(store):
        return store.location  # type: ignore[attr-defined, no-any-return]
    path = getattr(store, "path", None)
    return str(path) if path is not None else "in memory"


def store_limitations(store: Store) -> list[str]:
    """What a store cannot offer as the embedded one does (said at start-up and in the
    service description); nothing for the embedded store.

    >>> store_limitations(open_store(None))
    []
    """
    return store.limitations() if _is_remote(store) else []  # type: ignore[attr-defined]
