"""Faults outside the request: a full disk, a store directory that turns read-only, and
the remote SPARQL engine stopped and restarted under load. In each, writes must fail
with a clear error, reads must go on (or, with the engine away, answer 503), and
nothing may be lost or corrupted: after a restart every submission acknowledged 201
is there and whole, and every other one is absent or whole, never half.

The full disk is a small tmpfs mounted for the test (root only: skipped otherwise).
The read-only directory is made with chmod after start, and the server runs without
CAP_DAC_OVERRIDE (``setpriv --bounding-set``), since root ignores permission bits.
Killing the server with SIGKILL is tests/test_crash.py (5 rounds) and, 20 rounds and
more, tests/test_soak.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import pyoxigraph as ox

from conftest import LiveServer, OxigraphEngine
from patrolkg.errors import StoreError
from patrolkg.execution import Limits, QueryRequest
from patrolkg.store import OxigraphStore
from patrolkg.workers import RETRY_SECONDS, ProcessExecutor

pytestmark = pytest.mark.slow

SECRET = "f4" * 16
TOKEN = {"PATROLKG_WRITE_TOKEN": "fay:" + SECRET}
TURTLE = {"Content-Type": "text/turtle", "Authorization": "Bearer " + SECRET}
JSON = {"Accept": "application/sparql-results+json"}
TRIPLES = 7
ID = "https://w3id.org/patrolkg/id/"


def statement(key: str) -> bytes:
    return f"""@prefix pk: <https://w3id.org/patrolkg/ontology#> .
<{ID}statement/fault-{key}> a pk:Statement ;
  <http://www.w3.org/2000/01/rdf-schema#label> "Fault statement {key}"@en ;
  pk:speaker <{ID}person/shinjiro-koizumi> ;
  pk:respondsTo <{ID}event/joint-patrol-10> ;
  pk:stance <{ID}stance/concern> ;
  pk:summary "Submitted while something is failing."@en ;
  <http://purl.org/dc/terms/source> "test_faults" .""".encode()


def triples_of(url: str, key: str) -> int:
    """Triples of a statement in the queried graphs (the inferred graph left out)."""
    query = f"SELECT (COUNT(*) AS ?c) WHERE {{ GRAPH ?g {{ <{ID}statement/fault-{key}> ?p ?o }} FILTER(?g != <https://w3id.org/patrolkg/graph/inferred>) }}"
    response = httpx.get(url + "/sparql", params={"query": query}, headers=JSON, timeout=60)
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["c"]["value"])


def submit(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/submissions", content=statement(key), headers=TURTLE, timeout=120)


def reads_go_on(url: str) -> None:
    assert httpx.get(url + "/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"}, headers=JSON, timeout=60).status_code == 200
    assert httpx.get(url + "/id/state/japan", headers={"Accept": "text/turtle"}, timeout=60).status_code == 200
    assert httpx.get(url + "/submissions", timeout=60).status_code == 200
    assert httpx.get(url + "/health", timeout=60).status_code == 200


def assert_store_matches(url: str, outcomes: dict[str, int]) -> None:
    """Acknowledged (201) submissions are whole; the others are absent or whole."""
    for key, status in outcomes.items():
        count = triples_of(url, key)
        if status == 201:
            assert count == TRIPLES, f"acknowledged submission {key} has {count} triples"
        else:
            assert count in (0, TRIPLES), f"submission {key} (answered {status}) is half-written: {count} triples"


# --- a full disk -------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, megabytes: int) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes with one file; delete it to free the space."""
    filler = disk / "filler"
    with filler.open("ab") as out:
        for chunk in (1 << 20, 1 << 12):
            while True:
                stats = os.statvfs(disk)
                free = stats.f_bavail * stats.f_frsize
                if free - leave < chunk:
                    break
                try:
                    out.write(b"\0" * chunk)
                    out.flush()
                except OSError:
                    break
    return filler


