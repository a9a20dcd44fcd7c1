"""patrolkg on a remote SPARQL engine (a real ``oxigraph serve``): the command line, a real
``patrolkg serve --store-url`` with every feature, timeouts, an engine that goes away
and comes back, and the union-default-graph mode. The write lease, streaming and
credentials are in test_remote_client.py; the store interface's own contract runs on
both stores in test_store_contract.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
import rdflib

from conftest import LiveServer, OxigraphEngine, free_port
from patrolkg import resources
from patrolkg.errors import ConfigError
from patrolkg.query import select_rows
from patrolkg.store import RemoteStore, Store
from patrolkg.store.remote import DEFAULT_GRAPH, SYSTEM_GRAPH

pytestmark = pytest.mark.slow

SECRET = "r7" * 16
TOKEN = {"PATROLKG_WRITE_TOKEN": "rita:" + SECRET}
AUTH = {"Authorization": "Bearer " + SECRET}
JSON = {"Accept": "application/sparql-results+json"}
PK = "https://w3id.org/patrolkg/ontology#"
JAPAN = "https://w3id.org/patrolkg/id/state/japan"


def patrolkg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrolkg", *args], capture_output=True, text=True, timeout=300, env=env)


def statement(n: str, label: str | None = None) -> bytes:
    return f"""@prefix pk: <{PK}> .
<https://w3id.org/patrolkg/id/statement/remote-{n}> a pk:Statement ;
  <http://www.w3.org/2000/01/rdf-schema#label> "{label or 'Remote statement ' + n}"@en ;
  pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
  pk:onBehalfOf <{JAPAN}> ;
  pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
  pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
  pk:summary "Submitted to a server on a remote store."@en ;
  <http://purl.org/dc/terms/source> "test_remote_store" .""".encode()


