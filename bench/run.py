"""patrolkg's benchmark (issue 6): ``make bench`` runs ``python bench/run.py``.

Side by side, in one run, on the same generated data and the same queries:

1. **bulk load** — ``patrolkg load --store DIR FILE`` (the validated write path:
   SHACL, OWL RL consistency, reasoning, commit) at increasing sizes, each step under
   a time cap; where it stops scaling, a pyinstrument profile says which function;
2. **HTTP queries** — the mix of ``bench/queries.py`` (lookups, DESCRIBE, joins,
   aggregates, a text filter, the competency questions) against ``patrolkg serve``,
   ``oxigraph serve`` (the native limit) and ``rdflib-endpoint`` (the Python peer),
   each given the same quads: median and p99 latency with one client, throughput with
   several; startup time to ready and peak resident memory of each server;
3. **a 100-triple submission**, validated and committed, on the big store;
4. **OWL RL materialization** — patrolkg's against owlrl's, results compared.

It prints the results as Markdown and writes them into ``docs/benchmarks.md``
between the ``bench:results`` markers (the analysis around them is kept), and saves
every number in ``<workdir>/results.json``.

    python bench/run.py                                # the full run: 1M triples
    python bench/run.py --triples 3000 --phase-seconds 0.5 --output /tmp/b.md  # a smoke run
    python bench/run.py --render var/bench/results.json  # re-render saved results

Every step is bounded: a time cap per load or reasoning step (``--step-cap``), a
duration per query phase, a timeout per request; nothing waits for ever.

The pieces: ``generate.py`` (the data), ``queries.py`` (the mix), ``client.py`` (the
load client), ``servers.py`` (the three servers, memory sampling), ``sessions.py``
(querying each server, the submissions), ``workloads.py`` (the units run in their own
processes: build, materialize, owlrl, submit, dump), ``profiling.py`` (pyinstrument
hotspots), ``process.py`` (bounded subprocesses), ``report.py`` (the Markdown).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402
from process import HERE, PYTHON, ROOT, last_json, log, run_bounded  # noqa: E402
from queries import query_mix  # noqa: E402
from servers import tool  # noqa: E402
from sessions import serve_and_query  # noqa: E402


def predicted(sizes_seconds: list[tuple[int, float]], size: int) -> float | None:
    """Extrapolate a step's time from the two previous ones (a power law)."""
    if not sizes_seconds:
        return None
    if len(sizes_seconds) == 1:
        (s1, t1), = sizes_seconds
        return t1 * size / s1
    (s1, t1), (s2, t2) = sizes_seconds[-2:]
    exponent = max(1.0, math.log(t2 / t1) / math.log(s2 / s1)) if t1 > 0 and s2 != s1 and t2 > t1 else 1.0
    return t2 * (size / s2) ** exponent


# -- the steps -------------------------------------------------------------------------


def generate_data(work: Path, sizes: list[int], seed: int) -> dict[int, dict]:
    files = {}
    for size in sizes:
        path = work / f"data-{size}.nt"
        started = time.perf_counter()
        world = generate.write(path, size, seed=seed)
        files[size] = {"file": str(path), "triples": world.triples, "seconds": time.perf_counter() - started, **world.manifest()["counts"]}
        log(f"generated {world.triples} triples into {path.name}")
    return files


def measure_loads(work: Path, data: dict[int, dict], sizes: list[int], cap: float, predict: bool) -> list[dict]:
    """``patrolkg load --store DIR FILE`` per size, in a fresh store holding the bundle."""
    steps: list[dict] = []
    done: list[tuple[int, float]] = []
    for size in sizes:
        triples = data[size]["triples"]
        step = {"size": size, "triples": triples, "store": str(work / f"store-load-{size}")}
        guess = predicted(done, triples)
        if predict and guess is not None and guess > 1.5 * cap:
            step.update(status="skipped", note=f"predicted {guess:.0f} s from the smaller sizes, past the {cap:.0f} s cap")
            steps.append(step)
            log(f"load {size}: skipped ({step['note']})")
            continue
        store = Path(step["store"])
        shutil.rmtree(store, ignore_errors=True)
        seconds, code, _, _ = run_bounded([PYTHON, "-m", "patrolkg", "load", "--store", str(store)], cap)
        step["bundle_seconds"] = seconds
        seconds, code, peak, _ = run_bounded([PYTHON, "-m", "patrolkg", "load", "--store", str(store), data[size]["file"]], cap)
        step.update(seconds=seconds, peak_rss=peak)
        if code == 0:
            step.update(status="ok", triples_per_second=triples / seconds)
            done.append((triples, seconds))
        elif code is None:
            step.update(status="timeout", note=f"stopped at the {cap:.0f} s cap")
        else:
            step.update(status="error", note=f"exit code {code}")
        steps.append(step)
        log(f"load {size}: {step['status']} in {seconds:.1f} s")
        if step["status"] != "ok":
            predict = True  # past the first failure, only predictions
    return steps


