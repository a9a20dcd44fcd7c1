"""The SPARQL 1.1 Protocol at /sparql, one test per edge: how a query arrives, how its
result is negotiated, and the one status of each failure.

Every test runs the app in-process over a fresh store holding a few triples of its own.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.compare import isomorphic

from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app
from patrolkg.web.sparql import TRUNCATED_HEADER

EX = "http://example.org/"
GRAPH_A = EX + "graph/a"
GRAPH_B = EX + "graph/b"
FOAF = "http://xmlns.com/foaf/0.1/"

# alice knows bob is in both graphs: the union default graph holds it once.
GRAPHS = {
    GRAPH_A: f"""
        <{EX}alice> <{FOAF}name> "Alice" .
        <{EX}alice> <{FOAF}knows> <{EX}bob> .
    """,
    GRAPH_B: f"""
        <{EX}bob> <{FOAF}name> "Bob" .
        <{EX}alice> <{FOAF}knows> <{EX}bob> .
    """,
}

NAMES = f"SELECT ?name WHERE {{ ?person <{FOAF}name> ?name }} ORDER BY ?name"
NAMES_GRAPH = f"CONSTRUCT WHERE {{ ?person <{FOAF}name> ?name }}"
EXPECTED_NAMES_GRAPH = f"""
    <{EX}alice> <{FOAF}name> "Alice" .
    <{EX}bob> <{FOAF}name> "Bob" .
"""
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def short_id(value: object) -> str | None:
    """Test ids that name the query's kind rather than spell it out."""
    return {NAMES: "select", NAMES_GRAPH: "construct", "ASK {}": "ask"}.get(value) if isinstance(value, str) else None


def fill(store: Store, graphs: dict[str, str]) -> Store:
    store.replace_graphs({name: [q.triple for q in ox.parse(text.encode(), format=ox.RdfFormat.N_TRIPLES)] for name, text in graphs.items()})
    return store


@contextmanager
def serve(store: Store, **settings: Any) -> Iterator[TestClient]:
    app = create_app(Settings.from_env({}, **settings), store=store, seed=False)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def store() -> Store:
    return fill(open_store(None), GRAPHS)


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    with serve(store) as client:
        yield client


