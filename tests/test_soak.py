"""Soak and crash rounds against a real ``patrolkg serve`` on loopback (``make soak``; not
part of ``make test``). Both stop by themselves.

``test_soak``: SOAK_CLIENTS (50) concurrent clients for SOAK_SECONDS (60) mix queries
of every kind (SELECT, ASK, CONSTRUCT, DESCRIBE, the competency questions) in every
format and by every method, Linked Data and UI page loads, valid and invalid
submissions, validations, retractions, syntax errors and a few runaway queries. Each
answer must have the status its request calls for; no 5xx but the runaways' 503.
Then the server's memory must be back near its start, and the store must hold exactly
the submissions the clients saw accepted, checked one by one against their log.
Throughput, latency percentiles and errors are printed and written as JSON to
SOAK_REPORT (docs/reliability.md is written from them).

``test_commits_do_not_grow_the_servers_memory``: 200 commits through the write path,
each with the snapshot the next query needs, in process, must not grow its Python heap,
and its native memory only within the engine's caches.

``test_kill_rounds``: SOAK_KILL_ROUNDS (20) times, the server is killed with SIGKILL
at a random moment, during start-up (seeding) or while clients submit and retract,
and restarted. Every submission acknowledged 201 must be whole, every acknowledged
retraction done, and nothing else half-present; the bundled data must be intact.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from patrolkg.resources import named_queries
from patrolkg.store import Store

pytestmark = pytest.mark.soak

CLIENTS = int(os.environ.get("SOAK_CLIENTS", "50"))
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
KILL_ROUNDS = int(os.environ.get("SOAK_KILL_ROUNDS", "20"))
RUNAWAYS = 8  # runaway queries in the whole soak
QUERY_TIMEOUT = 5

SECRET = "k8" * 16
TOKEN = {"PATROLKG_WRITE_TOKEN": "soak:" + SECRET}
AUTH = {"Authorization": "Bearer " + SECRET}
ID = "https://w3id.org/patrolkg/id/"
GRAPHS = "https://w3id.org/patrolkg/graph/"
PK = "https://w3id.org/patrolkg/ontology#"
TRIPLES = 7
JSON = {"Accept": "application/sparql-results+json"}


def statement(key: str) -> bytes:
    return f"""@prefix pk: <{PK}> .
<{ID}statement/soak-{key}> a pk:Statement ;
  <http://www.w3.org/2000/01/rdf-schema#label> "Soak statement {key}"@en ;
  pk:speaker <{ID}person/shinjiro-koizumi> ;
  pk:respondsTo <{ID}event/joint-patrol-10> ;
  pk:stance <{ID}stance/concern> ;
  pk:summary "Submitted under load."@en ;
  <http://purl.org/dc/terms/source> "test_soak" .""".encode()


def triples_of(url: str, key: str) -> int:
    query = f"SELECT (COUNT(*) AS ?c) WHERE {{ GRAPH ?g {{ <{ID}statement/soak-{key}> ?p ?o }} FILTER(?g != <{GRAPHS}inferred>) }}"
    response = httpx.get(url + "/sparql", params={"query": query}, headers=JSON, timeout=120)
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["c"]["value"])


def all_records(url: str) -> dict[str, dict[str, object]]:
    records: dict[str, dict[str, object]] = {}
    offset = 0
    while True:
        page = httpx.get(url + "/submissions", params={"offset": offset, "limit": 500}, timeout=120).json()
        records.update({item["id"]: item for item in page["items"]})
        offset += 500
        if offset >= page["total"]:
            assert len(records) == page["total"]
            return records


