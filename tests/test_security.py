"""Attacks that must fail: SSRF (SERVICE, FROM, LOAD, JSON-LD contexts, RDF/XML, link
discovery), XML entities, path traversal, header and log injection, writes without
the right token, writes to patrolkg's own graphs, oversized and pathological input,
and clients that hold connections open.

SSRF is checked the only way that cannot be fooled: a listening loopback socket
records every connection made to it, and must receive none.

Tokens have no expiry (or revocation short of a restart): there is nothing to test
for an expired token; see docs/reliability.md for the finding and a proposal.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import LiveServer, seeded
from patrolkg.errors import ForbiddenOperation, InputError, UnsafeInput
from patrolkg.execution import Limits
from patrolkg.linking import KINDS, fetch_source
from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app

SECRET = "s5" * 16
TOKEN_ENV = {"PATROLKG_WRITE_TOKEN": "sam:" + SECRET}
AUTH = {"Authorization": "Bearer " + SECRET}
UPDATE = {"Content-Type": "application/sparql-update", **AUTH}
JSON = {"Accept": "application/sparql-results+json"}
GRAPHS = "https://w3id.org/patrolkg/graph/"
PROTECTED = [GRAPHS + name for name in ("ontology", "inferred", "reference", "links", "submissions", "article/cnsnews-2022-05")]
STATEMENT = b"""@prefix pk: <https://w3id.org/patrolkg/ontology#> .
<https://w3id.org/patrolkg/id/statement/security-%s> a pk:Statement ;
  <http://www.w3.org/2000/01/rdf-schema#label> "Security statement"@en ;
  pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
  pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
  pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
  pk:summary "Submitted by the security tests."@en ;
  <http://purl.org/dc/terms/source> "test_security" ."""
MAX_BODY = 65536


class Recorder:
    """A loopback socket that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.url = self.base + "sparql"
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(0.5)
            try:
                self.connections.append(conn.recv(512))
            except OSError:
                self.connections.append(b"")
            conn.close()

    def received(self, settle: float = 0.3) -> list[bytes]:
        time.sleep(settle)  # a connection in flight lands before the answer is read
        return list(self.connections)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.fixture
def store(bundle_store: Store) -> Store:
    return seeded(bundle_store, open_store(None))


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    """The app in process, writes enabled, nothing on the SERVICE allow-list."""
    app = create_app(Settings.from_env({}, write_token="sam:" + SECRET, query_timeout=5.0), store=store, seed=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server with a small body limit and an info log (for the log-injection test)."""
    server = LiveServer(tmp_path_factory.mktemp("security") / "store", "--query-timeout", "3", "--max-body-bytes", str(MAX_BODY), "--log-level", "info", env=TOKEN_ENV).start()
    yield server
    server.stop()


def victim(tmp_path: Path) -> LiveServer:
    """A server of its own for a test that may bring it down."""
    return LiveServer(tmp_path / "store", "--query-timeout", "3", env=TOKEN_ENV).start()


def _alive(server: LiveServer) -> bool:
    assert server.process is not None
    try:
        answered = httpx.get(server.url + "/sparql", params={"query": "ASK {}"}, headers=JSON, timeout=30).status_code == 200
    except httpx.HTTPError:
        answered = False  # refused: the process is gone, or going
    return answered and server.process.poll() is None


# --- SSRF: SERVICE, FROM, LOAD ------------------------------------------------------------

