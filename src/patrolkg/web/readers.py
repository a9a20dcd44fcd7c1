"""Reader processes: the server's other cores for its most frequent requests.

The server is one Python process. A lookup costs it about 0.33 ms of CPU, half of it in
the engine, so on two cores one process answers some 3,000 lookups a second while the
other core waits. With ``PATROLKG_READERS`` = N, the server hands every (N+1)-th new
connection to one of N reader processes, and keeps the others.

A reader answers on its connections only what it can answer alone, exactly as the
server would: ``GET /sparql`` with a bounded query (:mod:`patrolkg.bounded`), or with
one that a query worker answered within :data:`patrolkg.workers.CHEAP_SECONDS` on the
same snapshot (the server tells its readers, :meth:`Readers.share`), read from the
newest snapshot of the store (the one the query workers read) as long as no commit
came after it. Anything else (another route or method, a query that is neither,
a cross-origin request, a request the route would refuse, an answer past the inline
budget, a snapshot behind the store) it hands back: the connection and the bytes read
from it go to the server, which answers that request and keeps the connection.

Read-your-writes holds across processes: the server counts commits in memory shared
with its readers (:attr:`patrolkg.workers.SnapshotPublisher.commits`) before it
answers a write, and a reader whose snapshot holds fewer commits hands its requests
back until the server has sent it a newer snapshot.

Connections and messages travel over a ``SOCK_SEQPACKET`` socket pair per reader:
``c`` (server to reader, with a connection), ``s`` (reader: a snapshot, please;
server: ``<commits> <path>``, or nothing when none can be made), ``r`` (reader: ready),
``b`` + the bytes read (reader to server, with a connection handed back) and ``k`` +
a pickled ``(snapshot path, QueryRequest)`` (server to reader: a cheap query there).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import time
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PatrolkgError, StoreError
from ..execution import Limits, QueryRequest, inspect_query
from ..memo import SHORT_TEXT_CHARS
from ..workers import EntryCounts, execute_within, remember, start_child
from .plain_get import HEAD_BYTES, SPARQL_TARGET, Head, read_head, response
from .query_request import query_in_url

if TYPE_CHECKING:
    from ..store.oxigraph import OxigraphStore
    from ..workers import SnapshotPublisher
    from .server import GuardedProtocol

__all__ = ["Readers", "ReaderSettings"]

log = logging.getLogger("patrolkg.web.readers")

#: Largest message on a reader's socket pair: a request's head (at most HEAD_BYTES,
#: plus what came with it) handed back.
MESSAGE_BYTES = 1 << 20
#: After a commit, a reader's requests wait this long at most for a newer snapshot
#: (the server makes one for its query workers too); past it, they go back to the server.
WAIT_SECONDS = 1.0
#: After the server could send no snapshot, a reader hands requests back this long
#: before it asks again.
RETRY_SECONDS = 1.0
#: A reader that died is started again, but not sooner than this after the last start.
RESPAWN_SECONDS = 5.0


@dataclass(frozen=True)
class ReaderSettings:
    """What a reader needs to answer as the server does."""

    limits: Limits
    base_iri: str | None
    vary_origin: bool  # CORS restricted to some origins: answers vary by Origin
    inline_budget: float
    client_timeout: float
    keep_alive: float  # seconds an idle connection stays open, as the server's
    log_level: int
    access_log: bool


def _receive(channel: socket.socket) -> tuple[bytes, list[int]] | None:
    """The next message on a socket pair and the descriptors it carries: None if none
    has come yet, an empty message once the other end has closed."""
    try:
        data, fds, _flags, _address = socket.recv_fds(channel, MESSAGE_BYTES, 1)
    except BlockingIOError:
        return None
    except OSError:
        return b"", []
    return data, fds


# --- the server's side ----------------------------------------------------------------


@dataclass(eq=False)
class _Handle:
    process: multiprocessing.process.BaseProcess
    channel: socket.socket
    ready: bool = False


class Readers:
    """Starts ``count`` reader processes at the first connection and hands them their
    share of connections (:meth:`hand_off`), snapshots when they ask, and serves what
    they hand back with the server's own protocol."""

    def __init__(self, publisher: SnapshotPublisher, settings: ReaderSettings, count: int) -> None:
        self.publisher, self.settings, self.count = publisher, settings, count
        self._context = multiprocessing.get_context("spawn")
        self._handles: list[_Handle] = []
        self._turn = 0
        self._started = False
        self._closed = False
        self._last_spawn = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._template: GuardedProtocol | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        #: The cheap queries shared so far (newest last), and the snapshot of each.
        self._shared: dict[QueryRequest, str] = {}
        self.handed_off = 0  # connections given to readers
        self.handed_back = 0  # ... and given back

    def stats(self) -> dict[str, object]:
        """For ``/health``: the readers ready (and their process ids), and the
        connections handed to them and back."""
        running = [handle.process.pid for handle in self._handles if handle.ready]
        return {"running": len(running), "pids": running, "connections": self.handed_off, "handed_back": self.handed_back}

    # -- processes -----------------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        self._loop = asyncio.get_running_loop()
        for _ in range(self.count):
            self._spawn()

    def _spawn(self) -> None:
        assert self._loop is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MESSAGE_BYTES)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MESSAGE_BYTES)
        process = self._context.Process(target=_reader_main, args=(theirs, self.publisher.commits, self.settings), daemon=True, name="patrolkg-reader")
        start_child(process)
        theirs.close()
        ours.setblocking(False)
        handle = _Handle(process, ours)
        self._handles.append(handle)
        self._loop.add_reader(ours.fileno(), self._on_message, handle)
        self._last_spawn = time.monotonic()

    def _lost(self, handle: _Handle) -> None:
        if handle not in self._handles:
            return
        self._handles.remove(handle)
        self._drop(handle)
        if self._closed:
            return
        code = handle.process.exitcode
        how = f"was stopped by {signal.Signals(-code).name}" if code is not None and code < 0 else f"ended (exit code {code})"
        log.error("a reader process %s; its connections were closed; another starts", how)
        assert self._loop is not None
        wait = self._last_spawn + RESPAWN_SECONDS - time.monotonic()
        self._loop.call_later(max(wait, 0.0), self._respawn)

    def _respawn(self) -> None:
        if not self._closed and len(self._handles) < self.count:
            self._spawn()

    def _drop(self, handle: _Handle) -> None:
        if self._loop is not None:
            self._loop.remove_reader(handle.channel.fileno())
        handle.channel.close()
        handle.process.join(0.5)
        if handle.process.is_alive():
            handle.process.kill()
            handle.process.join(5)

    def close(self) -> None:
        self._closed = True
        for handle in self._handles:
            self._drop(handle)  # a reader ends when its socket pair closes
        self._handles.clear()

    # -- connections ---------------------------------------------------------------

    def hand_off(self, protocol: GuardedProtocol, transport: asyncio.Transport) -> bool:
        """Give the new connection on ``transport`` to a reader if it is a reader's
        turn (True: ``transport`` is closed, the reader has the connection); False: the
        server keeps it."""
        if self._closed:
            return False
        if not self._started:
            self._start()  # the readers start now, and get connections once ready
        self._template = self._template or protocol
        self._turn = (self._turn + 1) % (len(self._handles) + 1)
        if self._turn == 0:
            return False
        handle = self._handles[self._turn - 1]
        sock = transport.get_extra_info("socket")
        if not handle.ready or sock is None:
            return False
        try:
            socket.send_fds(handle.channel, [b"c"], [sock.fileno()])
        except BlockingIOError:
            return False  # the reader is behind: keep this one
        except OSError:
            self._lost(handle)
            return False
        transport.close()  # only this process's descriptor: the reader has its own
        self.handed_off += 1
        return True

    def _on_message(self, handle: _Handle) -> None:
        received = _receive(handle.channel)
        if received is None:
            return
        data, fds = received
        if not data:
            for fd in fds:
                os.close(fd)
            self._lost(handle)
            return
        kind, body = data[:1], data[1:]
        if kind == b"b" and fds:
            self.handed_back += 1
            self._serve_here(fds[0], body)
        elif kind == b"s":
            self._keep(asyncio.ensure_future(self._send_snapshot(handle)))
        elif kind == b"r":
            handle.ready = True
            for request, snapshot in list(self._shared.items()):  # what it missed while it started
                self._tell(handle, request, snapshot)
        else:
            for fd in fds:
                os.close(fd)

    def share(self, request: QueryRequest, snapshot: Path) -> None:
        """Tell the readers that a query worker answered ``request`` cheaply from
        ``snapshot`` (:attr:`patrolkg.workers.ProcessExecutor.on_cheap`): a reader
        that reads that snapshot answers it from then on rather than hand it back.
        A reader that starts later is told too. Best effort: a reader that misses it
        hands the request back, as before."""
        if len(request.text) > SHORT_TEXT_CHARS:
            return
        remember(self._shared, request, str(snapshot))
        for handle in self._handles:
            if handle.ready:
                self._tell(handle, request, str(snapshot))

    def _tell(self, handle: _Handle, request: QueryRequest, snapshot: str) -> None:
        try:
            handle.channel.send(b"k" + pickle.dumps((snapshot, request)))
        except OSError:
            pass  # behind, or gone (_on_message finds out)

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_snapshot(self, handle: _Handle) -> None:
        assert self._loop is not None
        try:
            path, commits = await self._loop.run_in_executor(None, self.publisher.current_with_commits)
            message = b"s" + f"{commits} {path}".encode()
        except StoreError:
            message = b"s"  # none can be made now: the reader hands requests back
        try:
            handle.channel.send(message)
        except OSError:
            pass  # the reader is gone: _on_message finds out

    def _serve_here(self, fd: int, already_read: bytes) -> None:
        """Serve a connection a reader handed back, starting with the bytes it read."""
        template = self._template
        sock = socket.socket(fileno=fd)
        if template is None or self._loop is None:
            sock.close()
            return
        sock.setblocking(False)

        async def serve() -> None:
            try:
                await self._loop.connect_accepted_socket(lambda: template.sibling(already_read), sock)  # type: ignore[union-attr]
            except OSError as error:
                log.info("a connection handed back by a reader was gone: %s", error)
                sock.close()

        self._keep(asyncio.ensure_future(serve()))


