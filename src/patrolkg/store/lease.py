"""A write lease on a remote engine, so that patrolkg servers sharing it commit one at a time.

Why a lease and not only a version marker checked inside the commit: an engine may run
two SPARQL updates side by side on snapshots ("repeatable read", as Oxigraph does), and
then both ``DELETE {marker} INSERT {...} WHERE {marker = v}`` see the marker ``v`` and
both apply. A lease built from plain inserts and reads needs nothing but what every
engine gives: a read that starts after a write has committed sees it.

Taking the lease: insert my ticket, then read the live tickets. If mine is the only one,
I hold the lease; otherwise I delete mine, wait a random moment and try again. Two
writers cannot both hold it: whichever inserted last reads the other's ticket.

Each ticket carries an expiry time, renewed by the holder while it holds the lease, so
a server that dies holding it blocks the others for at most ``seconds``. Expiry times
are written with the servers' clocks, which must agree to well within ``seconds`` (NTP).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pyoxigraph as ox

from ..errors import StoreError, WriteConflict
from .sparql_client import SparqlClient

__all__ = ["EngineLease"]

_XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"


def _time(offset: float = 0.0) -> str:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset)
    return str(ox.Literal(moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), datatype=ox.NamedNode(_XSD_DATETIME)))


class EngineLease:
    """The write lease of one engine, kept as tickets in ``graph``.

    :param seconds: how long a ticket lives unless renewed (its holder renews it every
        third of that).
    :param wait: how long :meth:`hold` tries before it gives up with WriteConflict.
    """

    def __init__(self, client: SparqlClient, graph: str, *, seconds: float = 30.0, wait: float = 60.0) -> None:
        self._client = client
        self._graph = f"<{graph}>"
        self._expires = f"<{graph}#expires>"
        self._ticket_prefix = f"{graph}#lease/"
        self.seconds, self.wait = seconds, wait
        self._local = threading.RLock()  # writers of this process queue here first
        self._depth = 0
        self._lost = False

    @property
    def lost(self) -> bool:
        """Whether the lease held now could not be renewed in time (then do not commit)."""
        return self._lost

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lease for the block (reentrant in the holding thread).

        :raises WriteConflict: when other servers held it for longer than ``wait``.
        :raises patrolkg.errors.StoreUnavailable: when the engine does not answer.
        """
        with self._local:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            ticket = self._acquire()
            self._depth, self._lost = 1, False
            stop = threading.Event()
            renewer = threading.Thread(target=self._renew, args=(ticket, stop), name="patrolkg-lease", daemon=True)
            renewer.start()
            try:
                yield
            finally:
                stop.set()
                renewer.join()
                self._depth = 0
                self._release(ticket)

    def _acquire(self) -> str:
        ticket = f"<{self._ticket_prefix}{uuid.uuid4().hex}>"
        deadline = time.monotonic() + self.wait
        attempt = 0
        while True:
            now = _time()
            self._client.update(
                [
                    f"DELETE {{ GRAPH {self._graph} {{ ?l {self._expires} ?e }} }} "
                    f"WHERE {{ GRAPH {self._graph} {{ ?l {self._expires} ?e }} FILTER(?e < {now}) }} ;\n",
                    f"INSERT DATA {{ GRAPH {self._graph} {{ {ticket} {self._expires} {_time(self.seconds)} }} }}",
                ]
            )
            live = self._client.query(f"SELECT ?l WHERE {{ GRAPH {self._graph} {{ ?l {self._expires} ?e }} FILTER(?e >= {_time()}) }}")
            holders = {f"<{row['l'].value}>" for row in live}  # type: ignore[union-attr,index]
            if holders == {ticket}:
                return ticket
            self._release(ticket)
            if time.monotonic() >= deadline:
                raise WriteConflict(
                    f"another patrolkg server has held the store's write lease for more than {self.wait:g}s; nothing was written",
                    hint=f"retry; if it repeats, look for a stuck server (a lease lapses {self.seconds:g}s after its server stops)",
                )
            attempt += 1
            time.sleep(random.uniform(0.01, 0.05) * min(attempt, 10))

    def _renew(self, ticket: str, stop: threading.Event) -> None:
        while not stop.wait(self.seconds / 3):
            expires = _time(self.seconds)
            try:
                self._client.update(
                    [
                        f"DELETE {{ GRAPH {self._graph} {{ {ticket} {self._expires} ?e }} }} "
                        f"INSERT {{ GRAPH {self._graph} {{ {ticket} {self._expires} {expires} }} }} "
                        f"WHERE {{ GRAPH {self._graph} {{ {ticket} {self._expires} ?e }} }}"
                    ]
                )
                renewed = self._client.query(f"ASK {{ GRAPH {self._graph} {{ {ticket} {self._expires} {expires} }} }}")
                if not bool(renewed):
                    self._lost = True
                    return
            except StoreError:
                # The engine did not answer: the ticket may lapse before the next try.
                self._lost = True

    def _release(self, ticket: str) -> None:
        try:
            self._client.update([f"DELETE WHERE {{ GRAPH {self._graph} {{ {ticket} ?p ?o }} }}"])
        except StoreError:
            pass  # it lapses by itself