def test_a_full_disk_refuses_writes_clearly_and_reads_go_on(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 128) as disk:
        server = LiveServer(disk / "store", env=TOKEN)
        server.log = tmp_path / "server.log"
        server.start()
        outcomes: dict[str, int] = {}
        try:
            outcomes["before"] = submit(server.url, "before").status_code
            assert outcomes["before"] == 201
            filler = fill(disk)
            for n in range(3):
                refused = submit(server.url, f"full-{n}")
                outcomes[f"full-{n}"] = refused.status_code
                assert refused.status_code == 503, refused.text
                error = refused.json()["error"]
                assert error["code"] == "store_error" and "No space left" in error["message"]
            reads_go_on(server.url)
            assert triples_of(server.url, "before") == TRIPLES
        finally:
            server.stop()
        filler.unlink()
        server.start()
        try:
            assert_store_matches(server.url, outcomes)
            assert submit(server.url, "after-restart").status_code == 201
        finally:
            server.stop()


def _triple(n: int) -> ox.Triple:
    return ox.Triple(ox.NamedNode(f"http://example.org/s{n}"), ox.NamedNode("http://example.org/p"), ox.Literal("x" * 200 + str(n)))


def test_an_engine_that_failed_a_write_is_reopened_and_writes_resume(tmp_path: Path) -> None:
    """With no free-space margin the write reaches the engine and fails there; RocksDB
    then refuses every write until reopened, which the store does by itself."""
    with tmpfs(tmp_path / "disk", 64) as disk:
        store = OxigraphStore(disk / "store", min_free_bytes=0)
        try:
            store.apply({}, {"http://example.org/g": [_triple(0)]})
            filler = fill(disk)
            with pytest.raises(StoreError) as refused:
                for n in range(1, 200):  # the engine's buffers take a few before the disk says no
                    store.apply({}, {"http://example.org/g": [_triple(n) for n in range(n * 100, n * 100 + 100)]})
            assert "No space left on device" in refused.value.message and "nothing was written" in refused.value.message
            assert str(disk) not in str(refused.value)
            assert store.triple_count("http://example.org/g") >= 1  # reads go on
            filler.unlink()
            store.apply({}, {"http://example.org/g2": [_triple(-1)]})
            assert store.triple_count("http://example.org/g2") == 1
        finally:
            store.close()


def test_a_snapshot_that_failed_on_a_full_disk_does_not_stop_writes(tmp_path: Path) -> None:
    """A snapshot flushes the engine's memory to its disk first; when the disk is full
    that flush fails and RocksDB refuses every later write until reopened. The store
    reopens the engine after a failed snapshot as after a failed write, so writes
    resume once the space is back."""
    with tmpfs(tmp_path / "disk", 64) as disk:
        store = OxigraphStore(disk / "store", min_free_bytes=0)
        try:
            store.apply({}, {"http://example.org/g": [_triple(n) for n in range(200)]})  # in the memtable, not yet on disk
            filler = fill(disk)
            with pytest.raises(StoreError) as refused:
                store.snapshot(disk / "snapshot")
            assert "No space left on device" in refused.value.message
            assert str(disk) not in str(refused.value)
            assert store.triple_count("http://example.org/g") == 200  # reads go on
            filler.unlink()
            shutil.rmtree(disk / "snapshot", ignore_errors=True)
            store.apply({}, {"http://example.org/g2": [_triple(-1)]})
            assert store.triple_count("http://example.org/g2") == 1
            store.snapshot(disk / "snapshot")
            assert OxigraphStore.read_only(disk / "snapshot").triple_count() == 201
        finally:
            store.close()


