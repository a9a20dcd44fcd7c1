"""The contract of the store interface, run on every implementation: the embedded store
(in memory), and the remote store on a real engine (``oxigraph serve``), reading whole
graphs through the Graph Store Protocol and, without it, through SPARQL queries.

What only one implementation does (persistence on disk, an engine that goes away) is
tested in test_store.py and test_remote_store.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pyoxigraph as ox
import pytest

from conftest import OxigraphEngine
from patrolkg.errors import QuerySyntaxError, StoreError
from patrolkg.query import is_graph_result
from patrolkg.store import RemoteStore, Store, open_store

A, B = "http://example.org/g/a", "http://example.org/g/b"
P = ox.NamedNode("http://example.org/p")


def _triple(s: str, o: str) -> ox.Triple:
    return ox.Triple(ox.NamedNode(f"http://example.org/{s}"), P, ox.Literal(o))


def _values(store: Store, query: str, **kwargs: object) -> set[str]:
    return {row["o"].value for row in store.query(query, **kwargs)}  # type: ignore[union-attr,index]


def _rows(store: Store, query: str, *names: str, **kwargs: object) -> set[tuple[str | None, ...]]:
    return {tuple(row[n].value if row[n] is not None else None for n in names) for row in store.query(query, **kwargs)}  # type: ignore[union-attr,index]


@pytest.fixture(params=["embedded", "remote", "remote-without-gsp"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store of each implementation."""
    if request.param == "embedded":
        yield open_store(None)
        return
    engine: OxigraphEngine = request.getfixturevalue("oxigraph_engine")
    engine.clear()
    remote = RemoteStore(engine.query_url, gsp_url=engine.gsp_url if request.param == "remote" else None, lease_wait=5.0)
    yield remote
    remote.close()


@pytest.fixture
def two_graphs(store: Store) -> Store:
    store.replace_graphs({A: [_triple("x", "in-a")], B: [_triple("y", "in-b")]})
    return store


# -- the dataset of a query ------------------------------------------------------------


def test_the_store_satisfies_the_interface(store: Store) -> None:
    assert isinstance(store, Store)


def test_the_default_graph_is_the_union_of_the_named_graphs(two_graphs: Store) -> None:
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"in-a", "in-b"}


def test_the_union_includes_the_default_graph(two_graphs: Store) -> None:
    two_graphs.apply({}, {None: [_triple("z", "in-default")]})
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"in-a", "in-b", "in-default"}


def test_graph_reaches_every_named_graph_and_only_them(two_graphs: Store) -> None:
    two_graphs.apply({}, {None: [_triple("z", "in-default")]})
    assert _rows(two_graphs, "SELECT ?g ?o WHERE { GRAPH ?g { ?s ?p ?o } }", "g", "o") == {(A, "in-a"), (B, "in-b")}


def test_from_in_the_query_selects_the_dataset(two_graphs: Store) -> None:
    assert _values(two_graphs, f"SELECT ?o FROM <{A}> WHERE {{ ?s ?p ?o }}") == {"in-a"}


def test_from_named_alone_leaves_the_default_graph_empty(two_graphs: Store) -> None:
    assert _values(two_graphs, f"SELECT ?o FROM NAMED <{A}> WHERE {{ ?s ?p ?o }}") == set()


def test_protocol_graphs_override_the_query_dataset(two_graphs: Store) -> None:
    query = f"SELECT ?o FROM <{A}> WHERE {{ ?s ?p ?o }}"
    assert _values(two_graphs, query, default_graphs=[B]) == {"in-b"}


def test_protocol_default_graphs_leave_every_named_graph_reachable(two_graphs: Store) -> None:
    query = "SELECT ?g ?o WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
    assert _rows(two_graphs, query, "g", "o", default_graphs=[A]) == {(None, "in-a"), (A, "in-a"), (B, "in-b")}


def test_protocol_named_graphs_alone_leave_the_default_graph_empty(two_graphs: Store) -> None:
    query = "SELECT ?g ?o WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
    assert _rows(two_graphs, query, "g", "o", named_graphs=[B]) == {(B, "in-b")}


def test_an_unknown_graph_is_empty(two_graphs: Store) -> None:
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }", default_graphs=["http://example.org/nowhere"]) == set()


def test_relative_iris_resolve_against_the_base_and_a_base_in_the_query_wins(two_graphs: Store) -> None:
    assert _values(two_graphs, "SELECT ?o WHERE { <x> ?p ?o }", base_iri="http://example.org/") == {"in-a"}
    assert _values(two_graphs, "BASE <http://example.org/> SELECT ?o WHERE { <y> ?p ?o }", base_iri="http://elsewhere.org/") == {"in-b"}


# -- results -------------------------------------------------------------------------------


