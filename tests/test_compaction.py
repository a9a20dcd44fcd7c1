"""Compaction: a store that took commits is merged back into one sorted run per index
(nothing lost), by the server once writes pause, and the query workers move to it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from conftest import LiveServer, statement_turtle
from patrolkg.compaction import LATEST_FACTOR, IdleCompactor
from patrolkg.errors import StoreError
from patrolkg.store import OxigraphStore
from test_faults import fill, tmpfs

G = "http://example.org/g"
SECRET = "c0" * 16


def _triple(n: int) -> ox.Triple:
    return ox.Triple(ox.NamedNode(f"http://example.org/s{n}"), ox.NamedNode("http://example.org/p"), ox.Literal(f"value {n}"))


def _base(store: OxigraphStore, size: int = 5000) -> None:
    """A bulk load's worth of triples, in files at the bottom (as ``patrolkg load`` leaves them)."""
    store.raw.bulk_extend(ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(G)) for t in map(_triple, range(100_000, 100_000 + size)))
    store.raw.optimize()


def _commits(store: OxigraphStore, first: int, count: int, size: int = 50) -> None:
    """``count`` commits of ``size`` triples each, each flushed to a file of its own (as
    a snapshot for the query workers does after a commit).

    From two such files on, RocksDB starts merging them itself, in the background. A
    test that then fills the disk makes one commit: a merge of the engine's own that
    ran into the full disk would leave RocksDB refusing merges (silently) until its
    own recovery, seconds later, which is not what those tests are about."""
    for c in range(count):
        store.apply({}, {G: [_triple(first + c * size + n) for n in range(size)]})
        store.raw.flush()