def _rows(result: object) -> list[tuple[tuple[str, str], ...]]:
    """SELECT rows as sorted (variable, term) pairs, blank nodes blanked, and the items
    of a GROUP_CONCAT sorted (SPARQL leaves their order to the engine)."""
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]

    def shown(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> str:
        if isinstance(term, ox.BlankNode):
            return "_:b"
        if isinstance(term, ox.Literal):
            return ", ".join(sorted(term.value.split(", "))) + f"@{term.language or term.datatype.value}"
        return str(term)

    return sorted(tuple(sorted((n, shown(row[n])) for n in names if row[n] is not None)) for row in result)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphEngine]:
    """An engine loaded with the bundled data by `patrolkg load --store-url`; its own
    timeout ends the runaway queries of the timeout test."""
    engine = OxigraphEngine(tmp_path_factory.mktemp("remote") / "data", "--timeout-s", "5").start()
    result = patrolkg("load", *engine.store_options())
    assert result.returncode == 0, result.stderr
    assert "inferred" in result.stdout
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def server(engine: OxigraphEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("unused") / "store", *engine.store_options(), "--query-timeout", "2", env=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def remote(engine: OxigraphEngine) -> Iterator[RemoteStore]:
    store = RemoteStore(engine.query_url, gsp_url=engine.gsp_url)
    yield store
    store.close()


# -- the command line --------------------------------------------------------------------


def test_query_and_info_on_a_remote_store(engine: OxigraphEngine, bundle_store: Store) -> None:
    result = patrolkg("query", "--store-url", engine.query_url, "--format", "json", "cq01-patrols")
    assert result.returncode == 0, result.stderr
    remote = {tuple(sorted((k, v["value"]) for k, v in b.items())) for b in json.loads(result.stdout)["results"]["bindings"]}
    embedded = {tuple(sorted(row.items())) for row in select_rows(bundle_store, resources.named_queries()[0].text)}
    assert remote == embedded and len(remote) == 5
    info = patrolkg("info", "--store-url", engine.query_url)
    assert info.returncode == 0, info.stderr
    assert f"store: {engine.query_url}" in info.stdout
    assert "https://w3id.org/patrolkg/graph/inferred" in info.stdout
    assert SYSTEM_GRAPH not in info.stdout and DEFAULT_GRAPH not in info.stdout


def test_the_store_url_comes_from_the_environment_too(engine: OxigraphEngine) -> None:
    import os

    result = patrolkg("query", "--format", "csv", "ASK { ?s ?p ?o }", env={**os.environ, "PATROLKG_STORE_URL": engine.query_url})
    assert result.returncode == 0, result.stderr
    assert "true" in result.stdout


def test_an_unreachable_engine_is_exit_3_with_a_clear_line() -> None:
    result = patrolkg("info", "--store-url", f"http://127.0.0.1:{free_port()}/query")
    assert result.returncode == 3
    assert "cannot be reached" in result.stderr and "Traceback" not in result.stderr


def test_credentials_in_the_url_are_refused() -> None:
    result = patrolkg("info", "--store-url", "http://alice:secret@127.0.0.1:1/query")
    assert result.returncode == 3
    assert "PATROLKG_STORE_PASSWORD" in result.stderr


# -- the same answers as the embedded store --------------------------------------------------


# Queries that federate (SERVICE to Wikidata) would send the engine out to the network.
LOCAL_QUERIES = [q for q in resources.named_queries() if "SERVICE" not in q.text.upper()]


@pytest.mark.parametrize("item", LOCAL_QUERIES, ids=lambda q: q.id)
def test_every_shipped_query_answers_as_on_the_embedded_store(item: resources.NamedQuery, remote: RemoteStore, bundle_store: Store) -> None:
    assert _rows(remote.query(item.text)) == _rows(bundle_store.query(item.text))


@pytest.mark.parametrize(
    ("query", "accept", "media_type"),
    [
        ("SELECT ?s WHERE { ?s a <https://w3id.org/patrolkg/ontology#JointPatrol> }", accept, accept)
        for accept in ("application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/tab-separated-values")
    ]
    + [("ASK { ?s ?p ?o }", "application/sparql-results+json", "application/sparql-results+json"), ("ASK { ?s ?p ?o }", "text/csv", "text/csv")]
    + [
        (f"DESCRIBE <{JAPAN}>", accept, accept)
        for accept in ("text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml")
    ],
)
def test_every_result_format(server: LiveServer, query: str, accept: str, media_type: str) -> None:
    response = httpx.get(server.url + "/sparql", params={"query": query}, headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)
    assert response.content


def test_a_result_past_the_row_limit_is_cut_and_flagged(engine: OxigraphEngine, tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "unused", *engine.store_options(), "--max-rows", "5").start()
    try:
        response = httpx.get(server.url + "/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"}, headers=JSON, timeout=30)
        assert response.status_code == 200
        assert len(response.json()["results"]["bindings"]) == 5
        assert response.headers["Patrolkg-Truncated"] == "max-rows=5"
    finally:
        server.stop()


