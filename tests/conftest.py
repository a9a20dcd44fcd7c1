"""Shared fixtures: small real things, fresh where a test writes.

- ``bundle_store``: an in-memory store loaded with the bundled data, shared by the
  session; tests must not write to it.
- ``empty_store``: a fresh in-memory store per test.
- ``seeded_store``: a fresh in-memory store per test with the bundled data.
- ``client``: the app through an ASGI test client, over ``bundle_store``.
- ``live_server``: a real ``patrolkg serve`` in a subprocess on a free loopback port,
  with its own store directory; yields the base URL.
- ``oxigraph_engine``: a real SPARQL 1.1 engine (``oxigraph serve``, from the oxigraph
  package) on a free loopback port, shared by the session; clear it before use.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient

from patrolkg.loading import load_bundle
from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app


#: Property-based tests (hypothesis, schemathesis) draw the same examples on every run,
#: so that a red CI is a regression, not a new draw; ``PATROLKG_FUZZ=random`` explores
#: new examples (run it before a release; keep what it finds as an explicit test).
DERANDOMIZE = os.environ.get("PATROLKG_FUZZ") != "random"

@pytest.fixture(scope="session")
def bundle_store() -> Store:
    store = open_store(None)
    load_bundle(store)
    return store


@pytest.fixture
def empty_store() -> Store:
    return open_store(None)


def seeded(bundle_store: Store, store: Store) -> Store:
    """``store`` holding the bundled data, as ``create_app(seed=True)`` would load it:
    copied from ``bundle_store`` rather than loaded again (a load takes seconds)."""
    graphs: dict[str, list[ox.Triple]] = {}
    for quad in bundle_store.quads():
        assert isinstance(quad.graph_name, ox.NamedNode)
        graphs.setdefault(quad.graph_name.value, []).append(quad.triple)
    store.replace_graphs(graphs)
    return store


@pytest.fixture
def seeded_store(bundle_store: Store) -> Store:
    """A fresh in-memory store per test, holding the bundled data."""
    return seeded(bundle_store, open_store(None))


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({})


@pytest.fixture
def client(bundle_store: Store, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, store=bundle_store, seed=False)
    with TestClient(app) as test_client:
        yield test_client


def statement_turtle(subject: str, label: str, summary: str, source: str) -> bytes:
    """A conforming submission: one statement by Koizumi about the tenth patrol, with
    its ``label`` and ``summary`` (English) and its ``source``."""
    return f"""@prefix pk: <https://w3id.org/patrolkg/ontology#> .
<{subject}> a pk:Statement ;
  <http://www.w3.org/2000/01/rdf-schema#label> "{label}"@en ;
  pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
  pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
  pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
  pk:summary "{summary}"@en ;
  <http://purl.org/dc/terms/source> "{source}" .""".encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(process: subprocess.Popen[bytes], log: Path, probe: Callable[[], bool], timeout: float, name: str) -> None:
    """Poll ``probe`` until it answers True; fail with the process's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if probe():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"{name} did not start in {timeout}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SilentEndpoint:
    """A loopback socket that accepts connections, counts them and never answers: an
    endpoint nothing may reach (SSRF checks), or one that hangs (timeouts)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/sparql"
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


class LiveServer:
    """A ``patrolkg serve`` subprocess; ``url`` is its base URL (no trailing slash)."""

    def __init__(self, store_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.store_dir = store_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = store_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> LiveServer:
        command = [sys.executable, "-m", "patrolkg", "serve", "--store", str(self.store_dir), "--port", str(self.port), "--log-level", "warning", *self.extra]
        self.process = subprocess.Popen(command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=self.env)
        _wait_until_ready(self.process, self.log, lambda: httpx.get(self.url + "/health", timeout=1.0).status_code == 200, timeout, "server")
        return self

    def stop(self) -> None:
        _stop(self.process)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("live") / "store").start()
    yield server
    server.stop()


def oxigraph_binary() -> str:
    """The ``oxigraph`` command of the oxigraph package, a test dependency."""
    beside = Path(sys.executable).with_name("oxigraph")
    found = str(beside) if beside.exists() else shutil.which("oxigraph")
    if found is None:
        pytest.fail("the `oxigraph` command is missing: install the test dependencies (pip install '.[test]'), which include the oxigraph package")
    return found


class OxigraphEngine:
    """``oxigraph serve`` in a subprocess: a SPARQL 1.1 Query, Update and Graph Store
    endpoint on a free loopback port, its data in ``location``. ``extra`` are more flags
    (``--union-default-graph``)."""

    def __init__(self, location: Path, *extra: str) -> None:
        self.location, self.extra = location, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.query_url, self.update_url, self.gsp_url = self.url + "/query", self.url + "/update", self.url + "/store"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = location.parent / f"oxigraph-{self.port}.log"

    def start(self, timeout: float = 30.0) -> OxigraphEngine:
        command = [oxigraph_binary(), "serve", "--location", str(self.location), "--bind", f"127.0.0.1:{self.port}", *self.extra]
        self.process = subprocess.Popen(command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        probe = lambda: httpx.get(self.query_url, params={"query": "ASK {}"}, timeout=1.0).status_code == 200  # noqa: E731
        _wait_until_ready(self.process, self.log, probe, timeout, "oxigraph")
        return self

    def stop(self) -> None:
        _stop(self.process)

    def clear(self) -> None:
        """Remove every graph, patrolkg's bookkeeping included."""
        response = httpx.post(self.update_url, content="DROP ALL", headers={"Content-Type": "application/sparql-update"}, timeout=30)
        response.raise_for_status()

    def store_options(self) -> list[str]:
        """The ``patrolkg`` flags that use this engine as the store."""
        return ["--store-url", self.query_url, "--gsp-url", self.gsp_url]


@pytest.fixture(scope="session")
def oxigraph_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphEngine]:
    engine = OxigraphEngine(tmp_path_factory.mktemp("engine") / "data").start()
    yield engine
    engine.stop()