def _until(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def test_compacting_merges_the_files_of_many_commits_and_keeps_every_quad(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "store")
    try:
        _base(store)
        _commits(store, 0, 12)
        before = set(store.raw)
        assert store.compact() is True
        assert set(store.raw) == before and len(before) == 5600
        assert store.compact() is False, "a compact store is left as it is"
        store.apply({}, {G: [_triple(-1)]})  # writes go on after it
        assert store.triple_count(G) == 5601
    finally:
        store.close()
    reopened = OxigraphStore(tmp_path / "store")
    try:
        assert reopened.triple_count(G) == 5601
    finally:
        reopened.close()


def test_an_in_memory_store_has_nothing_to_compact() -> None:
    store = OxigraphStore(None)
    store.apply({}, {G: [_triple(1)]})
    assert store.compact() is False
    assert store.triple_count(G) == 1


def test_the_compactor_compacts_once_writes_pause(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "store")
    compacted = threading.Event()
    compactor = IdleCompactor(store, 1.0, on_compacted=compacted.set)  # a pause no loaded machine makes between two commits
    try:
        _until(lambda: compactor.pending == 0 and not compactor.stats()["running"] and compactor._dirty is False)
        assert compactor.compactions == 0, "an empty new store was compact already: nothing to tell the workers"
        _base(store)
        for n in range(5):
            _commits(store, n * 50, 1)
            compactor.wrote()
        assert compactor.pending == 5
        assert compacted.wait(30), "compacted once the writes paused"
        assert compactor.compactions == 1 and compactor.pending == 0
        assert compactor.stats()["last_seconds"] is not None
        assert store.triple_count(G) == 5250
        time.sleep(1.0)
        assert compactor.compactions == 1, "no write since: nothing more to do"
    finally:
        compactor.close()
        store.close()
    assert compactor._thread is not None and not compactor._thread.is_alive()


def test_while_writes_keep_coming_the_store_is_still_compacted(tmp_path: Path) -> None:
    """Writes closer together than the pause it waits for: compacted at the latest
    ``LATEST_FACTOR`` pauses after the first one."""
    store = OxigraphStore(tmp_path / "store")
    idle = 0.2
    compactor = IdleCompactor(store, idle)
    try:
        _until(lambda: not compactor._dirty and not compactor.stats()["running"])
        _base(store, 1000)
        started = time.monotonic()
        n = 0
        while compactor.compactions == 0 and time.monotonic() - started < LATEST_FACTOR * idle * 10:
            _commits(store, n * 10, 1, size=10)
            compactor.wrote()
            n += 1
            time.sleep(idle / 4)
        assert compactor.compactions >= 1
        assert store.triple_count(G) == 1000 + n * 10
    finally:
        compactor.close()
        store.close()


def test_zero_never_compacts(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "store")
    compactor = IdleCompactor(store, 0)
    try:
        _commits(store, 0, 3)
        compactor.wrote()
        assert compactor._thread is None
        assert compactor.pending == 1 and compactor.compactions == 0
    finally:
        compactor.close()
        store.close()


def test_a_compaction_the_disk_has_no_room_for_is_not_tried(tmp_path: Path) -> None:
    """Merging needs room for a copy of what it merges: with less free space it is
    refused before the engine starts, and tried again once there is room."""
    with tmpfs(tmp_path / "disk", 64) as disk:
        store = OxigraphStore(disk / "store", min_free_bytes=0)
        try:
            _base(store)
            _commits(store, 0, 1, size=1600)
            filler = fill(disk, leave=1024)
            with pytest.raises(StoreError) as refused:
                store.compact()
            assert "needs up to" in refused.value.message and "bytes free" in refused.value.message
            assert str(disk) not in str(refused.value)
            filler.unlink()
            assert store.compact() is True
            assert store.triple_count(G) == 6600
        finally:
            store.close()


def test_a_compaction_that_failed_on_a_full_disk_does_not_stop_writes(tmp_path: Path) -> None:
    """Should the disk fill up while it merges, RocksDB does not say so but refuses
    every later write, even once the space is back. The store finds out, reopens the
    engine as after a failed write, and nothing held is lost."""
    with tmpfs(tmp_path / "disk", 64) as disk:
        store = OxigraphStore(disk / "store", min_free_bytes=0)
        try:
            _base(store)
            _commits(store, 0, 1, size=1600)
            store.apply({}, {G: [_triple(n) for n in range(10_000, 10_200)]})  # in memory, not yet on disk
            store.min_free_bytes = -(64 << 20)  # as if the disk filled up after the check
            filler = fill(disk)
            with pytest.raises(StoreError) as refused:
                store.compact()
            assert "No space left on device" in refused.value.message
            assert str(disk) not in str(refused.value)
            assert store.triple_count(G) == 6800  # reads go on, nothing lost
            filler.unlink()
            store.min_free_bytes = 0
            store.apply({}, {G: [_triple(-1)]})  # the first write after it
            assert store.compact() is True
            assert store.triple_count(G) == 6801
        finally:
            store.close()


def test_the_compactor_says_why_it_failed_and_tries_again_later(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 64) as disk:
        store = OxigraphStore(disk / "store", min_free_bytes=0)
        compactor = IdleCompactor(store, 0.2)
        try:
            _until(lambda: not compactor._dirty and not compactor.stats()["running"])
            _base(store)
            _commits(store, 0, 1, size=1600)
            filler = fill(disk, leave=1024)
            compactor.wrote()
            _until(lambda: compactor.failures >= 1)
            assert "needs up to" in str(compactor.stats()["problem"]) and compactor.pending == 1
            assert compactor.compactions == 0
            filler.unlink()
            _until(lambda: compactor.compactions == 1)  # after twice the pause, by itself
            assert "problem" not in compactor.stats() and compactor.pending == 0 and compactor.failures == 0
            assert store.triple_count(G) == 6600
        finally:
            compactor.close()
            store.close()


def test_nothing_to_merge_right_after_a_failure_is_checked_once_more_later(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """After a failure, "nothing to merge" may be RocksDB refusing merges since one of
    its own met the full disk (it says nothing until it recovers): the compactor looks
    once more, ``recheck_seconds`` later, and only then calls the commits compacted.
    Here the store really is compact, so both looks find nothing to merge."""
    def rechecks() -> int:
        return sum("looked at again" in record.getMessage() for record in caplog.records)

    with tmpfs(tmp_path / "disk", 64) as disk, caplog.at_level(logging.INFO, logger="patrolkg.store"):
        store = OxigraphStore(disk / "store", min_free_bytes=0)
        compactor = IdleCompactor(store, 0.2, recheck_seconds=1.5)
        try:
            _until(lambda: not compactor._dirty and not compactor.stats()["running"])
            _base(store)
            _commits(store, 0, 1, size=200)
            assert store.compact() is True  # compact before the compactor's turn
            filler = fill(disk, leave=1024)
            compactor.wrote()
            _until(lambda: compactor.failures >= 1)
            filler.unlink()
            # (pending again from the retry that found nothing until the look once more)
            _until(lambda: compactor.failures == 0 and compactor.pending == 0 and not compactor.stats()["running"] and rechecks() == 1)
            attempts = compactor.attempts
            time.sleep(2.0)
            assert compactor.attempts == attempts and rechecks() == 1, "looked once more, not again and again"
            assert compactor.compactions == 0 and "problem" not in compactor.stats()
            assert store.triple_count(G) == 5200
        finally:
            compactor.close()
            store.close()


@pytest.mark.slow
def test_the_server_compacts_after_submissions_and_its_workers_read_the_result(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "store", "--compact-after", "0.5", env={"PATROLKG_WRITE_TOKEN": "erin:" + SECRET}).start()
    try:
        def compaction() -> dict[str, object]:
            return httpx.get(server.url + "/health", timeout=10).json()["compaction"]  # type: ignore[no-any-return]

        _until(lambda: not compaction()["running"] and compaction()["pending_commits"] == 0)
        done = int(compaction()["compactions"])  # type: ignore[arg-type]
        for n in range(3):
            body = statement_turtle(f"https://w3id.org/patrolkg/id/statement/compaction-{n}", f"Statement {n}", "Written before a compaction.", "test_compaction")
            written = httpx.post(server.url + "/submissions", content=body, headers={"Content-Type": "text/turtle", "Authorization": "Bearer " + SECRET}, timeout=60)
            assert written.status_code == 201, written.text
        # (the compaction due at start may come between them, on a loaded machine: what
        # is waited for is one that took the last submission)
        _until(lambda: (state := compaction())["pending_commits"] == 0 and not state["running"] and int(state["compactions"]) > done)  # type: ignore[arg-type]
        # Not a bounded query: a worker answers it, from a snapshot of the compacted store.
        count = "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s <https://w3id.org/patrolkg/ontology#summary> \"Written before a compaction.\"@en }"
        answer = httpx.get(server.url + "/sparql", params={"query": count}, headers={"Accept": "application/sparql-results+json"}, timeout=30)
        assert answer.json()["results"]["bindings"][0]["n"]["value"] == "3"
    finally:
        server.stop()
