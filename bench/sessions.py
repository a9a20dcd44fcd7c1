"""The HTTP side of the benchmark: patrolkg and the Oxigraph server together on the same
quads, each query's median measured request for request side by side; then
rdflib-endpoint on its own; the submissions on patrolkg."""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx

import generate
import profiling
from client import Endpoint, Phase, run_paired_phase, run_phase, run_wrk_phase, wrk_binary
from process import HERE, PYTHON, last_json, log, run_bounded
from queries import BenchQuery
from servers import MemoryWatch, Server, oxigraph_server, patrolkg_server, rdflib_server, tool

__all__ = ["serve_and_query", "query_server", "query_side_by_side", "measure_submissions", "measure_after_writes", "profile_submissions"]


#: A server that answers one query at a time (rdflib-endpoint) is measured against
#: patrolkg's one-client medians (``reference``): it may take up to this many times
#: patrolkg's median on a query before it times out (past its own time limit, up to
#: the other servers' limit), so that a timeout still says whether the 10x target holds.
SETTLE_FACTOR = 12.0
#: Where one of its answers outlasts a phase, its concurrent phase is one request from
#: each client (``concurrency`` answers in all, queued), as long as that many answers
#: take at most this many seconds one after the other.
LONG_PHASE_CAP = 90.0


def query_server(server: Server, mix: list[BenchQuery], manifest: dict, args: argparse.Namespace, *, timeout: float, budget: float, reference: dict[str, float] | None = None) -> dict:
    """Every query of the mix: one warm-up (its rows and latency), a one-client phase
    (median, p99) and a concurrent phase (throughput), with the clients of
    :func:`query_side_by_side`; within ``budget`` seconds, each answer within
    ``timeout``, or within :data:`SETTLE_FACTOR` times the query's ``reference``
    seconds (patrolkg's median) where that is longer, up to ``args.query_timeout``."""
    endpoint = Endpoint(server.name, server.sparql)
    results: dict[str, dict] = {}
    alive = True
    deadline = time.monotonic() + budget
    for query in mix:
        entry: dict = {}
        results[query.name] = entry
        if not alive or time.monotonic() > deadline:
            reason = "the server could not be restarted after a timeout" if not alive else f"past this server's time budget of {budget:.0f} s"
            entry.update(status="not run", errors=[reason])
            continue
        limit = _time_limit(timeout, (reference or {}).get(query.name), args.query_timeout)
        warm = run_phase(endpoint, query.texts(manifest, "warm-up"), query.graph_result, workers=1, seconds=limit, max_requests=1, timeout=limit)
        if not warm.latencies:
            entry.update(status="timeout" if any("Timeout" in e for e in warm.errors) else "error", errors=warm.errors[:2], timeout=limit)
            log(f"{server.name} {query.name}: {entry['status']} {warm.errors[:1]}")
            if entry["status"] == "timeout" and not _wait_responsive(server, 10):
                # rdflib-endpoint runs queries on its event loop: it stays blocked
                # until the abandoned query ends, which may be never in practice.
                entry["note"] = "the server stayed busy with the abandoned query; restarted"
                server.stop()
                try:
                    server.start(args.rdflib_load_cap if server.name == "rdflib-endpoint" else args.step_cap)
                except RuntimeError:
                    alive = False
            continue
        entry.update(status="ok", warm_ms=warm.latencies[0] * 1000, rows=warm.rows)
        one = warm.latencies[0]
        if one > args.phase_seconds:
            # One request outlasts a phase: the warm-up is the median's sample; the
            # concurrent clients send one request each, where that is affordable.
            entry["sequential"] = _phase_dict(warm)
            entry["note"] = "one request outlasts a phase: a single sample"
            if one * args.concurrency <= min(LONG_PHASE_CAP, deadline - time.monotonic()):
                phase = run_phase(endpoint, query.texts(manifest, "concurrent"), query.graph_result, workers=args.concurrency, seconds=LONG_PHASE_CAP, max_requests=args.concurrency, timeout=2 * LONG_PHASE_CAP)
                entry["concurrent"] = {**_phase_dict(phase), "client": "python"}
                entry["note"] += f"; throughput from one request of each of the {args.concurrency} clients ({phase.wall:.0f} s)"
        else:
            # The same clients as patrolkg's and the Oxigraph server's (side by side).
            entry["sequential"] = _phase_dict(run_paired_phase([endpoint], query.texts(manifest, "sequential"), query.graph_result, seconds=args.phase_seconds, timeout=limit)[endpoint.name])
            entry["concurrent"] = _throughput(endpoint, query, manifest, args, limit, one=one)
        log(f"{server.name} {query.name}: median {entry['sequential']['median_ms']:.1f} ms, rows {warm.rows}")
    return results


