"""The benchmark (bench/): its generator makes data that conforms, and the whole harness
runs at a tiny scale, so it never rots. No test here asserts a timing."""

from __future__ import annotations

import argparse
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import rdflib
from rdflib.compare import isomorphic

from patrolkg.validation import validate

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
from client import Endpoint, run_paired_phase  # noqa: E402
import report  # noqa: E402
from queries import BenchQuery, query_mix  # noqa: E402
from servers import Server, tool  # noqa: E402
from sessions import query_server  # noqa: E402

ID = "https://w3id.org/patrolkg/id/"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("gen") / "data.nt"
    generate.write(path, 5000, seed=3)
    return path, json.loads(Path(str(path) + ".manifest.json").read_text())


def test_generated_data_conforms_to_the_shapes(small: tuple[Path, dict]) -> None:
    path, manifest = small
    report_ = validate(rdflib.Graph().parse(str(path), format="nt"))
    assert report_.conforms, report_.text[:2000]
    counts = manifest["counts"]
    assert counts["statements"] > 100 and counts["persons"] > 5 and counts["patrols"] > 0 and counts["summits"] > 0


def test_generated_iris_are_patrolkg_ids_that_cannot_collide_with_the_bundle(small: tuple[Path, dict]) -> None:
    path, _ = small
    subjects = {str(s) for s in rdflib.Graph().parse(str(path), format="nt").subjects()}
    assert subjects and all(s.startswith(ID) and "/bench-" in s for s in subjects)