def profile_load(work: Path, steps: list[dict], data: dict[int, dict], cap: float) -> dict | None:
    """pyinstrument on the largest load that fits the cap with the profiler's overhead."""
    # The profiler slows the load about threefold; keep the profile under half the cap.
    fitting = [s for s in steps if s["status"] == "ok" and s["seconds"] * 3 < cap / 2]
    if not fitting:
        return None
    step = fitting[-1]
    store = work / "store-profile"
    shutil.rmtree(store, ignore_errors=True)
    run_bounded([PYTHON, "-m", "patrolkg", "load", "--store", str(store)], cap)
    output = work / f"profile-load-{step['size']}.json"
    if not profiling.profile_command(["-m", "patrolkg", "load", "--store", str(store), data[step["size"]]["file"]], output, timeout=cap, cwd=ROOT):
        return None
    total, spots = profiling.hotspots(output, include=("pyshacl/entrypoints.py:validate", "owlrl/Closure.py:closure", "rdflib/graph.py:parse"), limit=16)
    log(f"profiled the {step['size']} load")
    return {"size": step["size"], "total": total, "hotspots": [asdict(h) for h in spots], "file": str(output)}


def build_served_store(work: Path, steps: list[dict], data: dict[int, dict], size: int, cap: float) -> dict:
    """The store the servers serve: the `patrolkg load` store of this size if that load
    finished, else the same contents built without the write path (workloads.build)."""
    finished = next((s for s in steps if s["size"] == size and s["status"] == "ok"), None)
    if finished:
        return {"size": size, "how": "patrolkg load", "store": finished["store"]}
    store = work / f"store-bulk-{size}"
    shutil.rmtree(store, ignore_errors=True)
    seconds, code, peak, out = run_bounded([PYTHON, str(HERE / "workloads.py"), "build", "--store", str(store), "--data", data[size]["file"]], cap * 2)
    if code != 0:
        raise RuntimeError(f"could not build the {size}-triple store (exit {code})")
    log(f"built the {size}-triple store in {seconds:.1f} s")
    return {"size": size, "how": "bulk", "store": str(store), "seconds": seconds, "peak_rss": peak, **last_json(out)}


def measure_materialization(work: Path, data: dict[int, dict], sizes: list[int], served: int, cap: float, predict: bool) -> list[dict]:
    """patrolkg's materialization at every size; owlrl's until it passes the cap; the
    results compared wherever both finished."""
    rows: list[dict] = []
    owlrl_done: list[tuple[int, float]] = []
    for size in sorted(set(sizes) | {served}):
        triples = data[size]["triples"]
        row: dict = {"size": size, "triples": triples}
        ours = work / f"derived-patrolkg-{size}.nt"
        seconds, code, peak, out = run_bounded([PYTHON, str(HERE / "workloads.py"), "materialize", "--data", data[size]["file"], "--out", str(ours)], cap)
        row["patrolkg"] = {"status": "ok" if code == 0 else ("timeout" if code is None else "error"), "peak_rss": peak, **last_json(out)}
        if size in sizes:
            guess = predicted(owlrl_done, triples)
            theirs = work / f"derived-owlrl-{size}.nt"
            if predict and guess is not None and guess > 1.5 * cap:
                row["owlrl"] = {"status": "skipped", "note": f"predicted {guess:.0f} s, past the {cap:.0f} s cap"}
            else:
                seconds, code, peak, out = run_bounded([PYTHON, str(HERE / "workloads.py"), "owlrl", "--data", data[size]["file"], "--out", str(theirs)], cap)
                row["owlrl"] = {"status": "ok" if code == 0 else ("timeout" if code is None else "error"), "peak_rss": peak, "wall": seconds, **last_json(out)}
                if code == 0:
                    owlrl_done.append((triples, row["owlrl"]["seconds"]))
                else:
                    predict = True
            if row["patrolkg"]["status"] == row["owlrl"]["status"] == "ok":
                _, code, _, out = run_bounded([PYTHON, str(HERE / "workloads.py"), "compare", "--data", data[size]["file"], "--patrolkg", str(ours), "--owlrl", str(theirs)], cap)
                row["compare"] = last_json(out)
        rows.append(row)
        log(f"materialization {size}: patrolkg {row['patrolkg'].get('seconds', '-')}, owlrl {row.get('owlrl', {}).get('seconds', row.get('owlrl', {}).get('status', '-'))}")
    return rows


