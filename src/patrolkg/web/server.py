"""Serving the app: uvicorn with httptools and uvloop, and clients that stall cut off.

uvicorn closes an idle keep-alive connection (after ``PATROLKG_KEEP_ALIVE`` seconds),
but sets no timer on a new connection or on a request whose headers or body never
finish: a slow-loris client could hold a connection, and a file descriptor, forever.
:class:`GuardedProtocol` gives each connection ``PATROLKG_CLIENT_TIMEOUT`` seconds to
send a request's headers (from the moment it opens, or from the request's first
byte), and as long again for each pause while it sends the body; past that, the
connection is closed.

The keep-alive outlasts what clients keep an idle connection for: a server that
closes one just as its client sends the next request on it makes the client see a
reset connection. With uvicorn's 5 s, as long as httpx keeps its connections, 4 in
360 requests sent after 4.95-5.05 s idle failed so, and the three-minute soak saw it.

A plain ``GET /sparql?query=...`` that the executor answers at once (a bounded query,
or one known to be cheap) is answered on the connection itself, before uvicorn parses
it (:mod:`patrolkg.web.plain_get`); every other request, and one whose answer needs a
worker, goes to the app as it came.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import PatrolkgError
from .plain_get import HEAD_BYTES, SPARQL_TARGET, read_head, response
from .query_request import query_in_url

__all__ = ["GuardedProtocol", "guarded_protocol", "limit_malloc_arenas", "new_event_loop", "run", "MALLOC_ARENAS"]

log = logging.getLogger("patrolkg.web")


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on reading each request; a new
    connection may go to a reader process instead (:mod:`patrolkg.web.readers`), and
    one a reader hands back is served here from the bytes it had read."""

    #: Seconds a client may take for a request's headers, or pause within its body.
    client_timeout = 15.0

    _guard: asyncio.TimerHandle | None = None
    #: What a reader read from a connection it handed back (None: a new connection).
    already_read: bytes | None = None
    handed_off = False
    #: Whether uvicorn's parser is inside a request (it has begun and not completed one).
    _reading = False
    #: Whether the uvicorn in use has the parts the plain GET path relies on.
    _plain = all(hasattr(HttpToolsProtocol, name) for name in ("_unset_keepalive_if_required", "on_response_complete", "on_message_begin"))

    def sibling(self, already_read: bytes) -> GuardedProtocol:
        """A protocol of this server for a connection a reader handed back."""
        protocol = type(self)(config=self.config, server_state=self.server_state, app_state=self.app_state, _loop=self.loop)
        protocol.already_read = already_read
        return protocol

    def _arm(self) -> None:
        self._disarm()
        self._guard = self.loop.call_later(self.client_timeout, self._stalled)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _stalled(self) -> None:
        self._guard = None
        if not self.transport.is_closing():
            log.info("closed a connection from %s that sent no whole request within %gs (PATROLKG_CLIENT_TIMEOUT)", self.client and self.client[0], self.client_timeout)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        services = getattr(getattr(self.config.app, "state", None), "services", None)
        if services is not None and services.in_progress is None:
            services.in_progress = self.server_state.tasks  # a task per request in progress
        if self.already_read is None:
            readers = getattr(services, "readers", None)
            if readers is not None and readers.hand_off(self, transport):
                self.handed_off = True
                return
        super().connection_made(transport)
        self._arm()
        if self.already_read:
            self.data_received(self.already_read)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.handed_off:
            return
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._answered_plainly(data):
            super().data_received(data)

    def _answered_plainly(self, data: bytes) -> bool:
        """Answer ``data`` on the connection if it is one whole plain GET of a query
        (:mod:`patrolkg.web.plain_get`) that nothing precedes on this connection and
        that the executor answers at once; False, having sent nothing, for any other."""
        end = len(data) - 4
        if not self._plain or self._reading or end < 0 or len(data) > HEAD_BYTES or data.find(b"\r\n\r\n") != end:
            return False
        cycle, flow = getattr(self, "cycle", None), getattr(self, "flow", None)  # the request before, if any
        if (cycle is not None and not cycle.response_complete) or getattr(self, "pipeline", True) or self.root_path:
            return False
        if flow is None or flow.write_paused or self.transport.is_closing():  # the client is not reading: the app waits for it
            return False
        services = getattr(getattr(self.config.app, "state", None), "services", None)
        head = read_head(data)
        if services is None or head is None:
            return False
        try:
            request = query_in_url(head.target[len(SPARQL_TARGET):], head.accept, services.settings.base_iri)
            answer = None if request is None else services.executor.answer_now(request, alone=self._alone())
        except PatrolkgError:
            return False  # the app answers it in its error shape
        except Exception:  # noqa: BLE001 - a bug: the app meets it again, answers 500 and logs it
            return False
        if answer is None or answer.body_file is not None:
            return False
        self._unset_keepalive_if_required()
        self._disarm()
        self.transport.write(response(answer, head, max_rows=services.limits.max_rows, vary_origin="*" not in services.settings.cors_origins, server_headers=self.server_state.default_headers))
        if self.access_log:
            # uvicorn's access formatter reads these five arguments, as uvicorn passes them.
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', "%s:%d" % self.client if self.client else "", "GET", head.target.decode("latin-1"), "1.1", 200)
        if head.close:
            self.transport.close()
        self.on_response_complete()
        return True

    def _alone(self) -> bool:
        """Whether the request read now is the only one the server has: no other is in
        progress and no other connection is open (what another sent may not be read
        yet; a connection handed to a reader is not the server's)."""
        state = self.server_state
        return not state.tasks and len(state.connections) <= 1

    def on_message_begin(self) -> None:
        self._reading = True
        self._arm()  # a request begins: its head is due
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._arm()  # now for the body: each pause may last as long
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._arm()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()  # the app has the request; its answer may take what it takes
        self._reading = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # idle from now: uvicorn's keep-alive timer runs


def guarded_protocol(client_timeout: float) -> type[GuardedProtocol]:
    """:class:`GuardedProtocol` with its own timeout (uvicorn takes a class)."""
    return type("GuardedProtocol", (GuardedProtocol,), {"client_timeout": client_timeout})


#: glibc malloc arenas a serving process may use (``MALLOC_ARENA_MAX`` overrides).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process, unless ``MALLOC_ARENA_MAX`` says
    otherwise. glibc gives threads that contend for memory arenas of their own (up to
    eight per core), each keeping what it once held: over a three-minute soak the
    server's threads (requests, writes) kept about 100 MiB more with the default than
    with two arenas. True if the cap was set (a glibc system).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc: nothing to cap
        return False


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (as uvicorn chooses), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


def run(app: Any, *, host: str, port: int, client_timeout: float, keep_alive: float, log_level: str) -> None:
    """Serve ``app`` until interrupted."""
    import uvicorn

    limit_malloc_arenas()

    uvicorn.run(
        app,
        host=host,
        port=port,
        http=guarded_protocol(client_timeout),
        timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # (a float works: it goes to call_later)
        loop="auto",  # uvloop where installed
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )
