"""Query worker processes that can be stopped: the hard query timeout for stores on disk.

A query inside the engine cannot be interrupted from another thread, so queries on a
store on disk run in worker processes, and a worker whose query passes the timeout is
killed and replaced. Workers read immutable snapshots of the store (cheap, hard-linked
backups): after each commit the server publishes a new snapshot, and a worker switches
to the newest one before its next query, so a commit is visible to every query that
starts after it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from .errors import PatrolkgError, QueryTimeout, StoreError
from .execution import Limits, QueryRequest, QueryResponse, execute
from .store.oxigraph import OxigraphStore

__all__ = ["SnapshotPublisher", "ProcessExecutor"]

log = logging.getLogger("patrolkg.workers")

_CURRENT = "CURRENT"


class SnapshotPublisher:
    """Publishes numbered snapshots of a store under ``root``; ``CURRENT`` names the newest."""

    def __init__(self, store: OxigraphStore, root: Path, *, keep_seconds: float) -> None:
        self.store, self.root, self.keep_seconds = store, root, keep_seconds
        self.root.mkdir(parents=True, exist_ok=True)
        self._generation = 0
        self._lock = threading.Lock()
        self._published: list[tuple[float, Path]] = []

    def publish(self) -> int:
        with self._lock:
            self._generation += 1
            name = f"gen-{self._generation:08d}"
            self.store.snapshot(self.root / name)
            pointer = self.root / f".{_CURRENT}.{os.getpid()}"
            pointer.write_text(name)
            os.replace(pointer, self.root / _CURRENT)
            now = time.monotonic()
            self._published.append((now, self.root / name))
            self._prune(now)
            return self._generation

    def _prune(self, now: float) -> None:
        # A snapshot may still be read by a query that started before the newest one;
        # such a query ends within the timeout, so older snapshots can go after that.
        keep = []
        for index, (when, path) in enumerate(self._published):
            superseded_at = self._published[index + 1][0] if index + 1 < len(self._published) else None
            if superseded_at is not None and now - superseded_at > self.keep_seconds:
                shutil.rmtree(path, ignore_errors=True)
            else:
                keep.append((when, path))
        self._published = keep

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _remove_abandoned(snapshots: Path) -> None:
    """Delete snapshot folders left by servers that died without closing."""
    if not snapshots.is_dir():
        return
    for folder in snapshots.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _current_snapshot(root: Path) -> Path:
    return root / (root / _CURRENT).read_text().strip()


def _worker_main(conn: Connection, root: str, limits: Limits) -> None:
    snapshot_root = Path(root)
    opened: Path | None = None
    store: OxigraphStore | None = None
    conn.send(("ready", None))  # imports are done: the timeout clock may start
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            current = _current_snapshot(snapshot_root)
            if current != opened or store is None:
                store = OxigraphStore.read_only(current)
                opened = current
            conn.send(("ok", execute(store, request, limits)))
        except PatrolkgError as error:
            conn.send(("error", error))
        except Exception as error:  # a bug: reported to the parent, which logs it
            conn.send(("bug", f"{type(error).__name__}: {error}"))


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False

    def wait_ready(self, limit: float = 120.0) -> None:
        """Block until the process has started (its start-up is not the query's time)."""
        if self.ready:
            return
        if not self.conn.poll(limit):
            raise StoreError("a query worker did not start", hint="check the server's log")
        status, _ = self.conn.recv()
        self.ready = status == "ready"

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class ProcessExecutor:
    """Runs each query in one of ``workers`` processes; kills it at the timeout.

    :param store: the (writable) store on disk that the server commits to.
    """

    def __init__(self, store: OxigraphStore, limits: Limits, *, workers: int = 2) -> None:
        if store.path is None:
            raise StoreError("the process executor needs a store on disk")
        self.limits = limits
        snapshots = store.path.parent / f".{store.path.name}.snapshots"
        _remove_abandoned(snapshots)
        root = snapshots / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.publisher = SnapshotPublisher(store, root, keep_seconds=limits.timeout * 2 + 5)
        self.publisher.publish()
        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._size = workers
        self._all: set[_Worker] = set()
        self._closed = False

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child, str(self.publisher.root), self.limits), daemon=True, name="patrolkg-query"
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._all.add(worker)
        return worker

    async def _pool(self) -> asyncio.Queue[_Worker]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(self._spawn())
        return self._idle

    async def run(self, request: QueryRequest) -> QueryResponse:
        idle = await self._pool()
        worker = await idle.get()
        loop = asyncio.get_running_loop()
        timeout = self.limits.timeout
        healthy = False
        try:
            await loop.run_in_executor(None, worker.wait_ready)
            worker.conn.send(request)
            ready = await loop.run_in_executor(None, worker.conn.poll, timeout)
            if not ready:
                raise QueryTimeout(
                    f"the query ran longer than {timeout:g}s and was stopped",
                    setting="PATROLKG_QUERY_TIMEOUT",
                    limit=timeout,
                )
            status, payload = worker.conn.recv()
            healthy = True
        except (EOFError, OSError, BrokenPipeError):
            raise StoreError("a query worker died while running the query", hint="retry; if it repeats, the query crashes the engine") from None
        finally:
            if healthy:
                idle.put_nowait(worker)
            else:
                self._all.discard(worker)
                worker.kill()
                if not self._closed:
                    idle.put_nowait(await loop.run_in_executor(None, self._spawn))
        if status == "ok":
            return payload
        if status == "error":
            raise payload
        log.error("query worker failed: %s", payload)
        raise RuntimeError(payload)

    def notify_write(self) -> None:
        """Publish a snapshot so that queries from now on see the commit."""
        self.publisher.publish()

    def close(self) -> None:
        self._closed = True
        for worker in list(self._all):
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.process.join(1)
            if worker.process.is_alive():
                worker.kill()
        self._all.clear()
        self.publisher.close()
