"""Several patrolkg servers, one engine: two ``patrolkg serve --store-url`` processes on
one ``oxigraph serve``, and many clients submitting to both at once.

Afterwards the store holds exactly the accepted submissions, each whole. Pairs of
submissions that are valid alone but not together (two labels for one statement) are
sent to the two servers at the same moment: exactly one of each pair may be accepted,
which only holds if no validation passes on data another server changed underneath it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import LiveServer, OxigraphEngine, statement_turtle

pytestmark = pytest.mark.slow

SECRET = "s5" * 16
TOKEN = {"PATROLKG_WRITE_TOKEN": "sam:" + SECRET}
HEADERS = {"Content-Type": "text/turtle", "Authorization": "Bearer " + SECRET}
JSON = {"Accept": "application/sparql-results+json"}
TRIPLES_PER_SUBMISSION = 7
SUBMISSIONS_GRAPH = "https://w3id.org/patrolkg/graph/submissions"


def statement(key: str, label: str) -> bytes:
    return statement_turtle(f"https://w3id.org/patrolkg/id/statement/scale-{key}", label, "Submitted to one of two servers.", "test_scale_out")


def _select(url: str, query: str) -> list[dict[str, str]]:
    response = httpx.get(url + "/sparql", params={"query": query}, headers=JSON, timeout=60)
    assert response.status_code == 200, response.text
    return [{k: v["value"] for k, v in b.items()} for b in response.json()["results"]["bindings"]]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphEngine]:
    engine = OxigraphEngine(tmp_path_factory.mktemp("scale") / "engine").start()
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def servers(engine: OxigraphEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LiveServer]]:
    root = tmp_path_factory.mktemp("servers")
    # The first server seeds the empty engine; the second finds it loaded.
    first = LiveServer(root / "unused-1", *engine.store_options(), env=TOKEN).start(timeout=120)
    second = LiveServer(root / "unused-2", *engine.store_options(), env=TOKEN).start(timeout=120)
    yield [first, second]
    first.stop()
    second.stop()


def _submit(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    response = httpx.post(url + "/submissions", content=body, headers=HEADERS, timeout=180)
    return response.status_code, response.json()


def test_concurrent_submissions_to_two_servers_are_all_kept_whole(servers: list[LiveServer]) -> None:
    jobs = [(servers[n % 2].url, f"c{n}", statement(f"c{n}", f"Statement c{n}")) for n in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: (job[1], *_submit(job[0], job[2])), jobs))
    assert all(status == 201 for _, status, _ in results), [(key, status, body) for key, status, body in results if status != 201]
    for key, _, body in results:
        rows = _select(servers[0].url, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{body['graph']}> {{ ?s ?p ?o }} }}")
        assert int(rows[0]["n"]) == TRIPLES_PER_SUBMISSION, key
    for server in servers:  # both servers see every submission
        listing = httpx.get(server.url + "/submissions", params={"limit": 100}, timeout=60).json()
        assert {r["id"] for r in listing["items"]} >= {body["id"] for _, _, body in results}


def test_submissions_that_conflict_across_servers_are_never_both_accepted(servers: list[LiveServer]) -> None:
    pairs = 6
    jobs = []
    for k in range(pairs):
        # Valid alone; together the statement would have two labels (the shapes allow one).
        jobs.append((servers[0].url, f"pair{k}", statement(f"pair{k}", f"Pair {k} as told to the first server")))
        jobs.append((servers[1].url, f"pair{k}", statement(f"pair{k}", f"Pair {k} as told to the second server")))
    with ThreadPoolExecutor(max_workers=2 * pairs) as pool:
        results = list(pool.map(lambda job: (job[1], *_submit(job[0], job[2])), jobs))

    accepted = {body["id"]: (key, body["graph"]) for key, status, body in results if status == 201}
    for key, status, body in results:
        assert status in (201, 422), (key, status, body)
    for k in range(pairs):
        outcomes = sorted(status for key, status, _ in results if key == f"pair{k}")
        assert outcomes == [201, 422], (k, outcomes)
        labels = _select(servers[1].url, f"SELECT ?label WHERE {{ <https://w3id.org/patrolkg/id/statement/scale-pair{k}> <http://www.w3.org/2000/01/rdf-schema#label> ?label }}")
        assert len(labels) == 1, labels

    # Exactly the accepted ones are stored: their records and their data graphs.
    stored = _select(servers[0].url, f"""
        SELECT ?record ?graph WHERE {{ GRAPH <{SUBMISSIONS_GRAPH}> {{
          ?record <https://w3id.org/patrolkg/ontology#dataGraph> ?graph }}
          GRAPH ?graph {{ ?s ?p ?o FILTER(STRSTARTS(STR(?s), "https://w3id.org/patrolkg/id/statement/scale-pair")) }} }}""")
    assert {row["graph"] for row in stored} == {graph for _, graph in accepted.values()}
    records = _select(servers[0].url, f"""
        SELECT ?record WHERE {{ GRAPH <{SUBMISSIONS_GRAPH}> {{ ?record a <https://w3id.org/patrolkg/ontology#Submission> }} }}""")
    ids = {row["record"].rsplit("/", 1)[-1] for row in records}
    assert set(accepted) <= ids
    rejected = {body.get("id") for _, status, body in results if status != 201}
    assert not (rejected - {None}) & ids


def test_the_bookkeeping_is_hidden_and_nothing_of_it_is_left_behind(servers: list[LiveServer], engine: OxigraphEngine) -> None:
    system = "https://w3id.org/patrolkg/graph/system"
    assert _select(servers[0].url, f"SELECT * WHERE {{ GRAPH <{system}> {{ ?s ?p ?o }} }}") == []
    # On the engine itself: one version marker, no lease ticket, no commit receipt.
    response = httpx.post(engine.query_url, data={"query": f"SELECT ?p WHERE {{ GRAPH <{system}> {{ ?s ?p ?o }} }}"}, headers=JSON, timeout=60)
    predicates = [b["p"]["value"] for b in response.json()["results"]["bindings"]]
    assert predicates == [system + "#version"]