# --- memory of the server's process tree -------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> tuple[float, float]:
    """Resident memory (MiB) of a process and of all its descendants together."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents[ppid].append(int(entry.name))
    children, todo = [], list(parents[pid])
    while todo:
        child = todo.pop()
        children.append(child)
        todo += parents[child]
    return _rss_kib(pid) / 1024, sum(_rss_kib(c) for c in children) / 1024


# --- the clients ------------------------------------------------------------------------------------

RESULT_FORMATS = ["application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/tab-separated-values"]
GRAPH_FORMATS = ["text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml"]
SHORT_NAMES = {"application/sparql-results+json": "json", "text/csv": "csv", "text/tab-separated-values": "tsv", "text/turtle": "turtle", "application/n-triples": "ntriples", "application/ld+json": "jsonld", "application/rdf+xml": "rdfxml"}
QUERIES: list[tuple[str, str, list[str]]] = [
    ("select", f"PREFIX pk: <{PK}> SELECT ?p ?o WHERE {{ ?p a pk:JointPatrol ; pk:ordinal ?o }} ORDER BY ?o", RESULT_FORMATS),
    ("select", "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } } LIMIT 300", RESULT_FORMATS),
    ("ask", f"ASK {{ <{ID}state/japan> ?p ?o }}", RESULT_FORMATS),
    ("construct", f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ ?s a <{PK}State> ; ?p ?o }}", GRAPH_FORMATS),
    ("describe", f"DESCRIBE <{ID}event/joint-patrol-4>", GRAPH_FORMATS),
    *[("competency", q.text, RESULT_FORMATS) for q in named_queries() if q.id.startswith("cq")],
]
PAGES = [
    ("/id/state/japan", "text/html"), ("/id/state/japan", "text/turtle"), ("/id/event/joint-patrol-4", "application/ld+json"),
    ("/id/event/joint-patrol-10", "application/n-triples"), ("/id/person/shinjiro-koizumi", "application/rdf+xml"), ("/id/person/shinjiro-koizumi", "text/html"),
    ("/ontology", "text/html"), ("/ontology", "text/turtle"), ("/.well-known/void", "text/turtle"), ("/", "text/html"), ("/query", "text/html"),
    ("/timeline", "text/html"), ("/static/ui.css", "*/*"), ("/static/ui.js", "*/*"), ("/submissions?limit=20", "application/json"), ("/health", "*/*"),
    ("/reconcile/suggest/entity?prefix=Ja", "application/json"),
]
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?x { ?a ?b ?c } GRAPH ?y { ?d ?e ?f } GRAPH ?z { ?g ?h ?i } }"
INVALID = {
    "shape violation": (lambda key: f"<{ID}statement/soak-{key}> a <{PK}Statement> .".encode(), "text/turtle", AUTH, 422),
    "malformed": (lambda key: statement(key)[:-12], "text/turtle", AUTH, 400),
    "wrong media type": (statement, "text/plain", AUTH, 415),
    "no token": (statement, "text/turtle", {}, 401),
    "wrong token": (statement, "text/turtle", {"Authorization": "Bearer " + "x" * 32}, 401),
}


@dataclass
class Log:
    """What the clients did and saw: one entry per request, and the submissions."""

    entries: list[tuple[str, int, float, str]] = field(default_factory=list)  # kind, status, seconds, error code
    unexpected: list[str] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # key -> submission id
    retracted: set[str] = field(default_factory=set)  # keys
    rejected: set[str] = field(default_factory=set)  # keys that must not be stored
    runaways: int = 0


class Client:
    def __init__(self, number: int, http: httpx.AsyncClient, log: Log, rng: random.Random, deadline: float) -> None:
        self.number, self.http, self.log, self.rng, self.deadline = number, http, log, rng, deadline
        self.sent = 0
        self.mine: list[str] = []

    async def call(self, kind: str, expected: set[int], method: str, url: str, **kwargs: object) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            self.log.entries.append((kind, 0, time.perf_counter() - started, type(error).__name__))
            self.log.unexpected.append(f"{kind}: {method} {url}: {type(error).__name__} {error}")
            return None
        seconds = time.perf_counter() - started
        code = ""
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            code = response.json().get("error", {}).get("code", "")
        self.log.entries.append((kind, response.status_code, seconds, code))
        if response.status_code not in expected:
            self.log.unexpected.append(f"{kind}: {method} {url} answered {response.status_code} {code}: {response.text[:200]}")
        return response

    async def query(self) -> None:
        kind, text, formats = self.rng.choice(QUERIES)
        media_type = self.rng.choice(formats)
        how = self.rng.choice(["get", "form", "body", "format"])
        if how == "get":
            await self.call(kind, {200}, "GET", "/sparql", params={"query": text}, headers={"Accept": media_type})
        elif how == "form":
            await self.call(kind, {200}, "POST", "/sparql", data={"query": text}, headers={"Accept": media_type})
        elif how == "body":
            await self.call(kind, {200}, "POST", "/sparql", content=text.encode(), headers={"Accept": media_type, "Content-Type": "application/sparql-query"})
        else:
            await self.call(kind, {200}, "GET", "/sparql", params={"query": text, "format": SHORT_NAMES.get(media_type, media_type)})

    async def page(self) -> None:
        path, accept = self.rng.choice(PAGES)
        await self.call("page", {200}, "GET", path, headers={"Accept": accept})

    async def submit(self) -> None:
        key = f"c{self.number}-{self.sent}"
        self.sent += 1
        response = await self.call("submit", {201}, "POST", "/submissions", content=statement(key), headers={"Content-Type": "text/turtle", **AUTH})
        if response is not None and response.status_code == 201:
            self.log.accepted[key] = response.json()["id"]
            self.mine.append(key)

    async def submit_invalid(self) -> None:
        key = f"c{self.number}-{self.sent}-bad"
        self.sent += 1
        body, media_type, auth, status = INVALID[self.rng.choice(list(INVALID))]
        self.log.rejected.add(key)
        await self.call("invalid submission", {status}, "POST", "/submissions", content=body(key), headers={"Content-Type": media_type, **auth})

    async def validate(self) -> None:
        await self.call("validate", {200}, "POST", "/validate", content=statement(f"c{self.number}-validate"), headers={"Content-Type": "text/turtle"})

    async def retract(self) -> None:
        if not self.mine:
            return await self.submit()
        key = self.mine.pop(self.rng.randrange(len(self.mine)))
        response = await self.call("retract", {200}, "DELETE", f"/submissions/{self.log.accepted[key]}", headers=AUTH)
        if response is not None and response.status_code == 200:
            self.log.retracted.add(key)

    async def syntax_error(self) -> None:
        await self.call("syntax error", {400}, "GET", "/sparql", params={"query": "SELECT * WHERE { ?s ?p }"}, headers=JSON)

    async def runaway(self) -> None:
        if self.log.runaways >= RUNAWAYS:
            return await self.query()
        self.log.runaways += 1
        response = await self.call("runaway", {503}, "GET", "/sparql", params={"query": RUNAWAY}, headers=JSON)
        if response is not None and response.status_code == 503 and response.json()["error"]["code"] != "query_timeout":
            self.log.unexpected.append(f"runaway: 503 {response.text[:200]}")

    async def run(self) -> None:
        actions = [self.query, self.page, self.submit, self.submit_invalid, self.validate, self.retract, self.syntax_error, self.runaway]
        weights = [44, 30, 8, 6, 3, 1.5, 4, 0.5]
        while time.monotonic() < self.deadline:
            await self.rng.choices(actions, weights)[0]()


async def soak(url: str, clients: int, seconds: float, seed: int) -> tuple[Log, float]:
    log = Log()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as http:
        deadline = time.monotonic() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(Client(n, http, log, random.Random(seed + n), deadline).run() for n in range(clients)))
        return log, time.perf_counter() - started


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": cut[49], "p90": cut[89], "p99": cut[98], "max": ordered[-1]}


def report(log: Log, elapsed: float, memory: dict[str, float]) -> dict[str, object]:
    by_kind: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for kind, status, seconds, code in log.entries:
        by_kind[kind].append((status, seconds, code))
    return {
        "clients": CLIENTS,
        "seconds": round(elapsed, 1),
        "requests": len(log.entries),
        "throughput_per_second": round(len(log.entries) / elapsed, 1),
        "statuses": dict(Counter(status for _, status, _, _ in log.entries)),
        "latency_seconds": {kind: {"count": len(rows), **{k: round(v, 3) for k, v in _percentiles([s for _, s, _ in rows]).items()}, "statuses": dict(Counter(s for s, _, _ in rows))} for kind, rows in sorted(by_kind.items())},
        "all_latency_seconds": {k: round(v, 3) for k, v in _percentiles([s for _, _, s, _ in log.entries]).items()},
        "server_errors": [f"{kind} {status} {code}" for kind, status, _, code in log.entries if status >= 500 and not (status == 503 and code == "query_timeout")],
        "unexpected": log.unexpected[:50],
        "submissions": {"accepted": len(log.accepted), "retracted": len(log.retracted), "rejected": len(log.rejected)},
        "memory_mib": {k: round(v, 1) for k, v in memory.items()},
    }


def _warm_up(url: str) -> None:
    """One request of each kind, so that what the server caches for good is counted in the baseline."""
    for _, text, formats in QUERIES:
        for media_type in formats:
            assert httpx.get(url + "/sparql", params={"query": text}, headers={"Accept": media_type}, timeout=120).status_code == 200
    for path, accept in PAGES:
        assert httpx.get(url + path, headers={"Accept": accept}, timeout=120).status_code == 200
    assert httpx.post(url + "/validate", content=statement("warm-up"), headers={"Content-Type": "text/turtle"}, timeout=120).status_code == 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "store", "--query-timeout", str(QUERY_TIMEOUT), env=TOKEN).start()
    yield server
    server.stop()


def test_soak(server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert server.process is not None
    pid = server.process.pid
    _warm_up(server.url)
    time.sleep(2)
    start_main, start_children = tree_rss_mib(pid)
    peak = [start_main + start_children]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            peak.append(sum(tree_rss_mib(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log, elapsed = asyncio.run(soak(server.url, CLIENTS, SECONDS, seed=20261122))
    sampling.set()
    sampler.join(5)
    time.sleep(QUERY_TIMEOUT * 2 + 5)  # superseded snapshots are dropped after twice the timeout
    end_main, end_children = tree_rss_mib(pid)
    memory = {"start_main": start_main, "start_workers": start_children, "peak_total": max(peak), "end_main": end_main, "end_workers": end_children}

    # The store holds exactly what the clients saw accepted, one by one.
    records = all_records(server.url)
    mismatches = []
    accepted_ids = {log.accepted[key]: key for key in log.accepted}
    if set(records) != set(accepted_ids):
        mismatches.append(f"listed but not acknowledged: {sorted(set(records) - set(accepted_ids))[:5]}; acknowledged but not listed: {sorted(set(accepted_ids) - set(records))[:5]}")
    for key, submission_id in log.accepted.items():
        status = records.get(submission_id, {}).get("status")
        expected = "retracted" if key in log.retracted else "accepted"
        count = triples_of(server.url, key)
        if status != expected or count != (0 if key in log.retracted else TRIPLES):
            mismatches.append(f"{key}: record {status}, expected {expected}, {count} triples")
    for key in log.rejected:
        if triples_of(server.url, key):
            mismatches.append(f"{key}: rejected but stored")

    summary = report(log, elapsed, memory)
    summary["store_mismatches"] = mismatches[:50]
    text = json.dumps(summary, indent=2)
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).parent.mkdir(parents=True, exist_ok=True)
        Path(os.environ["SOAK_REPORT"]).write_text(text + "\n")
    with capsys.disabled():
        print("\n" + text)

    assert summary["server_errors"] == []
    assert log.unexpected == []
    assert mismatches == []
    assert log.runaways > 0 and log.accepted and log.retracted and log.rejected
    # Back near the start: what a soak leaves behind is what fills once and stays
    # bounded (the engine's caches, and what malloc keeps of the peak for reuse), not
    # what grows with the soak's length.
    assert end_main + end_children <= start_main + start_children + ENGINE_CACHES_MIB + ALLOCATOR_SLACK_MIB, memory


#: What RocksDB may cache per process, as Oxigraph configures it: the default 32 MiB
#: block cache, and 128 MiB more for the column family of strings (tuned for point
#: lookups). pyoxigraph offers no setting for either.
ENGINE_CACHES_MIB = 32 + 128
#: What malloc may keep, for reuse, of the memory a busy moment took: it returns the
#: top of its heaps to the system, not the holes below (two arenas: patrolkg.web.server).
ALLOCATOR_SLACK_MIB = 64


def test_commits_do_not_grow_the_servers_memory(tmp_path: Path) -> None:
    """200 commits, each followed by the snapshot the next query needs: the Python heap
    stays flat, and the native memory stays within what the engine's caches may hold
    (each snapshot flushes the engine's memtables, and the reads of the next write
    bring the new blocks into its caches, until they are full)."""
    # In a fresh process: one that has already freed memory (after the soak) would
    # reuse it and hide the growth.
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_commit_growth, args=(str(tmp_path), 200, results))
    child.start()
    native, heap = results.get(timeout=1200)
    child.join(60)
    assert heap < 2, f"200 commits grew the Python heap by {heap:.1f} MiB"
    assert native < ENGINE_CACHES_MIB, f"200 commits grew the process by {native:.1f} MiB"


def _commit_growth(directory: str, commits: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """MiB the process (and its Python heap) grows by over ``commits`` submissions, each
    followed by a snapshot as the server makes for the next query."""
    import tracemalloc

    from patrolkg.loading import load_bundle
    from patrolkg.store import OxigraphStore
    from patrolkg.submissions import Submissions, parse_submission
    from patrolkg.workers import SnapshotPublisher
    from patrolkg.writes import Writer

    store = OxigraphStore(Path(directory) / "store")
    load_bundle(store)
    publisher = SnapshotPublisher(store, Path(directory) / "snapshots", keep_seconds=1.0)
    submissions = Submissions(store, Writer(store, on_commit=publisher.changed))

    def commit(key: str) -> None:
        submissions.submit(parse_submission(statement(key), "text/turtle"), submitter="soak")
        publisher.current()

    try:
        for n in range(20):  # warm up: caches that fill once are not growth
            commit(f"memory-warm-{n}")
        tracemalloc.start()
        heap_before = tracemalloc.get_traced_memory()[0]
        before = tree_rss_mib(os.getpid())[0]
        for n in range(commits):
            commit(f"memory-{n}")
        heap = (tracemalloc.get_traced_memory()[0] - heap_before) / 2**20
        results.put((tree_rss_mib(os.getpid())[0] - before, heap))
    finally:
        publisher.close()
        store.close()


# --- SIGKILL, over and over ----------------------------------------------------------------------


@dataclass
class Crashes:
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> id
    attempted: list[str] = field(default_factory=list)
    retraction_acknowledged: set[str] = field(default_factory=set)
    retraction_attempted: set[str] = field(default_factory=set)


def _stream(url: str, prefix: str, crashes: Crashes, stop: threading.Event, lock: threading.Lock) -> None:
    n = 0
    while not stop.is_set():
        key = f"{prefix}-{n}"
        n += 1
        crashes.attempted.append(key)
        try:
            response = httpx.post(url + "/submissions", content=statement(key), headers={"Content-Type": "text/turtle", **AUTH}, timeout=60)
        except httpx.HTTPError:
            return
        if response.status_code == 201:
            with lock:
                crashes.acknowledged[key] = response.json()["id"]


def _retractor(url: str, rng: random.Random, crashes: Crashes, stop: threading.Event, lock: threading.Lock) -> None:
    while not stop.is_set():
        with lock:
            candidates = sorted(set(crashes.acknowledged) - crashes.retraction_attempted)
        if not candidates:
            time.sleep(0.1)
            continue
        key = rng.choice(candidates)
        crashes.retraction_attempted.add(key)
        try:
            response = httpx.delete(url + f"/submissions/{crashes.acknowledged[key]}", headers=AUTH, timeout=60)
        except httpx.HTTPError:
            return
        if response.status_code == 200:
            crashes.retraction_acknowledged.add(key)


def test_kill_rounds(tmp_path: Path, bundle_store: Store) -> None:
    store = tmp_path / "store"
    rng = random.Random(8)
    crashes = Crashes()
    lock = threading.Lock()
    kills_during_start = 0
    for round_number in range(KILL_ROUNDS):
        server = LiveServer(store, env=TOKEN)
        if round_number % 5 == 0:
            # Killed while it starts (on the first round, while it seeds the empty store).
            killer = threading.Timer(rng.uniform(0.05, 1.5), lambda s=server: s.process and s.process.send_signal(signal.SIGKILL))
            killer.start()
            try:
                server.start()
            except RuntimeError:
                kills_during_start += 1
            killer.join()
            if server.process is not None:
                server.process.wait()
            continue
        server.start()
        stop = threading.Event()
        threads = [threading.Thread(target=_stream, args=(server.url, f"r{round_number}w{w}", crashes, stop, lock)) for w in range(3)]
        threads.append(threading.Thread(target=_retractor, args=(server.url, rng, crashes, stop, lock)))
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.5, 4.0))
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for thread in threads:
            thread.join(90)

    server = LiveServer(store, env=TOKEN).start()
    try:
        assert crashes.acknowledged, "no submission was acknowledged before the kills"
        problems = []
        for graph in (g for g in bundle_store.graph_names() if g != GRAPHS + "inferred"):
            expected = bundle_store.triple_count(graph)
            query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
            found = int(httpx.get(server.url + "/sparql", params={"query": query}, headers=JSON, timeout=60).json()["results"]["bindings"][0]["n"]["value"])
            if found != expected:
                problems.append(f"bundled graph {graph}: {found} triples, {expected} expected")
        records = all_records(server.url)
        for key in crashes.attempted:
            count = triples_of(server.url, key)
            submission_id = crashes.acknowledged.get(key)
            status = records.get(submission_id or "", {}).get("status")
            if key in crashes.retraction_acknowledged:
                if (status, count) != ("retracted", 0):
                    problems.append(f"{key}: retraction acknowledged, but record {status} and {count} triples")
            elif submission_id is not None:
                if (status, count) not in (("accepted", TRIPLES), ("retracted", 0)) or (status == "retracted" and key not in crashes.retraction_attempted):
                    problems.append(f"{key}: acknowledged, but record {status} and {count} triples")
            elif count not in (0, TRIPLES):
                problems.append(f"{key}: never acknowledged and half-written ({count} triples)")
        for record in records.values():
            held = int(httpx.get(server.url + "/sparql", params={"query": f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{record['graph']}> {{ ?s ?p ?o }} }}"}, headers=JSON, timeout=60).json()["results"]["bindings"][0]["n"]["value"])
            if (record["status"] == "accepted") != (held == TRIPLES) or held not in (0, TRIPLES):
                problems.append(f"record {record['id']} is {record['status']} and its graph holds {held} triples")
        print(f"\n{KILL_ROUNDS} rounds ({kills_during_start} killed while starting): {len(crashes.attempted)} submissions attempted, {len(crashes.acknowledged)} acknowledged, {len(crashes.retraction_acknowledged)} retractions acknowledged")
        assert problems == [], problems[:20]
    finally:
        server.stop()
