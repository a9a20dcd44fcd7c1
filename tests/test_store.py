"""What only the embedded store does: persistence in a directory, and a clear error for one
that cannot be used. The contract every store keeps is in test_store_contract.py."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest

from patrolkg.errors import StoreError
from patrolkg.store import OxigraphStore, Store, open_store

A = "http://example.org/g/a"


def _triple(s: str, o: str) -> ox.Triple:
    return ox.Triple(ox.NamedNode(f"http://example.org/{s}"), ox.NamedNode("http://example.org/p"), ox.Literal(o))


def _values(store: Store, query: str, **kwargs: object) -> set[str]:
    return {row["o"].value for row in store.query(query, **kwargs)}


def test_the_store_persists_across_reopening(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    store.replace_graphs({A: [_triple("x", "kept")]})
    store.close()
    reopened = open_store(tmp_path / "store")
    assert _values(reopened, "SELECT ?o WHERE { ?s ?p ?o }") == {"kept"}
    reopened.close()


def test_an_unusable_directory_is_a_clear_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open the store"):
        OxigraphStore(blocker / "store")