def test_queries_go_on_from_the_store_while_no_snapshot_can_be_made(tmp_path: Path) -> None:
    """The snapshots for the query workers live on a full disk of their own: queries are
    answered from the store (and see every commit), /health's problem says why, and
    the workers take over again once a snapshot can be made."""
    store = OxigraphStore(tmp_path / "store")
    store.apply({}, {"http://example.org/g": [_triple(0)]})
    count = QueryRequest("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept="text/csv")
    with tmpfs(tmp_path / ".store.snapshots", 1) as snapshots:
        filler = fill(snapshots)
        executor = ProcessExecutor(store, Limits(timeout=30.0), workers=1)
        try:
            answer = asyncio.run(executor.run(count))
            assert answer.body.decode().splitlines()[1] == "1"
            assert "cannot snapshot the store" in (executor.problem() or "")
            store.apply({}, {"http://example.org/g": [_triple(1)]})
            executor.notify_write()
            assert asyncio.run(executor.run(count)).body.decode().splitlines()[1] == "2"
            filler.unlink()
            time.sleep(RETRY_SECONDS + 0.1)
            assert asyncio.run(executor.run(count)).body.decode().splitlines()[1] == "2"
            assert executor.problem() is None
            assert any(snapshots.iterdir()), "the workers read a snapshot again"
        finally:
            executor.close()
            store.close()


def test_writes_resume_once_space_is_freed(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 128) as disk:
        server = LiveServer(disk / "store", env=TOKEN)
        server.log = tmp_path / "server.log"
        server.start()
        try:
            filler = fill(disk)
            assert submit(server.url, "full").status_code == 503
            filler.unlink()
            again = submit(server.url, "freed")
            assert again.status_code == 201, again.text
        finally:
            server.stop()


def test_a_write_near_a_full_disk_is_answered_as_it_ended(tmp_path: Path) -> None:
    outcomes: dict[str, tuple[int, int]] = {}
    with tmpfs(tmp_path / "disk", 128) as disk:
        server = LiveServer(disk / "store", env=TOKEN)
        server.log = tmp_path / "server.log"
        server.start()
        try:
            for leave in (512, 256, 128, 96, 64, 48, 32, 24, 16, 8, 4, 0):
                filler = fill(disk, leave * 1024)
                response = submit(server.url, f"near-{leave}")
                visible = triples_of(server.url, f"near-{leave}") if response.status_code == 201 else -1
                outcomes[f"near-{leave}"] = (response.status_code, visible)
                filler.unlink()
                if response.status_code != 201:
                    break
        finally:
            server.stop()
        server.start()
        try:
            for key, (status, visible) in outcomes.items():
                assert status in (201, 503), f"{key}: answered {status}"
                if status == 201:
                    assert visible == TRIPLES, f"{key}: acknowledged but not visible to queries"
                else:
                    assert triples_of(server.url, key) == 0, f"{key}: refused with {status} but stored"
        finally:
            server.stop()


# --- a store directory that turns read-only --------------------------------------------------------


class WithoutDacOverride(LiveServer):
    """A server that obeys permission bits even as root (CAP_DAC_OVERRIDE dropped)."""

    def start(self, timeout: float = 60.0) -> LiveServer:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "patrolkg", "serve", "--store", str(self.store_dir), "--port", str(self.port), "--log-level", "warning", *self.extra]
        self.process = subprocess.Popen(command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log.read_text()}")


