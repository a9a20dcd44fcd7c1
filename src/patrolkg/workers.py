"""Worker processes that can be stopped: the hard timeout for queries and updates on a
store on disk.

A query inside the engine cannot be interrupted from another thread, so queries on a
store on disk run in worker processes, and a worker process whose query passes the
timeout is killed and replaced. The workers of one process (two by default) are its
threads, reading one engine: a query that reads the whole store fills the engine's
caches once, not once per worker. When a query kills its process, the queries its other
workers had are run again in another, within their own timeout. SPARQL updates are
staged the same way, in a worker process of their own.
Only bounded queries (:mod:`patrolkg.bounded`), which cannot run away on the data
the store holds, and queries a
worker has just answered in a millisecond or two on the same data, are answered in the
server process itself, within a budget of time.

Workers read immutable snapshots of the store (cheap, hard-linked backups). A commit
only marks the snapshot stale; the next query makes a new one before it is sent to a
worker, so it sees every commit made before it started, and a burst of commits costs
one snapshot. When no snapshot can be made (a full disk, a directory turned
read-only), queries are answered from the store itself, in threads of the server, until
one can: reads go on, and ``/health`` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import multiprocessing
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from .bounded import FEW, Entry
from .errors import PatrolkgError, QueryTimeout, StoreError
from .execution import CheckedQuery, Limits, QueryRequest, QueryResponse, ThreadExecutor, execute, inspect_query
from .results import NATIVE_BYTES
from .store.oxigraph import OxigraphStore

__all__ = ["EntryCounts", "SnapshotPublisher", "ProcessExecutor", "StagingRequest", "execute_within", "inline_share_for", "remember", "start_child"]

log = logging.getLogger("patrolkg.workers")

#: Seconds between attempts to make a snapshot after one failed.
RETRY_SECONDS = 1.0
#: Seconds a new worker process may take to import patrolkg before it counts as broken.
START_SECONDS = 120.0
#: A query whose caller gave up (its client left) may take this much longer to end
#: and keep its worker; past it, the worker is killed and replaced. Shorter than a
#: worker's start, so that a cheap query is not paid for with a new process.
ABANDONED_GRACE_SECONDS = 1.0


#: How many query texts the executor remembers, of each kind (see ProcessExecutor).
REMEMBERED_TEXTS = 1024

#: A query a worker answered (evaluated and wrote) within this many seconds is
#: answered in the server next time, as long as the store has not changed: the hop to
#: a worker and back (0.2-0.3 ms, and a third busy process on two cores) is then a
#: large share of its time, and on the same data the same query does the same work.
CHEAP_SECONDS = 0.002
#: Queries known to be cheap are answered in the server only while answering queries
#: there took less than this share of its time over about the last ``LOAD_WINDOW``
#: seconds (a moving average), where a core is left over for the workers (see
#: :func:`inline_share_for`). Past it, the server (one process, one core) is the
#: bottleneck, and they go to the workers, which run on the other cores: under one
#: client a query is answered sooner here, under many the workers answer more of them
#: a second.
INLINE_SHARE = 0.5
LOAD_WINDOW = 0.1
#: A query a worker answered within this share of the inline budget (10 ms of the
#: default 20) is answered in the server next time, as long as the store has not
#: changed, when it is the only request the server has at that moment and no query is
#: at a worker: one client at a time is then spared the hop (0.4-0.8 ms of a 5 ms
#: query, with the wake-ups of a third process), and nobody waits behind it but
#: requests arriving meanwhile. Under concurrent requests the workers answer it.
ALONE_SHARE = 0.5

K = TypeVar("K")
V = TypeVar("V")


def remember(memory: dict[K, V], key: K, value: V) -> None:
    """Keep ``key`` in ``memory`` as its newest entry, forgetting the oldest past
    :data:`REMEMBERED_TEXTS`."""
    memory.pop(key, None)  # the newest again
    memory[key] = value
    if len(memory) > REMEMBERED_TEXTS:
        del memory[next(iter(memory))]  # the oldest


def inline_share_for(readers: int, cores: int | None = None) -> float:
    """The ``inline_share`` of a server with ``readers`` reader processes on ``cores``
    cores (the ones this process may run on, by default): :data:`INLINE_SHARE` where a
    core is left once the server and its readers have one each, else never busy. When
    the readers take the other cores, a query handed to a worker costs the machine more
    than answering it here (the hop, and a process more on the same cores): on two cores
    with a reader, 15-40 % fewer answers a second under four clients for joins around
    one entity; with no reader, 5-15 % more."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return INLINE_SHARE if cores > 1 + readers else math.inf