def test_generation_is_deterministic_and_sized(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.nt", tmp_path / "b.nt", tmp_path / "c.nt"
    world = generate.write(first, 3000, seed=11)
    generate.write(second, 3000, seed=11)
    generate.write(other, 3000, seed=12)
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    lines = first.read_text(encoding="utf-8").splitlines()
    assert len(lines) == world.triples >= 3000


def test_turtle_output_holds_the_same_graph(tmp_path: Path) -> None:
    generate.write(tmp_path / "a.nt", 2000, seed=5)
    generate.write(tmp_path / "a.ttl", 2000, seed=5, fmt="turtle")
    nt = rdflib.Graph().parse(str(tmp_path / "a.nt"), format="nt")
    ttl = rdflib.Graph().parse(str(tmp_path / "a.ttl"), format="turtle")
    assert isomorphic(nt, ttl)


def test_a_submission_has_exactly_its_size_and_conforms_with_the_data(small: tuple[Path, dict]) -> None:
    path, manifest = small
    data = rdflib.Graph().parse(str(path), format="nt")
    for index, size in ((0, 100), (1, 100), (2, 37)):
        text = generate.submission(manifest, index, size=size)
        submitted = rdflib.Graph().parse(data=text, format="nt")
        assert len(submitted) == size
        report_ = validate(submitted, context=data)
        assert report_.conforms, report_.text[:2000]
    assert generate.submission(manifest, 0) == generate.submission(manifest, 0) != generate.submission(manifest, 1)


def test_every_query_of_the_mix_is_named_once_and_fills_its_parameters(small: tuple[Path, dict]) -> None:
    _, manifest = small
    mix = query_mix(ROOT / "queries")
    assert len({q.name for q in mix}) == len(mix)
    assert {q.kind for q in mix} == {"floor", "point", "engine"}
    for query in mix:
        text = query.texts(manifest, "x")(0)
        assert not re.search(r"\{(person|event|statement|state|patrol|word)\}", text), query.name
        assert "<urn:none>" not in text
        assert query.texts(manifest, "x")(3) == query.texts(manifest, "x")(3)


def test_the_report_lands_between_its_markers_and_keeps_the_rest(tmp_path: Path) -> None:
    target = tmp_path / "benchmarks.md"
    target.write_text(f"# Benchmarks\n\nanalysis before\n\n{report.BEGIN}\nold\n{report.END}\n\nanalysis after\n")
    report.write(target, {"queries": []})
    text = target.read_text()
    assert "analysis before" in text and "analysis after" in text and "\nold\n" not in text
    assert text.count(report.BEGIN) == text.count(report.END) == 1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    work = tmp_path_factory.mktemp("bench")
    output = work / "benchmarks.md"
    command = [
        sys.executable, str(BENCH / "run.py"), "--triples", "3000", "--load-sizes", "3000", "--owlrl-sizes", "3000",
        "--phase-seconds", "0.3", "--concurrency", "2", "--submissions", "3", "--query-timeout", "60", "--compact-after", "3",
        "--step-cap", "300", "--rdflib-load-cap", "120", "--workdir", str(work), "--output", str(output),
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-4000:]
    yield output.read_text(encoding="utf-8"), json.loads((work / "results.json").read_text())


@pytest.mark.slow
def test_the_tiny_run_reports_every_row(tiny_run: tuple[str, dict]) -> None:
    text, results = tiny_run
    assert report.BEGIN in text and report.END in text
    for query in query_mix(ROOT / "queries"):
        assert f"| {query.name} | {query.kind} |" in text, query.name
    for row in ("load of 3k triples", "a 100-triple submission", "OWL RL materialization of 3k", "patrolkg serve on 3k",
                "engine-bound queries", "point lookups", "every query ≥ 10× faster than rdflib-endpoint"):
        assert row in text, row
    assert text.count("| **met** |") + text.count("| **missed** |") + text.count("| **not measured** |") == 7
    for section in ("### Bulk load", "### OWL RL materialization", "### A 100-triple submission", "| patrolkg compacted |", "### Servers: startup and memory", "### HTTP queries in detail"):
        assert section in text, section
    assert "Python" in text and "pyoxigraph" in text and "python bench/run.py" in text


@pytest.mark.slow
def test_the_tiny_run_measured_patrolkg_fully(tiny_run: tuple[str, dict]) -> None:
    _, results = tiny_run
    patrolkg = results["servers"]["patrolkg"]
    assert patrolkg["status"] == "ok"
    assert all(q["status"] == "ok" and q["sequential"]["count"] >= 1 for q in patrolkg["queries"].values())
    assert results["loads"][-1]["status"] == "ok"
    assert results["submissions"]["count"] == 3 and not results["submissions"]["errors"]
    after = results["submissions"]["after"]  # the queries again, once the server compacted its store
    assert after["status"] == "ok", after
    assert after["compacted"].keys() == after["right_after"].keys() and all(m["patrolkg"] for m in after["compacted"].values())
    assert results["materialization"][0]["compare"]["equal"]


@pytest.mark.slow
@pytest.mark.parametrize("server,package", [("oxigraph", "oxigraph"), ("rdflib-endpoint", "rdflib-endpoint")])
def test_the_peers_ran_or_say_why_not(tiny_run: tuple[str, dict], server: str, package: str) -> None:
    text, results = tiny_run
    entry = results["servers"][server]
    if tool(package) is None:
        assert entry["status"] == "skipped" and "not installed" in entry["reason"]
        assert "not installed" in text
        return
    assert entry["status"] == "ok", entry.get("reason")
    assert all(q["status"] == "ok" for q in entry["queries"].values())
    ours = results["servers"]["patrolkg"]["queries"]
    # Same data, same queries: the engines agree on the size of every answer, except
    # where their semantics differ (rdflib keeps duplicates of `|` paths and describes
    # more in DESCRIBE).
    differing = {name for name, q in entry["queries"].items() if q["rows"] != ours[name]["rows"]}
    assert differing <= ({"describe", "event-reactions", "protests-of-approached", "cq06-fourth-patrol-officials", "cq07-protest-and-justification"} if server == "rdflib-endpoint" else set())


class _Sparql(http.server.BaseHTTPRequestHandler):
    """A stand-in SPARQL endpoint for the load clients: answers ``rows N`` with N rows,
    ``fail`` with HTTP 500, and ``close`` with an answer that closes the connection;
    keeps every query text it was sent."""

    protocol_version = "HTTP/1.1"
    received: list[str] = []
    #: Held while a query ``sleep S`` sleeps: one such query at a time, as rdflib-endpoint.
    busy = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 - the handler's name
        query = parse_qs(urlsplit(self.path).query)["query"][0]
        self.received.append(query)
        if slept := re.search(r"sleep ([\d.]+)", query):
            with self.busy:
                time.sleep(float(slept.group(1)))
        found = re.search(r"rows (\d+)", query)
        body = json.dumps({"head": {"vars": ["x"]}, "results": {"bindings": [{"x": {"type": "literal", "value": str(i)}} for i in range(int(found.group(1)) if found else 0)]}}).encode()
        status = 500 if "fail" in query else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(body)))
        if "close" in query:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def endpoints() -> Iterator[list[tuple[Endpoint, type[_Sparql]]]]:
    servers, found = [], []
    for i in range(2):
        handler: type[_Sparql] = type("Handler", (_Sparql,), {"received": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        found.append((Endpoint(f"s{i}", f"http://127.0.0.1:{server.server_address[1]}/sparql"), handler))
    yield found
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_one_client_phase_sends_each_query_to_every_server_in_turn(endpoints: list[tuple[Endpoint, type[_Sparql]]]) -> None:
    texts = ["SELECT * { ?s ?p 'é & # + %20' } # rows 3", "ASK {} # rows 2 close", "SELECT * {} # fail", "SELECT ?x {} # rows 5"]
    phases = run_paired_phase([e for e, _ in endpoints], lambda i: texts[i % len(texts)], False, seconds=60, max_requests=8)
    for endpoint, handler in endpoints:
        phase = phases[endpoint.name]
        # Every text arrived whole; the failure is an error, and the client went on
        # after it and after the server closed its connection.
        assert phase.count == 6 and len(phase.errors) == 2 and all("HTTP 500" in e for e in phase.errors)
        assert phase.rows == 3 and phase.median is not None and phase.wall > 0
        assert phase.client_per_request is not None and phase.client_per_request > 0
        assert handler.received == [texts[i % len(texts)] for i in range(8)]


def test_a_server_that_does_not_answer_in_time_is_given_no_more_requests(endpoints: list[tuple[Endpoint, type[_Sparql]]]) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    try:
        late = Endpoint("late", f"http://127.0.0.1:{silent.getsockname()[1]}/sparql")
        phases = run_paired_phase([endpoints[0][0], late], lambda i: "ASK {} # rows 1", False, seconds=3, max_requests=50, timeout=0.2)
    finally:
        silent.close()
    assert phases["late"].count == 0 and len(phases["late"].errors) == 1 and "Timeout" in phases["late"].errors[0]
    assert phases["s0"].count == 50  # the other server was asked on to the end


def test_a_server_slower_than_a_phase_is_given_time_by_patrolkg_median_and_one_request_per_client(endpoints: list[tuple[Endpoint, type[_Sparql]]], tmp_path: Path) -> None:
    endpoint, handler = endpoints[0]
    server = Server("one-at-a-time", [], 0, endpoint.url, "/sparql", tmp_path / "log")
    mix = [BenchQuery("slow", "engine", "", "SELECT * {{}} # sleep 0.3 rows 1"), BenchQuery("late", "engine", "", "SELECT * {{}} # sleep 1 rows 1")]
    args = argparse.Namespace(phase_seconds=0.1, concurrency=3, query_timeout=60.0)
    # Waited for up to 12× patrolkg's median, past its own limit of 0.1 s: the slow
    # query is answered (12 × 0.05 s), the late one times out (12 × 0.02 s).
    results = query_server(server, mix, {}, args, timeout=0.1, budget=60, reference={"slow": 0.05, "late": 0.02})
    slow, late = results["slow"], results["late"]
    assert slow["status"] == "ok" and slow["sequential"]["count"] == 1
    # One answer outlasts a phase: each of the three clients sent one request, queued.
    assert slow["concurrent"]["count"] == 3 and slow["concurrent"]["client"] == "python" and slow["concurrent"]["errors"] == 0
    assert "one request of each of the 3 clients" in slow["note"]
    assert late["status"] == "timeout" and late["timeout"] == pytest.approx(0.24)
    assert handler.received.count(mix[0].template.format()) == 4


def test_rdflib_endpoint_is_compared_by_throughput_where_both_were_measured() -> None:
    def entry(median: float | None, throughput: float | None, status: str = "ok") -> dict:
        if status != "ok":
            return {"status": status, "timeout": 60.0}
        return {"status": "ok", "sequential": {"median_ms": median}, "concurrent": {"throughput": throughput} if throughput else {}}

    results = {
        "config": {"concurrency": 4},
        "queries": [{"name": n, "kind": "engine"} for n in ("short", "slow", "timed-out")],
        "servers": {
            "patrolkg": {"status": "ok", "queries": {"short": entry(1.6, 5000), "slow": entry(2000, 0.8), "timed-out": entry(5000, None)}},
            "rdflib-endpoint": {"status": "ok", "queries": {"short": entry(2.7, 400), "slow": entry(15000, None), "timed-out": entry(None, None, "timeout")}},
        },
    }
    row = next(r for r in report.targets(results) if r[0].startswith("every query"))
    # short: 12.5× by throughput though 1.7× by median; slow: 7.5× by median (rdflib-endpoint's
    # throughput unmeasured); timed-out: 12× at least, by the timeout.
    assert row[1].startswith("2 of 3 by throughput (4 connections, the one-client median for 2 ")
    assert "smallest gap slow 7.5× by median" in row[1] and "by the one-client median alone 1 of 3" in row[1]
    assert row[2] == "missed"
    results["servers"]["patrolkg"]["queries"]["slow"] = entry(1400, 0.8)
    assert next(r for r in report.targets(results) if r[0].startswith("every query"))[2] == "met"


def test_dates_stay_within_the_shapes_range_at_full_scale() -> None:
    # The shapes' pattern only lets years 1900-2099 through; the patrol series must
    # not run past it even at a million triples (a small sample cannot show this).
    world, triples = generate.generate(1_000_000, seed=7)
    years = {int(o[1:5]) for _, p, o in triples if p == f"<{generate.PK}date>"}
    assert min(years) >= 1900 and max(years) <= 2099
    assert len(world.patrols) == generate.MAX_PATROLS