def environment(args: argparse.Namespace, argv: list[str]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    memory = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    oxigraph_binary = tool("oxigraph")
    server_version = subprocess.run([oxigraph_binary, "--version"], capture_output=True, text=True).stdout.strip() if oxigraph_binary else "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True).stdout.strip())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python bench/run.py" + ("" if not argv else " " + " ".join(argv)),
        "machine": f"{cpu}, {os.cpu_count()} cores, {memory / 2**30:.0f} GiB, {platform.system()} {platform.release()}",
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "patrolkg": f"{v('patrolkg')} (commit {commit}{', with uncommitted changes in src/' if dirty else ''})",
        "versions": {name: v(name) for name in ("pyoxigraph", "rdflib", "owlrl", "pyshacl", "fastapi", "uvicorn", "httpx", "rdflib-endpoint", "oxigraph")} | {"oxigraph server": server_version},
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triples", type=int, default=1_000_000, help="size of the served store, in generated triples (default: 1,000,000)")
    parser.add_argument("--load-sizes", default="10000,30000,100000,300000,1000000", help="sizes of the load steps (those above --triples are dropped)")
    parser.add_argument("--owlrl-sizes", default="10000,30000,100000,300000,1000000", help="sizes at which owlrl is compared (it stops at the first past the cap)")
    parser.add_argument("--step-cap", type=float, default=600.0, help="seconds any one load, reasoning or build step may take (default: 600)")
    parser.add_argument("--no-predict", action="store_true", help="run every step up to the cap, even where the smaller steps predict it cannot finish")
    parser.add_argument("--phase-seconds", type=float, default=5.0, help="duration of each query phase (default: 5)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients in the throughput phase (default: 4)")
    parser.add_argument("--query-timeout", type=float, default=120.0, help="seconds a client waits for one answer (default: 120)")
    parser.add_argument("--rdflib-timeout", type=float, default=60.0, help="seconds to wait for one rdflib-endpoint answer; a timeout still bounds the ratio (default: 60)")
    parser.add_argument("--rdflib-budget", type=float, default=1800.0, help="seconds for all of rdflib-endpoint's queries, restarts included (default: 1800)")
    parser.add_argument("--rdflib-load-cap", type=float, default=600.0, help="seconds rdflib-endpoint may take to load its data (default: 600)")
    parser.add_argument("--compact-after", type=float, default=30.0, help="patrolkg serve's PATROLKG_COMPACT_AFTER: seconds after the last submission before it compacts its store (default: 30, the server's own)")
    parser.add_argument("--submissions", type=int, default=30, help="100-triple submissions to time (default: 30)")
    parser.add_argument("--seed", type=int, default=7, help="the generator's seed (default: 7)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench", help="where data, stores and profiles go (default: var/bench)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the report (default: docs/benchmarks.md)")
    parser.add_argument("--render", type=Path, metavar="RESULTS_JSON", help="only re-render saved results into --output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        report.write(args.output, results)
        print(report.render(results))
        return 0
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"environment": environment(args, argv)}
    load_sizes = sorted({int(s) for s in args.load_sizes.split(",") if int(s) <= args.triples} | {args.triples})
    owlrl_sizes = sorted({int(s) for s in args.owlrl_sizes.split(",") if int(s) <= args.triples})
    data = generate_data(work, sorted(set(load_sizes) | set(owlrl_sizes)), args.seed)
    results["data"] = {str(k): v for k, v in data.items()}
    mix = query_mix(ROOT / "queries")
    results["queries"] = [{"name": q.name, "kind": q.kind, "what": q.what} for q in mix]
    results["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "render"}

    results["loads"] = measure_loads(work, data, load_sizes, args.step_cap, predict=not args.no_predict)
    results["load_profile"] = profile_load(work, results["loads"], data, args.step_cap)
    served = build_served_store(work, results["loads"], data, args.triples, args.step_cap)
    results["served_store"] = served
    results["materialization"] = measure_materialization(work, data, owlrl_sizes, args.triples, args.step_cap, predict=not args.no_predict)
    manifest_file = Path(data[args.triples]["file"] + ".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    results["servers"], results["submissions"] = serve_and_query(work, served, mix, manifest, manifest_file, results["loads"], data, args)

    (work / "results.json").write_text(json.dumps(results, indent=1))
    report.write(args.output, results)
    print(report.render(results))
    log(f"results in {work / 'results.json'}, report in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