@contextmanager
def listening_socket() -> Iterator[tuple[str, Callable[[], bool]]]:
    """A loopback URL and a function telling whether anything connected to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)

        def connected() -> bool:
            try:
                connection, _ = sock.accept()
            except BlockingIOError:
                return False
            connection.close()
            return True

        yield f"http://127.0.0.1:{sock.getsockname()[1]}/sparql", connected


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["status"] == status
    return error


# --- reading each result format -------------------------------------------------------


def names_from_json(body: bytes) -> list[str]:
    return [b["name"]["value"] for b in json.loads(body)["results"]["bindings"]]


def names_from_xml(body: bytes) -> list[str]:
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    return [e.text or "" for e in ET.fromstring(body).findall("r:results/r:result/r:binding/r:literal", ns)]


def names_from_csv(body: bytes) -> list[str]:
    header, *rows = csv.reader(io.StringIO(body.decode()))
    assert header == ["name"]
    return [row[0] for row in rows]


def names_from_tsv(body: bytes) -> list[str]:
    header, *rows = body.decode().splitlines()
    assert header == "?name"
    return [json.loads(row) for row in rows]  # TSV writes literals in N-Triples form


RESULT_FORMATS = [
    ("application/sparql-results+json", "application/sparql-results+json", names_from_json),
    ("application/sparql-results+xml", "application/sparql-results+xml", names_from_xml),
    ("text/csv", "text/csv; charset=utf-8", names_from_csv),
    ("text/tab-separated-values", "text/tab-separated-values; charset=utf-8", names_from_tsv),
]

GRAPH_FORMATS = [
    ("text/turtle", "text/turtle; charset=utf-8", "turtle"),
    ("application/n-triples", "application/n-triples", "nt"),
    ("application/ld+json", "application/ld+json", "json-ld"),
    ("application/rdf+xml", "application/rdf+xml", "xml"),
]


def graph_of(body: bytes, rdflib_format: str) -> rdflib.Graph:
    return rdflib.Graph().parse(data=body, format=rdflib_format)


def expected_graph() -> rdflib.Graph:
    return rdflib.Graph().parse(data=EXPECTED_NAMES_GRAPH, format="nt")


# --- how a query arrives ----------------------------------------------------------------


def test_query_by_get(api: TestClient) -> None:
    response = api.get("/sparql", params={"query": NAMES})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/sparql-results+json"
    assert "Accept" in response.headers["vary"]
    assert names_from_json(response.content) == ["Alice", "Bob"]


def test_query_by_post_form(api: TestClient) -> None:
    response = api.post("/sparql", data={"query": NAMES})
    assert response.status_code == 200
    assert names_from_json(response.content) == ["Alice", "Bob"]


def test_query_by_post_form_with_utf8_charset(api: TestClient) -> None:
    body = "query=" + NAMES.replace(" ", "+")
    response = api.post("/sparql", content=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert response.status_code == 200
    assert names_from_json(response.content) == ["Alice", "Bob"]


def test_query_by_post_direct(api: TestClient) -> None:
    response = api.post("/sparql", content=NAMES.encode(), headers={"Content-Type": "application/sparql-query"})
    assert response.status_code == 200
    assert names_from_json(response.content) == ["Alice", "Bob"]


def test_non_ascii_query_in_utf8(api: TestClient, store: Store) -> None:
    fill(store, {EX + "graph/c": f'<{EX}zoe> <{FOAF}name> "Zoë" .'})
    query = f'ASK {{ ?p <{FOAF}name> "Zoë" }}'
    by_get = api.get("/sparql", params={"query": query})
    direct = api.post("/sparql", content=query.encode("utf-8"), headers={"Content-Type": "application/sparql-query; charset=utf-8"})
    assert by_get.json()["boolean"] is True
    assert direct.json()["boolean"] is True


def test_relative_iris_resolve_against_the_base_iri(api: TestClient) -> None:
    response = api.get("/sparql", params={"query": "SELECT ?x WHERE { BIND(<id/state/japan> AS ?x) }"})
    assert response.json()["results"]["bindings"][0]["x"]["value"] == "https://w3id.org/patrolkg/id/state/japan"


def test_head_answers_like_get_without_a_body(api: TestClient) -> None:
    response = api.head("/sparql", params={"query": "ASK {}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/sparql-results+json"


# --- every format, exactly as the specs name it --------------------------------------------


@pytest.mark.parametrize(("accept", "content_type", "read"), RESULT_FORMATS, ids=[f[0] for f in RESULT_FORMATS])
def test_select_in_each_results_format(api: TestClient, accept: str, content_type: str, read: Callable[[bytes], list[str]]) -> None:
    response = api.get("/sparql", params={"query": NAMES}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert read(response.content) == ["Alice", "Bob"]


@pytest.mark.parametrize("accept", ["application/sparql-results+json", "application/sparql-results+xml"])
def test_ask_in_json_and_xml(api: TestClient, accept: str) -> None:
    response = api.get("/sparql", params={"query": f"ASK {{ ?s <{FOAF}name> 'Alice' }}"}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == accept
    if accept.endswith("json"):
        assert response.json()["boolean"] is True
    else:
        assert ET.fromstring(response.content).findtext("{http://www.w3.org/2005/sparql-results#}boolean") == "true"


@pytest.mark.parametrize(("accept", "content_type", "rdflib_format"), GRAPH_FORMATS, ids=[f[0] for f in GRAPH_FORMATS])
def test_construct_in_each_graph_format(api: TestClient, accept: str, content_type: str, rdflib_format: str) -> None:
    response = api.get("/sparql", params={"query": NAMES_GRAPH}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert isomorphic(graph_of(response.content, rdflib_format), expected_graph())


def test_describe_is_a_graph(api: TestClient) -> None:
    response = api.get("/sparql", params={"query": f"DESCRIBE <{EX}bob>"}, headers={"Accept": "application/n-triples"})
    assert response.status_code == 200
    assert (rdflib.URIRef(EX + "bob"), rdflib.URIRef(FOAF + "name"), rdflib.Literal("Bob")) in graph_of(response.content, "nt")


# --- content negotiation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept", "chosen"),
    [
        (NAMES, None, "application/sparql-results+json"),
        (NAMES, "*/*", "application/sparql-results+json"),
        (NAMES, "text/csv;q=0.5, application/sparql-results+xml;q=0.9", "application/sparql-results+xml"),
        (NAMES, "text/*", "text/csv"),
        (NAMES, "text/*;q=0.5, text/tab-separated-values", "text/tab-separated-values"),
        (NAMES, "application/sparql-results+json;q=0, */*", "application/sparql-results+xml"),
        (NAMES, "image/png;q=1, */*;q=0.1", "application/sparql-results+json"),
        (NAMES_GRAPH, None, "text/turtle"),
        (NAMES_GRAPH, "application/*", "application/n-triples"),
        (NAMES_GRAPH, "application/rdf+xml;q=0.8, application/ld+json;q=0.9", "application/ld+json"),
        (NAMES_GRAPH, "text/turtle;q=0, */*", "application/n-triples"),
    ],
    ids=short_id,
)
def test_conneg_with_q_values_and_wildcards(api: TestClient, query: str, accept: str | None, chosen: str) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    response = api.get("/sparql", params={"query": query}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == chosen
    assert "Accept" in response.headers["vary"]


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        (NAMES, "image/png"),
        (NAMES, "text/turtle"),
        (NAMES, "application/sparql-results+json;q=0"),
        (NAMES_GRAPH, "application/sparql-results+json"),
    ],    ids=short_id,
)
def test_406_when_nothing_acceptable(api: TestClient, query: str, accept: str) -> None:
    error = error_of(api.get("/sparql", params={"query": query}, headers={"Accept": accept}), 406)
    assert error["code"] == "not_acceptable"
    assert "hint" in error


@pytest.mark.parametrize(
    ("query", "fmt", "chosen"),
    [
        (NAMES, "csv", "text/csv"),
        (NAMES, "tsv", "text/tab-separated-values"),
        (NAMES, "xml", "application/sparql-results+xml"),
        (NAMES, "json", "application/sparql-results+json"),
        (NAMES, "application/sparql-results+xml", "application/sparql-results+xml"),
        ("ASK {}", "xml", "application/sparql-results+xml"),
        (NAMES_GRAPH, "turtle", "text/turtle"),
        (NAMES_GRAPH, "ntriples", "application/n-triples"),
        (NAMES_GRAPH, "jsonld", "application/ld+json"),
        (NAMES_GRAPH, "rdfxml", "application/rdf+xml"),
        (NAMES_GRAPH, "xml", "application/rdf+xml"),
        (NAMES_GRAPH, "json", "application/ld+json"),
        (NAMES_GRAPH, "text/turtle", "text/turtle"),
    ],    ids=short_id,
)
def test_format_parameter_overrides_accept(api: TestClient, query: str, fmt: str, chosen: str) -> None:
    # The Accept header asks for something else: the parameter wins.
    response = api.get("/sparql", params={"query": query, "format": fmt}, headers={"Accept": "application/n-quads"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == chosen


def test_format_parameter_in_a_form(api: TestClient) -> None:
    response = api.post("/sparql", data={"query": NAMES, "format": "csv"})
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert names_from_csv(response.content) == ["Alice", "Bob"]


@pytest.mark.parametrize(("query", "fmt"), [(NAMES, "turtle"), (NAMES_GRAPH, "csv"), (NAMES, "yaml")], ids=short_id)
def test_format_parameter_that_cannot_be_met_is_406(api: TestClient, query: str, fmt: str) -> None:
    error = error_of(api.get("/sparql", params={"query": query, "format": fmt}), 406)
    assert error["code"] == "not_acceptable"


# --- the dataset -------------------------------------------------------------------------


def test_default_graph_uri_overrides_from(api: TestClient) -> None:
    query = f"SELECT ?name FROM <{GRAPH_A}> WHERE {{ ?person <{FOAF}name> ?name }}"
    assert names_from_json(api.get("/sparql", params={"query": query}).content) == ["Alice"]
    overridden = api.get("/sparql", params={"query": query, "default-graph-uri": GRAPH_B})
    assert names_from_json(overridden.content) == ["Bob"]


def test_several_default_graph_uris_are_merged(api: TestClient) -> None:
    response = api.get("/sparql", params=[("query", NAMES), ("default-graph-uri", GRAPH_A), ("default-graph-uri", GRAPH_B)])
    assert names_from_json(response.content) == ["Alice", "Bob"]


def test_named_graph_uri_overrides_from_named(api: TestClient) -> None:
    query = f"SELECT ?g ?name FROM NAMED <{GRAPH_A}> WHERE {{ GRAPH ?g {{ ?person <{FOAF}name> ?name }} }}"
    response = api.post("/sparql", params={"named-graph-uri": GRAPH_B}, content=query.encode(), headers={"Content-Type": "application/sparql-query"})
    bindings = response.json()["results"]["bindings"]
    assert [(b["g"]["value"], b["name"]["value"]) for b in bindings] == [(GRAPH_B, "Bob")]


def test_named_graph_uri_alone_leaves_the_default_graph_empty(api: TestClient) -> None:
    response = api.get("/sparql", params={"query": NAMES, "named-graph-uri": GRAPH_A})
    assert names_from_json(response.content) == []


def test_unknown_graph_is_empty_and_never_fetched(api: TestClient) -> None:
    with listening_socket() as (url, connected):
        response = api.get("/sparql", params={"query": NAMES, "default-graph-uri": url})
        assert response.status_code == 200
        assert names_from_json(response.content) == []
        assert not connected()


def test_graph_uri_must_be_an_absolute_iri(api: TestClient) -> None:
    error = error_of(api.get("/sparql", params={"query": NAMES, "default-graph-uri": "not an iri"}), 400)
    assert error["code"] == "bad_graph_uri"


# --- refusals ------------------------------------------------------------------------------


def test_two_queries_are_400(api: TestClient) -> None:
    error = error_of(api.get("/sparql", params=[("query", "ASK {}"), ("query", "SELECT * {}")]), 400)
    assert error["code"] == "multiple_queries"


def test_query_in_url_and_body_is_two_queries(api: TestClient) -> None:
    response = api.post("/sparql", params={"query": "ASK {}"}, content=b"ASK {}", headers={"Content-Type": "application/sparql-query"})
    assert error_of(response, 400)["code"] == "multiple_queries"


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_400(api: TestClient, query: str) -> None:
    assert error_of(api.get("/sparql", params={"query": query}), 400)["code"] == "missing_query"


def test_form_without_query_is_400(api: TestClient) -> None:
    assert error_of(api.post("/sparql", data={"format": "json"}), 400)["code"] == "missing_query"


def test_syntax_error_is_400_with_line_and_column(api: TestClient) -> None:
    error = error_of(api.get("/sparql", params={"query": "SELECT *\nWHERE { ?s ?p }"}), 400)
    assert error["code"] == "query_syntax_error"
    assert error["line"] == 2
    assert isinstance(error["column"], int)
    assert "line 2" in error["message"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/json", "application/sparql-results+json"],
)
def test_unsupported_content_type_is_415(api: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    error = error_of(api.post("/sparql", content=b"ASK {}", headers=headers), 415)
    assert error["code"] == "unsupported_media_type"
    assert "application/sparql-query" in error["hint"]


@pytest.mark.parametrize("content_type", ["application/sparql-query", "application/x-www-form-urlencoded"])
def test_charset_other_than_utf8_is_415(api: TestClient, content_type: str) -> None:
    body = ("ASK {}" if content_type.endswith("query") else "query=ASK+{}").encode("utf-16")
    error = error_of(api.post("/sparql", content=body, headers={"Content-Type": f"{content_type}; charset=UTF-16"}), 415)
    assert error["code"] == "unsupported_charset"
    assert "UTF-8" in error["message"]


@pytest.mark.parametrize(
    ("send", "where"),
    [
        (lambda api: api.post("/sparql", content=b"ASK { ?s ?p '\xff' }", headers={"Content-Type": "application/sparql-query"}), "the query"),
        (lambda api: api.post("/sparql", content=b"query=ASK%20%7B%FF%7D", headers={"Content-Type": "application/x-www-form-urlencoded"}), "the form"),
        (lambda api: api.get("/sparql?query=ASK%20%7B%FF%7D"), "the query string"),
    ],
    ids=["direct", "form", "get"],
)
def test_undecodable_bytes_are_400(api: TestClient, send: Callable[[TestClient], Any], where: str) -> None:
    error = error_of(send(api), 400)
    assert error["code"] == "not_utf8"
    assert error["message"].startswith(where)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(api: TestClient, method: str) -> None:
    response = api.request(method, "/sparql", params={"query": "ASK {}"})
    error = error_of(response, 405)
    assert error["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize(
    "send",
    [
        lambda api: api.get("/sparql", params={"update": "CLEAR ALL"}),
        lambda api: api.post("/sparql", data={"update": "CLEAR ALL"}),
        lambda api: api.post("/sparql", content=b"CLEAR ALL", headers={"Content-Type": "application/sparql-update"}),
        lambda api: api.post("/sparql", data={"query": f"INSERT DATA {{ <{EX}a> <{EX}b> <{EX}c> }}"}),
        lambda api: api.get("/sparql", params={"query": f"PREFIX ex: <{EX}> DELETE WHERE {{ ?s ?p ?o }}"}),
    ],
    ids=["get-update", "form-update", "direct-update", "insert-as-query", "delete-as-query"],
)
def test_update_is_400_and_changes_nothing(api: TestClient, store: Store, send: Callable[[TestClient], Any]) -> None:
    before = store.triple_count()
    error = error_of(send(api), 400)
    assert error["code"] == "forbidden_operation"
    assert "Update" in error["message"]
    assert store.triple_count() == before


def test_service_not_allow_listed_is_400_before_any_connection(api: TestClient) -> None:
    with listening_socket() as (url, connected):
        query = f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"
        error = error_of(api.get("/sparql", params={"query": query}), 400)
        assert error["code"] == "forbidden_operation"
        assert url in error["message"]
        assert "PATROLKG_SERVICE_ALLOWLIST" in error["hint"]
        assert not connected()


# --- limits ------------------------------------------------------------------------------


def test_truncated_result_is_flagged(store: Store) -> None:
    with serve(store, max_rows=1) as api:
        response = api.get("/sparql", params={"query": NAMES})
        assert response.status_code == 200
        assert response.headers[TRUNCATED_HEADER] == "max-rows=1"
        assert names_from_json(response.content) == ["Alice"]
        graph = api.get("/sparql", params={"query": NAMES_GRAPH})
        assert graph.headers[TRUNCATED_HEADER] == "max-rows=1"
        complete = api.get("/sparql", params={"query": NAMES + " LIMIT 1"})
        assert TRUNCATED_HEADER not in complete.headers


def test_timeout_is_503_naming_the_setting_and_comes_back_promptly() -> None:
    store = open_store(None)
    value = ox.NamedNode(EX + "value")
    store.replace_graphs({EX + "numbers": [ox.Triple(ox.NamedNode(f"{EX}n{i}"), value, ox.Literal(i)) for i in range(3000)]})
    # A cross join of 3000 x 3000 rows of which one in 3000 passes the filter: seconds of work.
    heavy = f"SELECT ?a ?b WHERE {{ ?a <{value.value}> ?x . ?b <{value.value}> ?y FILTER(?x + ?y = 2999) }}"
    with serve(store, query_timeout=0.05) as api:
        started = time.perf_counter()
        response = api.get("/sparql", params={"query": heavy})
        elapsed = time.perf_counter() - started
    error = error_of(response, 503)
    assert error["code"] == "query_timeout"
    assert error["setting"] == "PATROLKG_QUERY_TIMEOUT"
    assert elapsed < 1.0


# --- the service description ----------------------------------------------------------------

SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
W3C_FORMATS = rdflib.Namespace("http://www.w3.org/ns/formats/")


def description(api: TestClient, accept: str = "text/turtle") -> rdflib.Graph:
    response = api.get("/sparql", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == accept
    assert "Accept" in response.headers["vary"]
    return graph_of(response.content, {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}[accept])


def test_service_description_in_turtle(api: TestClient) -> None:
    graph = description(api)
    service = graph.value(predicate=rdflib.RDF.type, object=SD.Service)
    assert service is not None
    assert graph.value(service, SD.endpoint) == rdflib.URIRef("http://testserver/sparql")
    assert graph.value(service, SD.supportedLanguage) == SD.SPARQL11Query
    assert set(graph.objects(service, SD.resultFormat)) == {
        W3C_FORMATS[name]
        for name in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV", "Turtle", "N-Triples", "JSON-LD", "RDF_XML")
    }
    assert set(graph.objects(service, SD.feature)) == {SD.UnionDefaultGraph}

    dataset = graph.value(service, SD.defaultDataset)
    default_graph = graph.value(dataset, SD.defaultGraph)
    assert graph.value(default_graph, VOID.triples).toPython() == 3  # the shared triple counts once
    sizes = {
        str(graph.value(named, SD.name)): graph.value(graph.value(named, SD.graph), VOID.triples).toPython()
        for named in graph.objects(dataset, SD.namedGraph)
    }
    assert sizes == {GRAPH_A: 2, GRAPH_B: 2}


@pytest.mark.parametrize("accept", ["application/n-triples", "application/ld+json", "application/rdf+xml"])
def test_service_description_in_other_rdf_formats(api: TestClient, accept: str) -> None:
    assert isomorphic(description(api, accept), description(api))


def test_service_description_lists_federation_when_allow_listed(store: Store) -> None:
    with serve(store, service_allowlist=("https://query.wikidata.org/sparql",)) as api:
        graph = description(api)
    assert set(graph.objects(None, SD.feature)) == {SD.UnionDefaultGraph, SD.BasicFederatedQuery}


def test_service_description_format_parameter(api: TestClient) -> None:
    response = api.get("/sparql", params={"format": "ntriples"}, headers={"Accept": BROWSER_ACCEPT})
    assert response.headers["content-type"] == "application/n-triples"


def test_service_description_406(api: TestClient) -> None:
    assert error_of(api.get("/sparql", headers={"Accept": "application/json"}), 406)["code"] == "not_acceptable"


def test_browsers_are_sent_to_the_query_ui(api: TestClient) -> None:
    response = api.get("/sparql", headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/query"
    assert "Accept" in response.headers["vary"]


def test_browsers_are_sent_to_the_query_ui_under_the_root_path(store: Store) -> None:
    app = create_app(Settings.from_env({}), store=store, seed=False)
    with TestClient(app, root_path="/kg") as api:
        response = api.get("/sparql", headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False)
    assert response.headers["location"] == "/kg/query"


def test_openapi_documents_the_endpoint(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/sparql"])
    names = {p["name"] for p in paths["/sparql"]["get"]["parameters"]}
    assert {"query", "default-graph-uri", "named-graph-uri", "format"} <= names