def start_child(process: multiprocessing.process.BaseProcess) -> None:
    """Start a child process of the server that ignores Ctrl-C from its first
    instruction on: a terminal sends SIGINT to every process of its group, and the
    server stops its children itself once it has stopped taking requests (an ignored
    signal stays ignored across the new interpreter's start)."""
    if threading.current_thread() is not threading.main_thread():
        process.start()  # signal dispositions are the main thread's to change
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)


class _OverBudget(Exception):
    """A query answered in the server ran past the inline budget."""


class _RunAgain(Exception):
    """A query's worker process was killed because of another query of it, after the
    query had run ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class EntryCounts:
    """Whether queries are bounded on the data one version of a store holds: the walks
    into named terms each needs (:mod:`patrolkg.bounded`) match at most
    :data:`patrolkg.bounded.FEW` triples together. Each walk is counted in the engine
    once (60-120 µs at a million triples) and remembered, so that queries about the
    same events, people or classes, as a dashboard sends them, are not counted again;
    make a new one for each version of the data (after a commit, or for a new snapshot)."""

    def __init__(self, store: OxigraphStore) -> None:
        self.store = store
        self._counts: dict[Entry, int] = {}

    def bounded(self, checked: CheckedQuery) -> bool:
        return checked.bounded_in(self._count)

    def _count(self, entry: Entry, limit: int) -> int:
        if limit > FEW:  # (not so for within()'s budget: counted as asked, not kept)
            return self.store.count_matches(entry.predicates, entry.term, limit)
        known = self._counts.get(entry)
        if known is None:
            known = self.store.count_matches(entry.predicates, entry.term, FEW)  # the count, or FEW + 1: more than any limit
            remember(self._counts, entry, known)
        return known


def execute_within(store: OxigraphStore, request: QueryRequest, limits: Limits, budget: float, overran: dict[str, None], **options: Any) -> QueryResponse | None:
    """:func:`patrolkg.execution.execute` stopped once ``budget`` seconds have passed,
    checked as the answer is written: None then, and the text remembered in
    ``overran`` (the server process and its readers answer bounded queries so)."""
    deadline = time.perf_counter() + budget

    def check() -> None:
        if time.perf_counter() > deadline:
            raise _OverBudget()

    try:
        return execute(store, request, limits, check=check, **options)
    except _OverBudget:
        remember(overran, request.text, None)
        return None


class SnapshotPublisher:
    """Makes numbered snapshots of a store under ``root`` when they are needed.

    :meth:`changed` (after a commit) only marks the newest snapshot stale;
    :meth:`current` makes a new one if the store changed since the last. A snapshot
    superseded more than ``keep_seconds`` ago is deleted (a query that started on it has
    ended by then).
    """

    def __init__(self, store: OxigraphStore, root: Path, *, keep_seconds: float) -> None:
        self.store, self.root, self.keep_seconds = store, root, keep_seconds
        self.root.mkdir(parents=True, exist_ok=True)
        self._generation = 0
        #: Commits so far, in memory shared with the processes started after it (the
        #: server's readers, :mod:`patrolkg.web.readers`): a snapshot made after it
        #: read N holds at least N commits.
        self.commits = multiprocessing.get_context("spawn").RawValue("Q", 0)
        self._counting = threading.Lock()
        self._lock = threading.Lock()
        self._current: Path | None = None
        self._stale = True
        self._superseded: list[tuple[float, Path]] = []
        self._failure: tuple[float, StoreError] | None = None

    @property
    def stale(self) -> bool:
        """Whether the store changed since the newest snapshot (or there is none yet)."""
        return self._stale or self._current is None

    @property
    def fresh(self) -> Path | None:
        """The newest snapshot if the store has not changed since it was made."""
        return None if self._stale else self._current

    def changed(self) -> None:
        """Say that the store changed: the next :meth:`current` makes a new snapshot."""
        self._stale = True  # first: whoever reads the new count will get a new snapshot
        with self._counting:
            self.commits.value += 1

    def current_with_commits(self) -> tuple[Path, int]:
        """:meth:`current`, and how many commits it holds at least."""
        commits = self.commits.value
        return self.current(), commits

    def current(self) -> Path:
        """The snapshot holding every commit made before this call.

        :raises StoreError: when no snapshot can be made (the last failure is kept for
            :meth:`problem`, and retried at most every ``RETRY_SECONDS``).
        """
        with self._lock:
            if not self.stale:
                assert self._current is not None
                return self._current
            if self._failure is not None and time.monotonic() - self._failure[0] < RETRY_SECONDS:
                raise self._failure[1]
            # Cleared before the copy: a commit during it marks the store stale again.
            self._stale = False
            name = f"gen-{self._generation + 1:08d}"
            try:
                self.store.snapshot(self.root / name)
            except StoreError as error:
                self._stale = True
                if self._failure is None:
                    log.error("cannot snapshot the store for the query workers; answering queries from the store itself until it can: %s", error)
                self._failure = (time.monotonic(), error)
                shutil.rmtree(self.root / name, ignore_errors=True)
                raise
            if self._failure is not None:
                log.warning("snapshots of the store work again")
                self._failure = None
            self._generation += 1
            now = time.monotonic()
            if self._current is not None:
                self._superseded.append((now, self._current))
            self._current = self.root / name
            self._prune(now)
            return self._current

    def problem(self) -> str | None:
        """Why the last snapshot could not be made, while that lasts."""
        return None if self._failure is None else self._failure[1].message

    def _prune(self, now: float) -> None:
        keep = []
        for superseded_at, path in self._superseded:
            if now - superseded_at > self.keep_seconds:
                shutil.rmtree(path, ignore_errors=True)
            else:
                keep.append((superseded_at, path))
        self._superseded = keep

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


@dataclass(frozen=True)
class StagingRequest:
    """A SPARQL update to stage (see :func:`patrolkg.updates.stage_update`) in a worker."""

    update: str
    options: Mapping[str, Any] = field(default_factory=dict)


class _SharedSnapshot:
    """The snapshot the threads of a worker process read, opened once for all of them:
    one engine, one set of caches. A thread keeps the store it was given for its query;
    an older snapshot closes when the last query on it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened: tuple[str, OxigraphStore] | None = None

    def store(self, snapshot: str) -> OxigraphStore:
        with self._lock:
            if self._opened is None or self._opened[0] != snapshot:
                self._opened = None  # this process's reference to the old one goes first
                self._opened = (snapshot, OxigraphStore.read_only(snapshot))
            return self._opened[1]


