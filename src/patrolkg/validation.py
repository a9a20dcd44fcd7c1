"""Validation of data against the SHACL shapes and the ontology's consistency rules.

A :class:`Report` carries what pySHACL would return (``conforms``, the report graph via
:meth:`Report.rdf`, a readable text) and a flat list of :class:`Violation` for programs.
pySHACL stays the reference: :func:`shacl_violations` reads its report the same way,
and the tests hold the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import pyoxigraph as ox
import rdflib
from rdflib.namespace import RDF, SH

from . import resources
from .namespaces import INFERRED_GRAPH, ONTOLOGY_GRAPH
from .reasoning import bundled_schema_closure, find_inconsistencies, materialize

if TYPE_CHECKING:
    from .shacl_sparql import CompiledShapes

__all__ = ["Violation", "Report", "validate", "shacl_violations", "compiled_shapes"]

_DATA = "urn:patrolkg:validation:data"
_CONTEXT = "urn:patrolkg:validation:context"


@dataclass(frozen=True)
class Violation:
    """One reason the data does not conform.

    ``source_shape`` is the shape that produced the result (often a property shape);
    ``node_shape`` the node shape it belongs to. OWL consistency violations have no
    shape; their ``constraint`` names the OWL 2 RL rule (e.g. ``owl-rl:cax-dw``).
    """

    focus_node: str
    message: str
    severity: str = "Violation"
    path: str | None = None
    value: str | None = None
    source_shape: str | None = None
    node_shape: str | None = None
    constraint: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def describe(self) -> str:
        """One readable line: where, what, which shape."""
        where = self.focus_node + (f" {self.path}" if self.path else "")
        value = f" (value {self.value})" if self.value is not None else ""
        shape = self.node_shape or self.source_shape or self.constraint or ""
        return f"{self.severity}: {where}{value}: {self.message}" + (f" [{shape}]" if shape else "")


@dataclass
class Report:
    """The outcome of a validation."""

    conforms: bool
    results: list[Violation] = field(default_factory=list)

    @property
    def text(self) -> str:
        if self.conforms:
            return "Conforms: the data satisfies every shape and the ontology."
        lines = [f"Does not conform: {len(self.results)} violation(s)."]
        lines += ["  " + v.describe() for v in self.results]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {"conforms": self.conforms, "violations": [v.as_dict() for v in self.results]}

    def rdf(self) -> rdflib.Graph:
        """The report as an ``sh:ValidationReport`` graph (OWL consistency results too)."""
        graph = rdflib.Graph()
        graph.bind("sh", SH)
        report = rdflib.BNode()
        graph.add((report, RDF.type, SH.ValidationReport))
        graph.add((report, SH.conforms, rdflib.Literal(self.conforms)))
        for violation in self.results:
            result = rdflib.BNode()
            graph.add((report, SH.result, result))
            graph.add((result, RDF.type, SH.ValidationResult))
            graph.add((result, SH.focusNode, _node(violation.focus_node)))
            graph.add((result, SH.resultSeverity, SH[violation.severity]))
            graph.add((result, SH.resultMessage, rdflib.Literal(violation.message, lang="en")))
            if violation.path:
                graph.add((result, SH.resultPath, _node(violation.path)))
            if violation.value is not None:
                graph.add((result, SH.value, _node(violation.value) if _looks_like_iri(violation.value) else rdflib.Literal(violation.value)))
            if violation.source_shape and not violation.source_shape.startswith("_:"):
                graph.add((result, SH.sourceShape, rdflib.URIRef(violation.source_shape)))
            if violation.constraint:
                component = violation.constraint if _looks_like_iri(violation.constraint) else "urn:patrolkg:" + violation.constraint
                graph.add((result, SH.sourceConstraintComponent, rdflib.URIRef(component)))
        return graph


@lru_cache(maxsize=1)
def _shapes() -> rdflib.Graph:
    return resources.shapes_graph()


def _looks_like_iri(text: str) -> bool:
    return text.startswith(("http://", "https://", "urn:"))


def _node(text: str) -> rdflib.term.Node:
    return rdflib.BNode(text[2:]) if text.startswith("_:") else rdflib.URIRef(text)


def _node_shape_of(shapes: rdflib.Graph, shape: rdflib.term.Node | None) -> rdflib.term.Node | None:
    if shape is None:
        return None
    if (shape, RDF.type, SH.NodeShape) in shapes:
        return shape
    owner = next(shapes.subjects(SH.property, shape), None)
    return owner if owner is not None else shape


def _text(term: rdflib.term.Node | None) -> str | None:
    if term is None:
        return None
    if isinstance(term, rdflib.BNode):
        return f"_:{term}"
    return str(term)


def shacl_violations(report_graph: rdflib.Graph, shapes: rdflib.Graph) -> list[Violation]:
    found = []
    for result in report_graph.subjects(RDF.type, SH.ValidationResult):
        get = lambda p: report_graph.value(result, p)  # noqa: E731
        source = get(SH.sourceShape)
        severity = get(SH.resultSeverity)
        messages = sorted(str(m) for m in report_graph.objects(result, SH.resultMessage))
        found.append(
            Violation(
                focus_node=_text(get(SH.focusNode)) or "",
                message="; ".join(messages) or "does not conform",
                severity=str(severity).rsplit("#", 1)[-1] if severity else "Violation",
                path=_text(get(SH.resultPath)),
                value=_text(get(SH.value)),
                source_shape=_text(source),
                node_shape=_text(_node_shape_of(shapes, source)),
                constraint=_text(get(SH.sourceConstraintComponent)),
            )
        )
    return sorted(found, key=lambda v: (v.focus_node, v.node_shape or "", v.path or "", v.message))


def validate(
    data: rdflib.Graph | Iterable[ox.Triple],
    *,
    context: rdflib.Graph | Iterable[ox.Triple] | None = None,
    entailed: Iterable[ox.Triple] | None = None,
) -> Report:
    """Validate ``data`` against the shapes and the ontology.

    The shapes see ``data`` together with the ontology and ``context`` (existing facts
    the data refers to, e.g. a speaker already in the store); with a context, only the
    IRIs that are subjects in ``data`` are reported. The OWL 2 RL consistency rules
    (disjoint classes, functional properties, ...) are checked on ``data`` +
    ``context`` + their entailments: ``entailed`` if the caller has derived them
    already (the writer does), else derived here.

    The shapes run as SPARQL inside the engine (:mod:`patrolkg.shacl_sparql`), which
    gives pySHACL's results (a test holds them equal) at the engine's speed.

    >>> g = rdflib.Graph().parse(data='''
    ...   @prefix pk: <https://w3id.org/patrolkg/ontology#> .
    ...   <https://w3id.org/patrolkg/id/event/x> a pk:JointPatrol .''', format="turtle")
    >>> report = validate(g)
    >>> report.conforms
    False
    """
    data_triples = _triples(data)
    context_triples = _triples(context) if context is not None else []
    scratch = ox.Store()
    scratch.load(_ontology_turtle(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(str(ONTOLOGY_GRAPH)))
    _add_graph(scratch, data_triples, _DATA)
    _add_graph(scratch, context_triples, _CONTEXT)
    graphs = [_DATA, _CONTEXT]
    focus = None
    if context is not None:
        focus = {t.subject.value for t in data_triples if isinstance(t.subject, ox.NamedNode)}
    dataset = [ox.NamedNode(g) for g in (*graphs, str(ONTOLOGY_GRAPH))]
    violations = compiled_shapes().validate(scratch, dataset, focus=focus)

    if entailed is None:
        materialize(scratch, graphs, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), schema=bundled_schema_closure())
    else:
        _add_graph(scratch, entailed, str(INFERRED_GRAPH))
    owl_focus = focus if focus is not None else {t.subject.value for t in data_triples if isinstance(t.subject, ox.NamedNode)}
    for item in find_inconsistencies(scratch, [*graphs, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH)], focus=owl_focus):
        violations.append(
            Violation(
                focus_node=item.focus_node,
                message=item.message,
                value=", ".join(item.values) or None,
                constraint=f"owl-rl:{item.rule}",
            )
        )
    blocking = [v for v in violations if v.severity == "Violation"]
    return Report(conforms=not blocking, results=violations)


def _add_graph(store: ox.Store, triples: Iterable[ox.Triple], graph: str) -> None:
    """Add ``triples`` to ``graph`` in ``store``: serialized and loaded again, which is
    faster than making a quad of each triple, unless there are blank nodes, whose
    labels a load would change (reports name them)."""
    triples = triples if isinstance(triples, (list, tuple, set, frozenset)) else list(triples)
    text = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
    if b"_:" in text:
        store.extend(ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(graph)) for t in triples)
    else:
        store.load(text, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph))


@lru_cache(maxsize=1)
def compiled_shapes() -> CompiledShapes:
    from .shacl_sparql import compile_shapes

    return compile_shapes(_shapes())


@lru_cache(maxsize=1)
def _ontology_turtle() -> bytes:
    return resources.ONTOLOGY_PATH.read_bytes()


def _triples(data: rdflib.Graph | Iterable[ox.Triple]) -> list[ox.Triple]:
    if isinstance(data, rdflib.Graph):
        text = data.serialize(format="nt", encoding="utf-8")
        return [q.triple for q in ox.parse(text, format=ox.RdfFormat.N_TRIPLES)]
    return list(data)
