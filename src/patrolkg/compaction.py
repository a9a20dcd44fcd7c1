"""Compacting a store on disk once its writes pause.

Every commit leaves data that reads consult beside the store's big sorted files until
the engine merges them (:meth:`patrolkg.store.OxigraphStore.compact`): queries on a
store that took 30 submissions ran 20-25 % slower in the engine (1.3-1.5× the
Oxigraph server's time over HTTP) than on the same store compacted.
:class:`IdleCompactor` compacts the store ``idle_seconds`` after the last write
(``PATROLKG_COMPACT_AFTER``), or ten times that after the first one not yet compacted
if writes keep coming, and once ``idle_seconds`` after the server starts, for writes
made before it (by ``patrolkg load``; on a store that is already compact that costs
nothing). Then ``on_compacted`` lets the query workers move to the compacted files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import StoreError
from .store import OxigraphStore

__all__ = ["IdleCompactor", "LATEST_FACTOR"]

log = logging.getLogger("patrolkg.store")

#: While writes keep coming, a store is compacted at the latest this many times
#: ``idle_seconds`` after the first write that is not compacted yet.
LATEST_FACTOR = 10
#: Seconds at most between attempts while compaction keeps failing (a full disk).
RETRY_CAP = 3600.0
#: Seconds before a compaction that found nothing to merge right after a failed one
#: is tried once more (twice the pause at which RocksDB retries its recovery from a
#: full disk; see :meth:`IdleCompactor._compact`).
RECHECK_SECONDS = 10.0


class IdleCompactor:
    """Compacts ``store`` in a thread of its own when writes pause (see the module).

    :param idle_seconds: seconds without a write before compacting; 0 never compacts.
    :param on_compacted: called after each compaction that changed the store's files
        (the server makes its next snapshot for the query workers from them).
    :param recheck_seconds: see :data:`RECHECK_SECONDS`.
    """

    def __init__(self, store: OxigraphStore, idle_seconds: float, *, on_compacted: Callable[[], None] | None = None,
                 recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.store, self.idle_seconds, self.recheck_seconds = store, idle_seconds, recheck_seconds
        self.on_compacted = on_compacted or (lambda: None)
        #: Compactions that merged files, and failures since the last one that worked.
        self.compactions = self.failures = 0
        #: Compactions tried (whatever they found or met).
        self.attempts = 0
        #: Seconds the last compaction took.
        self.last_seconds: float | None = None
        #: Why the last compaction failed, until one succeeds.
        self.problem: str | None = None
        self._wake = threading.Condition()
        now = time.monotonic()
        # The store may hold writes made before the server started: it is due too.
        self._dirty, self._pending, self._first, self._last = True, 0, now, now
        self._closed = False
        self._running = False
        self._thread: threading.Thread | None = None
        if idle_seconds > 0 and store.path is not None:
            self._thread = threading.Thread(target=self._run, name="patrolkg-compactor", daemon=True)
            self._thread.start()

    def wrote(self) -> None:
        """Say that a write was committed: compact once writes pause."""
        with self._wake:
            now = time.monotonic()
            if not self._dirty:
                self._first = now
            self._dirty = True
            self._pending += 1
            self._last = now
            self._wake.notify()

    @property
    def pending(self) -> int:
        """Commits not compacted yet."""
        return self._pending

    def stats(self) -> dict[str, object]:
        """What ``/health`` says of compaction."""
        answer: dict[str, object] = {"compactions": self.compactions, "pending_commits": self._pending, "running": self._running}
        if self.last_seconds is not None:
            answer["last_seconds"] = round(self.last_seconds, 3)
        if self.problem is not None:
            answer["problem"] = self.problem
        return answer

    def _due(self) -> float:
        """When the pending writes are to be compacted (a ``monotonic`` time)."""
        return min(self._last + self.idle_seconds, self._first + LATEST_FACTOR * self.idle_seconds)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._dirty or self._due() > time.monotonic()):
                    self._wake.wait(None if not self._dirty else self._due() - time.monotonic())
                if self._closed:
                    return
                # (running before not dirty: /health reads them without the lock)
                self._running, pending, self._pending, self._dirty = True, self._pending, 0, False
            try:
                self._compact(pending)
            finally:
                self._running = False

    def _compact(self, pending: int) -> None:
        started = time.perf_counter()
        self.attempts += 1
        try:
            changed = self.store.compact()
        except StoreError as error:
            self.failures += 1
            self.problem = error.message
            # Tried again later and later (twice the pause, four times..., at most
            # RETRY_CAP): a disk that stays full is not told so every pause.
            delay = min(RETRY_CAP, self.idle_seconds * 2 ** min(self.failures, 20))
            log.warning("%s; tried again in %.0fs (%s)", error.message, delay + self.idle_seconds, error.hint)
            self._again(pending, delay)
            return
        except Exception:  # a bug: logged, and the server goes on uncompacted
            log.exception("compacting the store failed")
            return
        after_failure, self.problem, self.failures = self.failures > 0, None, 0
        if not changed:
            if after_failure:
                # Nothing merged right after a failure: either RocksDB merged the
                # files itself meanwhile, or its own merge met the full disk too, after
                # which it refuses merges without a word (pyoxigraph's optimize returns
                # no error) until its recovery, retried every few seconds, sees the
                # space back. Once more, later, to tell them apart.
                log.info("nothing to merge right after a failed compaction: looked at again in %.0fs", self.recheck_seconds)
                self._again(pending, max(self.recheck_seconds - self.idle_seconds, 0.0))
            return  # it was compact already
        self.last_seconds = time.perf_counter() - started
        self.compactions += 1
        log.info("compacted the store in %.2fs (%d commits)", self.last_seconds, pending)
        try:
            self.on_compacted()
        except Exception:
            log.exception("the store was compacted, but what follows a compaction failed")

    def _again(self, pending: int, delay: float) -> None:
        """Compact the ``pending`` commits again ``delay`` seconds, and a pause, from now."""
        with self._wake:
            self._first = self._last = time.monotonic() + delay
            self._dirty = True
            self._pending += pending

    def close(self, wait: float = 5.0) -> None:
        """Stop compacting; a compaction under way is waited for up to ``wait`` seconds
        (one cut short by the process's end is harmless: the engine keeps its files
        consistent and merges them next time)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(wait)
