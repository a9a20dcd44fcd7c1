"""Submissions against a real ``patrolkg serve``: every shape example over HTTP, auth,
dry runs, bad input, retraction, provenance, and persistence across a restart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rdflib

from conftest import LiveServer

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parent / "shapes"
VALID = sorted(EXAMPLES.glob("*-valid.ttl"))
INVALID = sorted(EXAMPLES.glob("*-invalid-*.ttl"))
SHAPES_NS = "https://w3id.org/patrolkg/shapes#"
TOKEN = "alice:" + "a1" * 16
AUTH = {"Authorization": "Bearer " + "a1" * 16}
# One client with a generous timeout: a shared 2-core machine can be slow, not wrong.
http = httpx.Client(timeout=60)
TURTLE = {"Content-Type": "text/turtle", **AUTH}

STATEMENT = """
@prefix pk: <https://w3id.org/patrolkg/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
<https://w3id.org/patrolkg/id/statement/submitted-{n}> a pk:Statement ;
  rdfs:label "A submitted statement {n}"@en ;
  pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
  pk:onBehalfOf <https://w3id.org/patrolkg/id/state/japan> ;
  pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
  pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
  pk:summary "A statement submitted by a test."@en ;
  dcterms:source "the test suite" .
"""


def statement(n: int | str) -> bytes:
    return STATEMENT.replace("{n}", str(n)).encode()


def _state(url: str) -> tuple[int, list[str]]:
    """Quads in the store and its graph names, through SPARQL."""
    count = http.get(url + "/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"}, headers={"Accept": "application/sparql-results+json"})
    graphs = http.get(url + "/sparql", params={"query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g"}, headers={"Accept": "application/sparql-results+json"})
    n = int(count.json()["results"]["bindings"][0]["n"]["value"])
    return n, [b["g"]["value"] for b in graphs.json()["results"]["bindings"]]


def _ask(url: str, query: str) -> bool:
    response = http.get(url + "/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server on an empty store (no bundled data), so shape examples stand alone."""
    server = LiveServer(tmp_path_factory.mktemp("empty") / "store", "--no-seed", env={"PATROLKG_WRITE_TOKEN": TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("seeded") / "store", env={"PATROLKG_WRITE_TOKEN": TOKEN}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.stem)
def test_every_invalid_example_is_rejected_with_its_shape_and_nothing_stored(empty_server: LiveServer, example: Path) -> None:
    before = _state(empty_server.url)
    response = http.post(empty_server.url + "/submissions", content=example.read_bytes(), headers=TURTLE)
    assert response.status_code == 422, response.text
    shape = SHAPES_NS + example.name.split("-")[0]
    violations = response.json()["error"]["report"]["violations"]
    assert shape in {v["node_shape"] for v in violations}, violations
    assert _state(empty_server.url) == before


@pytest.mark.parametrize("example", VALID, ids=lambda p: p.stem)
def test_every_valid_example_is_accepted_queryable_and_retractable(empty_server: LiveServer, example: Path) -> None:
    before = _state(empty_server.url)
    response = http.post(empty_server.url + "/submissions", params={"source": "tests/shapes/" + example.name}, content=example.read_bytes(), headers=TURTLE)
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert re.fullmatch(r"/submissions/[0-9T]+-[0-9a-f]{8}", location)
    subject = next(iter(rdflib.Graph().parse(example).subjects()))
    assert _ask(empty_server.url, f"ASK {{ <{subject}> ?p ?o }}")
    retracted = http.delete(empty_server.url + location, headers=AUTH)
    assert retracted.status_code == 200, retracted.text
    assert retracted.json()["status"] == "retracted"
    after_count, after_graphs = _state(empty_server.url)
    # The data left every queried graph; only the record grew.
    assert not _ask(empty_server.url, f"ASK {{ GRAPH <{response.json()['graph']}> {{ ?s ?p ?o }} }}")
    assert set(after_graphs) - set(before[1]) <= {"https://w3id.org/patrolkg/graph/submissions", "https://w3id.org/patrolkg/graph/inferred"}


def test_a_submission_is_recorded_with_provenance_in_sparql(server: LiveServer) -> None:
    response = http.post(server.url + "/submissions", params={"source": "https://example.org/article", "comment": "from a test"}, content=statement("prov"), headers=TURTLE)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["submitter"] == "alice"
    assert _ask(server.url, f"""
        PREFIX pk: <https://w3id.org/patrolkg/ontology#>
        ASK {{ GRAPH <https://w3id.org/patrolkg/graph/submissions> {{
          <{record['iri']}> pk:submitter "alice" ; pk:dataGraph <{record['graph']}> ;
             <http://purl.org/dc/terms/source> <https://example.org/article> ;
             pk:status <https://w3id.org/patrolkg/id/submission-status/accepted> ;
             <http://www.w3.org/ns/prov#generatedAtTime> ?when }} }}""")
    # The new statement is reasoned over at once: a statement is a reaction.
    assert _ask(server.url, "ASK { <https://w3id.org/patrolkg/id/statement/submitted-prov> a <https://w3id.org/patrolkg/ontology#Reaction> }")


def test_the_submitter_comes_from_the_token_not_the_body(server: LiveServer) -> None:
    body = statement("who") + b'\n<https://w3id.org/patrolkg/id/statement/submitted-who> <https://w3id.org/patrolkg/ontology#submitter> "mallory" .\n'
    response = http.post(server.url + "/submissions", content=body, headers=TURTLE)
    assert response.status_code in (201, 422)
    if response.status_code == 201:
        assert response.json()["submitter"] == "alice"


def test_a_statement_may_refer_to_facts_already_in_the_graph(server: LiveServer) -> None:
    # The speaker, state and patrol are only in the bundled data, not in the submission.
    response = http.post(server.url + "/submissions", content=statement("context"), headers=TURTLE)
    assert response.status_code == 201, response.text


def test_dry_run_reports_and_stores_nothing(server: LiveServer) -> None:
    before = _state(server.url)
    response = http.post(server.url + "/submissions", params={"dry_run": "true"}, content=statement("dry"), headers=TURTLE)
    assert response.status_code == 200
    assert response.json()["conforms"] is True
    assert _state(server.url) == before


def test_validate_returns_the_report_without_writing(server: LiveServer) -> None:
    before = _state(server.url)
    bad = statement("invalid").replace(b"pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;", b"")
    response = http.post(server.url + "/validate", content=bad, headers={"Content-Type": "text/turtle"})
    assert response.status_code == 200
    report = response.json()
    assert report["conforms"] is False
    assert report["violations"][0]["node_shape"] == SHAPES_NS + "StatementShape"
    turtle = http.post(server.url + "/validate", content=bad, headers={"Content-Type": "text/turtle", "Accept": "text/turtle"})
    graph = rdflib.Graph().parse(data=turtle.text, format="turtle")
    assert (None, rdflib.URIRef("http://www.w3.org/ns/shacl#conforms"), rdflib.Literal(False)) in graph
    assert _state(server.url) == before


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong-token-wrong-token"}, 401), ({"Authorization": "Basic YWxpY2U6eA=="}, 401)],
)
def test_writes_need_the_right_token(server: LiveServer, headers: dict[str, str], status: int) -> None:
    before = _state(server.url)
    response = http.post(server.url + "/submissions", content=statement("auth"), headers={"Content-Type": "text/turtle", **headers})
    assert response.status_code == status
    assert response.json()["error"]["code"] == "unauthorized"
    assert "WWW-Authenticate" in response.headers
    assert _state(server.url) == before


