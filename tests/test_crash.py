"""Nothing lost, nothing half-written: concurrent submissions, and a server killed with
SIGKILL in the middle of a stream of submissions, then restarted."""

from __future__ import annotations

import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, statement_turtle

pytestmark = pytest.mark.slow

SECRET = "c3" * 16
TOKEN = {"PATROLKG_WRITE_TOKEN": "dave:" + SECRET}
HEADERS = {"Content-Type": "text/turtle", "Authorization": "Bearer " + SECRET}
TRIPLES_PER_SUBMISSION = 7


def statement(n: str) -> bytes:
    return statement_turtle(f"https://w3id.org/patrolkg/id/statement/crash-{n}", f"Statement {n}", "Submitted while the server may die.", "test_crash")


def _count(url: str, n: str) -> int:
    query = f"SELECT (COUNT(*) AS ?c) WHERE {{ GRAPH ?g {{ <https://w3id.org/patrolkg/id/statement/crash-{n}> ?p ?o }} FILTER(?g != <https://w3id.org/patrolkg/graph/inferred>) }}"
    response = httpx.get(url + "/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"}, timeout=30)
    return int(response.json()["results"]["bindings"][0]["c"]["value"])


def test_concurrent_submissions_are_all_kept(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "store", env=TOKEN).start()
    try:
        def submit(n: int) -> tuple[int, int]:
            response = httpx.post(server.url + "/submissions", content=statement(f"c{n}"), headers=HEADERS, timeout=120)
            return n, response.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(submit, range(24)))
        assert all(status == 201 for _, status in results), results
        for n, _ in results:
            assert _count(server.url, f"c{n}") == TRIPLES_PER_SUBMISSION
        listing = httpx.get(server.url + "/submissions", params={"limit": 100}).json()
        assert listing["total"] == 24
    finally:
        server.stop()


def test_a_killed_server_loses_no_acknowledged_submission_and_half_writes_none(tmp_path: Path) -> None:
    store = tmp_path / "store"
    rng = random.Random(20261122)
    acknowledged: dict[str, str] = {}  # statement number -> submission id
    attempted: list[str] = []
    for round_number in range(5):
        server = LiveServer(store, env=TOKEN).start()
        stop = threading.Event()

        def stream(url: str = server.url, prefix: str = f"r{round_number}-") -> None:
            n = 0
            while not stop.is_set():
                key = f"{prefix}{n}"
                attempted.append(key)
                try:
                    response = httpx.post(url + "/submissions", content=statement(key), headers=HEADERS, timeout=30)
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    acknowledged[key] = response.json()["id"]
                n += 1

        client = threading.Thread(target=stream)
        client.start()
        time.sleep(rng.uniform(0.5, 2.0))
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        client.join(60)

    server = LiveServer(store, env=TOKEN).start()
    try:
        assert acknowledged, "no submission was acknowledged before the kills"
        for key in attempted:
            count = _count(server.url, key)
            if key in acknowledged:
                assert count == TRIPLES_PER_SUBMISSION, f"acknowledged submission {key} has {count} triples"
                record = httpx.get(server.url + f"/submissions/{acknowledged[key]}").json()
                assert record["status"] == "accepted"
            else:
                assert count in (0, TRIPLES_PER_SUBMISSION), f"submission {key} is half-written ({count} triples)"
    finally:
        server.stop()
