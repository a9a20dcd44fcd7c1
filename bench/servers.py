"""The three servers under test, each a subprocess on a free loopback port.

- ``patrolkg serve --store DIR`` (this project);
- ``oxigraph serve --location DIR --union-default-graph`` (the native limit: the same
  engine without Python), loaded with ``oxigraph load`` and compacted with ``oxigraph optimize``;
- ``rdflib-endpoint serve FILE`` (the Python peer: rdflib's in-memory Dataset with a
  union default graph, behind FastAPI).

Each is given the same quads, and each has a union default graph, so the same query
means the same thing on all three. :class:`MemoryWatch` samples the resident memory of
a server and its child processes (patrolkg's query workers) while it runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Server", "free_port", "patrolkg_server", "oxigraph_server", "rdflib_server", "MemoryWatch", "rss", "pss", "tool"]

_ASK = "ASK { ?s ?p ?o }"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str | None:
    """An executable next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@dataclass
class Server:
    """A server subprocess: ``sparql`` is its query URL, ``ready_seconds`` the time from
    start until it answered its readiness check, ``first_query_seconds`` until it
    answered a first query."""

    name: str
    command: list[str]
    port: int
    sparql: str
    ready_path: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    ready_seconds: float | None = None
    first_query_seconds: float | None = None

    def start(self, timeout: float) -> Server:
        """:raises RuntimeError: if it exits or is not ready within ``timeout``."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, **self.env}, start_new_session=True,
        )
        deadline = started + timeout
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(url, timeout=2.0, params={"query": _ASK} if self.ready_path != "/health" else None).status_code == 200:
                    self.ready_seconds = time.perf_counter() - started
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"{self.name} was not ready in {timeout:.0f}s: {self.log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(self.sparql, params={"query": _ASK}, headers={"Accept": "application/sparql-results+json"}, timeout=timeout).raise_for_status()
            self.first_query_seconds = time.perf_counter() - started
        except httpx.HTTPError:
            self.first_query_seconds = None
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        """Stop the server and its children (its own process group, nothing else)."""
        if not self.process or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)


def patrolkg_server(store: Path, log: Path, *, token: str, max_rows: int = 10_000_000, query_timeout: float = 120.0, compact_after: float | None = None) -> Server:
    """``patrolkg serve`` on ``store``, with writes allowed for ``token`` and the row
    limit lifted so that every server returns complete results (``compact_after``: its
    PATROLKG_COMPACT_AFTER, else the server's default)."""
    port = free_port()
    command = [
        sys.executable, "-m", "patrolkg", "serve", "--store", str(store), "--port", str(port), "--no-seed",
        "--log-level", "warning", "--max-rows", str(max_rows), "--query-timeout", str(query_timeout),
        *(["--compact-after", str(compact_after)] if compact_after is not None else []),
    ]
    # The token goes through the environment, not the command line that `ps` shows.
    return Server("patrolkg", command, port, f"http://127.0.0.1:{port}/sparql", "/health", log, env={"PATROLKG_WRITE_TOKEN": f"bench:{token}"})


def oxigraph_server(location: Path, log: Path) -> Server:
    binary = tool("oxigraph")
    if binary is None:
        raise FileNotFoundError("the oxigraph server is not installed: pip install oxigraph")
    port = free_port()
    command = [binary, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}", "--union-default-graph"]
    return Server("oxigraph", command, port, f"http://127.0.0.1:{port}/query", "/query", log)


def rdflib_server(data: Path, log: Path) -> Server:
    binary = tool("rdflib-endpoint")
    if binary is None:
        raise FileNotFoundError("rdflib-endpoint is not installed: pip install rdflib-endpoint")
    port = free_port()
    command = [binary, "serve", "--host", "127.0.0.1", "--port", str(port), str(data)]
    return Server("rdflib-endpoint", command, port, f"http://127.0.0.1:{port}/", "/", log)


def rss(pid: int) -> tuple[int, int]:
    """Resident bytes of a process, and of it with all its descendants."""
    try:
        import psutil
    except ImportError:
        return _proc_rss(pid), _proc_rss(pid) + sum(_proc_rss(child) for child in _proc_children(pid))
    try:
        process = psutil.Process(pid)
        own = process.memory_info().rss
        total = own
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return own, total
    except psutil.Error:
        return 0, 0


def pss(pid: int) -> int:
    """Proportional set size of a process and all its descendants: each page counted
    once in all, a page shared by n of them 1/n in each (the shared libraries of a
    server's worker processes, which the sum of their RSS counts once per process).
    0 where the kernel does not say (``/proc/PID/smaps_rollup``, Linux 4.14+)."""
    total = 0
    for each in [pid, *_proc_children(pid)]:
        try:
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
    return total


def _proc_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _proc_children(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            queue.append(child)
    return found


class MemoryWatch:
    """Samples a process tree's resident memory every ``interval`` seconds until stopped.

    :param pid: the process, or a function giving it (for a server that may be restarted).
    """

    def __init__(self, pid: int | Callable[[], int | None], interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.peak_own = self.peak_total = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pid = self.pid() if callable(self.pid) else self.pid
            own, total = rss(pid) if pid else (0, 0)
            self.peak_own, self.peak_total = max(self.peak_own, own), max(self.peak_total, total)
            self.peak_pss = max(self.peak_pss, pss(pid) if pid else 0)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
