"""Validation of data against the SHACL shapes and the ontology's consistency rules.

A :class:`Report` carries both what pySHACL returns (``conforms``, the report graph, a
readable text) and a flat list of :class:`Violation` for programs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import pyoxigraph as ox
import pyshacl
import rdflib
from rdflib.namespace import RDF, SH

from . import resources
from .namespaces import INFERRED_GRAPH, ONTOLOGY_GRAPH
from .reasoning import bundled_schema_closure, find_inconsistencies, materialize

__all__ = ["Violation", "Report", "validate"]

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
    graph: rdflib.Graph = field(default_factory=rdflib.Graph)

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
        """The report as an ``sh:ValidationReport`` graph, OWL consistency results included."""
        graph = rdflib.Graph()
        graph.bind("sh", SH)
        for triple in self.graph:
            graph.add(triple)
        report = next(graph.subjects(RDF.type, SH.ValidationReport), None)
        if report is None:
            report = rdflib.BNode()
            graph.add((report, RDF.type, SH.ValidationReport))
        graph.set((report, SH.conforms, rdflib.Literal(self.conforms)))
        for violation in self.results:
            if violation.source_shape is not None:
                continue  # already in pySHACL's graph
            result = rdflib.BNode()
            graph.add((report, SH.result, result))
            graph.add((result, RDF.type, SH.ValidationResult))
            graph.add((result, SH.focusNode, rdflib.URIRef(violation.focus_node)))
            graph.add((result, SH.resultSeverity, SH.Violation))
            graph.add((result, SH.resultMessage, rdflib.Literal(violation.message, lang="en")))
            if violation.constraint:
                graph.add((result, SH.sourceConstraintComponent, rdflib.URIRef("urn:patrolkg:" + violation.constraint)))
        return graph


@lru_cache(maxsize=1)
def _shapes() -> rdflib.Graph:
    return resources.shapes_graph()


@lru_cache(maxsize=1)
def _ontology_ntriples() -> str:
    return resources.ontology_graph().serialize(format="nt")


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


def _shacl_violations(report_graph: rdflib.Graph, shapes: rdflib.Graph) -> list[Violation]:
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


def validate(data: rdflib.Graph, *, context: rdflib.Graph | None = None) -> Report:
    """Validate ``data`` against the shapes and the ontology.

    The shapes see ``data`` together with the ontology and ``context`` (existing facts
    the data refers to, e.g. a speaker already in the store); only nodes of ``data``
    are reported. The OWL 2 RL consistency rules (disjoint classes, functional
    properties, ...) are checked on ``data`` + ``context`` + their entailments.

    >>> g = rdflib.Graph().parse(data='''
    ...   @prefix pk: <https://w3id.org/patrolkg/ontology#> .
    ...   <https://w3id.org/patrolkg/id/event/x> a pk:JointPatrol .''', format="turtle")
    >>> report = validate(g)
    >>> report.conforms
    False
    """
    shapes = _shapes()
    combined = rdflib.Graph()
    combined.parse(data=_ontology_ntriples(), format="nt")
    for triple in data:
        combined.add(triple)
    if context is not None:
        for triple in context:
            combined.add(triple)

    conforms, report_graph, _ = pyshacl.validate(
        combined,
        shacl_graph=shapes,
        inference="none",
        advanced=True,
        allow_warnings=True,
    )
    violations = _shacl_violations(report_graph, shapes)
    if context is not None:
        # Report only what the new data is responsible for.
        own = {_text(s) for s in data.subjects()}
        violations = [v for v in violations if v.focus_node in own]

    violations += _owl_violations(data, context)
    blocking = [v for v in violations if v.severity == "Violation"]
    return Report(conforms=not blocking, results=violations, graph=report_graph)


def _owl_violations(data: rdflib.Graph, context: rdflib.Graph | None) -> list[Violation]:
    scratch = ox.Store()
    scratch.load(_ontology_ntriples().encode(), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(str(ONTOLOGY_GRAPH)))
    scratch.load(data.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(_DATA))
    graphs = [_DATA]
    if context is not None:
        scratch.load(context.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(_CONTEXT))
        graphs.append(_CONTEXT)
    materialize(scratch, graphs, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), schema=bundled_schema_closure())
    focus = {_text(s) for s in data.subjects() if isinstance(s, rdflib.URIRef)}
    found = find_inconsistencies(scratch, [*graphs, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH)], focus=focus)
    return [
        Violation(
            focus_node=item.focus_node,
            message=item.message,
            value=", ".join(item.values) or None,
            constraint=f"owl-rl:{item.rule}",
        )
        for item in found
    ]
