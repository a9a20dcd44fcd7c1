"""The load clients: N concurrent workers on one httpx.AsyncClient (warm-ups, and
throughput where wrk is missing), one lean client sending each request to several
servers in turn (the medians), and wrk (throughput); each for a bounded time and a
bounded count, recording the latency of every request it can.

Every loop here stops by itself: a phase ends when its duration or its request count
is reached, and each request has its own timeout.
"""

from __future__ import annotations

import asyncio
import http.client
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import httpx

__all__ = ["Endpoint", "Phase", "run_phase", "run_paired_phase", "run_wrk_phase", "wrk_binary", "percentile", "count_results"]

SELECT_ACCEPT = "application/sparql-results+json"
GRAPH_ACCEPT = "application/n-triples"


@dataclass(frozen=True)
class Endpoint:
    """Where a server answers SPARQL queries (GET ?query=)."""

    name: str
    url: str


@dataclass
class Phase:
    """The outcome of one phase: latencies of the successful requests, in seconds."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0  # share of one core the client itself used
    rows: int | None = None  # result size of the first answer
    counted: int | None = None  # successful requests, when they were counted but not timed (wrk)
    client_per_request: float | None = None  # the client's CPU seconds per request (the lean client)

    @property
    def count(self) -> int:
        return self.counted if self.counted is not None else len(self.latencies)

    @property
    def median(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    @property
    def p99(self) -> float | None:
        return percentile(self.latencies, 99) if self.latencies else None

    @property
    def throughput(self) -> float | None:
        return self.count / self.wall if self.count and self.wall > 0 else None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by the nearest-rank method (p99 of 50 samples is the maximum)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def count_results(body: bytes, graph: bool) -> int:
    """Rows of a SPARQL JSON result, or triples of N-Triples."""
    if graph:
        return sum(1 for line in body.splitlines() if line.strip() and not line.startswith(b"#"))
    import json

    data = json.loads(body)
    if "boolean" in data:
        return 1
    return len(data["results"]["bindings"])


async def _request(client: httpx.AsyncClient, endpoint: Endpoint, query: str, graph: bool, timeout: float) -> bytes:
    response = await client.get(
        endpoint.url,
        params={"query": query},
        headers={"Accept": GRAPH_ACCEPT if graph else SELECT_ACCEPT},
        timeout=timeout,
    )
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    return response.content


async def _timed(client: httpx.AsyncClient, endpoint: Endpoint, query: str, graph: bool, timeout: float, phase: Phase) -> bool:
    """One request, its latency (or its error) and the first answer's size recorded in
    ``phase``; whether it timed out."""
    started = time.perf_counter()
    try:
        body = await _request(client, endpoint, query, graph, timeout)
    except (httpx.HTTPError, RuntimeError) as error:
        phase.errors.append(f"{type(error).__name__}: {error}"[:300])
        return isinstance(error, httpx.TimeoutException)
    phase.latencies.append(time.perf_counter() - started)
    if phase.rows is None:
        phase.rows = count_results(body, graph)
    return False


async def _phase(endpoint: Endpoint, text: Callable[[int], str], graph: bool, *, workers: int, seconds: float, max_requests: int, timeout: float, first: int) -> Phase:
    phase = Phase()
    next_index = first
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while time.perf_counter() < deadline and next_index - first < max_requests:
            index = next_index
            next_index += 1
            if await _timed(client, endpoint, text(index), graph, timeout, phase):
                return  # the server is busy with it; do not pile more on

    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(workers)))
        phase.wall = time.perf_counter() - started
        phase.client_cpu = (time.process_time() - cpu) / phase.wall if phase.wall else 0.0
    return phase


def run_phase(endpoint: Endpoint, text: Callable[[int], str], graph: bool, *, workers: int = 1, seconds: float = 5.0, max_requests: int = 10_000, timeout: float = 60.0, first: int = 0) -> Phase:
    """Send queries ``text(first)``, ``text(first + 1)``, ... from ``workers`` concurrent
    clients until ``seconds`` have passed or ``max_requests`` were sent."""
    return asyncio.run(_phase(endpoint, text, graph, workers=workers, seconds=seconds, max_requests=max_requests, timeout=timeout, first=first))


class _Connection:
    """One kept-alive HTTP/1.1 connection to an endpoint, made with the standard
    library's ``http.client``: about a tenth of what a request through httpx costs the
    client, so that a median over one client is mostly the server's time. It is made
    again after an error."""

    def __init__(self, endpoint: Endpoint, graph: bool, timeout: float) -> None:
        parts = urlsplit(endpoint.url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.headers = {"Accept": GRAPH_ACCEPT if graph else SELECT_ACCEPT}
        self.timeout = timeout
        self.http: http.client.HTTPConnection | None = None

    def get(self, query: str) -> bytes:
        if self.http is None:
            self.http = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.http.request("GET", f"{self.path}?{urlencode({'query': query})}", headers=self.headers)
            response = self.http.getresponse()
            body = response.read()
        except BaseException:
            self.close()
            raise
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:300].decode('utf-8', 'replace')}")
        return body

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


def _lean_timed(connection: _Connection, query: str, graph: bool, phase: Phase) -> bool:
    """As :func:`_timed`, over ``connection``."""
    started = time.perf_counter()
    try:
        body = connection.get(query)
    except (OSError, http.client.HTTPException, RuntimeError) as error:
        phase.errors.append(f"{type(error).__name__}: {error}"[:300])
        return isinstance(error, TimeoutError)
    phase.latencies.append(time.perf_counter() - started)
    if phase.rows is None:
        phase.rows = count_results(body, graph)
    return False


def run_paired_phase(endpoints: list[Endpoint], text: Callable[[int], str], graph: bool, *, seconds: float = 10.0, max_requests: int = 10_000, timeout: float = 60.0) -> dict[str, Phase]:
    """One client sends each query ``text(i)`` to every endpoint in turn (alternating
    the order) until ``seconds`` have passed: medians measured side by side, under the
    same conditions of the machine, request for request (with one endpoint: the
    one-client phase of a server measured alone). Phases by endpoint name."""
    phases = {endpoint.name: Phase() for endpoint in endpoints}
    connections = {endpoint.name: _Connection(endpoint, graph, timeout) for endpoint in endpoints}
    failed: set[str] = set()
    deadline = time.perf_counter() + seconds
    cpu, started = time.process_time(), time.perf_counter()
    index = 0
    try:
        while time.perf_counter() < deadline and index < max_requests and len(failed) < len(endpoints):
            # The same query on every server in turn, the order turned round each time,
            # so that neither always runs just after the other.
            for endpoint in endpoints if index % 2 == 0 else endpoints[::-1]:
                if endpoint.name not in failed and _lean_timed(connections[endpoint.name], text(index), graph, phases[endpoint.name]):
                    failed.add(endpoint.name)  # the server is busy with it; do not pile more on
            index += 1
    finally:
        for connection in connections.values():
            connection.close()
    wall, spent = time.perf_counter() - started, time.process_time() - cpu
    sent = sum(len(p.latencies) + len(p.errors) for p in phases.values())
    for phase in phases.values():
        phase.wall = wall
        phase.client_cpu = spent / wall if wall else 0.0
        phase.client_per_request = spent / sent if sent else None
    return phases


WRK_REQUESTS = 2000  # distinct requests wrk cycles through


def wrk_binary() -> str | None:
    """wrk (Debian's package `wrk`), the native load generator, if installed."""
    import shutil

    return shutil.which("wrk")


def _lua(endpoint: Endpoint, text: Callable[[int], str], graph: bool) -> str:
    """A wrk script sending ``text(0)``, ``text(1)``, ... in turn, as GET ?query=."""
    import json

    path = urlsplit(endpoint.url).path
    targets = ",\n".join(json.dumps(f"{path}?{urlencode({'query': text(i)})}") for i in range(WRK_REQUESTS))
    accept = GRAPH_ACCEPT if graph else SELECT_ACCEPT
    return (
        f"local targets = {{\n{targets}\n}}\nlocal n = 0\n"
        f'request = function()\n  n = n + 1\n  return wrk.format("GET", targets[(n % #targets) + 1], {{["Accept"] = "{accept}"}})\nend\n'
    )


def run_wrk_phase(endpoint: Endpoint, text: Callable[[int], str], graph: bool, *, workers: int = 4, seconds: float = 5.0, timeout: float = 60.0) -> Phase:
    """Throughput with wrk: ``workers`` connections from one native thread, so that the
    client, not being Python, is not the limit. The latencies are not kept (wrk reports
    their distribution only); ``count`` and ``wall`` give the throughput."""
    import re
    import resource
    import subprocess
    import tempfile

    binary = wrk_binary()
    if binary is None:
        raise FileNotFoundError("wrk is not installed")
    phase = Phase()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(endpoint, text, graph))
    parts = urlsplit(endpoint.url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            [binary, "-t1", f"-c{workers}", f"-d{max(1, round(seconds))}s", f"--timeout={max(1, round(timeout))}s", "-s", script.name, f"{parts.scheme}://{parts.netloc}"],
            capture_output=True, text=True, timeout=seconds + timeout + 30,
        )
    finally:
        import os

        os.unlink(script.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", done.stdout)
    if done.returncode != 0 or not found:
        phase.errors.append(f"wrk failed: {done.stderr.strip()[:300] or done.stdout[-300:]}")
        return phase
    count, wall = int(found.group(1)), float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        phase.errors += [f"HTTP error ({errors.group(1)} responses)"]
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", done.stdout)
    if timeouts and int(timeouts.group(1)):
        phase.errors.append(f"timeouts: {timeouts.group(1)}")
    phase.counted = count - (int(errors.group(1)) if errors else 0)
    phase.wall = wall
    phase.client_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall if wall else 0.0
    return phase