def _time_limit(timeout: float, reference: float | None, ceiling: float) -> float:
    """Seconds to wait for one answer (see :data:`SETTLE_FACTOR`)."""
    if reference is None:
        return timeout
    return max(timeout, min(SETTLE_FACTOR * reference, ceiling))


def query_side_by_side(servers: list[Server], mix: list[BenchQuery], manifest: dict, args: argparse.Namespace, *, timeout: float) -> dict[str, dict[str, dict]]:
    """Every query of the mix on every server at once: a warm-up on each, then one
    client sending each request to every server in turn (the medians, side by side,
    for twice a phase), then each server's concurrent phase (throughput), one right
    after the other. Results by server, then query, as :func:`query_server` gives them."""
    endpoints = [Endpoint(server.name, server.sparql) for server in servers]
    results: dict[str, dict[str, dict]] = {server.name: {} for server in servers}
    for query in mix:
        warm = {e.name: run_phase(e, query.texts(manifest, "warm-up"), query.graph_result, workers=1, seconds=timeout, max_requests=1, timeout=timeout) for e in endpoints}
        entries = {name: results[name].setdefault(query.name, {}) for name in results}
        live = []
        for endpoint in endpoints:
            phase, entry = warm[endpoint.name], entries[endpoint.name]
            if phase.latencies:
                entry.update(status="ok", warm_ms=phase.latencies[0] * 1000, rows=phase.rows)
                live.append(endpoint)
            else:
                entry.update(status="timeout" if any("Timeout" in e for e in phase.errors) else "error", errors=phase.errors[:2], timeout=timeout)
        if any(warm[e.name].latencies[0] > args.phase_seconds for e in live):
            # One request outlasts a phase: the warm-ups are the samples.
            for endpoint in live:
                entries[endpoint.name].update(sequential=_phase_dict(warm[endpoint.name]), note="one request outlasts a phase: a single sample")
        elif live:
            paired = run_paired_phase(live, query.texts(manifest, "sequential"), query.graph_result, seconds=args.phase_seconds * len(live), timeout=timeout)
            for endpoint in live:
                entries[endpoint.name]["sequential"] = _phase_dict(paired[endpoint.name])
                entries[endpoint.name]["concurrent"] = _throughput(endpoint, query, manifest, args, timeout)
        log(f"{query.name}: " + ", ".join(f"{name} median {entries[name]['sequential']['median_ms']:.1f} ms" for name in results if "sequential" in entries[name]))
    return results


#: wrk counts the answers that arrive within its phase: a query taking more than this
#: share of a phase on a server that answers one at a time (rdflib-endpoint) would
#: have few or none; the Python client waits for the answers it asked for instead.
WRK_SHARE = 0.05


def _throughput(endpoint: Endpoint, query: BenchQuery, manifest: dict, args: argparse.Namespace, timeout: float, *, one: float | None = None) -> dict:
    """The concurrent phase: with wrk where it is installed (a Python client saturates
    its core at about a thousand requests a second, below what the servers can do),
    else with the Python client, and the report says which. ``one``: seconds one
    answer took, when a server answers one query at a time (see :data:`WRK_SHARE`)."""
    texts = query.texts(manifest, "concurrent")
    if wrk_binary() is not None and (one is None or one <= args.phase_seconds * WRK_SHARE):
        return {**_phase_dict(run_wrk_phase(endpoint, texts, query.graph_result, workers=args.concurrency, seconds=args.phase_seconds, timeout=timeout)), "client": "wrk"}
    return {**_phase_dict(run_phase(endpoint, texts, query.graph_result, workers=args.concurrency, seconds=args.phase_seconds, timeout=timeout)), "client": "python"}


