"""The link set to Wikidata: each link's form (the shape), its item's type and name in
the Wikidata-shaped fixture, the query that starts from a Wikidata IRI, and the
entity pages' links elsewhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.namespace import OWL, RDFS, SH, SKOS

from patrolkg import resources
from patrolkg.linking import KINDS, local_records, propose_links, read_source_file
from patrolkg.namespaces import PK, PKSH
from patrolkg.query import select_rows
from patrolkg.reconcile import normalize
from patrolkg.resources import QUERIES_PATH
from patrolkg.store import Store
from patrolkg.writes import Change, Writer

ROOT = Path(__file__).resolve().parents[1]
LINKS = ROOT / "data" / "links.ttl"
WIKIDATA = ROOT / "data" / "fixtures" / "wikidata-excerpt.ttl"
ID = "https://w3id.org/patrolkg/id/"
WDT = rdflib.Namespace("http://www.wikidata.org/prop/direct/")


@pytest.fixture(scope="module")
def links() -> rdflib.Graph:
    return rdflib.Graph().parse(LINKS, format="turtle")


@pytest.fixture(scope="module")
def wikidata() -> rdflib.Graph:
    return rdflib.Graph().parse(WIKIDATA, format="turtle")


def test_every_link_has_the_form_the_shape_requires(links: rdflib.Graph, bundle_store: Store) -> None:
    shapes = resources.shapes_graph()
    pattern = str(shapes.value(PKSH["ExternalLinkShape-sameAs"], SH.pattern))
    assert len(links) == 14
    for subject, predicate, item in links:
        assert predicate == OWL.sameAs and str(subject).startswith(ID)
        assert re.search(pattern, str(item)), item
    # And the shapes, run as on every write, agree.
    triples = [t.triple for t in bundle_store.quads("https://w3id.org/patrolkg/graph/links")]
    assert Writer(bundle_store).write(Change().adding(None, triples), dry_run=True).report.conforms


def _kind_of(store: Store, entity: str) -> str:
    types = {row["t"] for row in select_rows(store, f"SELECT ?t WHERE {{ <{entity}> a ?t }}")}
    (kind,) = [k for k in KINDS.values() if k.local_type in types]
    return kind.name


def _names(graph: rdflib.Graph, node: rdflib.term.Node) -> set[str]:
    return {normalize(str(n)) for p in (RDFS.label, SKOS.altLabel, SKOS.prefLabel) for n in graph.objects(node, p)}


def test_every_link_fits_its_items_type_and_name(links: rdflib.Graph, wikidata: rdflib.Graph, bundle_store: Store) -> None:
    local = rdflib.Graph()
    for row in select_rows(bundle_store, f'SELECT ?s ?p ?o WHERE {{ ?s ?p ?o FILTER(STRSTARTS(STR(?s), "{ID}")) FILTER(?p IN (<{RDFS.label}>, <{SKOS.altLabel}>)) }}'):
        local.add((rdflib.URIRef(row["s"]), rdflib.URIRef(row["p"]), rdflib.Literal(row["o"])))
    for entity, _, item in links:
        kind = KINDS[_kind_of(bundle_store, str(entity))]
        item_types = {str(t) for t in wikidata.objects(item, WDT.P31)}
        assert item_types & kind.external_types, f"{item} is not a {kind.name}"
        assert _names(local, entity) & _names(wikidata, item), f"{entity} and {item} share no name"


def test_the_fixture_describes_exactly_the_linked_items(links: rdflib.Graph, wikidata: rdflib.Graph) -> None:
    assert set(wikidata.subjects(WDT.P31, None)) == set(links.objects(None, OWL.sameAs))


def test_link_discovery_finds_exactly_the_curated_links(links: rdflib.Graph, bundle_store: Store) -> None:
    source = read_source_file(WIKIDATA)
    found = set()
    for kind in KINDS.values():
        for proposal in propose_links(local_records(bundle_store, kind, id_space=ID), source, kind):
            if proposal.accepted:
                found.add((rdflib.URIRef(proposal.entity.iri), OWL.sameAs, rdflib.URIRef(proposal.accepted.record.iri)))
    assert found == set(links)


# ------------------------------------------------------------- from a Wikidata IRI


def test_a_query_naming_a_wikidata_iri_finds_the_local_facts(bundle_store: Store) -> None:
    text = (QUERIES_PATH / "ex01-statements-by-wikidata-state.rq").read_text(encoding="utf-8")
    assert text.startswith("# title: ") and text.splitlines()[1].startswith("# description: ")
    by_wikidata = select_rows(bundle_store, text)
    direct = select_rows(bundle_store, text.replace("?state owl:sameAs wd:Q17 .", f"VALUES ?state {{ <{ID}state/japan> }}"))
    assert [r["statement"] for r in by_wikidata] == [r["statement"] for r in direct]
    assert len(by_wikidata) == 10 and {r["state"] for r in by_wikidata} == {ID + "state/japan"}
    warning = next(r for r in by_wikidata if r["statement"] == ID + "statement/matsuno-warning-2022-05")
    assert warning["speakerLabel"] == "Hirokazu Matsuno" and warning["stances"] == "accusation"
    assert warning["article"] == ID + "article/cnsnews-2022-05"
    # Another item, another state: the same query answers for China.
    china = select_rows(bundle_store, text.replace("wd:Q17", "wd:Q148"))
    assert china and {r["state"] for r in china} == {ID + "state/china"}


def test_the_federated_examples_are_shipped_and_refused_until_configured(client: TestClient) -> None:
    shipped = {q.id: q for q in resources.named_queries()}
    for name, endpoint in (("ex02-patrol-participants-wikidata", "https://query.wikidata.org/sparql"), ("ex03-state-capitals-dbpedia", "https://dbpedia.org/sparql")):
        query = shipped[name]
        assert f"SERVICE <{endpoint}>" in query.text and "PATROLKG_SERVICE_ALLOWLIST" in query.description
        response = client.post("/sparql", data={"query": query.text})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "forbidden_operation"
        assert "no connection was made" in response.json()["error"]["message"]


# ------------------------------------------------------------------------ pages


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")


def _page(client: TestClient, path: str) -> tuple[str, _Anchors]:
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200
    parser = _Anchors()
    parser.feed(response.text)
    return response.text, parser


def test_a_linked_entity_shows_its_links_and_a_see_also(client: TestClient) -> None:
    html, page = _page(client, "/id/state/japan")
    assert "elsewhere" in page.sections
    section = html[html.index('<section id="elsewhere">') :]
    section = section[: section.index("</section>")]
    assert "<code>http://www.wikidata.org/entity/Q17</code>" in section
    assert ">links</span>" in section  # the graph that holds the link
    see_also = [a for a in page.anchors if "see-also" in (a.get("class") or "")]
    assert see_also == [{"class": "see-also external", "rel": "external", "href": "https://www.wikidata.org/wiki/Q17"}]
    assert "Japan on Wikidata</a>" in section


def test_an_unlinked_entity_has_no_links_section(client: TestClient) -> None:
    _, page = _page(client, "/id/person/hirokazu-matsuno")
    assert "elsewhere" not in page.sections
    assert not any("see-also" in (a.get("class") or "") for a in page.anchors)


def test_types_of_the_kinds_are_the_ontologys(bundle_store: Store) -> None:
    classes = {row["c"] for row in select_rows(bundle_store, f"SELECT ?c WHERE {{ ?c a <{OWL.Class}> }}")}
    for kind in KINDS.values():
        assert kind.local_type in classes and kind.local_type.startswith(str(PK))
