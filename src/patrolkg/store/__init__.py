"""Quad stores: the interface and its implementations."""

from __future__ import annotations

import os
from pathlib import Path

from .base import QueryResult, Store, query_has_dataset
from .oxigraph import OxigraphStore

__all__ = ["Store", "QueryResult", "OxigraphStore", "open_store", "default_store_path", "query_has_dataset"]


def default_store_path() -> Path:
    """Where the persistent store lives when no ``--store`` is given.

    ``$XDG_DATA_HOME/patrolkg/store``, i.e. ``~/.local/share/patrolkg/store`` by default.
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "patrolkg" / "store"


def open_store(path: Path | str | None) -> Store:
    """Open the embedded store at ``path``; None gives a fresh in-memory store.

    >>> store = open_store(None)
    >>> store.graph_names()
    []
    """
    return OxigraphStore(path)