def _phase_dict(phase: Phase) -> dict:
    return {
        "count": phase.count, "median_ms": phase.median * 1000 if phase.median is not None else None,
        "p99_ms": phase.p99 * 1000 if phase.p99 is not None else None, "throughput": phase.throughput,
        "client_cpu": phase.client_cpu, "client_us_per_request": phase.client_per_request * 1e6 if phase.client_per_request is not None else None, "errors": len(phase.errors), "first_error": phase.errors[0] if phase.errors else None,
    }


def _wait_responsive(server: Server, bound: float) -> bool:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.sparql, params={"query": "ASK {}"}, timeout=10).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(1)
    return False


def measure_submissions(server: Server, token: str, manifest: dict, count: int, seconds: float) -> dict:
    """POST /submissions, one after another: ``count`` of them or ``seconds``, whichever first."""
    latencies, errors, added = [], [], []
    deadline = time.monotonic() + seconds
    base = server.sparql.rsplit("/", 1)[0]
    with httpx.Client(trust_env=False, timeout=120) as http:
        for index in range(count):
            if time.monotonic() > deadline:
                break
            body = generate.submission(manifest, index)
            started = time.perf_counter()
            response = http.post(base + "/submissions", content=body.encode(), params={"source": "patrolkg benchmark"},
                                 headers={"Content-Type": "application/n-triples", "Authorization": f"Bearer {token}", "Accept": "application/json"})
            elapsed = time.perf_counter() - started
            if response.status_code == 201:
                latencies.append(elapsed)
                added.append(response.json().get("inferred_triples_added", 0))
            else:
                errors.append(f"HTTP {response.status_code}: {response.text[:400]}")
    phase = Phase(latencies=latencies)
    return {"count": len(latencies), "median_ms": phase.median * 1000 if latencies else None, "p99_ms": phase.p99 * 1000 if latencies else None,
            "latencies_ms": [x * 1000 for x in latencies], "errors": errors[:3], "error_count": len(errors), "inferred_added": added[:5]}


#: Engine-bound queries timed again after the submissions, before and after patrolkg
#: compacts its store: short ones, where the files commits leave weigh most.
AFTER_WRITES = ("event-reactions", "cq01-patrols", "cq03-fourth-patrol-airspace", "cq06-fourth-patrol-officials")
#: Seconds each of them is timed (side by side) in each state, at most: all four
#: within the server's pause before it compacts (PATROLKG_COMPACT_AFTER, 30 s by default).
AFTER_WRITES_SECONDS = 5.0


def _compaction(server: Server) -> dict:
    """What patrolkg's /health says of compaction ({} if nothing)."""
    try:
        return httpx.get(server.sparql.rsplit("/", 1)[0] + "/health", timeout=10).json().get("compaction", {})  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return {}


def measure_after_writes(servers: list[Server], patrolkg: Server, mix: list[BenchQuery], manifest: dict, *, seconds: float, timeout: float, wait: float) -> dict:
    """The queries of :data:`AFTER_WRITES`, side by side on every server, right after
    the submissions, then again once patrolkg has compacted its store (waited for up
    to ``wait`` seconds, on /health), each for ``seconds``. The Oxigraph server's store
    took no writes."""
    chosen = [query for query in mix if query.name in AFTER_WRITES]
    endpoints = [Endpoint(server.name, server.sparql) for server in servers]

    def medians() -> dict[str, dict[str, float | None]]:
        found = {}
        for query in chosen:
            paired = run_paired_phase(endpoints, query.texts(manifest, "sequential"), query.graph_result, seconds=seconds, timeout=timeout)
            found[query.name] = {name: phase.median * 1000 if phase.median is not None else None for name, phase in paired.items()}
        return found

    before = _compaction(patrolkg)
    if not before:
        return {"status": "skipped", "reason": "this patrolkg does not report compaction in /health"}
    done = int(before.get("compactions", 0))
    result: dict = {"status": "ok", "pending_commits": before.get("pending_commits"), "right_after": medians()}
    if int(_compaction(patrolkg).get("compactions", 0)) > done:
        result["note"] = "patrolkg compacted its store while the queries right after the submissions were timed"
    started = time.monotonic()
    while int((state := _compaction(patrolkg)).get("compactions", 0)) <= done or state.get("running"):
        if time.monotonic() - started > wait:
            result.update(status="not compacted", reason=f"patrolkg had not compacted its store {wait:.0f} s after the submissions")
            return result
        time.sleep(0.5)
    result.update(waited_seconds=time.monotonic() - started, compaction_seconds=state.get("last_seconds"), compacted=medians())
    return result


