"""The benchmark's units of work, each run in its own process by ``bench/run.py`` (so
that each has a clean heap, a hard time limit and, when asked, a profiler):

    python bench/workloads.py build --store DIR --data FILE       # the served store
    python bench/workloads.py materialize --data FILE --out FILE  # patrolkg's OWL RL
    python bench/workloads.py owlrl --data FILE --out FILE        # owlrl's OWL RL
    python bench/workloads.py submit --store DIR --manifest FILE --count N [--profile OUT.json]
    python bench/workloads.py dump --store DIR --out FILE.nq

Each prints one JSON object with its timings on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pyoxigraph as ox

__all__ = ["main", "canonical_set"]

BENCH_GRAPH = "https://w3id.org/patrolkg/graph/submission/bench"


def _emit(result: dict[str, object]) -> None:
    print(json.dumps(result), flush=True)


def build(store_dir: Path, data: Path) -> dict[str, object]:
    """The served store without the write path: the bundle through ``load_bundle``,
    then the generated data bulk-loaded into one graph, and its entailments derived by
    :func:`patrolkg.reasoning.materialize` in an in-memory copy (as ``load_bundle``
    does: on the on-disk store the same call is several times slower) and written to
    the inferred graph. No SHACL validation: the generator's output is validated in
    the tests, and validating a million triples through pySHACL is what the load
    measurement shows does not scale."""
    from patrolkg.loading import load_bundle
    from patrolkg.namespaces import INFERRED_GRAPH, LINKS_GRAPH, ONTOLOGY_GRAPH
    from patrolkg.reasoning import bundled_schema_closure, materialize
    from patrolkg.store import open_store

    started = time.perf_counter()
    store = open_store(store_dir)
    load_bundle(store)
    bundle_seconds = time.perf_counter() - started
    raw = store.raw  # type: ignore[attr-defined]
    started = time.perf_counter()
    raw.bulk_load(path=str(data), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(BENCH_GRAPH))
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    inferred = ox.NamedNode(str(INFERRED_GRAPH))
    scratch = ox.Store()
    scratch.bulk_extend(q for q in raw if q.graph_name != inferred)
    copy_seconds = time.perf_counter() - started
    started = time.perf_counter()
    data_graphs = [g for g in store.graph_names() if g not in (str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), str(LINKS_GRAPH))]
    result = materialize(scratch, data_graphs, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), schema=bundled_schema_closure())
    reason_seconds = time.perf_counter() - started
    started = time.perf_counter()
    raw.remove_graph(inferred)
    raw.bulk_extend(ox.Quad(t.subject, t.predicate, t.object, inferred) for t in result.triples)
    write_seconds = time.perf_counter() - started
    quads = len(raw)
    store.close()
    return {"bundle_seconds": bundle_seconds, "bulk_load_seconds": load_seconds, "copy_seconds": copy_seconds, "materialize_seconds": reason_seconds,
            "write_seconds": write_seconds, "inferred": len(result.triples), "quads": quads}


def materialize_file(data: Path, out: Path) -> dict[str, object]:
    """patrolkg's OWL 2 RL materialization of the ontology + ``data``, in memory, the
    schema closure (owlrl over the ontology) included in the time."""
    from patrolkg import resources
    from patrolkg.namespaces import INFERRED_GRAPH, ONTOLOGY_GRAPH
    from patrolkg.reasoning import materialize, schema_closure

    store = ox.Store()
    store.load(resources.ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(str(ONTOLOGY_GRAPH)))
    store.bulk_load(path=str(data), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode("urn:bench:data"))
    started = time.perf_counter()
    ontology = [q.triple for q in store.quads_for_pattern(None, None, None, ox.NamedNode(str(ONTOLOGY_GRAPH)))]
    schema = schema_closure(ontology)
    schema_seconds = time.perf_counter() - started
    result = materialize(store, ["urn:bench:data"], str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), schema=schema)
    seconds = time.perf_counter() - started
    out.write_bytes(ox.serialize(result.triples, format=ox.RdfFormat.N_TRIPLES))
    return {"seconds": seconds, "schema_seconds": schema_seconds, "derived": len(result.triples)}


def owlrl_file(data: Path, out: Path) -> dict[str, object]:
    """owlrl's OWL-RL closure of the ontology + ``data`` (the settings of
    tests/test_reasoning.py); writes what it derives, less boilerplate, to ``out``."""
    import owlrl
    import rdflib

    from patrolkg import resources
    from patrolkg.reasoning import is_boilerplate

    graph = rdflib.Graph()
    started = time.perf_counter()
    graph.parse(data=resources.ONTOLOGY_PATH.read_bytes(), format="turtle")
    graph.parse(str(data), format="nt")
    parse_seconds = time.perf_counter() - started
    asserted = set(graph)
    started = time.perf_counter()
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(graph)
    seconds = time.perf_counter() - started
    derived = rdflib.Graph()
    for triple in graph:
        if triple not in asserted and not is_boilerplate(*triple):
            derived.add(triple)
    derived.serialize(str(out), format="nt", encoding="utf-8")
    return {"seconds": seconds, "parse_seconds": parse_seconds, "derived": len(derived)}


def canonical_set(path: Path, asserted: set[tuple[object, ...]] | None = None) -> set[tuple[object, ...]]:
    """The triples of an N-Triples file as rdflib terms, integer types made
    xsd:integer (the store's canonical form), without ``asserted`` ones."""
    import rdflib

    def fix(term: rdflib.term.Node) -> rdflib.term.Node:
        if isinstance(term, rdflib.Literal) and term.datatype and str(term.datatype).endswith(("Integer", "#int")):
            return rdflib.Literal(str(term), datatype=rdflib.XSD.integer)
        return term

    triples = {tuple(fix(t) for t in triple) for triple in rdflib.Graph().parse(str(path), format="nt")}
    return triples - asserted if asserted else triples


def compare(patrolkg_out: Path, owlrl_out: Path, data: Path) -> dict[str, object]:
    """patrolkg's derivations against owlrl's, modulo asserted triples and owlrl's
    boilerplate (:func:`patrolkg.reasoning.is_boilerplate`), as the tests compare them."""
    from patrolkg import resources
    from patrolkg.reasoning import is_boilerplate

    asserted_path = data.with_suffix(".asserted.nt")
    ontology = ox.serialize(ox.parse(resources.ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE), format=ox.RdfFormat.N_TRIPLES)
    asserted_path.write_bytes(ontology + data.read_bytes())
    asserted = canonical_set(asserted_path)
    asserted_path.unlink()
    # owlrl's side is already without boilerplate (owlrl_file); patrolkg's types every
    # resource owl:Thing as owlrl does, which is boilerplate on both sides.
    ours = {t for t in canonical_set(patrolkg_out, asserted) if not is_boilerplate(*t)}
    theirs = canonical_set(owlrl_out, asserted)
    missing, extra = theirs - ours, ours - theirs
    return {"equal": not missing and not extra, "owlrl": len(theirs), "patrolkg": len(ours), "missing": len(missing), "extra": len(extra),
            "missing_examples": sorted(map(str, missing))[:3], "extra_examples": sorted(map(str, extra))[:3]}


def submit(store_dir: Path, manifest: Path, count: int, first: int, profile: Path | None = None) -> dict[str, object]:
    """``count`` 100-triple submissions through the library's write path (what the
    HTTP route runs), after one that is not counted: it pays the once-per-process
    costs (imports, the ontology's closure) that a running server has already paid.
    With ``profile``, pyinstrument records the counted ones into that JSON file."""
    from generate import submission

    from patrolkg.store import open_store
    from patrolkg.submissions import Submissions, parse_submission
    from patrolkg.writes import Writer

    facts = json.loads(manifest.read_text())
    store = open_store(store_dir)
    submissions = Submissions(store, Writer(store))

    def one(index: int) -> float:
        started = time.perf_counter()
        triples = parse_submission(submission(facts, index).encode(), "application/n-triples")
        submissions.submit(triples, submitter="bench", source="patrolkg benchmark")
        return time.perf_counter() - started

    warm_up = one(first)
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    seconds = [one(index) for index in range(first + 1, first + 1 + count)]
    if profiler is not None:
        from pyinstrument.renderers import JSONRenderer

        profiler.stop()
        profile.write_text(profiler.output(renderer=JSONRenderer()))
    store.close()
    return {"warm_up": warm_up, "seconds": seconds}


def dump(store_dir: Path, out: Path) -> dict[str, object]:
    """Every quad of the store as N-Quads: what the other servers are given."""
    store = ox.Store.read_only(str(store_dir))
    started = time.perf_counter()
    store.dump(str(out), format=ox.RdfFormat.N_QUADS)
    return {"seconds": time.perf_counter() - started, "quads": len(store)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One unit of benchmark work (see the module docstring).")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("build")
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    for name in ("materialize", "owlrl"):
        p = commands.add_parser(name)
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True)
    p = commands.add_parser("compare")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--patrolkg", type=Path, required=True)
    p.add_argument("--owlrl", type=Path, required=True)
    p = commands.add_parser("submit")
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--first", type=int, default=90_000)
    p.add_argument("--profile", type=Path, help="write a pyinstrument profile (JSON) of the counted submissions")
    p = commands.add_parser("dump")
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "build":
        _emit(build(args.store, args.data))
    elif args.command == "materialize":
        _emit(materialize_file(args.data, args.out))
    elif args.command == "owlrl":
        _emit(owlrl_file(args.data, args.out))
    elif args.command == "compare":
        _emit(compare(args.patrolkg, args.owlrl, args.data))
    elif args.command == "submit":
        _emit(submit(args.store, args.manifest, args.count, args.first, args.profile))
    elif args.command == "dump":
        _emit(dump(args.store, args.out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