def test_each_kind_of_query_gives_its_kind_of_result(two_graphs: Store) -> None:
    solutions = two_graphs.query("SELECT ?s ?o WHERE { ?s ?p ?o } ORDER BY ?o")
    assert isinstance(solutions, ox.QuerySolutions)
    assert [v.value for v in solutions.variables] == ["s", "o"]
    assert [row["o"].value for row in solutions] == ["in-a", "in-b"]
    assert isinstance(two_graphs.query("ASK { ?s ?p 'in-a' }"), ox.QueryBoolean)
    assert bool(two_graphs.query("ASK { ?s ?p 'in-a' }")) and not bool(two_graphs.query("ASK { ?s ?p 'nowhere' }"))
    graph = two_graphs.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
    assert is_graph_result(graph)
    assert set(graph) == {_triple("x", "in-a"), _triple("y", "in-b")}  # type: ignore[arg-type]


def test_terms_keep_their_kind_language_and_datatype(store: Store) -> None:
    s = ox.NamedNode("http://example.org/s")
    terms = [
        ox.Literal("chat", language="fr"),
        ox.Literal("12", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
        ox.Literal("2025-12", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#gYearMonth")),
        ox.Literal('a "quoted"\nline'),
        ox.NamedNode("http://example.org/é"),
    ]
    store.replace_graphs({A: [ox.Triple(s, P, t) for t in terms]})
    assert {row["o"] for row in store.query("SELECT ?o WHERE { ?s ?p ?o }")} == set(terms)  # type: ignore[union-attr,index]
    assert {q.object for q in store.quads(A)} == set(terms)


def test_syntax_errors_carry_line_and_column(store: Store) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        store.query("SELECT *\nWHERE { ?s ?p }")
    assert caught.value.line == 2
    assert isinstance(caught.value.column, int) and caught.value.column > 1
    assert "line 2, column" in str(caught.value)


def test_syntax_errors_keep_their_position_with_a_base_iri(store: Store) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        store.query("SELECT *\nWHERE { ?s ?p }", base_iri="http://example.org/")
    assert caught.value.line == 2


# -- reading graphs and quads --------------------------------------------------------------


def test_graph_names_lists_the_named_graphs_that_hold_triples(two_graphs: Store) -> None:
    two_graphs.apply({}, {None: [_triple("z", "in-default")]})
    assert two_graphs.graph_names() == [A, B]
    two_graphs.apply({A: [_triple("x", "in-a")]}, {})
    assert two_graphs.graph_names() == [B]


def test_triple_count_per_graph_and_in_all(two_graphs: Store) -> None:
    two_graphs.apply({}, {None: [_triple("z", "in-default")], A: [_triple("x2", "more")]})
    assert two_graphs.triple_count(A) == 2
    assert two_graphs.triple_count(B) == 1
    assert two_graphs.triple_count("http://example.org/nowhere") == 0
    assert two_graphs.triple_count() == 4


def test_quads_of_one_graph_or_of_all(two_graphs: Store) -> None:
    two_graphs.apply({}, {None: [_triple("z", "in-default")]})
    assert list(two_graphs.quads(A)) == [ox.Quad(*_triple("x", "in-a"), ox.NamedNode(A))]
    assert set(two_graphs.quads()) == {
        ox.Quad(*_triple("x", "in-a"), ox.NamedNode(A)),
        ox.Quad(*_triple("y", "in-b"), ox.NamedNode(B)),
        ox.Quad(*_triple("z", "in-default"), ox.DefaultGraph()),
    }
    assert list(two_graphs.quads("http://example.org/nowhere")) == []


def test_quads_in_reads_the_default_graph_or_a_named_one(two_graphs: Store) -> None:
    assert list(two_graphs.quads_in(None)) == []
    two_graphs.apply({}, {None: [_triple("z", "in-default")]})
    assert list(two_graphs.quads_in(None)) == [ox.Quad(*_triple("z", "in-default"), ox.DefaultGraph())]
    assert list(two_graphs.quads_in(B)) == [ox.Quad(*_triple("y", "in-b"), ox.NamedNode(B))]


def test_quads_by_subject_and_by_object_in_any_graph(two_graphs: Store) -> None:
    link = ox.Triple(ox.NamedNode("http://example.org/z"), P, ox.NamedNode("http://example.org/x"))
    two_graphs.apply({}, {None: [link]})
    found = two_graphs.quads_with_subjects(["http://example.org/x", "http://example.org/z", "http://example.org/none"])
    assert set(found) == {ox.Quad(*_triple("x", "in-a"), ox.NamedNode(A)), ox.Quad(*link, ox.DefaultGraph())}
    assert two_graphs.quads_with_objects(["http://example.org/x"]) == [ox.Quad(*link, ox.DefaultGraph())]
    assert two_graphs.quads_with_subjects([]) == []


def test_quads_by_subject_for_many_subjects(store: Store) -> None:
    triples = [_triple(f"n{i}", str(i)) for i in range(450)]
    store.replace_graphs({A: triples})
    found = store.quads_with_subjects(t.subject.value for t in triples)  # type: ignore[union-attr]
    assert {q.triple for q in found} == set(triples)


# -- writing ------------------------------------------------------------------------------


def test_replace_graphs_replaces_only_the_named_graphs(two_graphs: Store) -> None:
    two_graphs.replace_graphs({A: [_triple("x", "new-a")]})
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"new-a", "in-b"}
    assert two_graphs.triple_count(A) == 1


def test_drop_removes_a_graph(two_graphs: Store) -> None:
    two_graphs.replace_graphs({}, drop=[A])
    assert two_graphs.graph_names() == [B]


def test_a_failed_replacement_writes_nothing(two_graphs: Store) -> None:
    bad = ox.Triple(ox.NamedNode("http://example.org/x"), P, ox.Literal("z"))
    # A graph IRI that cannot be written in SPARQL makes the one update fail as a whole.
    with pytest.raises((StoreError, SyntaxError, ValueError)):
        two_graphs.replace_graphs({A: [_triple("x", "changed")], "http://example.org/bad iri>": [bad]})
    assert _values(two_graphs, "SELECT ?o WHERE { ?s ?p ?o }") == {"in-a", "in-b"}


def test_apply_deletes_then_inserts_in_each_graph(two_graphs: Store) -> None:
    assert two_graphs.apply({A: [_triple("x", "in-a")]}, {A: [_triple("x", "changed")], None: [_triple("z", "new")]}) is True
    assert set(two_graphs.quads()) == {
        ox.Quad(*_triple("x", "changed"), ox.NamedNode(A)),
        ox.Quad(*_triple("y", "in-b"), ox.NamedNode(B)),
        ox.Quad(*_triple("z", "new"), ox.DefaultGraph()),
    }


def test_blank_nodes_can_be_added(store: Store) -> None:
    node = ox.BlankNode()
    store.apply({}, {A: [ox.Triple(ox.NamedNode("http://example.org/s"), P, node), ox.Triple(node, P, ox.Literal("inner"))]})
    rows = list(store.query("SELECT ?inner WHERE { <http://example.org/s> ?p ?b . ?b ?p ?inner }"))
    assert [row["inner"].value for row in rows] == ["inner"]  # type: ignore[index]


def test_every_commit_changes_the_version(store: Store) -> None:
    seen = [store.version()]
    store.replace_graphs({A: [_triple("x", "1")]})
    seen.append(store.version())
    store.apply({}, {A: [_triple("x", "2")]})
    seen.append(store.version())
    store.apply({}, {A: [_triple("x", "3")]}, expect_version=seen[-1], new_version="mine")
    seen.append(store.version())
    assert seen[0] is None and seen[-1] == "mine"
    assert len(set(seen)) == len(seen)


def test_a_conditional_apply_on_a_stale_version_writes_nothing(two_graphs: Store) -> None:
    read = two_graphs.version()
    assert two_graphs.apply({}, {A: [_triple("x", "first")]}, expect_version=read, new_version="v1") is True
    assert two_graphs.apply({A: [_triple("x", "in-a")]}, {A: [_triple("x", "second")]}, expect_version=read, new_version="v2") is False
    assert two_graphs.version() == "v1"
    assert _values(two_graphs, f"SELECT ?o WHERE {{ GRAPH <{A}> {{ ?s ?p ?o }} }}") == {"in-a", "first"}


def test_a_conditional_apply_on_a_store_never_written(store: Store) -> None:
    assert store.apply({}, {A: [_triple("x", "first")]}, expect_version=None, new_version="v1") is True
    assert store.apply({}, {A: [_triple("x", "again")]}, expect_version=None, new_version="v2") is False
    assert store.version() == "v1"


def test_the_write_lease_is_reentrant_and_keeps_other_writers_waiting(store: Store) -> None:
    events: list[str] = []

    def other_writer() -> None:
        with store.write_lease():
            events.append("other")

    with store.write_lease():
        with store.write_lease():
            other = threading.Thread(target=other_writer)
            other.start()
            time.sleep(0.3)
            events.append("holder")
    other.join(10)
    assert events == ["holder", "other"]


def test_under_the_write_lease_one_of_many_racing_writers_commits(store: Store) -> None:
    read = store.version()
    results: list[bool] = []

    def writer(n: int) -> None:
        with store.write_lease():
            results.append(store.apply({}, {A: [_triple(f"w{n}", "x")]}, expect_version=read, new_version=f"v{n}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * 7 + [True]
    assert store.triple_count(A) == 1