def profile_submissions(work: Path, store: Path, manifest_file: Path, cap: float, count: int = 5) -> dict | None:
    """pyinstrument on ``count`` submissions through the library, after a warm-up one
    (None without pyinstrument, which only the ``bench`` extra installs)."""
    if importlib.util.find_spec("pyinstrument") is None:
        return None
    output = work / "profile-submission.json"
    command = [PYTHON, str(HERE / "workloads.py"), "submit", "--store", str(store), "--manifest", str(manifest_file), "--count", str(count), "--profile", str(output)]
    _, code, _, out = run_bounded(command, cap)
    if code != 0 or not output.exists():
        return None
    total, spots = profiling.hotspots(output, include=("pyshacl/entrypoints.py:validate", "rdflib/graph.py:parse", "<built-in>:Store."), limit=16)
    return {"total": total, "submissions": count, "hotspots": [asdict(h) for h in spots], "file": str(output), "seconds": last_json(out).get("seconds")}


def serve_and_query(work: Path, served: dict, mix: list[BenchQuery], manifest: dict, manifest_file: Path, loads: list[dict], data: dict[int, dict], args: argparse.Namespace) -> tuple[dict, dict]:
    """patrolkg and the Oxigraph server together on the same quads: start, query side by
    side, measure, stop; the submissions run last on patrolkg (they change its store).
    Then rdflib-endpoint alone."""
    servers: dict[str, dict] = {}
    submissions: dict = {}
    dump = work / f"dataset-{served['size']}.nq"
    _, code, _, out = run_bounded([PYTHON, str(HERE / "workloads.py"), "dump", "--store", served["store"], "--out", str(dump)], args.step_cap)
    quads = last_json(out).get("quads")
    token = secrets.token_hex(16)
    store = Path(served["store"])

    pair = [("patrolkg", patrolkg_server(store, work / "patrolkg.log", token=token, query_timeout=args.query_timeout, compact_after=args.compact_after), {})]
    if tool("oxigraph") is None:
        servers["oxigraph"] = {"status": "skipped", "reason": "the oxigraph package (the `oxigraph` server binary) is not installed: pip install 'patrolkg[bench]'"}
    else:
        location = work / f"oxigraph-{served['size']}"
        shutil.rmtree(location, ignore_errors=True)
        seconds, code, _, _ = run_bounded([tool("oxigraph"), "load", "--location", str(location), "--file", str(dump)], args.step_cap)  # type: ignore[list-item]
        if code == 0:
            # Compacted, as `patrolkg load` leaves its store: a freshly bulk-loaded store
            # answers 25-70 % slower until its files are compacted, on either server.
            compacting, code, _, _ = run_bounded([tool("oxigraph"), "optimize", "--location", str(location)], args.step_cap)  # type: ignore[list-item]
            seconds += compacting
        if code == 0:
            pair.append(("oxigraph", oxigraph_server(location, work / "oxigraph.log"), {"load_seconds": seconds}))
        else:
            servers["oxigraph"] = {"status": "error", "reason": f"oxigraph load or optimize exited {code}"}

    started: list[tuple[str, Server]] = []
    watches: dict[str, MemoryWatch] = {}
    try:
        for name, server, extra in pair:
            entry = {"status": "ok", "size": served["size"], "quads": quads, **extra}
            try:
                server.start(args.step_cap)
            except RuntimeError as error:
                servers[name] = {**entry, "status": "error", "reason": str(error)[:500]}
                continue
            entry.update(ready_seconds=server.ready_seconds, first_query_seconds=server.first_query_seconds)
            log(f"{name} ready in {server.ready_seconds:.2f} s")
            servers[name] = entry
            started.append((name, server))
            watches[name] = MemoryWatch(lambda s=server: s.pid).__enter__()
        answered = query_side_by_side([server for _, server in started], mix, manifest, args, timeout=args.query_timeout)
        for name, _ in started:
            watches[name].__exit__(None, None, None)
            servers[name].update(queries=answered[name], peak_rss_own=watches[name].peak_own, peak_rss_total=watches[name].peak_total, peak_pss_total=watches[name].peak_pss)
        patrolkg = dict(started).get("patrolkg")
        if patrolkg is not None:
            submissions.update(measure_submissions(patrolkg, token, manifest, args.submissions, args.step_cap))
            log(f"submissions: median {submissions.get('median_ms')} ms, {submissions.get('error_count')} errors")
            if submissions.get("count"):
                each = min(AFTER_WRITES_SECONDS, args.phase_seconds, args.compact_after / (len(AFTER_WRITES) + 1))
                submissions["after"] = measure_after_writes([server for _, server in started], patrolkg, mix, manifest, seconds=each, timeout=args.query_timeout, wait=args.compact_after * 4 + 60)
                submissions["after"]["compact_after"] = args.compact_after
                log(f"queries after the submissions: {submissions['after'].get('status')}")
    finally:
        for name, server in started:
            if name in watches:
                watches[name].__exit__(None, None, None)
            server.stop()
    if args.submissions and submissions.get("count"):
        submissions["profile"] = profile_submissions(work, store, manifest_file, args.step_cap)

    ours = servers.get("patrolkg", {}).get("queries", {})
    reference = {name: q["sequential"]["median_ms"] / 1000 for name, q in ours.items() if (q.get("sequential") or {}).get("median_ms") is not None}

    def session(name: str, server: Server, extra: dict) -> dict:
        entry = {"status": "ok", "size": served["size"], "quads": quads, **extra}
        try:
            server.start(args.rdflib_load_cap)
        except RuntimeError as error:
            return {**entry, "status": "error", "reason": str(error)[:500]}
        entry.update(ready_seconds=server.ready_seconds, first_query_seconds=server.first_query_seconds)
        log(f"{name} ready in {server.ready_seconds:.2f} s")
        try:
            with MemoryWatch(lambda: server.pid) as watch:
                entry["queries"] = query_server(server, mix, manifest, args, timeout=args.rdflib_timeout, budget=args.rdflib_budget, reference=reference)
            entry.update(peak_rss_own=watch.peak_own, peak_rss_total=watch.peak_total, peak_pss_total=watch.peak_pss)
        finally:
            server.stop()
        return entry

    if tool("rdflib-endpoint") is None:
        servers["rdflib-endpoint"] = {"status": "skipped", "reason": "rdflib-endpoint is not installed: pip install 'patrolkg[bench]'"}
    else:
        servers["rdflib-endpoint"] = _rdflib_session(work, dump, loads, served, session, args)
    return servers, submissions