SERVICE_REFUSED = {
    "plain": "SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    "silent": "SELECT * WHERE {{ SERVICE SILENT <{url}> {{ ?s ?p ?o }} }}",
    "lower case": "select * where {{ service <{url}> {{ ?s ?p ?o }} }}",
    "comment before the IRI": "SELECT * WHERE {{ SERVICE # to\n <{url}> {{ ?s ?p ?o }} }}",
    "prefixed name": "PREFIX r: <{base}> SELECT * WHERE {{ SERVICE r:sparql {{ ?s ?p ?o }} }}",
    "empty prefix": "PREFIX : <{base}> SELECT * WHERE {{ SERVICE :sparql {{ ?s ?p ?o }} }}",
    "relative to BASE": "BASE <{base}> SELECT * WHERE {{ SERVICE <sparql> {{ ?s ?p ?o }} }}",
    "variable": "SELECT * WHERE {{ VALUES ?e {{ <{url}> }} SERVICE ?e {{ ?s ?p ?o }} }}",
    "inside OPTIONAL": "SELECT * WHERE {{ BIND(1 AS ?x) OPTIONAL {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}",
}
# Spellings that fooled the regular expressions the guard once was (finding 1), and the
# ways pyoxigraph's parser reads keywords run together, escapes and comments.
SERVICE_BYPASSES = {
    "no space before the IRI": "SELECT * WHERE {{ SERVICE<{url}> {{ ?s ?p ?o }} }}",
    "SILENT with no space before the IRI": "SELECT * WHERE {{ SERVICE SILENT<{url}> {{ ?s ?p ?o }} }}",
    "non-ASCII prefix": "PREFIX é: <{base}> SELECT * WHERE {{ SERVICE é:sparql {{ ?s ?p ?o }} }}",
    "a string the guard misreads": 'SELECT * WHERE {{ ?s ?p ?o FILTER(?o <"x>") SERVICE <{url}> {{ ?s ?p "z" }} }}',
    "keyword run into a prefixed name": "PREFIX r: <{base}> SELECT * WHERE {{ SERVICEr:sparql {{ ?s ?p ?o }} }}",
    "keyword run into the empty prefix": "PREFIX : <{base}> SELECT * WHERE {{ SERVICE:sparql {{ ?s ?p ?o }} }}",
    "SERVICESILENT": "SELECT * WHERE {{ SERVICESILENT<{url}> {{ ?s ?p ?o }} }}",
    "SILENT run into a prefixed name": "PREFIX r: <{base}> SELECT * WHERE {{ SERVICE SILENTr:sparql {{ ?s ?p ?o }} }}",
    "after true": "SELECT * WHERE {{ ?s ?p trueSERVICE <{url}> {{ ?s ?p ?o }} }}",
    "prefix redeclared run together": "PREFIX r: <http://allowed.example/> PREFIXr: <{base}> SELECT * WHERE {{ SERVICE r:sparql {{ ?s ?p ?o }} }}",
    "escaped IRI": "SELECT * WHERE {{ SERVICE <{url_escaped}> {{ ?s ?p ?o }} }}",
    "less-than taken for an IRI": "SELECT * WHERE {{ BIND(1 AS ?a) FILTER(?a<?a||true)SERVICE#>\n<{url}> {{ ?s ?p ?o }} }}",
    "comment ended by a carriage return": "SELECT * WHERE {{ BIND(1 AS ?a) # x\rSERVICE <{url}> {{ ?s ?p ?o }} }}",
    "escape in a local name": "PREFIX r: <{base}> SELECT * WHERE {{ SERVICE r:sp\\%61rql {{ ?s ?p ?o }} }}",
}


def _service_refused_without_connection(api: TestClient, recorder: Recorder, template: str) -> None:
    colon = recorder.url.rindex(":")  # the port's, written as the engine also reads it
    query = template.format(url=recorder.url, base=recorder.base, url_escaped=recorder.url[:colon] + "\\u003a" + recorder.url[colon + 1 :])
    response = api.get("/sparql", params={"query": query}, headers=JSON)
    assert recorder.received() == [], f"the query reached the recorder: {query!r}"
    assert response.status_code == 400 and response.json()["error"]["code"] == "forbidden_operation", response.text


@pytest.mark.parametrize("template", SERVICE_REFUSED.values(), ids=SERVICE_REFUSED.keys())
def test_service_to_an_endpoint_off_the_allow_list_is_refused_before_any_connection(api: TestClient, recorder: Recorder, template: str) -> None:
    _service_refused_without_connection(api, recorder, template)


@pytest.mark.parametrize("template", SERVICE_BYPASSES.values(), ids=SERVICE_BYPASSES.keys())
def test_service_written_to_slip_past_the_guard_is_refused_too(api: TestClient, recorder: Recorder, template: str) -> None:
    _service_refused_without_connection(api, recorder, template)


@pytest.mark.slow
def test_the_query_workers_of_a_real_server_refuse_service_too(server: LiveServer, recorder: Recorder) -> None:
    response = httpx.get(server.url + "/sparql", params={"query": SERVICE_REFUSED["plain"].format(url=recorder.url, base=recorder.base)}, headers=JSON, timeout=30)
    assert response.status_code == 400
    assert recorder.received() == []


