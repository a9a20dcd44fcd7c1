"""Loading the bundle: idempotent, leaves other graphs alone, atomic on bad files."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import IsomorphicGraph, to_isomorphic

from patrolkg import resources
from patrolkg.errors import RdfSyntaxError, ValidationFailed
from patrolkg.loading import load_bundle
from patrolkg.namespaces import INFERRED_GRAPH, LINKS_GRAPH, ONTOLOGY_GRAPH, REFERENCE_GRAPH, article_graph
from patrolkg.resources import BundledGraph
from patrolkg.store import Store

USER_GRAPH = "https://w3id.org/patrolkg/graph/submission/example"


def _snapshot(store: Store) -> dict[str, IsomorphicGraph]:
    """Each graph up to blank node renaming (every load mints fresh blank nodes)."""
    graphs = {}
    for name in store.graph_names():
        data = ox.serialize((q.triple for q in store.quads(name)), format=ox.RdfFormat.N_TRIPLES)
        graphs[name] = to_isomorphic(rdflib.Graph().parse(data=data, format="nt"))
    return graphs


def test_the_bundle_builds_every_named_graph(empty_store: Store) -> None:
    report = load_bundle(empty_store)
    expected = {
        str(ONTOLOGY_GRAPH),
        str(REFERENCE_GRAPH),
        str(article_graph("cnsnews-2022-05")),
        str(article_graph("tenth-joint-patrol-2025-12")),
        str(LINKS_GRAPH),
        str(INFERRED_GRAPH),
    }
    assert set(empty_store.graph_names()) == expected
    assert report.inferred == empty_store.triple_count(str(INFERRED_GRAPH)) > 0
    for graph, count in report.graphs.items():
        assert empty_store.triple_count(graph) == count > 0


def test_loading_twice_gives_the_same_store(empty_store: Store) -> None:
    load_bundle(empty_store)
    first = _snapshot(empty_store)
    load_bundle(empty_store)
    assert _snapshot(empty_store) == first


def test_a_load_leaves_other_graphs_untouched(empty_store: Store) -> None:
    triple = ox.Triple(ox.NamedNode("https://w3id.org/patrolkg/id/state/japan"), ox.NamedNode("http://example.org/note"), ox.Literal("kept"))
    empty_store.replace_graphs({USER_GRAPH: [triple]})
    load_bundle(empty_store)
    assert empty_store.triple_count(USER_GRAPH) == 1


def _broken_bundle(tmp_path: Path, text: str) -> list[BundledGraph]:
    broken = tmp_path / "broken.ttl"
    broken.write_text(text, encoding="utf-8")
    graphs = resources.bundle()
    graphs[1] = BundledGraph(REFERENCE_GRAPH, broken, "data/reference.ttl")
    return graphs


def test_a_malformed_file_stops_the_load_with_file_line_and_column(empty_store: Store, tmp_path: Path) -> None:
    load_bundle(empty_store)
    before = _snapshot(empty_store)
    graphs = _broken_bundle(tmp_path, "@prefix pk: <https://w3id.org/patrolkg/ontology#> .\n\n<urn:a> pk:label \"open string .\n")
    with pytest.raises(RdfSyntaxError) as caught:
        load_bundle(empty_store, bundle=graphs)
    assert (caught.value.source, caught.value.line) == ("data/reference.ttl", 3)
    assert caught.value.column is not None
    assert _snapshot(empty_store) == before


def test_nonconforming_data_stops_the_load_and_keeps_the_store(empty_store: Store, tmp_path: Path) -> None:
    load_bundle(empty_store)
    before = _snapshot(empty_store)
    graphs = _broken_bundle(
        tmp_path,
        "@prefix pk: <https://w3id.org/patrolkg/ontology#> .\n<https://w3id.org/patrolkg/id/event/x> a pk:JointPatrol .\n",
    )
    with pytest.raises(ValidationFailed) as caught:
        load_bundle(empty_store, bundle=graphs)
    assert any(v.focus_node == "https://w3id.org/patrolkg/id/event/x" for v in caught.value.report.results)
    assert _snapshot(empty_store) == before