def _serve(conn: Connection, snapshots: _SharedSnapshot, limits: Limits, spool_dir: str) -> None:
    """One worker: answers (snapshot, request) messages on ``conn`` until told to stop."""
    conn.send(("ready", None))  # imports are done: the timeout clock may start
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        snapshot, request, checked, row_by_row = message
        try:
            store = snapshots.store(snapshot)
            if isinstance(request, StagingRequest):
                from .updates import stage_update

                conn.send(("ok", stage_update(store, request.update, **request.options)))
            else:
                conn.send(("ok", execute(store, request, limits, spool_dir=spool_dir, checked=checked, row_by_row=row_by_row)))
        except PatrolkgError as error:
            conn.send(("error", error))
        except Exception as error:  # a bug: reported to the parent, which logs it
            conn.send(("bug", f"{type(error).__name__}: {error}"))
        finally:
            store = None  # type: ignore[assignment]  # (an old snapshot may close)


def _worker_main(conns: list[Connection], limits: Limits, spool_dirs: list[str]) -> None:
    """A worker process: one worker per connection, each a thread (the first this
    one), all reading one engine; large results go to files in the worker's own
    directory of ``spool_dirs``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # if it was started from a thread
    snapshots = _SharedSnapshot()
    threads = [threading.Thread(target=_serve, args=(conn, snapshots, limits, spool), daemon=True, name=f"patrolkg-worker-{index}") for index, (conn, spool) in enumerate(zip(conns, spool_dirs)) if index]
    for thread in threads:
        thread.start()
    _serve(conns[0], snapshots, limits, spool_dirs[0])
    for thread in threads:
        thread.join()


@dataclass(eq=False)
class _Process:
    """A worker process and its workers (:class:`_Worker`, one query each at a time)."""

    process: multiprocessing.process.BaseProcess
    workers: list[_Worker] = field(default_factory=list)
    #: Workers of it with a query now.
    busy: int = 0
    #: Stopped, or to be stopped once its last query is answered: none of its workers
    #: takes a new query.
    retired: bool = False
    #: Killed by the executor (a query of it timed out or failed): the queries its
    #: other workers had are run again elsewhere.
    killed: bool = False

    def kill(self) -> None:
        """Kill the process (a worker of it waiting for an answer then reads the end of
        its connection, which it closes)."""
        self.killed = self.retired = True
        self.process.kill()
        self.process.join(5)

    def close(self) -> None:
        for worker in self.workers:
            worker.conn.close()

    def resident_bytes(self) -> int | None:
        """The process's resident memory (Linux), or None where it cannot be read."""
        try:
            with open(f"/proc/{self.process.pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return None


@dataclass(eq=False)
class _Worker:
    """One worker: a thread of a worker process, with its connection and the folder
    its large results go to."""

    host: _Process
    conn: Connection
    spool: Path
    ready: bool = False

    def leftovers(self) -> None:
        """Delete what it was writing (a query of it that will not be answered)."""
        for leftover in self.spool.glob("*"):
            leftover.unlink(missing_ok=True)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _timeout(what: str, seconds: float, *, outcome: str = "") -> QueryTimeout:
    return QueryTimeout(f"the {what} ran longer than {seconds:g}s and was stopped{outcome}", setting="PATROLKG_QUERY_TIMEOUT", limit=seconds)


def _answer(status: str, payload: Any) -> Any:
    if status == "ok":
        return payload
    if status == "error":
        raise payload
    log.error("worker failed: %s", payload)
    raise RuntimeError(payload)


class ProcessExecutor:
    """Runs each query in one of ``workers`` workers, ``threads`` of them to a process,
    and stages updates in one process more; kills a process at the timeout and starts
    another (the other queries it had run again, elsewhere).

    A bounded query (:mod:`patrolkg.bounded`: it cannot run away on the data the store
    holds, :class:`EntryCounts`; one that walks into named terms only while the server is
    not busy, as a cheap query below) is answered here
    instead, on the event loop, from the store itself: no hop to a worker, no thread.
    So is a query that a worker answered within ``cheap_seconds`` on the snapshot that
    is still the newest (no commit since): on the same data it does the same work;
    unless answering queries here took more than ``inline_share`` of the server's time
    lately, when the workers, on the other cores, answer more of them
    (:func:`inline_share_for`: never so where the server's readers take the other
    cores). And so is one a
    worker answered within ``alone_seconds`` (by default half the inline budget) on that
    snapshot, when the caller says it is the only request in progress
    (``answer_now(alone=True)``) and no query is at a worker: nothing then waits for
    the server but requests arriving meanwhile. Such a query
    gets ``inline_budget`` seconds, checked as its answer is written; past them
    it is stopped, handed to a worker like any other query, and its text remembered so
    that it goes to a worker straight away next time. A query whose answer the
    engine's writer gave up on (:attr:`QueryResponse.row_by_row`) is remembered too,
    and written row by row at once next time.

    A worker process whose resident memory passed ``worker_memory`` bytes once a query of
    it was answered is replaced (the engine's caches of a store it has scanned whole,
    and the heap a large answer left, start afresh) when none of its workers has a
    query: it stops, and as many workers start in a new process, so that the two never
    hold memory at once. Past ``hard_memory`` bytes (by default twice ``worker_memory``)
    it is replaced at once: its workers take no more queries, as many start in a new
    process, and it stops once its last query is answered. 0: never.

    :param store: the (writable) store on disk that the server commits to.
    """

    def __init__(
        self,
        store: OxigraphStore,
        limits: Limits,
        *,
        workers: int = 2,
        threads: int = 2,
        inline_budget: float = 0.02,
        cheap_seconds: float = CHEAP_SECONDS,
        alone_seconds: float | None = None,
        inline_share: float = INLINE_SHARE,
        worker_memory: int = 0,
        hard_memory: int | None = None,
    ) -> None:
        if store.path is None:
            raise StoreError("the process executor needs a store on disk")
        self.store, self.limits = store, limits
        snapshots = store.path.parent / f".{store.path.name}.snapshots"
        _remove_abandoned(snapshots)
        root = snapshots / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.publisher = SnapshotPublisher(store, root, keep_seconds=limits.timeout * 2 + 5)
        #: Where workers write large results for the server to stream (and delete).
        self.spool = root / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._size, self._threads = workers, max(1, threads)
        #: Every worker process running, in service or retired but still answering.
        self._all: set[_Process] = set()
        self._spooled = itertools.count()
        self._closed = False
        self._fallback: ThreadExecutor | None = None
        self.inline_budget = inline_budget
        self.cheap_seconds = min(cheap_seconds, inline_budget)
        self.alone_seconds = max(self.cheap_seconds, min(inline_budget * ALONE_SHARE if alone_seconds is None else alone_seconds, inline_budget))
        self.inline_share = inline_share
        self.worker_memory = worker_memory
        self.hard_memory = 2 * worker_memory if hard_memory is None else hard_memory
        #: Worker processes replaced for their memory so far; queries answered here, by
        #: workers, and run again because another query killed their worker's process.
        self.recycled = self.answered_here = self.answered_by_workers = self.rerun = 0
        #: Texts of queries answered here that overran the budget, and of queries whose
        #: answers the engine's writer gave up on (oldest first).
        self._overran: dict[str, None] = {}
        self._row_by_row: dict[str, None] = {}
        #: Texts of queries that sort or group a result of unknown size (see
        #: execute()) whose last answer the engine's writer could have written.
        self._small: dict[str, None] = {}
        #: Queries (text, dataset and format) a worker answered within
        #: ``alone_seconds``, with the snapshot it read and the seconds it took.
        self._cheap: dict[QueryRequest, tuple[Path, float]] = {}
        #: Called with a query and the snapshot it was read from when a worker first
        #: answers it there within ``cheap_seconds`` (the server's reader processes
        #: answer it too, from that snapshot: :meth:`patrolkg.web.readers.Readers.share`).
        self.on_cheap: Callable[[QueryRequest, Path], None] | None = None
        #: The walks into named terms counted since the last commit, and the commits
        #: the store had then.
        self._counts: tuple[int, EntryCounts] | None = None
        #: Seconds spent answering queries here, decayed over ``LOAD_WINDOW`` (as of
        #: ``_load_at``, a ``perf_counter`` time).
        self._load, self._load_at = 0.0, 0.0
        #: The text answer_now() checked last, and what the check said.
        self._checked: tuple[str | None, CheckedQuery | None] = (None, None)
        self._stager: _Worker | None = None
        self._stager_lock = threading.Lock()

    # -- processes -------------------------------------------------------------------

    def _spawn(self, threads: int) -> _Process:
        """A new worker process with ``threads`` workers."""
        pipes = [self._context.Pipe() for _ in range(threads)]
        spools = [self.spool / f"w{next(self._spooled)}" for _ in range(threads)]
        for spool in spools:
            spool.mkdir(parents=True, exist_ok=True)
        process = self._context.Process(target=_worker_main, args=([child for _, child in pipes], self.limits, [str(spool) for spool in spools]), daemon=True, name="patrolkg-worker")
        start_child(process)
        host = _Process(process)
        for (parent, child), spool in zip(pipes, spools):
            child.close()
            host.workers.append(_Worker(host, parent, spool))
        self._all.add(host)
        return host

    def _add_workers(self, count: int) -> None:
        """Start ``count`` query workers, ``threads`` to a process, and make them idle."""
        assert self._idle is not None
        while count > 0:
            host = self._spawn(min(count, self._threads))
            count -= len(host.workers)
            for worker in host.workers:
                self._idle.put_nowait(worker)

    def _retire(self, host: _Process, *, kill: bool) -> None:
        """Take ``host``'s workers out of service and start as many in another process;
        stop it now if it is to be ``kill``-ed or has no query, else once its last query
        is answered."""
        if not host.retired:
            host.retired = True
            if self._idle is not None:  # its idle workers leave the queue
                waiting = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
                for worker in waiting:
                    if worker.host is not host:
                        self._idle.put_nowait(worker)
                if not self._closed:
                    self._add_workers(len(host.workers))
        if kill:
            host.kill()
        if host.busy == 0:
            self._stop(host)

    def _stop(self, host: _Process) -> None:
        """Stop ``host`` once no worker of it has a query."""
        self._all.discard(host)
        if not host.killed:
            host.kill()
        host.close()
        for worker in host.workers:
            with contextlib.suppress(OSError):
                worker.spool.rmdir()  # once empty: the answers in it have been sent

    def start(self) -> None:
        """Start the query workers now rather than at the first query (they import
        patrolkg in the background while the server starts)."""
        if self._idle is None:
            self._idle = asyncio.Queue()
            self._add_workers(self._size)

    async def _receive(self, worker: _Worker, seconds: float, what: str, *, limit: float | None = None) -> tuple[str, Any]:
        """The worker's next message, waited for on the event loop (no thread), for
        ``seconds`` of the ``limit`` the error names (by default, all of them)."""
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = worker.conn.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, seconds)
        except asyncio.TimeoutError:
            raise _timeout(what, seconds if limit is None else limit) from None
        finally:
            loop.remove_reader(fd)
            os.set_blocking(fd, True)  # uvloop's add_reader made it non-blocking; recv needs it blocking
        return worker.conn.recv()  # type: ignore[no-any-return]

    async def _ends_soon(self, worker: _Worker) -> bool:
        """Whether ``worker`` answers within :data:`ABANDONED_GRACE_SECONDS` (the
        answer is dropped)."""
        try:
            status, payload = await self._receive(worker, ABANDONED_GRACE_SECONDS, "abandoned query")
        except QueryTimeout:
            return False
        spooled = getattr(payload, "body_file", None) if status == "ok" else None
        if spooled is not None:
            with contextlib.suppress(OSError):
                os.unlink(spooled)
        return True

    # -- queries ---------------------------------------------------------------------

    async def _snapshot(self) -> Path:
        if not self.publisher.stale:
            return self.publisher.current()
        return await asyncio.get_running_loop().run_in_executor(None, self.publisher.current)

    def _degraded(self) -> ThreadExecutor:
        if self._fallback is None:
            self._fallback = ThreadExecutor(self.store, self.limits, workers=self._size)
        return self._fallback

    def answer_now(self, request: QueryRequest, *, alone: bool = False) -> QueryResponse | None:
        """The answer to a bounded query, or to one known to be cheap on the data as it
        is, made here and now on the event loop; None for any other query, and for one
        that ran past the inline budget: :meth:`run` it. ``alone``: the caller has no
        other request in progress (see the class).

        :raises PatrolkgError: as :meth:`run` does (a query refused before it runs, a
            syntax error, no acceptable format...).
        """
        checked = inspect_query(request.text, self.limits)
        self._checked = (request.text, checked)  # for run(), if it follows for this text
        return self._answer_now(request, checked, alone)

    def _answer_now(self, request: QueryRequest, checked: CheckedQuery, alone: bool = False) -> QueryResponse | None:
        if self.inline_budget > 0 and request.text not in self._overran and (self._affordable(request, alone) or self._bounded_here(checked, alone)):
            return self._answer_here(request, checked)
        return None

    def _bounded_here(self, checked: CheckedQuery, alone: bool) -> bool:
        """Whether a bounded query is to be answered here: always, unless it walks into
        named terms (up to :data:`patrolkg.bounded.FEW` starts, a few ms); such a query only while the
        server was not busy lately or has nothing else in progress, as a cheap one,
        for under many clients the server's one core would answer little else."""
        if not checked.bounded or (checked.entries and not alone and self._busy()):
            return False
        if not checked.entries:
            return True
        commits = self.publisher.commits.value  # (read before counting: a commit meanwhile is counted again)
        if self._counts is None or self._counts[0] != commits:
            self._counts = (commits, EntryCounts(self.store))
        return self._counts[1].bounded(checked)

    def _recent_load(self, now: float) -> float:
        return self._load * math.exp((self._load_at - now) / LOAD_WINDOW)

    def _busy(self) -> bool:
        """Whether answering queries here took more than ``inline_share`` of the
        server's time lately."""
        return self._recent_load(time.perf_counter()) > self.inline_share * LOAD_WINDOW

    def _affordable(self, request: QueryRequest, alone: bool) -> bool:
        """Whether ``request`` is to be answered here (see the class): a worker answered
        it on the data the store holds now, within ``cheap_seconds`` and the server was
        not busy lately or has nothing else in progress, or within ``alone_seconds`` and
        nothing else is in progress."""
        known = self._cheap.get(request)
        if known is None or known[0] != self.publisher.fresh:
            return False
        if known[1] <= self.cheap_seconds:
            return alone or not self._busy()
        return alone and self._workers_idle() and known[1] <= self.alone_seconds

    def _workers_idle(self) -> bool:
        """Whether no query is at a worker, or waiting for one (then every worker has one),
        in service or in a process that is being retired."""
        return not any(host.busy for host in self._all)

    def _learn(self, request: QueryRequest, checked: CheckedQuery, snapshot: Path, answer: QueryResponse) -> None:
        """Remember what a worker's answer says of its query for next time."""
        if answer.row_by_row:
            remember(self._row_by_row, request.text, None)
        if checked.whole_before_first_row(self.limits.max_rows):
            if answer.kind == "select" and answer.body_file is None and not answer.truncated and len(answer.body) < NATIVE_BYTES:
                remember(self._small, request.text, None)
            else:
                self._small.pop(request.text, None)
        # A query that calls other endpoints is never answered here: their time is not ours.
        if answer.seconds <= self.alone_seconds and answer.body_file is None and not checked.endpoints:
            known = self._cheap.get(request)
            remember(self._cheap, request, (snapshot, answer.seconds))
            self._share_if_newly_cheap(request, snapshot, answer.seconds, known)
        else:
            self._cheap.pop(request, None)

    def _share_if_newly_cheap(self, request: QueryRequest, snapshot: Path, seconds: float, known: tuple[Path, float] | None) -> None:
        """Call :attr:`on_cheap` when ``request`` took ``seconds``, within
        ``cheap_seconds``, on ``snapshot``, where what was ``known`` of it before did not
        make it cheap there already."""
        was_cheap = known is not None and known[0] == snapshot and known[1] <= self.cheap_seconds
        if not was_cheap and seconds <= self.cheap_seconds and self.on_cheap is not None:
            self.on_cheap(request, snapshot)

    async def run(self, request: QueryRequest, *, inline: bool = True) -> QueryResponse:
        """The answer to ``request``: :meth:`answer_now` if it can (unless ``inline`` is
        false: the caller has tried), else from a worker."""
        text, checked = self._checked
        if text is not request.text or checked is None:  # (a long text is checked once)
            checked = inspect_query(request.text, self.limits)  # refused here, before any worker
        if inline and (answer := self._answer_now(request, checked)) is not None:
            return answer
        try:
            snapshot = await self._snapshot()
        except StoreError:
            return await self._degraded().run(request, checked)
        self.start()
        ran = 0.0
        while True:
            try:
                status, payload = await self._at_worker(request, checked, snapshot, self.limits.timeout - ran)
                break
            except _RunAgain as again:  # in a new process, for the time it has left
                self.rerun += 1
                ran += again.seconds
                if ran >= self.limits.timeout:
                    raise _timeout("query", self.limits.timeout) from None
        if status == "ok":
            self.answered_by_workers += 1
            self._learn(request, checked, snapshot, payload)
        return _answer(status, payload)  # type: ignore[no-any-return]

    async def _at_worker(self, request: QueryRequest, checked: CheckedQuery, snapshot: Path, seconds: float) -> tuple[str, Any]:
        """The answer of the next idle worker to ``request``, within ``seconds`` of the
        timeout.

        :raises _RunAgain: its process was killed meanwhile because a query of another
            of its workers failed, ran too long, or was given up by its caller.
        """
        assert self._idle is not None
        idle = self._idle
        worker = await idle.get()
        host = worker.host
        host.busy += 1
        healthy = False
        sent: float | None = None  # when the query was sent
        try:
            if not worker.ready:
                status, _ = await self._receive(worker, START_SECONDS, "start of a query worker")
                worker.ready = status == "ready"
            sent = time.monotonic()
            worker.conn.send((str(snapshot), request, checked, self._row_by_row_for(request.text)))
            try:
                status, payload = await self._receive(worker, seconds, "query", limit=self.limits.timeout)
            except asyncio.CancelledError:
                # Nobody waits for the answer any more: a query about to end may end,
                # a longer one is stopped with its worker instead of holding it.
                healthy = await self._ends_soon(worker)
                if not healthy:
                    log.info("stopped a query its caller gave up on: %.200s", getattr(request, "text", request))
                raise
            healthy = True
        except (EOFError, OSError) as error:
            if host.killed:
                raise _RunAgain(0.0 if sent is None else time.monotonic() - sent) from None
            host.process.join(1)
            log.error("a query worker failed (%r; exit code %s) running: %.300s", error, host.process.exitcode, getattr(request, "text", request))
            raise StoreError("a query worker died while running the query", hint="retry; if it repeats, the query crashes the engine") from None
        finally:
            host.busy -= 1
            if not healthy:
                worker.leftovers()  # (a result it spooled would have been the answer)
            if host.retired:
                if host.busy == 0:
                    self._stop(host)
            elif healthy and not self._too_big(host):
                idle.put_nowait(worker)
            else:  # it failed (its process is killed), or is replaced for its memory
                self._retire(host, kill=not healthy)
        return status, payload

    def _too_big(self, host: _Process) -> bool:
        """Whether ``host`` is to be replaced for its memory now (see the class): past
        ``worker_memory`` with no query, or past ``hard_memory``."""
        if not self.worker_memory:
            return False
        resident = host.resident_bytes()
        if resident is None or resident <= self.worker_memory or (host.busy and resident <= self.hard_memory):
            return False
        self.recycled += 1
        log.info("a query worker process holding %.0f MB was replaced (PATROLKG_WORKER_MEMORY: %.0f MB)", resident / 1e6, self.worker_memory / 1e6)
        return True

    def pids(self) -> list[int]:
        """The process ids of the worker processes in service now."""
        return sorted(host.process.pid for host in self._all if not host.retired and host.process.pid is not None)

    def _row_by_row_for(self, text: str) -> bool | None:
        """How a worker is to write the answer (see execute())."""
        if text in self._row_by_row:
            return True
        return False if text in self._small else None

    def _answer_here(self, request: QueryRequest, checked: CheckedQuery) -> QueryResponse | None:
        """The answer, made on the event loop, or None if the query ran past the
        budget (it was stopped; it is remembered)."""
        started = time.perf_counter()
        try:
            answer = execute_within(self.store, request, self.limits, self.inline_budget, self._overran, checked=checked, row_by_row=self._row_by_row_for(request.text))
            if answer is None:
                self._cheap.pop(request, None)
                log.info("a query ran past %gs in the server and went to a worker: %.200s", self.inline_budget, request.text)
            else:
                self.answered_here += 1
                known = self._cheap.get(request)
                if known is not None and answer.seconds < known[1]:  # (it was read here from the data that snapshot holds)
                    self._cheap[request] = (known[0], answer.seconds)
                    self._share_if_newly_cheap(request, known[0], answer.seconds, known)
            return answer
        finally:
            ended = time.perf_counter()
            self._load, self._load_at = self._recent_load(ended) + (ended - started), ended

    # -- updates ---------------------------------------------------------------------

    def stage_update(self, update: str, **options: Any) -> Any:
        """:func:`patrolkg.updates.stage_update` on the store as it is, in a worker
        process stopped at the timeout. Called under the writer's lock (so the snapshot
        is the store), from a thread, not the event loop.

        :raises QueryTimeout: the update ran past ``PATROLKG_QUERY_TIMEOUT``; nothing
            was written.
        """
        from .updates import stage_update

        try:
            snapshot = self.publisher.current()
        except StoreError:
            return stage_update(self.store, update, **options)  # no snapshot: stage here
        with self._stager_lock:
            worker = self._stager if self._stager is not None else self._spawn(1).workers[0]
            self._stager = None
            try:
                if not worker.ready:
                    if not worker.conn.poll(START_SECONDS):
                        raise StoreError("the update worker did not start", hint="check the server's log")
                    worker.ready = worker.conn.recv()[0] == "ready"
                worker.conn.send((str(snapshot), StagingRequest(update, options), None, False))
                if not worker.conn.poll(self.limits.timeout):
                    raise _timeout("update", self.limits.timeout, outcome="; nothing was written")
                status, payload = worker.conn.recv()
            except (EOFError, OSError):
                self._stop(worker.host)
                raise StoreError("the update worker died while staging the update; nothing was written", hint="if it repeats, the update crashes the engine") from None
            except BaseException:
                self._stop(worker.host)
                raise
            self._stager = worker
        return _answer(status, payload)

    # -- the server's side -----------------------------------------------------------

    def notify_write(self) -> None:
        """After a commit: queries from now on must read a newer snapshot."""
        self.publisher.changed()

    def problem(self) -> str | None:
        """What keeps the executor from working as designed, for ``/health``."""
        return self.publisher.problem()

    def stats(self) -> dict[str, int]:
        """Where queries were answered, for ``/health``."""
        return {"answered_in_server": self.answered_here, "answered_by_workers": self.answered_by_workers, "run_again": self.rerun, "workers_replaced": self.recycled}

    def close(self) -> None:
        self._closed = True
        for host in list(self._all):
            for worker in host.workers:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            host.process.join(1)
            if host.process.is_alive():
                host.kill()
            host.close()
        self._all.clear()
        if self._fallback is not None:
            self._fallback.close()
        self.publisher.close()
