"""Reader processes (``PATROLKG_READERS``): a connection the server hands to a reader is
answered as the server would answer it, requests a reader does not take go back to the
server with the connection, and no reader answers from a state older than a write the
server has acknowledged."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from conftest import LiveServer, statement_turtle
from patrolkg.execution import Limits, inspect_query
from patrolkg.web.plain_get import read_head

SECRET = "d4" * 16
TOKEN = {"PATROLKG_WRITE_TOKEN": "erin:" + SECRET}
JAPAN = "https://w3id.org/patrolkg/id/state/japan"
LOOKUP = f"SELECT ?p ?o WHERE {{ <{JAPAN}> ?p ?o }}"  # bounded: a reader answers it
#: A walk into a term with few subjects: bounded on this store, so a reader answers it.
MEMBERS = "SELECT ?member ?label WHERE { ?member <https://w3id.org/patrolkg/ontology#memberOf> <https://w3id.org/patrolkg/id/org/quad> ; <http://www.w3.org/2000/01/rdf-schema#label> ?label }"
#: Not bounded (a scan of every owl:sameAs link), but quick on this store.
CHEAP = 'SELECT ?entity ?item WHERE { ?entity <http://www.w3.org/2002/07/owl#sameAs> ?item FILTER (STRSTARTS(STR(?item), "http://www.wikidata.org/entity/")) }'
JSON = "application/sparql-results+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("readers") / "store", "--readers", "1", "--client-timeout", "2", env=TOKEN).start()
    _wait_for_readers(live.url)
    yield live
    live.stop()


_CLIENTS: dict[str, httpx.Client] = {}


def _client(url: str) -> httpx.Client:
    """One client per server, on one connection (which, if the server gave it to a
    reader, came back with the first request and stays with the server)."""
    return _CLIENTS.setdefault(url, httpx.Client(base_url=url, timeout=30))


def _health(url: str) -> dict[str, object]:
    return _client(url).get("/health").json()  # type: ignore[no-any-return]


def _readers(url: str) -> dict[str, int | list[int]]:
    return _health(url)["readers"]  # type: ignore[return-value]


def _wait_for_readers(url: str, *, other_than: int | None = None) -> list[int]:
    """The reader pids once one is ready (and is not ``other_than``); the first
    connections start the readers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = _readers(url)["pids"]
        assert isinstance(pids, list)
        if pids and other_than not in pids:
            return pids
        time.sleep(0.2)
    raise AssertionError("no reader became ready")


def _connections(server: LiveServer, count: int) -> list[http.client.HTTPConnection]:
    """``count`` new connections, each opened now (so the server's turns go round)."""
    opened = []
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.connect()
        opened.append(connection)
    return opened


def _get(connection: http.client.HTTPConnection, query: str, accept: str = JSON) -> http.client.HTTPResponse:
    connection.request("GET", "/sparql?" + urlencode({"query": query}), headers={"Accept": accept})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    return response


def _rows(body: bytes) -> list[tuple[str, ...]]:
    answer = json.loads(body)
    names = answer["head"]["vars"]
    return sorted(tuple(row.get(name, {}).get("value", "") for name in names) for row in answer["results"]["bindings"])


def _reference(server: LiveServer, query: str) -> list[tuple[str, ...]]:
    """The server's own answer (a POST is never a reader's)."""
    response = httpx.post(server.url + "/sparql", data={"query": query}, headers={"Accept": JSON}, timeout=30)
    assert response.status_code == 200, response.text
    return _rows(response.content)


