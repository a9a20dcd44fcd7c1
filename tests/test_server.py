"""How ``patrolkg serve`` runs its process: the malloc arena cap, and plain GETs of
queries answered on their connection before uvicorn reads them."""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
import uvicorn
from uvicorn.logging import AccessFormatter
from uvicorn.server import ServerState

from patrolkg.settings import Settings
from patrolkg.store import OxigraphStore
from patrolkg.web.app import create_app
from patrolkg.web.server import MALLOC_ARENAS, GuardedProtocol, guarded_protocol, limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"

# In a child process: the cap, then as many threads as a busy server has, each
# allocating; prints how many arenas glibc made (malloc_info lists one <heap> each).
_ARENAS_SCRIPT = """
import ctypes, ctypes.util, os, sys, threading
from patrolkg.web.server import limit_malloc_arenas
if sys.argv[1] == "capped":
    limit_malloc_arenas()
barrier = threading.Barrier(16)
def work():
    barrier.wait()
    for _ in range(2000):
        bytearray(4096)
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.open_memstream.restype = ctypes.c_void_p
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(buffer.value.decode().count("<heap nr="))
"""


def _arenas(mode: str, env: dict[str, str] | None = None) -> int:
    result = subprocess.run([sys.executable, "-c", _ARENAS_SCRIPT, mode], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_the_cap_keeps_threads_to_two_malloc_arenas() -> None:
    assert _arenas("capped") <= MALLOC_ARENAS < _arenas("default")


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_malloc_arena_max_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


LOOKUP = "SELECT ?p ?o WHERE { <https://w3id.org/patrolkg/id/state/japan> ?p ?o }"
SCAN = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1"  # not bounded: a worker's, until it is known to be cheap


def _get(query: str, *headers: str) -> bytes:
    lines = [f"GET /sparql?{urlencode({'query': query})} HTTP/1.1", "Host: test", "Accept: application/sparql-results+json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, dict[str, str], bytes]:
    writer.write(request)
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode("latin-1").split("\r\n")
    headers = dict((name.lower(), value.strip()) for name, _, value in (line.partition(":") for line in head[1:] if line))
    return int(head[0].split()[1]), headers, await reader.readexactly(int(headers["content-length"]))


def _protocols(app: object) -> tuple[Callable[[], GuardedProtocol], list[GuardedProtocol]]:
    """A factory of the server's connections to ``app`` (one uvicorn server state), and
    the connections it made."""
    config = uvicorn.Config(app, http=guarded_protocol(5.0), log_level="warning", loop="asyncio")
    config.load()
    state = ServerState()
    connections: list[GuardedProtocol] = []

    def protocol() -> GuardedProtocol:
        made = config.http_protocol_class(config=config, server_state=state, app_state={})
        connections.append(made)  # type: ignore[arg-type]
        return made  # type: ignore[return-value]

    return protocol, connections


def test_a_plain_get_is_answered_on_its_connection_as_the_app_would_answer_it(tmp_path: Path) -> None:
    """A plain GET that the executor answers at once never reaches uvicorn's request
    cycle (none is made on the connection); the same request with a header that keeps
    it off that path gets the app's answer, equal but for the date; errors, and queries
    that need a worker, go to the app on the same connection."""
    store = OxigraphStore(tmp_path / "store")
    app = create_app(Settings.from_env({}, readers="0"), store=store, seed=True)
    protocol, connections = _protocols(app)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
            status, headers, body = await _exchange(reader, writer, _get(LOOKUP))
            lookup_body = body
            (connection,) = connections
            assert status == 200 and connection.cycle is None, "answered before uvicorn read a request"
            assert ["https://w3id.org/patrolkg/ontology#memberOf", "https://w3id.org/patrolkg/id/org/quad"] in [
                [row["p"]["value"], row["o"]["value"]] for row in json.loads(body)["results"]["bindings"]
            ]
            app_status, app_headers, app_body = await _exchange(reader, writer, _get(LOOKUP, "Content-Length: 0"))
            cycle = connection.cycle
            assert cycle is not None, "a GET with a body goes to the app"
            assert (app_status, app_body) == (status, body)
            assert {k: v for k, v in app_headers.items() if k != "date"} == {k: v for k, v in headers.items() if k != "date"}
            assert (await _exchange(reader, writer, _get(LOOKUP)))[2] == body and connection.cycle is cycle, "and the next plain GET does not"

            status, headers, body = await _exchange(reader, writer, _get("SELECT ?s WHERE { ?s "))
            assert status == 400 and json.loads(body)["error"]["code"] == "query_syntax_error"
            assert connection.cycle is not cycle, "an error is the app's"
            cycle = connection.cycle
            status, headers, body = await _exchange(reader, writer, _get(SCAN))
            assert status == 200 and connection.cycle is not cycle, "a query that needs a worker is the app's"
            cycle = connection.cycle
            again = await _exchange(reader, writer, _get(SCAN))
            assert again[2] == body and connection.cycle is cycle, "then known to take under 2 ms: answered on the connection"

            cycle = connection.cycle
            writer.write(_get(LOOKUP) + _get(SCAN))  # pipelined: both come in one read
            first, second = await _exchange(reader, writer, b""), await _exchange(reader, writer, b"")
            assert (first[2], second[2]) == (lookup_body, again[2]) and connection.cycle is not cycle, "the app's, in order"

            status, headers, _ = await _exchange(reader, writer, _get(LOOKUP, "Connection: close"))
            assert (status, headers.get("connection")) == (200, "close")
            assert await asyncio.wait_for(reader.read(), 10) == b"", "and closed"
            writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


#: About 30 ms on the bundle: over the 2 ms below which a query is answered in the server
#: whoever else is connected, within half the inline budget the test sets.
CROSS = "SELECT (COUNT(*) AS ?n) WHERE { ?a a ?b . ?c a ?d }"


def test_a_query_cheap_only_for_a_lone_client_is_answered_on_its_connection_only_while_it_is_the_one(tmp_path: Path) -> None:
    """A query a worker answered within half the inline budget, but over 2 ms, is
    answered in the server while nothing else waits for it: on the connection when it
    is the server's only one; through the app (which counts the requests in progress)
    once another connection is open, since what that one sent may not be read yet."""
    store = OxigraphStore(tmp_path / "store")
    app = create_app(Settings.from_env({}, readers="0", inline_budget="2"), store=store, seed=True)
    protocol, connections = _protocols(app)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            first = await _exchange(reader, writer, _get(CROSS))
            (connection,) = connections
            cycle = connection.cycle
            assert first[0] == 200 and cycle is not None, "unknown: the app's, and a worker's"
            services = app.state.services
            workers = services.executor.answered_by_workers
            assert (await _exchange(reader, writer, _get(CROSS)))[2] == first[2] and connection.cycle is cycle, "alone: on the connection"
            other_reader, other_writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.05)  # the server has taken the other connection
            assert len(connections) == 2
            assert (await _exchange(reader, writer, _get(CROSS)))[2] == first[2] and connection.cycle is not cycle, "not alone: the app's"
            assert services.executor.answered_by_workers == workers, "which answered it in the server, the only request in progress"
            other_writer.close()
            writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


class _Lines(logging.Handler):
    """Formats each record as uvicorn's access log does; what fails to format is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
        self.lines: list[str] = []
        self.failures: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as error:  # noqa: BLE001 - what logging would print to stderr
            self.failures.append(error)


def test_a_plain_get_is_logged_as_uvicorn_logs_a_request_to_the_app(tmp_path: Path) -> None:
    """With the access log on (``patrolkg serve``'s default), a plain GET answered on its
    connection is one line in uvicorn's own format, as the same request answered by
    the app is: not a logging error with a traceback for every request."""
    store = OxigraphStore(tmp_path / "store")
    app = create_app(Settings.from_env({}, readers="0"), store=store, seed=True)
    config = uvicorn.Config(app, http=guarded_protocol(5.0), log_level="info", loop="asyncio")
    config.load()
    lines = _Lines()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(lines)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            server = await asyncio.get_running_loop().create_server(lambda: config.http_protocol_class(config=config, server_state=ServerState(), app_state={}), "127.0.0.1", 0)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
            assert (await _exchange(reader, writer, _get(LOOKUP)))[0] == 200
            assert (await _exchange(reader, writer, _get(LOOKUP, "Content-Length: 0")))[0] == 200  # the app's
            writer.close()
            server.close()
            await server.wait_closed()

    try:
        asyncio.run(scenario())
    finally:
        access.removeHandler(lines)
    assert lines.failures == []
    target = f"/sparql?{urlencode({'query': LOOKUP})}"
    plain, by_app = lines.lines
    assert plain.endswith(f' - "GET {target} HTTP/1.1" 200 OK') and plain.startswith("127.0.0.1:")
    assert by_app.partition(" - ")[2] == plain.partition(" - ")[2]
