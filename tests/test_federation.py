"""Federated queries (SERVICE) and link discovery against a second, real SPARQL server
on loopback: ``oxigraph serve`` loaded with the Wikidata- and DBpedia-shaped fixtures,
standing in for Wikidata's query service and DBpedia.

SERVICE is executed by the engine (pyoxigraph), which has no timeout of its own for
the remote call: a SERVICE call is bounded by the query timeout, which stops (and on
a store on disk kills) the query. A remote endpoint that accepts the connection and
never answers is therefore a 503 within PATROLKG_QUERY_TIMEOUT.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rdflib
from conftest import LiveServer, OxigraphEngine, SilentEndpoint

from patrolkg.resources import QUERIES_PATH

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WIKIDATA_FIXTURE = ROOT / "data" / "fixtures" / "wikidata-excerpt.ttl"
DBPEDIA_FIXTURE = Path(__file__).parent / "fixtures" / "dbpedia-excerpt.ttl"
WIKIDATA_QS = "https://query.wikidata.org/sparql"
DBPEDIA = "https://dbpedia.org/sparql"
ID = "https://w3id.org/patrolkg/id/"
TIMEOUT = 3.0


def _engine(location: Path, fixture: Path) -> OxigraphEngine:
    engine = OxigraphEngine(location).start()
    response = httpx.post(engine.gsp_url + "?default", content=fixture.read_bytes(), headers={"Content-Type": "text/turtle"}, timeout=30)
    response.raise_for_status()
    return engine


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphEngine]:
    """The second SPARQL server, standing in for Wikidata's query service."""
    engine = _engine(tmp_path_factory.mktemp("wikidata") / "data", WIKIDATA_FIXTURE)
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def dbpedia(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphEngine]:
    """A third one, standing in for DBpedia."""
    engine = _engine(tmp_path_factory.mktemp("dbpedia") / "data", DBPEDIA_FIXTURE)
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, remote: OxigraphEngine, dbpedia: OxigraphEngine, silent: SilentEndpoint) -> Iterator[LiveServer]:
    allowlist = f"{remote.query_url},{dbpedia.query_url},{silent.url}"
    live = LiveServer(tmp_path_factory.mktemp("federated") / "store", "--service-allowlist", allowlist, "--query-timeout", str(TIMEOUT)).start()
    yield live
    live.stop()


def example(name: str, remote: OxigraphEngine) -> str:
    """A shipped federated example, pointed at a loopback server instead."""
    text = (QUERIES_PATH / f"{name}.rq").read_text(encoding="utf-8")
    return text.replace(f"<{WIKIDATA_QS}>", f"<{remote.query_url}>").replace(f"<{DBPEDIA}>", f"<{remote.query_url}>")


def sparql(server: LiveServer, query: str, accept: str) -> httpx.Response:
    return httpx.post(server.url + "/sparql", data={"query": query}, headers={"Accept": accept}, timeout=60)


# ------------------------------------------------------------------ from /sparql

PARTICIPANTS = [
    (ordinal, ID + f"state/{slug}", f"http://www.wikidata.org/entity/{qid}", name, "United Nations")
    for ordinal in ("1", "2", "3", "4", "10")
    for slug, qid, name in (("china", "Q148", "People's Republic of China"), ("russia", "Q159", "Russia"))
]


def test_patrol_participants_with_wikidata_facts_in_every_results_format(server: LiveServer, remote: OxigraphEngine) -> None:
    query = example("ex02-patrol-participants-wikidata", remote)

    response = sparql(server, query, "application/sparql-results+json")
    assert response.status_code == 200, response.text
    rows = [
        (b["ordinal"]["value"], b["state"]["value"], b["item"]["value"], b["wikidataName"]["value"], b["memberOf"]["value"])
        for b in response.json()["results"]["bindings"]
    ]
    assert rows == PARTICIPANTS

    xml = ET.fromstring(sparql(server, query, "application/sparql-results+xml").content)
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    names = [b.find("r:literal", ns).text for b in xml.iterfind(".//r:binding[@name='wikidataName']", ns)]
    assert names == [row[3] for row in PARTICIPANTS]

    for media_type, delimiter in (("text/csv", ","), ("text/tab-separated-values", "\t")):
        response = sparql(server, query, media_type)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
        table = list(csv.reader(io.StringIO(response.text), delimiter=delimiter))
        assert len(table) == 1 + len(PARTICIPANTS), media_type


def test_state_capitals_from_dbpedia(server: LiveServer, dbpedia: OxigraphEngine) -> None:
    response = sparql(server, example("ex03-state-capitals-dbpedia", dbpedia), "application/sparql-results+json")
    assert response.status_code == 200, response.text
    rows = [(b["label"]["value"], b["capital"]["value"]) for b in response.json()["results"]["bindings"]]
    assert rows == [
        ("China", "http://dbpedia.org/resource/Beijing"),
        ("Japan", "http://dbpedia.org/resource/Tokyo"),
        ("Russia", "http://dbpedia.org/resource/Moscow"),
        ("South Korea", "http://dbpedia.org/resource/Seoul"),
    ]


@pytest.mark.parametrize("media_type, fmt", [("text/turtle", "turtle"), ("application/n-triples", "nt"), ("application/ld+json", "json-ld"), ("application/rdf+xml", "xml")])
def test_a_federated_construct_in_every_graph_format(server: LiveServer, remote: OxigraphEngine, media_type: str, fmt: str) -> None:
    query = f"""PREFIX owl: <http://www.w3.org/2002/07/owl#>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        PREFIX wdt: <http://www.wikidata.org/prop/direct/>
        CONSTRUCT {{ ?person rdfs:seeAlso ?item . ?item rdfs:label ?name }} WHERE {{
          ?person owl:sameAs ?item .
          SERVICE <{remote.query_url}> {{ ?item wdt:P31 <http://www.wikidata.org/entity/Q5> ; rdfs:label ?name FILTER(LANG(?name) = "en") }}
        }}"""
    response = sparql(server, query, media_type)
    assert response.status_code == 200, response.text
    graph = rdflib.Graph().parse(data=response.content, format=fmt)
    labels = {str(o) for o in graph.objects(None, rdflib.RDFS.label)}
    assert labels == {"Vladimir Putin", "Xi Jinping", "Joe Biden"}
    assert len(set(graph.subjects(rdflib.RDFS.seeAlso, None))) == 3


def test_an_endpoint_off_the_list_is_refused_without_a_connection(server: LiveServer) -> None:
    outsider = SilentEndpoint()
    try:
        response = sparql(server, f"SELECT * WHERE {{ SERVICE <{outsider.url}> {{ ?s ?p ?o }} }}", "application/sparql-results+json")
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "forbidden_operation" and "no connection was made" in error["message"]
        assert "PATROLKG_SERVICE_ALLOWLIST" in error["hint"]
        time.sleep(0.2)
        assert outsider.accepted == 0
    finally:
        outsider.close()


def test_a_remote_endpoint_that_never_answers_is_a_503_within_the_query_timeout(server: LiveServer, silent: SilentEndpoint) -> None:
    started = time.monotonic()
    response = sparql(server, f"SELECT * WHERE {{ SERVICE <{silent.url}> {{ ?s ?p ?o }} }}", "application/sparql-results+json")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "query_timeout"
    assert response.json()["error"]["setting"] == "PATROLKG_QUERY_TIMEOUT"
    assert TIMEOUT <= elapsed < TIMEOUT + 5
    assert silent.accepted >= 1
    # The stuck worker was killed and replaced: the endpoint answers at once.
    again = sparql(server, "ASK { ?s ?p ?o }", "application/sparql-results+json")
    assert again.status_code == 200 and again.json()["boolean"] is True


# ---------------------------------------------------------------------- the CLI


def patrolkg(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrolkg", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-federated") / "store"
    assert patrolkg("load", "--store", str(path)).returncode == 0
    return path


def test_cli_query_uses_the_allow_list(store_dir: Path, remote: OxigraphEngine) -> None:
    query = example("ex02-patrol-participants-wikidata", remote)
    allowed = patrolkg("query", "--store", str(store_dir), "--format", "json", "--service-allowlist", remote.query_url, query)
    assert allowed.returncode == 0, allowed.stderr
    names = [b["wikidataName"]["value"] for b in json.loads(allowed.stdout)["results"]["bindings"]]
    assert names == [row[3] for row in PARTICIPANTS]

    refused = patrolkg("query", "--store", str(store_dir), "--format", "json", query)
    assert refused.returncode == 2
    assert f"SERVICE <{remote.query_url}> is not an allowed endpoint; no connection was made" in refused.stderr


def test_cli_query_takes_the_allow_list_from_the_environment(store_dir: Path, dbpedia: OxigraphEngine) -> None:
    env_run = subprocess.run(
        [sys.executable, "-m", "patrolkg", "query", "--store", str(store_dir), "--format", "csv", example("ex03-state-capitals-dbpedia", dbpedia)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PATROLKG_SERVICE_ALLOWLIST": dbpedia.query_url},
    )
    assert env_run.returncode == 0, env_run.stderr
    assert len(env_run.stdout.strip().splitlines()) == 5


def test_cli_query_stops_a_silent_endpoint_at_the_timeout(store_dir: Path, silent: SilentEndpoint) -> None:
    started = time.monotonic()
    result = patrolkg(
        "query", "--store", str(store_dir), "--service-allowlist", silent.url, "--query-timeout", "2",
        f"SELECT * WHERE {{ SERVICE <{silent.url}> {{ ?s ?p ?o }} }}", timeout=60,
    )
    assert result.returncode == 2
    assert "ran longer than 2s" in result.stderr and "PATROLKG_QUERY_TIMEOUT" in result.stderr
    assert time.monotonic() - started < 30


def test_cli_link_from_an_allow_listed_endpoint(store_dir: Path, remote: OxigraphEngine, tmp_path: Path) -> None:
    out = tmp_path / "links.ttl"
    result = patrolkg(
        "link", "--store", str(store_dir), "--kind", "state", "--include-linked",
        "--service-allowlist", remote.query_url, remote.query_url, "--out", str(out),
    )
    assert result.returncode == 0, result.stderr
    found = rdflib.Graph().parse(out, format="turtle")
    curated = rdflib.Graph().parse(ROOT / "data" / "links.ttl", format="turtle")
    states = {(s, p, o) for s, p, o in curated if "/state/" in str(s)}
    assert set(found) == states

    refused = patrolkg("link", "--store", str(store_dir), "--kind", "state", remote.query_url)
    assert refused.returncode == 2 and "no connection was made" in refused.stderr


def test_cli_link_gives_up_on_a_silent_endpoint(store_dir: Path, silent: SilentEndpoint) -> None:
    result = patrolkg(
        "link", "--store", str(store_dir), "--kind", "person", "--service-allowlist", silent.url, "--query-timeout", "1", silent.url,
        timeout=60,
    )
    assert result.returncode == 2
    assert "did not answer within 1s" in result.stderr
