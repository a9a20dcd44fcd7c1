"""Building the store from the bundled files: parse, validate, reason, then commit.

Nothing reaches the store until every file has parsed, the data conforms and the
entailments are computed; then one atomic replacement swaps the bundled graphs and the
inferred graph. Other graphs (user submissions) are left as they are, and take part in
reasoning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pyoxigraph as ox
import rdflib

from . import resources
from .errors import ValidationFailed
from .namespaces import INFERRED_GRAPH, LINKS_GRAPH, ONTOLOGY_GRAPH
from .rdfio import parse_rdf
from .reasoning import find_inconsistencies, materialize
from .store import Store
from .validation import Report, Violation, validate

__all__ = ["LoadReport", "load_bundle"]

Progress = Callable[[str], None]


@dataclass
class LoadReport:
    """What a load wrote: triples per graph, inferred triples, and how long it took."""

    graphs: dict[str, int] = field(default_factory=dict)
    inferred: int = 0
    seconds: float = 0.0


def _quiet(_: str) -> None:
    pass


def load_bundle(store: Store, *, progress: Progress = _quiet, bundle: Sequence[resources.BundledGraph] | None = None) -> LoadReport:
    """Rebuild the bundled graphs (ontology, reference, articles, links) and the inferred graph.

    >>> from patrolkg.store import open_store
    >>> store = open_store(None)
    >>> report = load_bundle(store)
    >>> report.inferred > 0
    True

    :param bundle: the graphs to build; the shipped bundle by default.
    :raises patrolkg.errors.RdfSyntaxError: a bundled file is malformed (file, line, column);
        the store keeps its previous content.
    :raises patrolkg.errors.ValidationFailed: the bundled data does not conform.
    :raises patrolkg.errors.StoreError: the store could not be written.
    """
    # The store's write lease is held from reading the user graphs (they take part in
    # reasoning) to the commit, so that no server's write falls in between.
    with store.write_lease():
        return _load_bundle(store, progress, bundle)


def _load_bundle(store: Store, progress: Progress, bundle: Sequence[resources.BundledGraph] | None) -> LoadReport:
    started = time.perf_counter()
    scratch = ox.Store()
    parsed: dict[str, list[ox.Triple]] = {}
    for item in bundle if bundle is not None else resources.bundle():
        progress(f"parse {item.label}")
        quads = parse_rdf(item.read_bytes(), ox.RdfFormat.TURTLE, source=item.label, base_iri=str(item.graph))
        parsed[str(item.graph)] = [q.triple for q in quads]
        scratch.extend(ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(str(item.graph))) for q in quads)

    bundled = set(parsed)
    others = [g for g in store.graph_names() if g not in bundled and g != str(INFERRED_GRAPH)]
    for graph in others:
        scratch.extend(store.quads(graph))

    progress("validate against the shapes")
    data_graphs = [g for g in parsed if g != str(ONTOLOGY_GRAPH)]
    # Validate the triples as parsed: the store canonicalizes some literals (derived
    # integer types become xsd:integer), and the files are what is being checked.
    report = validate(_to_rdflib(triple for g in data_graphs for triple in parsed[g]))
    if not report.conforms:
        raise ValidationFailed(report, source="bundled data")

    progress("reason (OWL 2 RL)")
    # The link set is not reasoned over (see patrolkg.reasoning).
    reasoned = [g for g in data_graphs if g != str(LINKS_GRAPH)] + others
    derived = materialize(scratch, reasoned, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH))
    problems = find_inconsistencies(scratch, [*reasoned, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH)])
    if problems:
        violations = [Violation(focus_node=p.focus_node, message=p.message, constraint=f"owl-rl:{p.rule}") for p in problems]
        raise ValidationFailed(Report(conforms=False, results=violations), source="bundled data")

    progress("commit")
    replacement = dict(parsed)
    replacement[str(INFERRED_GRAPH)] = list(derived.triples)
    store.replace_graphs(replacement)
    return LoadReport(
        graphs={g: len(t) for g, t in parsed.items()},
        inferred=len(derived.triples),
        seconds=time.perf_counter() - started,
    )


def _to_rdflib(triples: Iterable[ox.Triple]) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES), format="nt")
    return graph