def test_an_allow_listed_service_that_is_down_is_a_gateway_error(store: Store, recorder: Recorder) -> None:
    down = recorder.url.replace(recorder.base, f"http://127.0.0.1:{_closed_port()}/")
    app = create_app(Settings.from_env({}, service_allowlist=down, query_timeout=5.0), store=store, seed=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/sparql", params={"query": f"SELECT * WHERE {{ SERVICE <{down}> {{ ?s ?p ?o }} }}"}, headers=JSON)
    assert response.status_code in (502, 503, 504), response.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "params",
    [
        {"query": "SELECT * FROM <{url}> WHERE {{ ?s ?p ?o }}"},
        {"query": "SELECT * FROM NAMED <{url}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"},
        {"query": "SELECT * WHERE {{ ?s ?p ?o }} LIMIT 1", "default-graph-uri": "{url}"},
        {"query": "SELECT * WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} LIMIT 1", "named-graph-uri": "{url}"},
    ],
    ids=["FROM", "FROM NAMED", "default-graph-uri", "named-graph-uri"],
)
def test_a_dataset_naming_a_url_fetches_nothing(api: TestClient, recorder: Recorder, params: dict[str, str]) -> None:
    response = api.get("/sparql", params={k: v.format(url=recorder.url) for k, v in params.items()}, headers=JSON)
    assert response.status_code == 200, response.text
    assert recorder.received() == []


@pytest.mark.parametrize("update", ["LOAD <{url}>", "LOAD SILENT <{url}> INTO GRAPH <http://example.org/g>", "load <{url}>", "INSERT DATA {{ <http://example.org/a> <http://example.org/b> 1 }} ;\nLOAD <{url}>"])
def test_load_is_refused_before_any_connection(api: TestClient, recorder: Recorder, update: str) -> None:
    response = api.post("/update", content=update.format(url=recorder.url), headers=UPDATE)
    assert response.status_code == 403, response.text
    assert recorder.received() == []


@pytest.mark.parametrize(
    "update",
    [
        pytest.param('INSERT {{ <http://example.org/a> <http://example.org/b> ?o }} WHERE {{ ?s ?p ?o FILTER(?o <"x>") }} ; LOAD <{url}> ; INSERT DATA {{ <http://example.org/a> <http://example.org/b> "z" }}', id="LOAD the guard misread"),
        pytest.param("INSERT {{ <http://example.org/a> <http://example.org/b> ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}", id="SERVICE in an update"),
    ],
)
def test_an_update_reaches_no_url(api: TestClient, recorder: Recorder, update: str) -> None:
    response = api.post("/update", content=update.format(url=recorder.url), headers=UPDATE)
    assert recorder.received() == []
    assert response.status_code in (400, 403), response.text


# --- SSRF through RDF: JSON-LD contexts, RDF/XML --------------------------------------------

JSON_LD = {
    "remote @context": {"@context": "{url}", "@id": "https://w3id.org/patrolkg/id/state/x", "name": "x"},
    "remote @context in a list": {"@context": [{"name": "http://schema.org/name"}, "{url}"], "@id": "https://w3id.org/patrolkg/id/state/x", "name": "x"},
    "@import": {"@context": {"@import": "{url}"}, "@id": "https://w3id.org/patrolkg/id/state/x", "name": "x"},
    "property-scoped context": {"@context": {"p": {"@id": "http://example.org/p", "@context": "{url}"}}, "@id": "https://w3id.org/patrolkg/id/state/x", "p": {"@id": "http://example.org/o"}},
    "type-scoped context": {"@context": {"T": {"@id": "http://example.org/T", "@context": "{url}"}}, "@id": "https://w3id.org/patrolkg/id/state/x", "@type": "T"},
}
XML = {
    "external entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "{url}">]>{rdf}&e;{end}',
    "parameter entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]>{rdf}x{end}',
    "external DTD": '<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}">{rdf}x{end}',
    "billion laughs": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) + "]>{rdf}&i;{end}",
    "lower-case doctype": '<!doctype r [<!ENTITY e SYSTEM "{url}">]>{rdf}&e;{end}',
    "spaced declaration": '<!\n  DOCTYPE r [<!ENTITY e SYSTEM "{url}">]>{rdf}&e;{end}',
}
_RDF = '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="https://w3id.org/patrolkg/id/state/x"><rdf:value>'
_END = "</rdf:value></rdf:Description></rdf:RDF>"
RDF_ROUTES = [("POST", "/validate"), ("POST", "/submissions"), ("PUT", "/store?graph=http://example.org/g"), ("POST", "/store/ssrf")]


@pytest.mark.parametrize("route", RDF_ROUTES, ids=[f"{m} {p}" for m, p in RDF_ROUTES])
@pytest.mark.parametrize("document", JSON_LD.values(), ids=JSON_LD.keys())
def test_json_ld_contexts_are_never_fetched(api: TestClient, recorder: Recorder, route: tuple[str, str], document: dict[str, object]) -> None:
    body = json.dumps(document).replace("{url}", recorder.url)
    response = api.request(route[0], route[1], content=body, headers={"Content-Type": "application/ld+json", **AUTH})
    assert recorder.received() == []
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsafe_input", response.text


