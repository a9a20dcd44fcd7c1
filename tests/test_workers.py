"""Query execution off the event loop: worker processes for stores on disk (a runaway
query is killed at the timeout and the server keeps answering), and CORS for reads."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient

from patrolkg.bounded import FEW
from patrolkg.errors import ConfigError, NotAcceptable, QuerySyntaxError, QueryTimeout
from patrolkg.execution import Limits, QueryRequest, inspect_query
from patrolkg.settings import Settings
from patrolkg.store import OxigraphStore, Store
from patrolkg.web.app import create_app
from patrolkg.workers import INLINE_SHARE, EntryCounts, ProcessExecutor, inline_share_for

HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?x . ?b ?p ?y . FILTER(STR(?x) < STR(?y)) }"


def _filled(path: Path, size: int = 3000) -> OxigraphStore:
    store = OxigraphStore(path)
    graph = ox.NamedNode("http://example.org/g")
    store.raw.extend(ox.Quad(ox.NamedNode(f"http://example.org/{i}"), ox.NamedNode("http://example.org/p"), ox.Literal(str(i)), graph) for i in range(size))
    return store


def _count(response_body: bytes) -> str:
    return response_body.decode().splitlines()[1]


def test_a_runaway_query_is_killed_and_the_pool_recovers(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store")
    executor = ProcessExecutor(store, Limits(timeout=1.0), workers=2)

    async def scenario() -> None:
        started = time.monotonic()
        results = await asyncio.gather(
            executor.run(QueryRequest(HEAVY)),
            executor.run(QueryRequest("ASK { ?s ?p ?o }", accept="application/sparql-results+json")),
            return_exceptions=True,
        )
        assert isinstance(results[0], QueryTimeout)
        assert results[0].setting == "PATROLKG_QUERY_TIMEOUT"
        assert b'"boolean":true' in results[1].body
        assert time.monotonic() - started < 10
        # The killed worker was replaced: two more queries run at once.
        again = await asyncio.gather(*(executor.run(QueryRequest("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept="text/csv")) for _ in range(2)))
        assert [_count(r.body) for r in again] == ["3000", "3000"]

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_a_commit_is_visible_to_the_next_query_and_errors_cross_the_process_boundary(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store", size=10)
    executor = ProcessExecutor(store, Limits(timeout=5.0), workers=1)

    async def scenario() -> None:
        count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        assert _count((await executor.run(QueryRequest(count, accept="text/csv"))).body) == "10"
        store.raw.add(ox.Quad(ox.NamedNode("http://example.org/new"), ox.NamedNode("http://example.org/p"), ox.Literal("x"), ox.NamedNode("http://example.org/g")))
        executor.notify_write()
        assert _count((await executor.run(QueryRequest(count, accept="text/csv"))).body) == "11"
        with pytest.raises(QuerySyntaxError) as caught:
            await executor.run(QueryRequest("SELECT * WHERE { ?s ?p }"))
        assert caught.value.line == 1

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()
    assert not list((tmp_path / ".store.snapshots").iterdir()), "snapshots are removed on close"


LOOKUP = "SELECT ?o WHERE { <http://example.org/7> ?p ?o }"


def test_a_bounded_query_is_answered_by_the_server_while_every_worker_is_busy(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store")
    executor = ProcessExecutor(store, Limits(timeout=2.0), workers=1)

    async def scenario() -> None:
        await executor.run(QueryRequest("ASK { ?s ?p ?o }"))  # the worker is up
        heavy = asyncio.ensure_future(executor.run(QueryRequest(HEAVY)))
        await asyncio.sleep(0.2)  # ... and busy with the heavy query
        lookup = await executor.run(QueryRequest(LOOKUP, accept="text/csv"))
        assert lookup.body.decode().splitlines() == ["o", "7"]
        assert not heavy.done(), "the lookup did not wait for the only worker"
        store.raw.add(ox.Quad(ox.NamedNode("http://example.org/7"), ox.NamedNode("http://example.org/q"), ox.Literal("new"), ox.NamedNode("http://example.org/g")))
        executor.notify_write()
        again = await executor.run(QueryRequest(LOOKUP, accept="text/csv"))
        assert sorted(again.body.decode().splitlines()[1:]) == ["7", "new"], "it reads the store as committed"
        with pytest.raises(QueryTimeout):
            await heavy

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_a_walk_into_a_term_is_answered_by_the_server_only_while_the_term_has_few_subjects(tmp_path: Path) -> None:
    """``?m <has> <term>`` is bounded by how many triples match it, counted in the store
    before it runs: FEW or fewer, the server answers it while the worker is busy;
    more, and once a commit makes more, it waits for a worker."""
    store = _filled(tmp_path / "store")
    has, graph = ox.NamedNode("http://example.org/has"), ox.NamedNode("http://example.org/g")
    small, big = ox.NamedNode("http://example.org/small"), ox.NamedNode("http://example.org/big")
    store.raw.extend(ox.Quad(ox.NamedNode(f"http://example.org/{i}"), has, small, graph) for i in range(FEW))
    store.raw.extend(ox.Quad(ox.NamedNode(f"http://example.org/{i}"), has, big, graph) for i in range(FEW + 1))
    executor = ProcessExecutor(store, Limits(timeout=2.0), workers=1)

    def members(term: str) -> QueryRequest:
        return QueryRequest(f"PREFIX e: <http://example.org/> SELECT ?m ?o WHERE {{ ?m e:has e:{term} . OPTIONAL {{ ?m e:p ?o }} }}", accept="text/csv")

    async def scenario() -> None:
        await executor.run(QueryRequest("ASK { ?s ?p ?o }"))  # the worker is up
        heavy = asyncio.ensure_future(executor.run(QueryRequest(HEAVY)))
        await asyncio.sleep(0.2)  # ... and busy with the heavy query
        answered_here = executor.answered_here
        answer = executor.answer_now(members("small"))
        assert answer is not None and len(answer.body.decode().splitlines()) == FEW + 1
        assert "http://example.org/7,7" in answer.body.decode().splitlines()
        assert executor.answered_here == answered_here + 1
        assert executor.answer_now(members("big")) is None, "more than FEW subjects: a worker's"
        waiting = asyncio.ensure_future(executor.run(members("big"), inline=False))
        await asyncio.sleep(0.2)
        assert not waiting.done(), "it waits for the busy worker"
        with pytest.raises(QueryTimeout):
            await heavy
        assert len((await waiting).body.decode().splitlines()) == FEW + 2
        store.raw.add(ox.Quad(ox.NamedNode("http://example.org/one-more"), has, small, graph))
        executor.notify_write()
        assert executor.answer_now(members("small")) is None, "counted on the data as it is now"

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_walks_into_a_term_are_counted_once_for_a_version_of_the_data(tmp_path: Path) -> None:
    """EntryCounts keeps each walk's count for the data it counted, whichever query
    walks it (so a new one is made for each version); what is left of the budget is the
    same whether a walk was counted now or before."""
    store = _filled(tmp_path / "store", size=3)
    has, graph, term = ox.NamedNode("http://example.org/has"), ox.NamedNode("http://example.org/g"), ox.NamedNode("http://example.org/term")
    store.raw.extend(ox.Quad(ox.NamedNode(f"http://example.org/{i}"), has, term, graph) for i in range(FEW // 2))
    limits = Limits()
    once = inspect_query("PREFIX e: <http://example.org/> SELECT ?m WHERE { ?m e:has e:term }", limits)
    twice = inspect_query("PREFIX e: <http://example.org/> SELECT ?m WHERE { { ?m e:has e:term } UNION { ?m e:has e:term . ?m e:p ?o } }", limits)
    thrice = inspect_query("SELECT * WHERE { { ?m <http://example.org/has> <http://example.org/term> } UNION { ?m <http://example.org/has> <http://example.org/term> } UNION { ?m <http://example.org/has> <http://example.org/term> } }", limits)
    counts = EntryCounts(store)
    assert counts.bounded(once) and counts.bounded(twice) and not counts.bounded(thrice), "FEW // 2 each time it is walked"
    store.raw.extend(ox.Quad(ox.NamedNode(f"http://example.org/more-{i}"), has, term, graph) for i in range(FEW))
    assert counts.bounded(once), "remembered for the data it was counted on"
    again = EntryCounts(store)
    assert not again.bounded(once), "counted again on the new data: more than FEW"
    assert again.bounded(inspect_query("SELECT ?o WHERE { <http://example.org/term> ?p ?o }", limits)), "a walk out of a term needs no count"
    store.close()


def test_a_bounded_query_past_the_inline_budget_is_answered_whole_by_a_worker(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _filled(tmp_path / "store", size=10)
    hub = ox.NamedNode("http://example.org/hub")
    store.raw.extend(ox.Quad(hub, ox.NamedNode("http://example.org/has"), ox.NamedNode(f"http://example.org/m{i}"), ox.NamedNode("http://example.org/g")) for i in range(1000))
    executor = ProcessExecutor(store, Limits(timeout=5.0), workers=1, inline_budget=1e-9)
    members = "SELECT ?m WHERE { <http://example.org/hub> <http://example.org/has> ?m }"

    async def scenario() -> None:
        for _ in range(2):
            answer = await executor.run(QueryRequest(members, accept="text/csv"))
            assert len(answer.body.decode().splitlines()) == 1001
            assert not answer.truncated

    caplog.set_level("INFO", logger="patrolkg.workers")
    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()
    handed = [r for r in caplog.records if "went to a worker" in r.getMessage()]
    assert len(handed) == 1, "stopped once, then sent to a worker straight away"


COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"  # not bounded: a scan


def test_a_query_a_worker_answered_cheaply_is_answered_by_the_server_until_the_next_commit(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store")
    # A generous threshold: on a loaded machine even a small count may take 2 ms.
    executor = ProcessExecutor(store, Limits(timeout=2.0), workers=1, cheap_seconds=1.0)
    count = QueryRequest(COUNT, accept="text/csv")

    async def scenario() -> None:
        assert executor.answer_now(count) is None, "not yet known to be cheap"
        assert _count((await executor.run(count)).body) == "3000"  # a worker answers, and is timed
        assert executor.answer_now(QueryRequest(COUNT, accept="application/sparql-results+json")) is None, "another format is another request"
        heavy = asyncio.ensure_future(executor.run(QueryRequest(HEAVY)))
        await asyncio.sleep(0.2)  # the only worker is busy with the heavy query
        answered = executor.answer_now(count)
        assert answered is not None and _count(answered.body) == "3000"
        assert _count((await executor.run(count)).body) == "3000"
        assert not heavy.done(), "the count did not wait for the only worker"
        store.raw.add(ox.Quad(ox.NamedNode("http://example.org/new"), ox.NamedNode("http://example.org/p"), ox.Literal("x"), ox.NamedNode("http://example.org/g")))
        executor.notify_write()
        assert executor.answer_now(count) is None, "after a commit a worker answers it again"
        with pytest.raises(QueryTimeout):
            await heavy
        assert _count((await executor.run(count)).body) == "3001"
        answered = executor.answer_now(count)
        assert answered is not None and _count(answered.body) == "3001"

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_queries_that_were_not_cheap_or_call_other_endpoints_stay_with_the_workers(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store", size=10)
    dead = "http://127.0.0.1:1/sparql"  # allow-listed, refuses at once
    remote = QueryRequest(f"SELECT * WHERE {{ SERVICE SILENT <{dead}> {{ ?s ?p ?o }} }}", accept="text/csv")
    count = QueryRequest(COUNT, accept="text/csv")
    strict = ProcessExecutor(store, Limits(timeout=5.0), workers=1, cheap_seconds=0.0)
    generous = ProcessExecutor(store, Limits(timeout=5.0, service_allowlist=(dead,)), workers=1, cheap_seconds=1.0)

    async def scenario() -> None:
        await strict.run(count)
        assert strict.answer_now(count) is None, "it took longer than cheap_seconds"
        answer = await generous.run(remote)
        assert answer.seconds < generous.cheap_seconds, "fast enough to count as cheap"
        assert answer.body.decode().splitlines()[1] == ",,", "SILENT: the failed call is one empty solution"
        assert generous.answer_now(remote) is None, "a SERVICE call is never made from the server"

    try:
        asyncio.run(scenario())
    finally:
        strict.close()
        generous.close()
        store.close()


def test_cheap_queries_go_to_the_workers_while_the_server_is_busy_but_bounded_ones_do_not(tmp_path: Path) -> None:
    """Bounded queries are always answered here, but walks into a term only as cheap ones are."""
    store = _filled(tmp_path / "store", size=10)
    # inline_share=0: any time spent answering here lately counts as busy.
    executor = ProcessExecutor(store, Limits(timeout=5.0), workers=1, cheap_seconds=1.0, inline_share=0.0)
    count = QueryRequest(COUNT, accept="text/csv")

    async def scenario() -> None:
        await executor.run(count)  # a worker answers: now known to be cheap
        first = executor.answer_now(count)
        assert first is not None and _count(first.body) == "10", "an idle server answers it"
        assert executor.answer_now(count) is None, "a busy one leaves it to the workers"
        assert _count((await executor.run(count)).body) == "10"
        lookup = executor.answer_now(QueryRequest(LOOKUP, accept="text/csv"))
        assert lookup is not None and lookup.body.decode().splitlines() == ["o", "7"], "bounded queries are always answered here"
        # ... but for walks into a term, whose work depends on how many subjects it has:
        # those are answered here as cheap ones are, while the server is idle or alone.
        walk = QueryRequest("SELECT ?s WHERE { ?s <http://example.org/p> <http://example.org/nothing> }", accept="text/csv")
        assert executor.answer_now(walk) is None, "a busy server leaves it to the workers"
        assert executor.answer_now(walk, alone=True) is not None, "unless its client is alone"

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_the_server_is_never_busy_where_its_readers_take_the_other_cores(tmp_path: Path) -> None:
    assert inline_share_for(0, cores=2) == INLINE_SHARE  # a core left for the workers
    assert inline_share_for(1, cores=4) == INLINE_SHARE
    assert inline_share_for(1, cores=2) == math.inf  # a hop to a worker would take from the reader's
    assert inline_share_for(0, cores=1) == math.inf
    store = _filled(tmp_path / "store", size=10)
    count = QueryRequest(COUNT, accept="text/csv")

    def left_to_the_workers(readers: int) -> int:
        """Of a cheap query asked here for 0.3 s on end (all of the server's time)."""
        executor = ProcessExecutor(store, Limits(timeout=5.0), workers=1, cheap_seconds=1.0, inline_share=inline_share_for(readers, cores=2))

        async def scenario() -> int:
            await executor.run(count)  # a worker answers: now known to be cheap
            left, deadline = 0, time.monotonic() + 0.3
            while time.monotonic() < deadline:
                answer = executor.answer_now(count)
                if answer is None:
                    left += 1
                else:
                    assert _count(answer.body) == "10"
            return left

        try:
            return asyncio.run(scenario())
        finally:
            executor.close()

    try:
        assert left_to_the_workers(0) > 0, "with a core to spare, a busy server hands it on"
        assert left_to_the_workers(1) == 0, "with none, it answers every one"
    finally:
        store.close()


def test_a_query_a_worker_answered_within_alone_seconds_is_answered_here_when_nothing_else_is_in_progress(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store")
    # Nothing counts as cheap; a generous alone threshold, as a loaded machine needs.
    executor = ProcessExecutor(store, Limits(timeout=2.0), workers=1, inline_budget=2.0, cheap_seconds=0.0, alone_seconds=1.0)
    count = QueryRequest(COUNT, accept="text/csv")

    async def scenario() -> None:
        assert executor.answer_now(count, alone=True) is None, "not yet timed by a worker"
        assert _count((await executor.run(count)).body) == "3000"
        assert executor.answer_now(count) is None, "other requests may be in progress: a worker answers it"
        alone = executor.answer_now(count, alone=True)
        assert alone is not None and _count(alone.body) == "3000"
        heavy = asyncio.ensure_future(executor.run(QueryRequest(HEAVY)))
        await asyncio.sleep(0.2)
        assert executor.answer_now(count, alone=True) is None, "a query is at a worker"
        with pytest.raises(QueryTimeout):
            await heavy
        assert executor.answer_now(count, alone=True) is not None, "nothing at the workers any more"
        executor.notify_write()
        assert executor.answer_now(count, alone=True) is None, "after a commit a worker times it again"
        assert executor.stats() == {"answered_in_server": 2, "answered_by_workers": 1, "run_again": 0, "workers_replaced": 0}

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


@pytest.mark.slow
def test_one_client_at_a_time_is_answered_by_the_server_and_concurrent_ones_by_the_workers(tmp_path: Path) -> None:
    """The server knows the requests it has in progress: a query a worker answered
    quickly is answered by the server while its client is alone, and by the workers
    while others are in progress."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import LiveServer

    store = _filled(tmp_path / "store", size=30_000)
    store.close()
    server = LiveServer(tmp_path / "store", "--no-seed", "--readers", "0", "--inline-budget", "2").start()
    # Not bounded, and longer than 2 ms: not cheap enough for the server to answer it
    # whenever it was not busy lately.
    scan = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o FILTER(STRLEN(CONCAT(?o, ?o, ?o)) > 0) }"

    def ask(client: httpx.Client) -> None:
        response = client.get(server.url + "/sparql", params={"query": scan}, headers={"Accept": "text/csv"})
        assert response.status_code == 200 and _count(response.content) == "30000"

    def queries() -> dict[str, int]:
        return httpx.get(server.url + "/health", timeout=10).json()["queries"]  # type: ignore[no-any-return]

    try:
        with httpx.Client(timeout=30) as client:
            ask(client)  # a worker answers it, and times it
            before = queries()
            for _ in range(5):
                ask(client)
            alone = queries()
        assert alone["answered_in_server"] - before["answered_in_server"] == 5, (before, alone)
        clients = [httpx.Client(timeout=30) for _ in range(4)]
        try:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda n: [ask(clients[n % 4]) for _ in range(25)], range(4)))
        finally:
            for client in clients:
                client.close()
        together = queries()
        assert together["answered_by_workers"] > alone["answered_by_workers"], (alone, together)
    finally:
        server.stop()


def test_an_answer_too_large_for_the_engines_writer_is_written_row_by_row_at_once_next_time(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store", size=12_000)  # about 1.4 MiB of JSON
    executor = ProcessExecutor(store, Limits(timeout=30.0, max_rows=100_000), workers=1)
    everything = QueryRequest("SELECT ?s ?o WHERE { ?s ?p ?o }", accept="application/sparql-results+json")

    async def scenario() -> None:
        first = await executor.run(everything)
        again = await executor.run(everything)
        assert (first.row_by_row, again.row_by_row) == (True, False), "the engine's writer is not asked again"
        for answer in (first, again):
            assert answer.rows == 12_000 and not answer.truncated
        assert json.loads(first.body) == json.loads(again.body)

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_a_sorted_query_whose_last_answer_was_small_is_written_by_the_engine(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store", size=12_000)  # all of it: about 1.4 MiB of JSON
    executor = ProcessExecutor(store, Limits(timeout=30.0, max_rows=100_000), workers=1, inline_budget=0)
    small = QueryRequest("SELECT ?o WHERE { ?s ?p ?o } ORDER BY ?o LIMIT 200000 OFFSET 11990", accept="application/sparql-results+json")
    large = QueryRequest("SELECT ?s ?o WHERE { ?s ?p ?o } ORDER BY ?o", accept="application/sparql-results+json")

    async def scenario() -> None:
        first, again = await executor.run(small), await executor.run(small)
        # Its size unknown, a sorted answer is written row by row (were the engine's
        # writer to give up on it, the whole query would run twice); then it is known.
        assert (first.native, again.native) == (False, True)
        assert first.rows == again.rows == 10 and json.loads(first.body) == json.loads(again.body)
        for _ in range(2):
            answer = await executor.run(large)
            assert not answer.native and not answer.row_by_row and answer.rows == 12_000

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_the_inline_budget_setting_is_checked() -> None:
    assert Settings.from_env({"PATROLKG_INLINE_BUDGET": "0"}).inline_budget == 0
    for wrong in ("-1", "nan", "inf", "soon"):
        with pytest.raises(ConfigError, match="PATROLKG_INLINE_BUDGET"):
            Settings.from_env({"PATROLKG_INLINE_BUDGET": wrong})


@pytest.mark.slow
def test_the_server_keeps_answering_while_a_query_times_out(tmp_path: Path) -> None:
    from conftest import LiveServer

    store = _filled(tmp_path / "store")
    store.close()
    server = LiveServer(tmp_path / "store", "--no-seed", "--query-timeout", "1").start()
    try:
        with httpx.Client(timeout=30) as client:
            def heavy() -> httpx.Response:
                return client.get(server.url + "/sparql", params={"query": HEAVY})

            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2) as pool:
                slow = pool.submit(heavy)
                time.sleep(0.2)
                quick = client.get(server.url + "/health")
                assert quick.status_code == 200
                response = slow.result()
        assert response.status_code == 503
        assert response.json()["error"]["setting"] == "PATROLKG_QUERY_TIMEOUT"
    finally:
        server.stop()


def test_cors_allows_cross_site_reads_without_credentials(seeded_store: Store) -> None:
    app = create_app(Settings.from_env({}, cors_origins="https://analyst.example"), store=seeded_store, seed=False)
    with TestClient(app) as client:
        preflight = client.options(
            "/sparql",
            headers={"Origin": "https://analyst.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://analyst.example"
        assert "access-control-allow-credentials" not in preflight.headers
        read = client.get("/sparql", params={"query": "ASK {}"}, headers={"Origin": "https://analyst.example"})
        assert read.headers["access-control-allow-origin"] == "https://analyst.example"
        other = client.get("/sparql", params={"query": "ASK {}"}, headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
        # Writes carry a bearer token, which no cross-site request may send.
        write = client.options(
            "/submissions",
            headers={"Origin": "https://analyst.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
        )
        assert "authorization" not in write.headers.get("access-control-allow-headers", "").lower()


JAPAN = "<https://w3id.org/patrolkg/id/state/japan>"
ASKED_BY_GET = {
    "a lookup": {"query": f"SELECT ?p ?o WHERE {{ {JAPAN} ?p ?o }}"},
    "a lookup in CSV": {"query": f"SELECT ?p ?o WHERE {{ {JAPAN} ?p ?o }}", "format": "csv"},
    "DESCRIBE": {"query": f"DESCRIBE {JAPAN}", "format": "ntriples"},
    "a worker's query": {"query": "SELECT ?s WHERE { ?s a ?c } ORDER BY ?s LIMIT 3"},
    "a truncated answer": {"query": "SELECT ?s WHERE { ?s ?p ?o }"},
    "a syntax error": {"query": "SELECT * WHERE { ?s ?p }"},
    "a format the result cannot take": {"query": "ASK {}", "format": "turtle"},
    "an unknown format": {"query": "ASK {}", "format": "nonsense"},
    "a SERVICE off the allow-list": {"query": "SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }"},
    "an update": {"update": "CLEAR ALL"},
}


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
@pytest.mark.parametrize("params", list(ASKED_BY_GET.values()), ids=list(ASKED_BY_GET))
def test_a_query_by_get_is_answered_alike_before_and_through_the_middleware(bundle_store: Store, tmp_path: Path, params: dict[str, str], on_disk: bool) -> None:
    """Without an Origin header, GET /sparql is answered before the middleware stack;
    with one, through it (CORS): the answers are the same but for CORS's headers."""
    from conftest import seeded
    from patrolkg.store import open_store

    store = seeded(bundle_store, OxigraphStore(tmp_path / "store") if on_disk else open_store(None))
    app = create_app(Settings.from_env({}, cors_origins="https://analyst.example", max_rows="5"), store=store, seed=False)
    try:
        with TestClient(app) as client:
            direct = client.get("/sparql", params=params, headers={"Accept": "application/sparql-results+json, text/turtle"})
            through = client.get("/sparql", params=params, headers={"Accept": "application/sparql-results+json, text/turtle", "Origin": "https://analyst.example"})
    finally:
        store.close()
    assert through.headers["access-control-allow-origin"] == "https://analyst.example"
    assert "access-control-allow-origin" not in direct.headers
    assert (direct.status_code, direct.content) == (through.status_code, through.content)
    for header in ("content-type", "content-length", "patrolkg-truncated", "allow", "location"):
        assert direct.headers.get(header) == through.headers.get(header), header
    vary = [{part.strip() for part in r.headers.get("vary", "").split(",") if part.strip()} for r in (direct, through)]
    assert vary[0] == vary[1]
    if "truncated" in str(params):
        assert direct.headers["patrolkg-truncated"] == "max-rows=5"


def test_big_answers_and_errors_cross_the_pipe_under_uvloop(tmp_path: Path) -> None:
    """The server runs on uvloop, whose add_reader turns the pipe non-blocking: answers
    larger than the pipe's buffer, after errors, must still arrive whole."""
    uvloop = pytest.importorskip("uvloop")
    store = _filled(tmp_path / "store", size=20000)
    executor = ProcessExecutor(store, Limits(timeout=30.0, max_rows=100_000), workers=2)
    everything = QueryRequest("SELECT * WHERE { ?s ?p ?o }", accept="application/sparql-results+json")

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(NotAcceptable):
                await executor.run(QueryRequest("DESCRIBE <http://example.org/1>", accept="application/sparql-results+json"))
            answers = await asyncio.gather(*(executor.run(everything) for _ in range(3)))
            assert all(answer.rows == 20000 and len(answer.body) > 1_000_000 for answer in answers)

    try:
        uvloop.run(scenario())
    finally:
        executor.close()
        store.close()


def _spooled(tmp_path: Path) -> list[Path]:
    """Result files in the spool (each worker writes to a folder of its own there)."""
    return sorted(path for path in tmp_path.glob(".store.snapshots/*/spool/**/*") if path.is_file())


def test_a_large_result_is_spooled_by_the_worker_and_streamed_whole(tmp_path: Path) -> None:
    from conftest import LiveServer

    from patrolkg.results import SPILL_BYTES

    store = _filled(tmp_path / "store", size=60_000)  # about 95 bytes a row in SPARQL JSON
    store.close()
    server = LiveServer(tmp_path / "store", "--no-seed", "--max-rows", "100000", "--query-workers", "1").start()
    everything = "SELECT ?s ?o WHERE { ?s ?p ?o } ORDER BY ?o"
    try:
        with httpx.Client(timeout=60) as client:
            whole = client.get(server.url + "/sparql", params={"query": everything}, headers={"Accept": "application/sparql-results+json"})
            assert whole.status_code == 200 and len(whole.content) > SPILL_BYTES
            assert int(whole.headers["content-length"]) == len(whole.content)
            assert whole.headers["content-type"] == "application/sparql-results+json"
            values = [b["o"]["value"] for b in whole.json()["results"]["bindings"]]
            assert values == sorted(str(i) for i in range(60_000))
            assert "patrolkg-truncated" not in whole.headers

            csv = client.get(server.url + "/sparql", params={"query": everything, "format": "csv"}, headers={})
            assert csv.status_code == 200
            assert len(csv.text.splitlines()) == 60_001  # the header row, then every row
            assert _spooled(tmp_path) == []  # each file is gone once sent
    finally:
        server.stop()


@pytest.mark.slow
def test_a_worker_stopped_while_spooling_leaves_no_file(tmp_path: Path) -> None:
    from conftest import LiveServer

    store = _filled(tmp_path / "store", size=3000)
    store.close()
    # Nine million rows of a cartesian product: far more than a second's worth.
    server = LiveServer(tmp_path / "store", "--no-seed", "--max-rows", "100000000", "--query-timeout", "1", "--query-workers", "1").start()
    try:
        with httpx.Client(timeout=60) as client:
            response = client.get(server.url + "/sparql", params={"query": "SELECT ?a ?b WHERE { ?a ?p ?x . ?b ?q ?y }"}, headers={"Accept": "text/csv"})
            assert response.status_code == 503
            assert _spooled(tmp_path) == []
            assert client.get(server.url + "/sparql", params={"query": "ASK {}"}).status_code == 200
    finally:
        server.stop()


RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?x . ?b ?p ?y . ?c ?p ?z }"  # 2.7e10 rows at 3000 triples


@pytest.mark.slow
def test_queries_whose_clients_left_free_their_workers(tmp_path: Path) -> None:
    """Both workers busy with runaway queries whose clients then hang up: a third query
    is answered at once, not after the abandoned ones' 300 s timeout."""
    import socket
    from urllib.parse import urlencode

    from conftest import LiveServer

    store = _filled(tmp_path / "store")
    store.close()
    server = LiveServer(tmp_path / "store", "--no-seed", "--query-timeout", "300").start()
    try:
        with httpx.Client(timeout=60) as client:
            assert client.get(server.url + "/sparql", params={"query": "ASK {}"}).status_code == 200  # workers up
            host, port = server.url.removeprefix("http://").split(":")
            leaving = []
            for _ in range(2):
                connection = socket.create_connection((host, int(port)))
                connection.sendall(f"GET /sparql?{urlencode({'query': RUNAWAY})} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                leaving.append(connection)
            time.sleep(1.0)  # both runaways are in the workers
            for connection in leaving:
                connection.close()
            answered = client.get(server.url + "/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"}, headers={"Accept": "text/csv"})
            assert answered.status_code == 200
            assert _count(answered.content) == "3000"
            # The replaced workers answer too, side by side.
            again = [client.get(server.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"}) for _ in range(3)]
            assert [r.status_code for r in again] == [200, 200, 200]
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()


def test_an_answer_nobody_waits_for_leaves_no_spooled_file(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store", size=60_000)  # a result past SPILL_BYTES
    executor = ProcessExecutor(store, Limits(timeout=60.0, max_rows=100_000), workers=1)

    async def scenario() -> None:
        await executor.run(QueryRequest("ASK {}"))  # the worker is up
        everything = asyncio.ensure_future(executor.run(QueryRequest("SELECT ?s ?o WHERE { ?s ?p ?o }", accept="application/sparql-results+json")))
        await asyncio.sleep(0.1)  # dispatched to the worker
        everything.cancel()
        with pytest.raises(asyncio.CancelledError):
            await everything
        # Whether the answer ended within the grace (the worker kept) or not (the worker
        # replaced), the pool answers and the spooled answer is gone.
        assert b'"boolean":true' in (await executor.run(QueryRequest("ASK { ?s ?p ?o }", accept="application/sparql-results+json"))).body
        assert _spooled(tmp_path) == []

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_a_worker_past_its_memory_is_replaced_after_answering(tmp_path: Path) -> None:
    """Every worker holds more than one byte: each is replaced once its answer is in,
    and the answers are whole. Without the cap a worker stays."""
    store = _filled(tmp_path / "store")
    capped = ProcessExecutor(store, Limits(timeout=5.0, max_rows=10_000), workers=1, inline_budget=0.0, worker_memory=1)
    uncapped = ProcessExecutor(store, Limits(timeout=5.0), workers=1, inline_budget=0.0)
    count = QueryRequest("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept="text/csv")
    everything = QueryRequest("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", accept="text/csv")

    async def scenario() -> None:
        seen = []
        for _ in range(3):
            assert _count((await capped.run(count)).body) == "3000"
            seen.append(capped.pids())
        assert len({pid for pids in seen for pid in pids}) == 3 and all(len(pids) == 1 for pids in seen)
        assert capped.recycled == 3
        answer = await capped.run(everything)
        assert answer.rows == 3000 and len(answer.body.decode().splitlines()) == 3001
        first = await uncapped.run(count)
        pids = uncapped.pids()
        assert _count(first.body) == _count((await uncapped.run(count)).body) == "3000"
        assert uncapped.pids() == pids and uncapped.recycled == 0

    try:
        asyncio.run(scenario())
    finally:
        capped.close()
        uncapped.close()
        store.close()


#: About three seconds of the engine's time on the 3,000 triples of ``_filled``.
LONG = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?x . ?b ?p ?y . FILTER(?x != ?y) }"
LONG_COUNT = str(3000 * 3000 - 3000)


def test_a_process_past_its_memory_is_replaced_once_none_of_its_workers_has_a_query(tmp_path: Path) -> None:
    """Below the hard cap, a process past its memory serves on while another of its
    workers is in a query, and is replaced once it has none: never two at once."""
    store = _filled(tmp_path / "store")
    executor = ProcessExecutor(store, Limits(timeout=60.0), workers=2, threads=2, inline_budget=0.0, worker_memory=1, hard_memory=2**62)
    count = QueryRequest("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept="text/csv")

    async def scenario() -> None:
        await executor.run(QueryRequest("ASK {}"))
        assert executor.recycled == 1  # no other query: replaced at once
        [first] = executor.pids()
        long = asyncio.create_task(executor.run(QueryRequest(LONG, accept="text/csv")))
        await asyncio.sleep(0.3)
        for _ in range(2):
            assert _count((await executor.run(count)).body) == "3000"
            assert executor.recycled == 1 and executor.pids() == [first], "LONG is still running in it: it serves on"
        assert _count((await long).body) == LONG_COUNT
        assert executor.recycled == 2 and first not in executor.pids() and len(executor.pids()) == 1
        assert not _alive(first), "stopped as it was replaced"
        assert executor.rerun == 0

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def test_the_workers_of_a_process_are_its_threads_unless_one_each_is_asked_for(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store")
    count = QueryRequest("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept="text/csv")
    shared = ProcessExecutor(store, Limits(timeout=30.0), workers=3, threads=2, inline_budget=0.0)
    apart = ProcessExecutor(store, Limits(timeout=30.0), workers=2, threads=1, inline_budget=0.0)

    async def scenario() -> None:
        for executor, processes in ((shared, 2), (apart, 2)):
            answers = await asyncio.gather(*(executor.run(count) for _ in range(6)))
            assert [_count(answer.body) for answer in answers] == ["3000"] * 6
            assert len(executor.pids()) == processes
        assert shared.answered_by_workers == apart.answered_by_workers == 6

    try:
        asyncio.run(scenario())
    finally:
        shared.close()
        apart.close()
        store.close()


def test_a_query_whose_process_another_query_killed_is_run_again_and_answered(tmp_path: Path) -> None:
    """Two workers in one process: the caller of a runaway query leaves, its process is
    killed a second later with the other worker's query half done, which is run again
    in the new process and answered whole."""
    store = _filled(tmp_path / "store")
    executor = ProcessExecutor(store, Limits(timeout=60.0), workers=2, threads=2, inline_budget=0.0)

    async def scenario() -> None:
        await executor.run(QueryRequest("ASK {}"))  # the workers are up
        [first] = executor.pids()
        runaway = asyncio.create_task(executor.run(QueryRequest(RUNAWAY)))
        await asyncio.sleep(0.3)
        long = asyncio.create_task(executor.run(QueryRequest(LONG, accept="text/csv")))
        await asyncio.sleep(0.3)
        runaway.cancel()  # its worker is killed after ABANDONED_GRACE_SECONDS, with LONG's
        with pytest.raises(asyncio.CancelledError):
            await runaway
        assert _count((await long).body) == LONG_COUNT
        assert executor.rerun == 1
        assert first not in executor.pids() and len(executor.pids()) == 1

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_past_its_hard_memory_cap_stops_once_its_last_query_is_answered(tmp_path: Path) -> None:
    store = _filled(tmp_path / "store")
    executor = ProcessExecutor(store, Limits(timeout=60.0), workers=2, threads=2, inline_budget=0.0, worker_memory=1, hard_memory=1)
    count = QueryRequest("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept="text/csv")

    async def scenario() -> None:
        await executor.run(QueryRequest("ASK {}"))
        assert executor.recycled == 1  # replaced already: every process holds more than a byte
        [first] = executor.pids()
        long = asyncio.create_task(executor.run(QueryRequest(LONG, accept="text/csv")))
        await asyncio.sleep(0.3)
        assert _count((await executor.run(count)).body) == "3000"
        assert executor.recycled == 2 and first not in executor.pids()  # out of service...
        assert _alive(first)  # ...but still answering LONG
        assert _count((await long).body) == LONG_COUNT
        assert not _alive(first)  # stopped once it answered
        assert executor.rerun == 0 and executor.recycled == 2
        assert len(executor.pids()) == 1

    try:
        asyncio.run(scenario())
    finally:
        executor.close()
        store.close()
