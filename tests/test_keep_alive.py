"""Idle connections: kept open for the client's next request longer than clients keep
them (so that none sends a request on a connection the server is closing at that
moment), closed after ``PATROLKG_KEEP_ALIVE``, on the server's connections and on a
reader's alike; a request begun and not finished is still cut off after
``PATROLKG_CLIENT_TIMEOUT``."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from conftest import LiveServer
from patrolkg.settings import Settings
from test_readers import JSON, LOOKUP, _connections, _readers, _wait_for_readers

CLIENT_TIMEOUT, KEEP_ALIVE = 1.0, 6.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("keep-alive") / "store", "--readers", "1", "--client-timeout", str(CLIENT_TIMEOUT), "--keep-alive", str(KEEP_ALIVE)).start()
    _wait_for_readers(live.url)
    yield live
    live.stop()


def _ask(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/sparql?" + urlencode({"query": LOOKUP}), headers={"Accept": JSON})
    response = connection.getresponse()
    response.read()
    return response.status


def _closed_by_the_server(connection: http.client.HTTPConnection, within: float) -> bool:
    sock = connection.sock
    assert sock is not None
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_the_default_outlasts_what_httpx_keeps_an_idle_connection_for() -> None:
    assert Settings().keep_alive > httpx.Limits().keepalive_expiry  # type: ignore[operator]


def test_an_idle_connection_serves_the_next_request_after_the_client_timeout_and_closes_after_the_keep_alive(server: LiveServer) -> None:
    handed = int(_readers(server.url)["connections"])  # type: ignore[arg-type]
    connections = _connections(server, 4)  # the server keeps some, its reader gets the others
    try:
        assert [_ask(c) for c in connections] == [200] * 4
        assert int(_readers(server.url)["connections"]) >= handed + 1, "a reader had some of them"  # type: ignore[arg-type]
        time.sleep(CLIENT_TIMEOUT + 1.0)  # idle for longer than a request may stall
        assert [_ask(c) for c in connections] == [200] * 4, "each connection was still open"
        started = time.monotonic()
        assert all(_closed_by_the_server(c, within=30) for c in connections), "closed once idle for PATROLKG_KEEP_ALIVE"
        assert time.monotonic() - started >= KEEP_ALIVE - 1.0, "not before"
    finally:
        for c in connections:
            c.close()


def test_a_request_begun_on_a_kept_connection_must_still_come_whole_in_time(server: LiveServer) -> None:
    connections = _connections(server, 4)
    try:
        assert [_ask(c) for c in connections] == [200] * 4
        for c in connections:
            assert c.sock is not None
            c.sock.sendall(b"GET /sparql?query=ASK")  # and never the rest
        started = time.monotonic()
        assert all(_closed_by_the_server(c, within=30) for c in connections)
        assert time.monotonic() - started < KEEP_ALIVE, "cut off after PATROLKG_CLIENT_TIMEOUT, not left to idle"
    finally:
        for c in connections:
            c.close()


def test_a_new_connection_that_sends_nothing_is_closed_after_the_client_timeout(server: LiveServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < KEEP_ALIVE
    finally:
        sock.close()
