"""The embedded store: union default graph, dataset overrides, atomic replacement, persistence."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest

from patrolkg.errors import QuerySyntaxError, StoreError
from patrolkg.store import OxigraphStore, Store, open_store

A, B = "http://example.org/g/a", "http://example.org/g/b"


def _triple(s: str, o: str) -> ox.Triple:
    return ox.Triple(ox.NamedNode(f"http://example.org/{s}"), ox.NamedNode("http://example.org/p"), ox.Literal(o))


def _values(store: Store, query: str, **kwargs: object) -> set[str]:
    return {row["o"].value for row in store.query(query, **kwargs)}


@pytest.fixture
def two_graphs(empty_store: Store) -> Store:
    empty_store.replace_graphs({A: [_triple("x", "in-a")], B: [_triple("y", "in-b")]})
    return empty_store


def test_the_default_graph_is_the_union_of_the_named_graphs(two_graphs: Store) -> None:
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"in-a", "in-b"}


def test_from_in_the_query_selects_the_dataset(two_graphs: Store) -> None:
    assert _values(two_graphs, f"SELECT ?o FROM <{A}> WHERE {{ ?s ?p ?o }}") == {"in-a"}


def test_from_named_alone_leaves_the_default_graph_empty(two_graphs: Store) -> None:
    assert _values(two_graphs, f"SELECT ?o FROM NAMED <{A}> WHERE {{ ?s ?p ?o }}") == set()


def test_protocol_graphs_override_the_query_dataset(two_graphs: Store) -> None:
    query = f"SELECT ?o FROM <{A}> WHERE {{ ?s ?p ?o }}"
    assert _values(two_graphs, query, default_graphs=[B]) == {"in-b"}


def test_an_unknown_graph_is_empty(two_graphs: Store) -> None:
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }", default_graphs=["http://example.org/nowhere"]) == set()


def test_replace_graphs_replaces_only_the_named_graphs(two_graphs: Store) -> None:
    two_graphs.replace_graphs({A: [_triple("x", "new-a")]})
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"new-a", "in-b"}
    assert two_graphs.triple_count(A) == 1


def test_drop_removes_a_graph(two_graphs: Store) -> None:
    two_graphs.replace_graphs({}, drop=[A])
    assert two_graphs.graph_names() == [B]


def test_a_failed_replacement_writes_nothing(two_graphs: Store) -> None:
    bad = ox.Triple(ox.NamedNode("http://example.org/x"), ox.NamedNode("http://example.org/p"), ox.Literal("z"))
    # A graph IRI that cannot be written in SPARQL makes the one update fail as a whole.
    with pytest.raises((StoreError, SyntaxError, ValueError)):
        two_graphs.replace_graphs({A: [_triple("x", "changed")], "http://example.org/bad iri>": [bad]})
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"in-a", "in-b"}


def test_syntax_errors_carry_line_and_column(empty_store: Store) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        empty_store.query("SELECT *\nWHERE { ?s ?p }")
    assert caught.value.line == 2
    assert isinstance(caught.value.column, int) and caught.value.column > 1
    assert "line 2, column" in str(caught.value)


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


def test_oxigraph_store_satisfies_the_interface(empty_store: Store) -> None:
    assert isinstance(empty_store, Store)