def test_a_reader_answers_lookups_as_the_server_and_hands_the_rest_back(server: LiveServer) -> None:
    expected = _reference(server, LOOKUP)
    assert ("https://w3id.org/patrolkg/ontology#memberOf", "https://w3id.org/patrolkg/id/org/quad") in expected
    members = _reference(server, MEMBERS)
    assert (JAPAN, "Japan") in members
    before = _readers(server.url)
    connections = _connections(server, 6)
    for connection in connections:
        response = _get(connection, LOOKUP)
        assert response.status == 200
        assert (response.getheader("Content-Type"), response.getheader("Vary")) == (JSON, "Accept")
        assert _rows(response.body) == expected  # type: ignore[attr-defined]
        assert _rows(_get(connection, MEMBERS).body) == members  # type: ignore[attr-defined]
    middle = _readers(server.url)
    taken = int(middle["connections"]) - int(before["connections"])  # type: ignore[arg-type]
    assert taken >= 2, "every other new connection goes to the reader"
    assert middle["handed_back"] == before["handed_back"], "the reader answered its lookups and walks itself"
    for connection in connections:
        # A request a reader does not take (another route, a query that is not bounded,
        # an error) goes back to the server, and the connection with it.
        assert json.loads(_get(connection, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }").body)["results"]["bindings"]  # type: ignore[attr-defined]
        broken = _get(connection, "SELECT ?s WHERE { ?s ")
        assert broken.status == 400 and json.loads(broken.body)["error"]["code"] == "query_syntax_error"  # type: ignore[attr-defined]
        assert _rows(_get(connection, LOOKUP).body) == expected  # type: ignore[attr-defined]
        connection.close()
    after = _readers(server.url)
    assert int(after["handed_back"]) - int(middle["handed_back"]) == taken, "each came back once, and stayed"  # type: ignore[arg-type]


def test_no_reader_answers_from_before_an_acknowledged_write(server: LiveServer) -> None:
    kept = _connections(server, 4)  # some of them a reader's
    for n in range(6):
        subject = f"https://w3id.org/patrolkg/id/statement/readers-{n}"
        body = statement_turtle(subject, f"Statement {n}", "Written to test the readers.", "test_readers")
        written = httpx.post(server.url + "/submissions", content=body, headers={"Content-Type": "text/turtle", "Authorization": "Bearer " + SECRET}, timeout=60)
        assert written.status_code == 201, written.text
        lookup = f"SELECT ?p ?o WHERE {{ <{subject}> ?p ?o }}"
        for connection in [*kept, *_connections(server, 2)]:
            response = _get(connection, lookup)
            assert response.status == 200
            assert ("https://w3id.org/patrolkg/ontology#summary", "Written to test the readers.") in _rows(response.body)  # type: ignore[attr-defined]


def test_after_a_commit_a_readers_connections_wait_for_the_new_snapshot_and_stay(server: LiveServer) -> None:
    connections = _connections(server, 4)
    for connection in connections:
        assert _get(connection, LOOKUP).status == 200
    before = _readers(server.url)
    # An update through the server: a commit the readers' snapshot does not hold.
    update = "INSERT DATA { GRAPH <http://example.org/test-readers> { <https://w3id.org/patrolkg/id/state/japan> <http://www.w3.org/2000/01/rdf-schema#comment> \"seen by readers\"@en } }"
    # (Sent on the connection /health was read on, which stays with the server: a new
    # one could go to a reader, which would hand it back.)
    written = _client(server.url).post("/update", data={"update": update}, headers={"Authorization": "Bearer " + SECRET})
    assert written.status_code in (200, 204), written.text
    for connection in connections:
        rows = _rows(_get(connection, LOOKUP).body)  # type: ignore[attr-defined]
        assert ("http://www.w3.org/2000/01/rdf-schema#comment", "seen by readers") in rows
    after = _readers(server.url)
    assert after["handed_back"] == before["handed_back"], "the readers waited for a snapshot rather than hand their connections back"


def test_a_reader_answers_a_query_the_workers_found_cheap_and_sees_later_writes(server: LiveServer) -> None:
    assert not inspect_query(CHEAP, Limits()).bounded  # (a reader answers a bounded one anyway)
    expected = _reference(server, CHEAP)
    assert expected
    own = _client(server.url)
    for _ in range(3):  # by a worker, then in the server: quick on the data as it is
        assert _rows(own.get("/sparql", params={"query": CHEAP}, headers={"Accept": JSON}).content) == expected
    before = _readers(server.url)
    connections = _connections(server, 6)
    for connection in connections:
        assert _rows(_get(connection, CHEAP).body) == expected  # type: ignore[attr-defined]
    middle = _readers(server.url)
    assert int(middle["connections"]) - int(before["connections"]) >= 2  # type: ignore[arg-type]
    assert middle["handed_back"] == before["handed_back"], "the reader answered it itself"
    # After a commit, the readers answer from a snapshot that holds it.
    link = "http://www.wikidata.org/entity/Q999999999"
    update = f"INSERT DATA {{ GRAPH <http://example.org/test-readers> {{ <{JAPAN}> <http://www.w3.org/2002/07/owl#sameAs> <{link}> }} }}"
    written = own.post("/update", data={"update": update}, headers={"Authorization": "Bearer " + SECRET})
    assert written.status_code in (200, 204), written.text
    for connection in connections:
        assert _rows(_get(connection, CHEAP).body) == sorted([*expected, (JAPAN, link)])  # type: ignore[attr-defined]
        connection.close()


def _exchange(server: LiveServer, requests: bytes, answers: int) -> list[tuple[int, bytes]]:
    """Send ``requests`` at once on a new connection; read ``answers`` responses."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(requests)
        stream = sock.makefile("rb")
        read = []
        for _ in range(answers):
            status = int(stream.readline().split()[1])
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            read.append((status, stream.read(length)))
        return read


def test_pipelined_requests_are_answered_in_order_whoever_answers_them(server: LiveServer) -> None:
    lookup = f"GET /sparql?{urlencode({'query': LOOKUP})} HTTP/1.1\r\nHost: test\r\nAccept: {JSON}\r\n\r\n".encode()
    form = urlencode({"query": "ASK { ?s ?p ?o }"}).encode()
    post = b"POST /sparql HTTP/1.1\r\nHost: test\r\nAccept: " + JSON.encode() + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(form) + form
    expected = _reference(server, LOOKUP)
    for _ in range(4):  # new connections: the reader gets some
        answers = _exchange(server, lookup + lookup + post + lookup, 4)
        assert [status for status, _ in answers] == [200] * 4
        assert _rows(answers[0][1]) == _rows(answers[1][1]) == _rows(answers[3][1]) == expected
        assert json.loads(answers[2][1]) == {"head": {}, "boolean": True}


def test_a_client_that_sends_no_whole_request_is_cut_off_by_readers_too(server: LiveServer) -> None:
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
    for sock in socks:
        sock.sendall(b"GET /sparql?query=ASK")  # and never the rest
    for sock in socks:
        assert sock.recv(100) == b"", "closed after PATROLKG_CLIENT_TIMEOUT (2 s here)"
        sock.close()


def test_when_a_reader_dies_the_server_serves_every_connection_and_starts_another(server: LiveServer) -> None:
    expected = _reference(server, LOOKUP)
    (pid,) = _wait_for_readers(server.url)
    os.kill(pid, signal.SIGKILL)  # the connections it holds are lost, as with any process
    deadline = time.monotonic() + 30
    while pid in _readers(server.url)["pids"]:  # type: ignore[operator]
        assert time.monotonic() < deadline, "the server did not notice"
        time.sleep(0.05)
    for connection in _connections(server, 6):
        assert _rows(_get(connection, LOOKUP).body) == expected  # type: ignore[attr-defined]
        connection.close()
    assert _wait_for_readers(server.url, other_than=pid) != [pid]
    time.sleep(0.5)
    for connection in _connections(server, 4):
        assert _rows(_get(connection, LOOKUP).body) == expected  # type: ignore[attr-defined]
        connection.close()


def test_a_server_without_readers_says_so_in_its_health(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "store", "--readers", "0").start()
    try:
        assert "readers" not in _health(live.url)
        for connection in _connections(live, 2):
            assert _get(connection, LOOKUP).status == 200
    finally:
        live.stop()


HOST = b"Host: x\r\n"


@pytest.mark.parametrize(
    ("head", "taken"),
    [
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"\r\n", True),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Accept: text/csv\r\nConnection: close\r\n\r\n", True),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n\r\n", False),  # no Host
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.0\r\n" + HOST + b"\r\n", False),
        (b"HEAD /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"\r\n", False),
        (b"POST /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\n\r\n", False),
        (b"GET /sparql HTTP/1.1\r\n" + HOST + b"\r\n", False),  # the service description
        (b"GET /query?query=x HTTP/1.1\r\n" + HOST + b"\r\n", False),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Origin: https://example.org\r\n\r\n", False),  # CORS
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n", False),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b" folded\r\n\r\n", False),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Accept : x\r\n\r\n", False),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Bad Name: x\r\n\r\n", False),
        (b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\n" + HOST + b"Accept: a\0b\r\n\r\n", False),
    ],
)
def test_a_reader_takes_only_plain_gets_of_sparql(head: bytes, taken: bool) -> None:
    assert (read_head(head) is not None) is taken