@pytest.mark.parametrize("route", RDF_ROUTES, ids=[f"{m} {p}" for m, p in RDF_ROUTES])
@pytest.mark.parametrize("template", XML.values(), ids=XML.keys())
def test_xml_entities_and_dtds_are_refused_unexpanded(api: TestClient, recorder: Recorder, route: tuple[str, str], template: str) -> None:
    body = template.replace("{url}", recorder.url).replace("{rdf}", _RDF).replace("{end}", _END)
    response = api.request(route[0], route[1], content=body, headers={"Content-Type": "application/rdf+xml", **AUTH})
    assert recorder.received() == []
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsafe_input", response.text


def test_xml_in_a_multipart_part_is_refused_too(api: TestClient, recorder: Recorder) -> None:
    part = XML["external entity"].replace("{url}", recorder.url).replace("{rdf}", _RDF).replace("{end}", _END)
    body = f'--b\r\nContent-Disposition: form-data; name="f"; filename="x.rdf"\r\nContent-Type: application/rdf+xml\r\n\r\n{part}\r\n--b--\r\n'
    response = api.post("/store?graph=http://example.org/g", content=body, headers={"Content-Type": "multipart/form-data; boundary=b", **AUTH})
    assert recorder.received() == []
    assert response.status_code == 400, response.text


def test_an_xml_base_or_a_utf16_body_fetches_nothing(api: TestClient, recorder: Recorder) -> None:
    based = f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xml:base="{recorder.base}"><rdf:Description rdf:about="x"><rdf:value>1</rdf:value></rdf:Description></rdf:RDF>'
    utf16 = XML["external entity"].replace("{url}", recorder.url).replace("{rdf}", _RDF).replace("{end}", _END).encode("utf-16")
    for body in (based.encode(), utf16):
        response = api.post("/validate", content=body, headers={"Content-Type": "application/rdf+xml"})
        assert response.status_code < 500, response.text
    assert recorder.received() == []


# --- SSRF through link discovery --------------------------------------------------------------


class _Endpoint(threading.Thread):
    """An allow-listed SPARQL endpoint on loopback that answers every request the same way."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(daemon=True)
        import http.server

        answer = (status, headers, body)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(answer[0])
                for name, value in answer[1].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer[2])))
                self.end_headers()
                self.wfile.write(answer[2])

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sparql"

    def run(self) -> None:
        self.httpd.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_link_discovery_refuses_an_endpoint_off_the_allow_list(recorder: Recorder, tmp_path: Path) -> None:
    with pytest.raises(ForbiddenOperation):
        fetch_source(recorder.url, [], KINDS["state"], Limits())
    result = subprocess.run([sys.executable, "-m", "patrolkg", "link", "--store", str(tmp_path / "store"), "--kind", "state", recorder.url], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert recorder.received() == []


@pytest.mark.parametrize(
    "answer",
    [
        (307, {"Location": "{url}"}, b""),
        (200, {"Content-Type": "application/ld+json"}, b'{"@context": "{url}", "@id": "http://example.org/x", "name": "x"}'),
        (200, {"Content-Type": "application/rdf+xml"}, XML["external entity"].replace("{rdf}", _RDF).replace("{end}", _END).encode()),
    ],
    ids=["redirect", "remote JSON-LD context", "XML external entity"],
)
def test_an_allow_listed_endpoint_cannot_send_link_discovery_elsewhere(recorder: Recorder, answer: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = answer
    endpoint = _Endpoint(status, {k: v.replace("{url}", recorder.url) for k, v in headers.items()}, body.replace(b"{url}", recorder.url.encode()))
    endpoint.start()
    try:
        names = [__import__("pyoxigraph").Literal("Japan", language="en")]
        with pytest.raises(InputError) as refused:
            fetch_source(endpoint.url, names, KINDS["state"], Limits(timeout=10, service_allowlist=(endpoint.url,)))
        assert status != 200 or isinstance(refused.value, UnsafeInput)
    finally:
        endpoint.close()
    assert recorder.received() == []


# --- path traversal, header and log injection ------------------------------------------------


def _raw(server: LiveServer, request: bytes, wait: float = 10.0) -> bytes:
    """Send bytes as they are (no client normalizes the path) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as conn:
        conn.sendall(request)
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return data