def _permissions_bind(store: Path) -> None:
    probe = store.parent / "probe"
    probe.mkdir(mode=0o555)
    try:
        result = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"], capture_output=True, check=False)
    finally:
        probe.rmdir()
    if result.returncode == 0:
        pytest.skip("permission bits do not bind this process even without CAP_DAC_OVERRIDE")


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, int]]]:
    """A server whose store directory is made read-only after one accepted write."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
    store = tmp_path / "store"
    _permissions_bind(store)
    server = WithoutDacOverride(store, env=TOKEN).start()
    outcomes = {"before": submit(server.url, "before").status_code}
    assert outcomes["before"] == 201
    reads_go_on(server.url)
    time.sleep(1.0)  # the engine's background flush of that commit ends before the directory turns read-only
    store.chmod(0o555)
    try:
        yield server, outcomes
    finally:
        server.stop()
        store.chmod(0o755)


def test_an_unwritable_store_refuses_writes_clearly_and_reads_go_on(read_only_store: tuple[LiveServer, dict[str, int]], tmp_path: Path) -> None:
    server, outcomes = read_only_store
    for n in range(4):
        response = submit(server.url, f"ro-{n}")
        outcomes[f"ro-{n}"] = response.status_code
        assert response.status_code == 503, response.text
        assert "Permission denied" in response.json()["error"]["message"]
        reads_go_on(server.url)
    server.stop()
    (tmp_path / "store").chmod(0o755)
    server.start()
    try:
        assert_store_matches(server.url, outcomes)
        assert submit(server.url, "writable-again").status_code == 201
    finally:
        server.stop()


def test_a_write_refused_on_an_unwritable_store_is_not_stored(read_only_store: tuple[LiveServer, dict[str, int]], tmp_path: Path) -> None:
    server, _ = read_only_store
    refused = submit(server.url, "refused")
    assert refused.status_code == 503
    server.stop()
    (tmp_path / "store").chmod(0o755)
    server.start()
    assert triples_of(server.url, "refused") == 0


def test_a_store_error_does_not_show_the_servers_paths(read_only_store: tuple[LiveServer, dict[str, int]], tmp_path: Path) -> None:
    server, _ = read_only_store
    for n in range(2):
        response = submit(server.url, f"paths-{n}")
        assert response.status_code == 503
        assert str(tmp_path) not in response.text, response.text


def test_a_store_that_cannot_be_opened_stops_serve_with_exit_3(tmp_path: Path) -> None:
    store = tmp_path / "locked"
    _permissions_bind(store)
    store.mkdir(mode=0o555)
    result = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "patrolkg", "serve", "--store", str(store), "--port", "0"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    assert "cannot open the store" in result.stderr and "Permission denied" in result.stderr


def test_a_store_that_cannot_be_opened_is_reported_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "locked"
    _permissions_bind(store)
    store.mkdir(mode=0o555)
    result = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "patrolkg", "serve", "--store", str(store), "--port", "0"], capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in result.stderr, result.stderr


# --- the remote engine stopped and restarted under load -------------------------------------------


@dataclass
class Load:
    """Clients that query and submit until stopped, logging (start, end, kind, key, status, code)."""

    url: str
    log: list[tuple[float, float, str, str, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _record(self, kind: str, key: str, call: object) -> None:
        started = time.monotonic()
        try:
            response = call()  # type: ignore[operator]
            status = response.status_code
            code = response.json().get("error", {}).get("code", "") if status >= 400 and "json" in response.headers.get("content-type", "") else ""
        except httpx.HTTPError as error:
            status, code = 0, type(error).__name__
        self.log.append((started, time.monotonic(), kind, key, status, code))

    def querier(self) -> None:
        query = {"query": "SELECT ?p WHERE { ?p a <https://w3id.org/patrolkg/ontology#JointPatrol> }"}
        while not self.stop.is_set():
            self._record("query", "", lambda: httpx.get(self.url + "/sparql", params=query, headers=JSON, timeout=60))
            self._record("page", "", lambda: httpx.get(self.url + "/id/state/japan", headers={"Accept": "text/turtle"}, timeout=60))

    def submitter(self, name: str) -> None:
        n = 0
        while not self.stop.is_set():
            key = f"{name}-{n}"
            self._record("submit", key, lambda key=key: submit(self.url, key))
            n += 1

    def run(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.start()


def _wait_healthy(url: str, limit: float = 60.0) -> float:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return time.monotonic()
        time.sleep(0.2)
    raise AssertionError("the server did not become healthy again")


def test_the_remote_engine_stopped_under_load_is_503_then_full_service_and_nothing_lost(tmp_path: Path) -> None:
    engine = OxigraphEngine(tmp_path / "engine").start()
    server = LiveServer(tmp_path / "unused", *engine.store_options(), "--query-timeout", "5", env=TOKEN).start()
    load = Load(server.url)
    threads = [threading.Thread(target=load.querier) for _ in range(3)] + [threading.Thread(target=load.submitter, args=(f"w{i}",)) for i in range(2)]
    try:
        load.run(threads)
        time.sleep(4)
        engine.stop()
        away_from = time.monotonic()
        time.sleep(6)
        away_until = time.monotonic()
        engine.start()
        back_from = _wait_healthy(server.url)
        time.sleep(8)
        load.stop.set()
        for thread in threads:
            thread.join(180)

        server_errors = [entry for entry in load.log if entry[4] >= 500 and entry[4] != 503 or entry[4] == 0]
        assert server_errors == [], server_errors[:5]
        away = [entry for entry in load.log if entry[0] > away_from and entry[1] < away_until]
        assert away, "no request was made while the engine was away"
        assert {entry[4] for entry in away} == {503}, sorted({(e[2], e[4], e[5]) for e in away})
        assert {entry[5] for entry in away} <= {"store_unavailable", "query_timeout", "store_error"}
        back = [entry for entry in load.log if entry[0] > back_from]
        assert back and all(entry[4] in (200, 201) for entry in back), sorted({(e[2], e[4], e[5]) for e in back if e[4] not in (200, 201)})

        outcomes = {entry[3]: entry[4] for entry in load.log if entry[2] == "submit"}
        assert any(status == 201 for status in outcomes.values())
        assert_store_matches(server.url, outcomes)
        listed = httpx.get(server.url + "/submissions", params={"limit": 500}, timeout=60).json()
        assert listed["total"] >= sum(1 for status in outcomes.values() if status == 201)
    finally:
        load.stop.set()
        server.stop()
        engine.stop()