def test_with_no_token_configured_every_write_is_refused(live_server: LiveServer) -> None:
    response = http.post(live_server.url + "/submissions", content=statement("x"), headers=TURTLE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "writes_disabled"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"<https://w3id.org/patrolkg/id/x> <https://w3id.org/patrolkg/ontology#p> \"open .\n", "text/turtle", 400, "rdf_syntax_error"),
        (b"", "text/turtle", 400, "bad_input"),
        (b"[] <http://example.org/p> \"only a blank node\" .", "text/turtle", 400, "bad_input"),
        (b"<https://w3id.org/patrolkg/graph/inferred> <http://example.org/p> 1 .", "text/turtle", 400, "bad_input"),
        (b'{"@context": "https://example.org/context.jsonld", "@id": "https://w3id.org/patrolkg/id/x", "name": "x"}', "application/ld+json", 400, "unsafe_input"),
        (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r/>', "application/rdf+xml", 400, "unsafe_input"),
        (statement("type"), "text/csv", 415, "unsupported_media_type"),
    ],
    ids=["malformed", "empty", "blank-nodes-only", "system-graph-iri", "remote-jsonld-context", "xml-doctype", "wrong-content-type"],
)
def test_bad_input_gets_a_clear_error_and_nothing_is_stored(server: LiveServer, body: bytes, content_type: str, status: int, code: str) -> None:
    before = _state(server.url)
    response = http.post(server.url + "/submissions", content=body, headers={"Content-Type": content_type, **AUTH})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if code == "rdf_syntax_error":
        assert error["line"] == 1 and error["column"] is not None
    assert _state(server.url) == before