TRAVERSALS = [
    "/id/../../../../etc/passwd", "/id/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/id/state/..%2f..%2f..%2fetc%2fpasswd", "/id/..%5c..%5cetc%5cpasswd",
    "/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2fsettings.py", "/static/ui.js%00.py", "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/assets/..%2fapp.py", "/submissions/..%2f..%2f..%2fetc%2fpasswd", "/submissions/%2e%2e", "/store/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.slow
@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_reaches_a_file_outside_what_is_served(server: LiveServer, path: str) -> None:
    answer = _raw(server, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 404), answer[:300]
    for leak in (b"root:x:", b"import ", b"def ", b"PATROLKG_"):
        assert leak not in answer


@pytest.mark.slow
def test_crlf_in_a_request_injects_no_header_and_no_log_line(server: LiveServer) -> None:
    forged = "Injected-Header: yes"
    requests = [
        f"GET /id/state/japan%0d%0a{forged} HTTP/1.1",
        f"GET /sparql?query=ASK%7B%7D&format=json%0d%0a{forged} HTTP/1.1",
        f"GET /store?graph=http://example.org/g%0d%0a{forged} HTTP/1.1",
        f"GET /submissions?offset=0%0d%0a{forged} HTTP/1.1",
        "GET /nothing%0aFORGED-LOG-LINE HTTP/1.1",
    ]
    for line in requests:
        answer = _raw(server, (line + "\r\nHost: localhost\r\nConnection: close\r\n\r\n").encode())
        header_lines = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        assert not any(h.lower().startswith(b"injected-header") for h in header_lines), answer[:500]
    comment = "fine\nINFO:     127.0.0.1:1 - \"GET /forged HTTP/1.1\" 200 OK"
    response = httpx.post(server.url + "/submissions", params={"comment": comment, "source": "x\r\nFORGED"}, content=STATEMENT % b"crlf", headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
    assert response.status_code in (201, 400), response.text
    assert "Injected-Header" not in response.headers
    lines = server.log.read_text(errors="replace").splitlines()
    assert not any(line.startswith(("FORGED", "Injected-Header", 'INFO:     127.0.0.1:1 - "GET /forged')) for line in lines)


# --- who may write -------------------------------------------------------------------------------

WRITES = [
    ("POST", "/submissions", "text/turtle", STATEMENT % b"auth"),
    ("POST", "/update", "application/sparql-update", b"INSERT DATA { <http://example.org/a> <http://example.org/b> 1 }"),
    ("PUT", "/store?graph=http://example.org/g", "text/turtle", b"<http://example.org/a> <http://example.org/b> 1 ."),
    ("POST", "/store?graph=http://example.org/g", "text/turtle", b"<http://example.org/a> <http://example.org/b> 1 ."),
    ("POST", "/store", "text/turtle", b"<http://example.org/a> <http://example.org/b> 1 ."),
    ("PUT", "/store/direct", "text/turtle", b"<http://example.org/a> <http://example.org/b> 1 ."),
    ("DELETE", "/store?default", None, b""),
    ("DELETE", "/submissions/20200101T000000-00000000", None, b""),
]
BAD_CREDENTIALS = {
    "none": None, "empty": "", "scheme only": "Bearer", "blank token": "Bearer  ", "Basic": "Basic " + SECRET,
    "token without scheme": SECRET, "wrong token": "Bearer " + "x" * 32, "prefix of the token": "Bearer " + SECRET[:-1],
    "token and more": "Bearer " + SECRET + "x", "two tokens": f"Bearer {SECRET},{SECRET}", "NUL inside": "Bearer " + SECRET[:5] + "\x00" + SECRET[5:],
}


def _quads(store: Store) -> int:
    return store.triple_count()


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("write", WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES])
def test_a_write_without_the_right_token_is_401_and_writes_nothing(api: TestClient, store: Store, write: tuple[str, str, str | None, bytes], credentials: str | None) -> None:
    method, path, media_type, body = write
    headers = {**({"Content-Type": media_type} if media_type else {}), **({"Authorization": credentials} if credentials is not None else {})}
    before = _quads(store)
    try:
        response = api.request(method, path + ("&" if "?" in path else "?") + "access_token=" + SECRET, content=body, headers=headers)
    except httpx.LocalProtocolError:
        return  # a header the client itself refuses to send (NUL) never reaches the server
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _quads(store) == before


@pytest.mark.parametrize("write", WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES])
def test_with_no_token_configured_every_write_is_403(store: Store, write: tuple[str, str, str | None, bytes]) -> None:
    method, path, media_type, body = write
    with TestClient(create_app(Settings.from_env({}), store=store, seed=False), raise_server_exceptions=False) as client:
        response = client.request(method, path, content=body, headers={**({"Content-Type": media_type} if media_type else {}), **AUTH})
    assert response.status_code == 403 and response.json()["error"]["code"] == "writes_disabled"