def test_linked_data_void_and_the_service_description(server: LiveServer) -> None:
    page = httpx.get(server.url + "/id/state/japan", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and "Japan" in page.text
    turtle = httpx.get(server.url + "/id/state/japan", headers={"Accept": "text/turtle"}, timeout=30)
    assert (rdflib.URIRef(JAPAN), None, None) in rdflib.Graph().parse(data=turtle.text, format="turtle")
    void = httpx.get(server.url + "/.well-known/void", headers={"Accept": "text/turtle"}, timeout=30)
    assert void.status_code == 200 and "https://w3id.org/patrolkg/graph/inferred" in void.text
    assert SYSTEM_GRAPH not in void.text
    description = rdflib.Graph().parse(data=httpx.get(server.url + "/sparql", headers={"Accept": "text/turtle"}, timeout=30).text, format="turtle")
    comments = [str(o) for o in description.objects(None, rdflib.RDFS.comment)]
    assert any("SPARQL engine at" in c for c in comments) and any("timeout" in c for c in comments)


def test_the_reconciliation_service_reads_the_remote_store(server: LiveServer) -> None:
    queries = json.dumps({"q0": {"query": "Japan"}})
    response = httpx.get(server.url + "/reconcile", params={"queries": queries}, timeout=30)
    assert response.status_code == 200, response.text
    assert any(candidate["id"].endswith("state/japan") for candidate in response.json()["q0"]["result"])


# -- writes through the guard -----------------------------------------------------------------


def test_submissions_are_validated_stored_and_retracted(server: LiveServer) -> None:
    invalid = httpx.post(server.url + "/submissions", content=b"<https://w3id.org/patrolkg/id/event/x> a <https://w3id.org/patrolkg/ontology#JointPatrol> .", headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
    assert invalid.status_code == 422, invalid.text
    accepted = httpx.post(server.url + "/submissions", content=statement("kept"), headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
    assert accepted.status_code == 201, accepted.text
    record = accepted.json()
    ask = f"ASK {{ <https://w3id.org/patrolkg/id/statement/remote-kept> a <{PK}Reaction> }}"  # reasoned over at once
    assert httpx.get(server.url + "/sparql", params={"query": ask}, headers=JSON, timeout=30).json()["boolean"]
    retracted = httpx.delete(server.url + f"/submissions/{record['id']}", headers=AUTH, timeout=60)
    assert retracted.status_code == 200, retracted.text
    assert retracted.json()["status"] == "retracted"
    assert not httpx.get(server.url + "/sparql", params={"query": ask}, headers=JSON, timeout=30).json()["boolean"]
    data = httpx.get(server.url + f"/submissions/{record['id']}", headers={"Accept": "text/turtle"}, timeout=30)
    assert "remote-kept" in data.text


def test_sparql_update_and_the_graph_store_go_through_the_guard(server: LiveServer) -> None:
    update = 'INSERT DATA { GRAPH <http://example.org/mine> { <http://example.org/a> <http://example.org/b> "c" } }'
    response = httpx.post(server.url + "/update", content=update, headers={"Content-Type": "application/sparql-update", **AUTH}, timeout=60)
    assert response.status_code == 200, response.text
    refused = httpx.post(server.url + "/update", content="INSERT DATA { GRAPH <https://w3id.org/patrolkg/graph/reference> { <http://example.org/a> <http://example.org/b> 1 } }", headers={"Content-Type": "application/sparql-update", **AUTH}, timeout=60)
    assert refused.status_code in (400, 403), refused.text
    put = httpx.put(server.url + "/store", params={"default": ""}, content=b'<http://example.org/d> <http://example.org/e> [ <http://example.org/f> "g" ] .', headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
    assert put.status_code in (201, 204), put.text
    read = httpx.get(server.url + "/store", params={"default": ""}, headers={"Accept": "application/n-triples"}, timeout=30)
    assert read.status_code == 200 and len(read.text.strip().splitlines()) == 2
    union = httpx.get(server.url + "/sparql", params={"query": "SELECT ?o WHERE { <http://example.org/d> ?p ?b . ?b ?q ?o }"}, headers=JSON, timeout=30)
    assert [b["o"]["value"] for b in union.json()["results"]["bindings"]] == ["g"]
    assert httpx.delete(server.url + "/store", params={"default": ""}, headers=AUTH, timeout=60).status_code == 204
    assert httpx.get(server.url + "/store", params={"default": ""}, timeout=30).status_code == 404


# -- failures ---------------------------------------------------------------------------------


def test_a_query_past_the_timeout_is_503(server: LiveServer) -> None:
    started = time.monotonic()
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    response = httpx.get(server.url + "/sparql", params={"query": query}, headers=JSON, timeout=60)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "query_timeout"
    assert time.monotonic() - started < 10


def test_a_syntax_error_is_400_with_line_and_column(server: LiveServer) -> None:
    response = httpx.get(server.url + "/sparql", params={"query": "SELECT *\nWHERE { ?s ?p }"}, headers=JSON, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["line"] == 2


def test_an_engine_that_goes_away_is_503_until_it_comes_back(tmp_path: Path) -> None:
    engine = OxigraphEngine(tmp_path / "data").start()
    server = LiveServer(tmp_path / "unused", *engine.store_options(), env=TOKEN).start()  # seeds the empty engine
    query = {"query": "SELECT ?s WHERE { ?s a <https://w3id.org/patrolkg/ontology#JointPatrol> }"}
    try:
        assert httpx.get(server.url + "/sparql", params=query, headers=JSON, timeout=30).status_code == 200
        engine.stop()
        down = httpx.get(server.url + "/sparql", params=query, headers=JSON, timeout=30)
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "store_unavailable"
        assert "cannot be reached" in down.json()["error"]["message"]
        assert down.headers["Retry-After"]
        assert httpx.get(server.url + "/health", timeout=30).status_code == 503
        submit = httpx.post(server.url + "/submissions", content=statement("down"), headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
        assert submit.status_code == 503 and submit.json()["error"]["code"] == "store_unavailable"
        engine.start()
        assert httpx.get(server.url + "/health", timeout=30).status_code == 200
        assert len(httpx.get(server.url + "/sparql", params=query, headers=JSON, timeout=30).json()["results"]["bindings"]) == 5
        again = httpx.post(server.url + "/submissions", content=statement("back"), headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
        assert again.status_code == 201, again.text
    finally:
        server.stop()
        engine.stop()


def test_a_server_may_start_before_its_engine(tmp_path: Path) -> None:
    engine = OxigraphEngine(tmp_path / "data")
    server = LiveServer(tmp_path / "unused", *engine.store_options(), "--no-seed")
    command = [sys.executable, "-m", "patrolkg", "serve", "--port", str(server.port), "--log-level", "warning", *engine.store_options(), "--no-seed"]
    process = subprocess.Popen(command, stdout=server.log.open("wb"), stderr=subprocess.STDOUT)
    try:
        status = _wait_for_health(server.url, lambda s: s is not None)
        assert status == 503, server.log.read_text()
        engine.start()
        assert _wait_for_health(server.url, lambda s: s == 200) == 200
        assert "cannot be reached" in server.log.read_text()
    finally:
        process.terminate()
        process.wait(10)
        engine.stop()


def _wait_for_health(url: str, done: object, timeout: float = 60.0) -> int | None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url + "/health", timeout=5).status_code
        except httpx.HTTPError:
            status = None
        if done(status):  # type: ignore[operator]
            return status
        time.sleep(0.2)
    return status


# -- the union default graph of the engine ------------------------------------------------------


def test_engine_mode_uses_the_engines_union_default_graph(engine: OxigraphEngine, tmp_path: Path, bundle_store: Store) -> None:
    union_engine = OxigraphEngine(engine.location, "--union-default-graph")
    engine.stop()  # one process at a time may open the data
    union_engine.start()
    try:
        store = RemoteStore(union_engine.query_url, union="engine")
        store.check()
        cq = resources.named_queries()[0].text
        assert _rows(store.query(cq)) == _rows(bundle_store.query(cq))
        plain = OxigraphEngine(engine.location)
        union_engine.stop()
        plain.start()
        try:
            with pytest.raises(ConfigError, match="not the union"):
                RemoteStore(plain.query_url, union="engine").check()
            result = subprocess.run(
                [sys.executable, "-m", "patrolkg", "serve", "--port", str(free_port()), "--store-url", plain.query_url, "--store-union", "engine"],
                capture_output=True, text=True, timeout=120,
            )
            assert result.returncode != 0
            assert "PATROLKG_STORE_UNION=engine" in result.stderr
        finally:
            plain.stop()
    finally:
        union_engine.stop()
        engine.start()
