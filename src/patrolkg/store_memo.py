"""What is computed from the whole store, kept until its next commit.

Some answers read the whole store and change only when it does: the VoID statistics,
the reconciliation index, the timeline. Each was computed again for every request, in
the server process: at a million triples 5.5 s, 16 s and 21 s. :class:`StoreMemo`
keeps each one under the store's version (:meth:`patrolkg.store.Store.version`, which
every commit changes, through whichever path), so a client asking again before the
next commit gets it at once, and requests that come together while it is computed
wait for the one computation.

>>> from patrolkg.store import OxigraphStore
>>> import pyoxigraph as ox
>>> store, memo, calls = OxigraphStore(None), StoreMemo(), []
>>> def count() -> int:
...     calls.append(1)
...     return store.triple_count()
>>> memo.get(store, "count", count), memo.get(store, "count", count), len(calls)
(0, 0, 1)
>>> _ = store.apply({}, {None: [ox.Triple(ox.NamedNode("http://e/s"), ox.NamedNode("http://e/p"), ox.Literal("o"))]})
>>> memo.get(store, "count", count), len(calls)
(1, 2)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from .store import Store

__all__ = ["StoreMemo"]

T = TypeVar("T")


class StoreMemo:
    """Values computed from a store, each kept until the store's version changes (the
    ``maxsize`` used last). A value is shared by every caller: it must not be changed."""

    def __init__(self, maxsize: int = 16) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple[Hashable, str | None], object] = OrderedDict()
        self._computing: dict[tuple[Hashable, str | None], threading.Lock] = {}

    def get(self, store: Store, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``compute()`` for ``key`` at the store's current version.

        :raises: what ``compute`` raises (and nothing is kept).
        """
        slot = (key, store.version())
        with self._lock:
            if slot in self._values:
                self._values.move_to_end(slot)
                return self._values[slot]  # type: ignore[return-value]
            gate = self._computing.setdefault(slot, threading.Lock())
        with gate:  # one computation of a slot at a time; the others wait for it
            with self._lock:
                if slot in self._values:
                    return self._values[slot]  # type: ignore[return-value]
            try:
                # (a commit while it runs only makes the slot one nobody asks for again)
                value = compute()
                with self._lock:
                    self._values[slot] = value
                    while len(self._values) > self.maxsize:
                        self._values.popitem(last=False)
            finally:
                with self._lock:
                    self._computing.pop(slot, None)
        return value