def test_a_missing_content_type_is_415(server: LiveServer) -> None:
    response = http.post(server.url + "/submissions", content=statement("ct"), headers=AUTH)
    assert response.status_code == 415


def test_a_literal_of_the_wrong_datatype_is_a_violation(server: LiveServer) -> None:
    body = b"""@prefix pk: <https://w3id.org/patrolkg/ontology#> .
    @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
    <https://w3id.org/patrolkg/id/event/joint-patrol-99> a pk:JointPatrol ; rdfs:label "A patrol"@en ;
      pk:ordinal "ninety-nine"^^<http://www.w3.org/2001/XMLSchema#integer> ;
      pk:participant <https://w3id.org/patrolkg/id/state/china> , <https://w3id.org/patrolkg/id/state/russia> ;
      <http://purl.org/dc/terms/source> "test" ."""
    response = http.post(server.url + "/submissions", content=body, headers=TURTLE)
    assert response.status_code == 422
    paths = {v["path"] for v in response.json()["error"]["report"]["violations"]}
    assert "https://w3id.org/patrolkg/ontology#ordinal" in paths


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    small = LiveServer(tmp_path / "store", "--no-seed", "--max-body-bytes", "1000", env={"PATROLKG_WRITE_TOKEN": TOKEN}).start()
    try:
        response = http.post(small.url + "/submissions", content=statement("big") + b"#" * 2000, headers=TURTLE)
        assert response.status_code == 413
        assert response.json()["error"]["setting"] == "PATROLKG_MAX_BODY_BYTES"
    finally:
        small.stop()


def test_listing_reading_and_retracting(server: LiveServer) -> None:
    created = [http.post(server.url + "/submissions", content=statement(f"list-{i}"), headers=TURTLE).json() for i in range(3)]
    page = http.get(server.url + "/submissions", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["total"] >= 3 and "next" in page
    newest = page["items"][0]["submitted_at"]
    assert all(item["submitted_at"] <= newest for item in page["items"])

    first = created[0]
    record = http.get(server.url + f"/submissions/{first['id']}")
    assert record.json()["status"] == "accepted"
    turtle = http.get(server.url + f"/submissions/{first['id']}", headers={"Accept": "text/turtle"})
    assert turtle.headers["content-type"].startswith("text/turtle")
    assert len(rdflib.Graph().parse(data=turtle.text, format="turtle")) == first["triples"]
    trig = http.get(server.url + f"/submissions/{first['id']}", params={"format": "trig"})
    dataset = rdflib.Dataset().parse(data=trig.text, format="trig")
    assert {str(g.identifier) for g in dataset.graphs()} >= {first["graph"], "https://w3id.org/patrolkg/graph/submissions"}

    gone = http.delete(server.url + f"/submissions/{first['id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json()["retracted_by"] == "alice"
    assert not _ask(server.url, "ASK { <https://w3id.org/patrolkg/id/statement/submitted-list-0> ?p ?o }")
    kept = http.get(server.url + f"/submissions/{first['id']}", headers={"Accept": "application/n-triples"})
    assert len(kept.text.strip().splitlines()) == first["triples"]
    again = http.delete(server.url + f"/submissions/{first['id']}", headers=AUTH)
    assert again.status_code == 409
    assert http.get(server.url + "/submissions/20990101T000000-00000000").status_code == 404
    assert http.delete(server.url + f"/submissions/{created[1]['id']}").status_code == 401


def test_accepted_submissions_survive_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = LiveServer(store, env={"PATROLKG_WRITE_TOKEN": TOKEN}).start()
    try:
        response = http.post(first.url + "/submissions", content=statement("restart"), headers=TURTLE)
        assert response.status_code == 201
    finally:
        first.stop()
    second = LiveServer(store, env={"PATROLKG_WRITE_TOKEN": TOKEN}).start()
    try:
        assert _ask(second.url, "ASK { <https://w3id.org/patrolkg/id/statement/submitted-restart> a <https://w3id.org/patrolkg/ontology#Statement> }")
        record = http.get(second.url + response.headers["Location"]).json()
        assert record["status"] == "accepted"
    finally:
        second.stop()


def test_reports_come_as_json_ld_on_request(server: LiveServer) -> None:
    bad = statement("jsonld").replace(b"pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;", b"")
    response = http.post(server.url + "/submissions", content=bad, headers={**TURTLE, "Accept": "application/ld+json"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/ld+json")
    graph = rdflib.Graph().parse(data=json.dumps(response.json()), format="json-ld")
    assert (None, rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/ns/shacl#ValidationReport")) in graph