def test_a_cross_site_page_cannot_send_the_token(api: TestClient) -> None:
    preflight = api.options("/update", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
    assert "authorization" not in preflight.headers.get("access-control-allow-headers", "").lower()


# --- patrolkg's own graphs ----------------------------------------------------------------------

SYSTEM_GRAPH_UPDATES = [
    "INSERT DATA {{ GRAPH <{g}> {{ <http://example.org/a> <http://example.org/b> 1 }} }}",
    "DELETE WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}",
    "CLEAR GRAPH <{g}>",
    "DROP SILENT GRAPH <{g}>",
    "COPY <http://example.org/empty> TO <{g}>",
    "MOVE <{g}> TO <http://example.org/stolen>",
    "ADD <http://example.org/x> TO <{g}>",
    "WITH <{g}> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}",
    "DELETE {{ GRAPH ?g {{ ?s ?p ?o }} }} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
]


def _counts(store: Store) -> dict[str, int]:
    return {g: store.triple_count(g) for g in PROTECTED}


@pytest.mark.parametrize("template", SYSTEM_GRAPH_UPDATES)
@pytest.mark.parametrize("graph", [PROTECTED[0], PROTECTED[2], PROTECTED[5]], ids=["ontology", "reference", "article"])
def test_an_update_cannot_change_a_system_graph(api: TestClient, store: Store, graph: str, template: str) -> None:
    api.post("/update", content="INSERT DATA { GRAPH <http://example.org/x> { <http://example.org/a> <http://example.org/b> 1 } }", headers=UPDATE)
    before = _counts(store)
    response = api.post("/update", content=template.format(g=graph), headers=UPDATE)
    assert response.status_code == 403, response.text
    assert _counts(store) == before


def test_clear_all_and_drop_all_leave_the_system_graphs(api: TestClient, store: Store) -> None:
    before = _counts(store)
    for update in ("CLEAR ALL", "DROP ALL", "CLEAR NAMED", "DROP NAMED"):
        assert api.post("/update", content=update, headers=UPDATE).status_code == 200
    assert _counts(store) == before


@pytest.mark.parametrize("update", [f"DROP GRAPH <{GRAPHS}submissions>", "DROP GRAPH <http://example.org/absent>", "CREATE GRAPH <http://example.org/c> ; CREATE GRAPH <http://example.org/c>"])
def test_dropping_an_absent_graph_is_a_client_error(api: TestClient, update: str) -> None:
    response = api.post("/update", content=update, headers=UPDATE)
    assert response.status_code in (400, 403, 404), response.text


@pytest.mark.parametrize("graph", PROTECTED)
def test_the_graph_store_cannot_change_a_system_graph(api: TestClient, store: Store, graph: str) -> None:
    before = _counts(store)
    turtle = {"Content-Type": "text/turtle", **AUTH}
    for method in ("PUT", "POST"):
        assert api.request(method, "/store", params={"graph": graph}, content=b"<http://example.org/a> <http://example.org/b> 1 .", headers=turtle).status_code == 403
    assert api.delete("/store", params={"graph": graph}, headers=AUTH).status_code == 403
    assert _counts(store) == before


def test_a_submission_cannot_name_a_system_graph(api: TestClient) -> None:
    body = STATEMENT % b"graph" + f"\n<{GRAPHS}ontology> <http://www.w3.org/2000/01/rdf-schema#comment> \"mine\" .".encode()
    response = api.post("/submissions", content=body, headers={"Content-Type": "text/turtle", **AUTH})
    assert response.status_code == 400


def test_nobody_can_forge_the_provenance_of_a_submission(api: TestClient, store: Store) -> None:
    accepted = api.post("/submissions", content=STATEMENT % b"victim", headers={"Content-Type": "text/turtle", **AUTH})
    assert accepted.status_code == 201, accepted.text
    record = accepted.json()["iri"]
    forged = f'<{record}> <https://w3id.org/patrolkg/ontology#submitter> "mallory" .'.encode()
    by_submission = api.post("/submissions", content=forged, headers={"Content-Type": "text/turtle", **AUTH})
    by_update = api.post("/update", content=b"INSERT DATA { " + forged + b" }", headers=UPDATE)
    submitters = {row["w"].value for row in store.query(f"SELECT ?w WHERE {{ <{record}> <https://w3id.org/patrolkg/ontology#submitter> ?w }}")}
    assert submitters == {"sam"}, (by_submission.status_code, by_update.status_code)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_deeply_nested_reconciliation_batch_is_a_400(api: TestClient, method: str) -> None:
    batch = '{"q0": ' + "[" * 5000 + "]" * 5000 + "}"
    if method == "GET":
        response = api.get("/reconcile", params={"queries": batch})
    else:
        response = api.post("/reconcile", data={"queries": batch})
    assert response.status_code == 400, response.text


# --- oversized input ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "media_type"),
    [("/sparql", "application/sparql-query"), ("/update", "application/sparql-update"), ("/submissions", "text/turtle"), ("/validate", "text/turtle"), ("/store?graph=http://example.org/g", "text/turtle"), ("/reconcile", "application/x-www-form-urlencoded")],
)
def test_a_body_over_the_limit_is_413_declared_or_streamed(server: LiveServer, path: str, media_type: str) -> None:
    headers = {"Content-Type": media_type, **AUTH}
    declared = httpx.post(server.url + path, content=b" " * (MAX_BODY + 1), headers=headers, timeout=60)
    streamed = httpx.post(server.url + path, content=iter([b" " * 8192] * (MAX_BODY // 8192 + 2)), headers=headers, timeout=60)
    assert declared.status_code == 413 and streamed.status_code == 413, (declared.text, streamed.text)
    assert streamed.json()["error"]["setting"] == "PATROLKG_MAX_BODY_BYTES"


@pytest.mark.slow
def test_oversized_urls_iris_and_literals_are_answered_and_the_server_goes_on(server: LiveServer) -> None:
    answer = _raw(server, b"GET /sparql?query=" + b"A" * 300_000 + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    long_query = httpx.get(server.url + "/sparql", params={"query": "ASK {" + " " * 60_000 + "}"}, headers=JSON, timeout=60)
    assert long_query.status_code == 200
    long_iri = b"<https://w3id.org/patrolkg/id/state/" + b"x" * 50_000 + b"> <http://www.w3.org/2000/01/rdf-schema#comment> \"long\" ."
    long_literal = b'<https://w3id.org/patrolkg/id/state/japan> <http://www.w3.org/2000/01/rdf-schema#comment> "' + b"y" * 60_000 + b'"@en .'
    for body in (long_iri, long_literal):
        for path in ("/validate", "/submissions?dry_run=true"):
            response = httpx.post(server.url + path, content=body, headers={"Content-Type": "text/turtle", **AUTH}, timeout=120)
            assert response.status_code < 500, response.text[:300]
    assert httpx.get(server.url + "/id/" + "a" * 5000, timeout=30).status_code == 404
    assert _alive(server)


# --- pathological structure: nesting, runaway work ------------------------------------------------


def _nested_query(depth: int) -> str:
    return "SELECT * WHERE " + "{" * depth + " ?s ?p ?o " + "}" * depth


@pytest.mark.slow
def test_a_deeply_nested_query_does_not_take_the_server_down(server: LiveServer) -> None:
    for query in (_nested_query(5000), "SELECT (" + "+".join(["1"] * 20000) + " AS ?x) WHERE {}"):
        response = httpx.post(server.url + "/sparql", content=query, headers={"Content-Type": "application/sparql-query", **JSON}, timeout=60)
        assert response.status_code in (400, 503), response.text
    assert _alive(server)


@pytest.mark.slow
def test_a_deeply_nested_query_is_a_400(server: LiveServer) -> None:
    response = httpx.post(server.url + "/sparql", content=_nested_query(5000), headers={"Content-Type": "application/sparql-query", **JSON}, timeout=60)
    assert response.status_code == 400, response.text


def _nested_json_ld(depth: int) -> bytes:
    return ('{"@id": "https://w3id.org/patrolkg/id/state/x", "http://example.org/p": ' + '{"http://example.org/p": ' * depth + "1" + "}" * depth + "}").encode()


def _nested_rdf_xml(depth: int) -> bytes:
    return ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="http://example.org/"><rdf:Description rdf:about="https://w3id.org/patrolkg/id/state/x">' + "<e:p><rdf:Description>" * depth + "</rdf:Description></e:p>" * depth + "</rdf:Description></rdf:RDF>").encode()


@pytest.mark.slow
def test_a_deeply_nested_json_ld_body_does_not_kill_the_server(tmp_path: Path) -> None:
    server = victim(tmp_path)
    try:
        try:
            response = httpx.post(server.url + "/validate", content=_nested_json_ld(6000), headers={"Content-Type": "application/ld+json"}, timeout=60)
            assert response.status_code == 400, response.text
        except httpx.HTTPError:
            pass
        assert _alive(server), "the server died"
    finally:
        server.stop()


@pytest.mark.slow
def test_a_deeply_nested_rdf_xml_body_is_refused(server: LiveServer) -> None:
    response = httpx.post(server.url + "/validate", content=_nested_rdf_xml(1000), headers={"Content-Type": "application/rdf+xml"}, timeout=120)
    assert response.status_code == 400, response.text


@pytest.mark.slow
def test_a_deeply_nested_update_does_not_kill_the_server(tmp_path: Path) -> None:
    server = victim(tmp_path)
    try:
        update = "INSERT { <http://example.org/a> <http://example.org/b> 1 } WHERE " + "{" * 5000 + "}" * 5000
        try:
            response = httpx.post(server.url + "/update", content=update, headers=UPDATE, timeout=60)
            assert response.status_code == 400, response.text
        except httpx.HTTPError:
            pass
        assert _alive(server), "the server died"
    finally:
        server.stop()


@pytest.mark.slow
def test_a_runaway_query_is_stopped_and_others_are_answered_meanwhile(server: LiveServer) -> None:
    runaway = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    outcome: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("runaway", httpx.get(server.url + "/sparql", params={"query": runaway}, headers=JSON, timeout=60)))
    thread.start()
    quick = httpx.get(server.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"}, headers=JSON, timeout=60)
    thread.join(90)
    assert quick.status_code == 200
    assert outcome["runaway"].status_code == 503 and outcome["runaway"].json()["error"]["code"] == "query_timeout"
    regex = 'SELECT * WHERE { BIND(CONCAT(REPEAT("a", 40), "!") AS ?x) FILTER(REGEX(?x, "^(a+)+$")) }'.replace('REPEAT("a", 40)', '"' + "a" * 40 + '"')
    assert httpx.get(server.url + "/sparql", params={"query": regex}, headers=JSON, timeout=60).status_code in (200, 503)


@pytest.mark.slow
def test_a_runaway_update_is_stopped_and_does_not_block_other_writes(tmp_path: Path) -> None:
    server = victim(tmp_path)
    try:
        runaway = "INSERT { <http://example.org/a> <http://example.org/n> ?n } WHERE { SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?x { ?a ?b ?c } GRAPH ?y { ?d ?e ?f } GRAPH ?z { ?g ?h ?i } } }"

        outcome: dict[str, httpx.Response] = {}

        def run_away() -> None:
            outcome["runaway"] = httpx.post(server.url + "/update", content=runaway, headers=UPDATE, timeout=30)

        thread = threading.Thread(target=run_away, daemon=True)
        thread.start()
        time.sleep(1.0)  # let the runaway take the writer's lock first
        try:
            status = httpx.post(server.url + "/submissions", content=STATEMENT % b"after-runaway", headers={"Content-Type": "text/turtle", **AUTH}, timeout=30).status_code
        except httpx.TimeoutException:
            status = None
        assert status == 201
        thread.join(30)
        stopped = outcome["runaway"]
        assert stopped.status_code == 503 and stopped.json()["error"]["code"] == "query_timeout", stopped.text
        assert "nothing was written" in stopped.json()["error"]["message"] + stopped.json()["error"].get("hint", "")
        count = httpx.get(server.url + "/sparql", params={"query": "ASK { <http://example.org/a> <http://example.org/n> ?n }"}, headers=JSON, timeout=30)
        assert count.json()["boolean"] is False
    finally:
        server.stop()


# --- clients that hold connections ------------------------------------------------------------------


def _stalled_connections(server: LiveServer, idle: int, partial: int) -> list[socket.socket]:
    held = []
    for index in range(idle + partial):
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if index >= idle:
            conn.sendall(b"POST /submissions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n")
        held.append(conn)
    return held


@pytest.mark.slow
def test_slow_clients_holding_connections_do_not_stop_others(server: LiveServer) -> None:
    held = _stalled_connections(server, idle=150, partial=150)
    try:
        for _ in range(5):
            assert httpx.get(server.url + "/sparql", params={"query": "ASK {}"}, headers=JSON, timeout=30).status_code == 200
            assert httpx.get(server.url + "/id/state/japan", headers={"Accept": "text/turtle"}, timeout=30).status_code == 200
    finally:
        for conn in held:
            conn.close()


@pytest.mark.slow
def test_stalled_connections_are_closed_by_the_server(server: LiveServer) -> None:
    held = _stalled_connections(server, idle=5, partial=5)
    deadline = time.monotonic() + 30
    open_ones = list(held)
    try:
        while open_ones and time.monotonic() < deadline:
            for conn in list(open_ones):
                conn.settimeout(0.2)
                try:
                    if conn.recv(1024) == b"":
                        open_ones.remove(conn)
                except TimeoutError:
                    pass
                except OSError:
                    open_ones.remove(conn)
        assert not open_ones, f"{len(open_ones)} of {len(held)} stalled connections are still open after 30 s"
    finally:
        for conn in held:
            conn.close()
