"""A real ``patrolkg serve`` on a loopback port, queried by the clients people use:
SPARQLWrapper in every format, and rdflib's SPARQLStore.

The questions are competency questions over the bundled data: who the members of the
Quad are, as a table and as a graph.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, JSONLD, N3, POST, POSTDIRECTLY, RDFXML, TSV, TURTLE, URLENCODED, XML, SPARQLWrapper

from patrolkg.resources import QUERIES_PATH

pytestmark = pytest.mark.slow

QUAD_MEMBERS = ["Australia", "India", "Japan", "United States"]
QUAD_MEMBERS_QUERY = (QUERIES_PATH / "cq05-quad-members.rq").read_text(encoding="utf-8")

PK = "https://w3id.org/patrolkg/ontology#"
QUAD = "https://w3id.org/patrolkg/id/org/quad"
QUAD_MEMBERS_GRAPH = f"""
PREFIX pk: <{PK}>
PREFIX org: <http://www.w3.org/ns/org#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
CONSTRUCT {{ ?member pk:memberOf <{QUAD}> ; rdfs:label ?label }}
WHERE {{
  {{ ?member pk:memberOf <{QUAD}> }}
  UNION {{ <{QUAD}> pk:hasMember ?member }}
  UNION {{ ?membership org:member ?member ; org:organization <{QUAD}> }}
  ?member rdfs:label ?label .
}}
"""
IS_JAPAN_IN_THE_QUAD = f"ASK {{ <https://w3id.org/patrolkg/id/state/japan> <{PK}memberOf> <{QUAD}> }}"


@pytest.fixture
def endpoint(live_server: Any) -> str:
    return live_server.url + "/sparql"


def wrapper(endpoint: str, query: str, return_format: str) -> SPARQLWrapper:
    client = SPARQLWrapper(endpoint)
    client.setQuery(query)
    client.setReturnFormat(return_format)
    return client


def labels_of(graph: rdflib.Graph) -> list[str]:
    return sorted(str(label) for label in graph.objects(None, rdflib.RDFS.label))


# --- SPARQLWrapper ------------------------------------------------------------------------


def test_sparqlwrapper_select_json(endpoint: str) -> None:
    result = wrapper(endpoint, QUAD_MEMBERS_QUERY, JSON).query()
    assert result.response.headers["Content-Type"] == "application/sparql-results+json"
    rows = result.convert()["results"]["bindings"]
    assert [row["memberLabel"]["value"] for row in rows] == QUAD_MEMBERS


def test_sparqlwrapper_select_xml(endpoint: str) -> None:
    document = wrapper(endpoint, QUAD_MEMBERS_QUERY, XML).queryAndConvert()
    labels = [
        binding.getElementsByTagName("literal")[0].firstChild.data
        for binding in document.getElementsByTagName("binding")
        if binding.getAttribute("name") == "memberLabel"
    ]
    assert labels == QUAD_MEMBERS


def test_sparqlwrapper_select_csv(endpoint: str) -> None:
    text = wrapper(endpoint, QUAD_MEMBERS_QUERY, CSV).queryAndConvert().decode("utf-8")
    header, *rows = csv.reader(io.StringIO(text))
    assert header == ["member", "memberLabel"]
    assert [row[1] for row in rows] == QUAD_MEMBERS


def test_sparqlwrapper_select_tsv(endpoint: str) -> None:
    text = wrapper(endpoint, QUAD_MEMBERS_QUERY, TSV).queryAndConvert().decode("utf-8")
    header, *rows = text.splitlines()
    assert header == "?member\t?memberLabel"
    assert [rdflib.util.from_n3(row.split("\t")[1]).toPython() for row in rows] == QUAD_MEMBERS


@pytest.mark.parametrize("encoding", [URLENCODED, POSTDIRECTLY])
def test_sparqlwrapper_posts_a_query(endpoint: str, encoding: str) -> None:
    client = wrapper(endpoint, QUAD_MEMBERS_QUERY, JSON)
    client.setMethod(POST)
    client.setRequestMethod(encoding)
    rows = client.queryAndConvert()["results"]["bindings"]
    assert [row["memberLabel"]["value"] for row in rows] == QUAD_MEMBERS


def test_sparqlwrapper_ask(endpoint: str) -> None:
    assert wrapper(endpoint, IS_JAPAN_IN_THE_QUAD, JSON).queryAndConvert()["boolean"] is True


def construct(endpoint: str, return_format: str) -> tuple[str, rdflib.Graph]:
    """The Quad's members as a graph, in one format, and the Content-Type it came in."""
    client = wrapper(endpoint, QUAD_MEMBERS_GRAPH, return_format)
    if return_format == N3:  # SPARQLWrapper has no N-Triples format: ask by conneg only
        client.setOnlyConneg(True)
        client.addCustomHttpHeader("Accept", "application/n-triples")
    result = client.query()
    content_type = result.response.headers["Content-Type"]
    converted = result.convert()
    if isinstance(converted, rdflib.Graph):
        return content_type, converted
    return content_type, rdflib.Graph().parse(data=converted, format="turtle" if return_format == TURTLE else "nt")


@pytest.mark.parametrize(
    ("return_format", "content_type"),
    [
        (TURTLE, "text/turtle; charset=utf-8"),
        (N3, "application/n-triples"),
        (JSONLD, "application/ld+json"),
        (RDFXML, "application/rdf+xml"),
        (XML, "application/rdf+xml"),
    ],
    ids=["turtle", "n-triples", "json-ld", "rdf-xml", "xml"],
)
def test_sparqlwrapper_construct(endpoint: str, return_format: str, content_type: str) -> None:
    received_type, graph = construct(endpoint, return_format)
    assert received_type == content_type
    assert labels_of(graph) == QUAD_MEMBERS
    assert len(set(graph.subjects(rdflib.URIRef(PK + "memberOf"), rdflib.URIRef(QUAD)))) == 4
    assert isomorphic(graph, construct(endpoint, TURTLE)[1])


# --- rdflib's SPARQLStore -------------------------------------------------------------------


def test_rdflib_sparqlstore_select(endpoint: str) -> None:
    graph = rdflib.Graph(store=SPARQLStore(endpoint))
    assert [str(row.memberLabel) for row in graph.query(QUAD_MEMBERS_QUERY)] == QUAD_MEMBERS


def test_rdflib_sparqlstore_ask(endpoint: str) -> None:
    graph = rdflib.Graph(store=SPARQLStore(endpoint))
    assert graph.query(IS_JAPAN_IN_THE_QUAD).askAnswer is True
    assert graph.query(IS_JAPAN_IN_THE_QUAD.replace("japan", "china")).askAnswer is False


def test_rdflib_sparqlstore_reads_triples(endpoint: str) -> None:
    graph = rdflib.Graph(store=SPARQLStore(endpoint))
    members = set(graph.subjects(rdflib.URIRef(PK + "memberOf"), rdflib.URIRef(QUAD)))
    assert rdflib.URIRef("https://w3id.org/patrolkg/id/state/japan") in members


def test_rdflib_reads_the_service_description(endpoint: str) -> None:
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    graph = rdflib.Graph().parse(endpoint)  # rdflib negotiates an RDF format itself
    service = graph.value(predicate=rdflib.RDF.type, object=sd.Service)
    assert graph.value(service, sd.endpoint) == rdflib.URIRef(endpoint)
    names = {str(graph.value(named, sd.name)) for named in graph.objects(None, sd.namedGraph)}
    assert "https://w3id.org/patrolkg/graph/reference" in names
