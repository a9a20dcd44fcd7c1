"""The remote store's own machinery on a real engine (``oxigraph serve``): the write lease
that makes servers sharing an engine take turns, results that stream, and credentials
that reach the engine and nothing else."""

from __future__ import annotations

import http.server
import threading
import time
import tracemalloc

import pyoxigraph as ox
import pytest

from conftest import OxigraphEngine, free_port
from patrolkg.errors import StoreUnavailable, WriteConflict
from patrolkg.store import RemoteStore
from patrolkg.store.sparql_client import Credentials

pytestmark = pytest.mark.slow


@pytest.fixture
def remote(oxigraph_engine: OxigraphEngine) -> RemoteStore:
    oxigraph_engine.clear()
    return RemoteStore(oxigraph_engine.query_url, gsp_url=oxigraph_engine.gsp_url)


# -- the write lease ------------------------------------------------------------------------------


def test_two_stores_on_one_engine_take_turns(oxigraph_engine: OxigraphEngine) -> None:
    first = RemoteStore(oxigraph_engine.query_url, lease_wait=1.0)
    second = RemoteStore(oxigraph_engine.query_url, lease_wait=1.0)
    with first.write_lease():
        with pytest.raises(WriteConflict, match="write lease"):
            with second.write_lease():
                pass
    with second.write_lease():
        pass


def test_writers_of_many_servers_racing_on_one_version_commit_one_at_a_time(oxigraph_engine: OxigraphEngine) -> None:
    # Without the lease, Oxigraph's server applies most of these racing conditional
    # updates: it runs them side by side, each on its own snapshot.
    graph = "http://example.org/race"
    stores = [RemoteStore(oxigraph_engine.query_url) for _ in range(8)]
    read = stores[0].version()
    big = [ox.Triple(ox.NamedNode(f"http://example.org/s{i}"), ox.NamedNode("http://example.org/p"), ox.Literal(str(i))) for i in range(2000)]
    results: list[bool] = []

    def writer(store: RemoteStore, n: int) -> None:
        with store.write_lease():
            results.append(store.apply({}, {f"{graph}/{n}": big}, expect_version=read, new_version=f"race-{n}-{time.time()}"))

    threads = [threading.Thread(target=writer, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert sorted(results) == [False] * 7 + [True]
        assert len([g for g in stores[0].graph_names() if g.startswith(graph)]) == 1
    finally:
        stores[0].replace_graphs({}, drop=[f"{graph}/{n}" for n in range(8)])
        for store in stores:
            store.close()


def test_the_lease_of_a_server_that_died_lapses(oxigraph_engine: OxigraphEngine) -> None:
    dead = RemoteStore(oxigraph_engine.query_url, lease_seconds=2.0)
    dead._lease._acquire()  # taken and never renewed nor released, as by a killed server
    alive = RemoteStore(oxigraph_engine.query_url, lease_wait=15.0)
    started = time.monotonic()
    with alive.write_lease():
        waited = time.monotonic() - started
    assert 1.0 < waited < 10.0


# -- streaming --------------------------------------------------------------------------------------


def test_large_results_stream_through_without_being_held(remote: RemoteStore) -> None:
    graph = "http://example.org/large"
    p = ox.NamedNode("http://example.org/p")
    rows = 25_000
    remote.replace_graphs({graph: (ox.Triple(ox.NamedNode(f"http://example.org/s{i}"), p, ox.Literal(f"value number {i}")) for i in range(rows))})
    try:
        tracemalloc.start()
        count = sum(1 for _ in remote.query(f"SELECT ?s ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"))  # type: ignore[union-attr]
        count_quads = sum(1 for _ in remote.quads(graph))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == count_quads == rows
        # The JSON answer alone is over 2.5 MB; what Python holds at once stays far below.
        assert peak < 600_000, peak
    finally:
        remote.replace_graphs({}, drop=[graph])


# -- credentials --------------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_POST(self) -> None:  # noqa: N802
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_credentials_reach_the_engine_and_nowhere_else() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/query"
    try:
        for credentials, expected in ((Credentials("alice", "s3cret-pw"), "Basic YWxpY2U6czNjcmV0LXB3"), (Credentials(token="t0ken-value"), "Bearer t0ken-value")):
            store = RemoteStore(url, credentials=credentials)
            with pytest.raises(Exception) as caught:
                store.graph_names()
            assert _Recorder.seen[-1] == expected
            shown = f"{caught.value} {caught.value!r} {store!r} {credentials!r}"
            assert "s3cret-pw" not in shown and "t0ken-value" not in shown
            assert "PATROLKG_STORE_USER" in str(caught.value)
    finally:
        server.shutdown()
    with pytest.raises(StoreUnavailable):
        RemoteStore(f"http://127.0.0.1:{free_port()}/query", credentials=Credentials("alice", "s3cret-pw")).version()