def _rdflib_session(work: Path, dump: Path, loads: list[dict], served: dict, session: Callable[[str, Server, dict], dict], args: argparse.Namespace) -> dict:
    """rdflib-endpoint on the same quads; if it cannot load them within its cap, on
    the largest smaller store that the load step built (and the report says so)."""
    entry = session("rdflib-endpoint", rdflib_server(dump, work / "rdflib.log"), {"load_seconds": None})
    if entry["status"] == "ok":
        entry["load_seconds"] = entry.get("ready_seconds")
        return entry
    failures = [f"{served['size']}: {entry.get('reason', '')[:200]}"]
    for step in sorted((s for s in loads if s["status"] == "ok" and s["size"] < served["size"]), key=lambda s: -s["size"]):
        smaller = work / f"dataset-{step['size']}.nq"
        run_bounded([PYTHON, str(HERE / "workloads.py"), "dump", "--store", step["store"], "--out", str(smaller)], args.step_cap)
        entry = session("rdflib-endpoint", rdflib_server(smaller, work / "rdflib.log"), {"load_seconds": None})
        entry["size"] = step["size"]
        if entry["status"] == "ok":
            entry["load_seconds"] = entry.get("ready_seconds")
            entry["note"] = f"could not load the {served['size']}-triple data within {args.rdflib_load_cap:.0f} s; measured on the {step['size']}-triple store"
            return entry
        failures.append(f"{step['size']}: {entry.get('reason', '')[:200]}")
    return {"status": "error", "reason": "; ".join(failures)}