# --- the reader's side ----------------------------------------------------------------


class _Reader:
    """What a reader process knows: the snapshot it reads and how to answer from it."""

    def __init__(self, channel: socket.socket, commits: Any, settings: ReaderSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.channel, self.commits, self.settings, self.loop = channel, commits, settings, loop
        self.store: OxigraphStore | None = None
        self.path = ""  # the snapshot's
        self.holds = -1  # commits the snapshot holds
        self.counts: EntryCounts | None = None  # the walks into named terms counted in it
        self.asked_at: float | None = None  # when a snapshot was asked for, until it comes
        self.failed_at = -RETRY_SECONDS  # when the server last sent none
        self.waiting: set[_ReaderProtocol] = set()  # connections waiting for a snapshot
        self.ready = False
        self.done: asyncio.Future[None] = loop.create_future()
        self.overran: dict[str, None] = {}
        #: Queries a worker answered cheaply, and the snapshot it read (Readers.share).
        self.cheap: dict[QueryRequest, str] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        self._date: tuple[int, list[tuple[bytes, bytes]]] = (0, [])
        self._access = logging.getLogger("uvicorn.access") if settings.access_log else None

    # -- the socket pair -------------------------------------------------------------

    def on_message(self) -> None:
        received = _receive(self.channel)
        if received is None:
            return
        data, fds = received
        if not data:  # the server closed: stop
            if not self.done.done():
                self.done.set_result(None)
            return
        if data[:1] == b"c" and fds:
            task = asyncio.ensure_future(self._serve(socket.socket(fileno=fds[0])))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif data[:1] == b"s":
            self._open(data[1:].decode())
        elif data[:1] == b"k":
            try:
                snapshot, request = pickle.loads(data[1:])  # (from the server that started this process)
            except Exception:  # noqa: BLE001 - a message this reader cannot read is one it does without
                return
            if isinstance(request, QueryRequest):
                remember(self.cheap, request, snapshot)

    async def _serve(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            await self.loop.connect_accepted_socket(lambda: _ReaderProtocol(self), sock)
        except OSError as error:
            log.info("a connection handed to a reader was gone: %s", error)
            sock.close()

    def fresh(self) -> bool | None:
        """True if the snapshot holds every commit; False if a newer one is on its way
        (wait for it); None if requests must go back to the server meanwhile."""
        if self.store is not None and self.holds == self.commits.value:
            return True
        now = time.monotonic()
        if self.asked_at is None:
            if now - self.failed_at < RETRY_SECONDS:
                return None
            self.ask_for_snapshot()
        assert self.asked_at is not None
        return False if now - self.asked_at < WAIT_SECONDS else None

    def ask_for_snapshot(self) -> None:
        if self.asked_at is None:
            self.asked_at = time.monotonic()
            self._send(b"s")
            self.loop.call_later(WAIT_SECONDS, self._wake)  # if the answer is late

    def _wake(self) -> None:
        waiting, self.waiting = self.waiting, set()
        for protocol in waiting:
            protocol.resume()

    def _open(self, reply: str) -> None:
        from ..store.oxigraph import OxigraphStore

        self.asked_at = None
        try:
            if not reply:
                self.failed_at = time.monotonic()
                return
            commits, path = reply.split(" ", 1)
            if self.store is not None:
                self.store.close()
                self.store = None
            try:
                self.store = OxigraphStore.read_only(path)
            except (StoreError, OSError) as error:
                log.error("a reader cannot open the snapshot %s: %s", path, error)
                self.failed_at = time.monotonic()
                return
            self.holds, self.path = int(commits), path
            self.counts = EntryCounts(self.store)
            if not self.ready:
                self.ready = True
                self._send(b"r")
        finally:
            self._wake()

    def _send(self, message: bytes, fds: tuple[int, ...] = ()) -> bool:
        try:
            if fds:
                socket.send_fds(self.channel, [message], list(fds))
            else:
                self.channel.send(message)
            return True
        except OSError:
            return False

    def hand_back(self, transport: asyncio.BaseTransport, already_read: bytes) -> None:
        """Give the connection and what was read from it to the server."""
        sock = transport.get_extra_info("socket")
        if sock is None or not self._send(b"b" + already_read, (sock.fileno(),)):
            log.error("a reader could not hand a connection back to the server; it was closed")
        transport.close()

    # -- answers ---------------------------------------------------------------------

    def answer(self, head: Head) -> bytes | None:
        """The whole HTTP response to ``head`` (call when :meth:`fresh`), or None: the
        server must answer it."""
        settings = self.settings
        try:
            request = query_in_url(head.target[len(SPARQL_TARGET):], head.accept, settings.base_iri)
            assert self.store is not None and self.counts is not None  # fresh() said so
            if request is None or request.text in self.overran:
                return None
            if self.cheap.get(request) != self.path and not self.counts.bounded(inspect_query(request.text, settings.limits)):
                return None
            result = execute_within(self.store, request, settings.limits, settings.inline_budget, self.overran)
        except PatrolkgError:
            return None  # the server answers it in its error shape
        except Exception:  # a bug: the server answers (and logs what it finds)
            log.exception("a reader failed on a request it handed back: %s", head.target[:300])
            return None
        if result is None or result.body_file is not None:
            return None
        return response(result, head, max_rows=settings.limits.max_rows, vary_origin=settings.vary_origin, server_headers=self._server_headers())

    def _server_headers(self) -> list[tuple[bytes, bytes]]:
        """Date and Server, as uvicorn sends them."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, [(b"date", formatdate(now, usegmt=True).encode()), (b"server", b"uvicorn")])
        return self._date[1]

    def logged(self, peer: Any, target: bytes) -> None:
        if self._access is not None and self._access.isEnabledFor(logging.INFO):
            client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
            self._access.info('%s - "GET %s HTTP/1.1" 200 OK', client, target.decode("latin-1"))


class _ReaderProtocol(asyncio.Protocol):
    """One connection in a reader: answers what the reader can, hands back the rest."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False  # the client does not read its answers: neither do we
        self.handing_back = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm(self.reader.settings.client_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.transport = None
        self.reader.waiting.discard(self)

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self.resume()

    def resume(self) -> None:
        """Go on with the requests read (after a pause, or a wait for a snapshot)."""
        if self.transport is not None and not self.handing_back and not self.paused:
            self.transport.resume_reading()
            self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        if data and not self.buffer:
            self._arm(self.reader.settings.client_timeout)  # a request begins: its head is due
        self.buffer += data
        while self.buffer and self.transport is not None and not self.paused and not self.handing_back:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > HEAD_BYTES:
                    self._hand_back()
                return
            head = read_head(self.buffer[: end + 4])
            fresh = self.reader.fresh() if head is not None else None
            if fresh is False:  # a commit came: wait for the snapshot that holds it
                self.transport.pause_reading()
                self.reader.waiting.add(self)
                return
            response = self.reader.answer(head) if head is not None and fresh else None
            if head is None or response is None:
                self._hand_back()
                return
            self.buffer = self.buffer[end + 4 :]
            self.transport.write(response)
            self.reader.logged(self.transport.get_extra_info("peername"), head.target)
            if head.close:
                self.transport.close()
                return
        if not self.buffer:
            self._arm(self.reader.settings.keep_alive)  # idle: the next request may come

    def _hand_back(self) -> None:
        if self.transport is None:
            return
        self.handing_back = True
        if self.transport.get_write_buffer_size():
            # Answers to earlier requests are still on their way: the server's must
            # come after them (a client that never reads them is cut off by the timer).
            self.transport.pause_reading()
            self.reader.loop.call_later(0.005, self._hand_back)
            return
        self._disarm()
        transport, self.transport = self.transport, None
        self.reader.hand_back(transport, self.buffer)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.timer = self.reader.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if self.transport is not None:
            self.transport.close()  # idle, or too slow to send a request's head


def _reader_main(channel: socket.socket, commits: Any, settings: ReaderSettings) -> None:
    """A reader process: serves the connections the server hands it until the server
    closes its socket pair."""
    from .server import limit_malloc_arenas, new_event_loop

    logging.basicConfig(level=settings.log_level, format="%(levelname)s:     %(message)s")
    limit_malloc_arenas()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    channel.setblocking(False)
    reader = _Reader(channel, commits, settings, loop)
    loop.add_reader(channel.fileno(), reader.on_message)
    reader.fresh()  # asks for the first snapshot
    try:
        loop.run_until_complete(reader.done)
    finally:
        if reader.store is not None:
            reader.store.close()
