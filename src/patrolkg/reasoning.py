"""OWL 2 RL materialization that scales: owlrl on the ontology, hash joins on the data.

owlrl is the reference for correctness but runs its rules over the whole graph, round
after round (minutes at a hundred thousand triples). patrolkg runs it only over the
ontology (a few thousand triples) to close the schema (sub-class and sub-property
hierarchies, inverses, equivalences), then applies the instance-level OWL 2 RL rules
by forward chaining over hash indexes (:mod:`patrolkg.rules`): each fact is handled
once, so the cost grows with the data and what it entails, not with rounds.

The consistency rules (whose conclusion is "false") run as SPARQL in the engine, on
the data with its entailments (:func:`find_inconsistencies`).

The ``owl:sameAs`` link set to Wikidata is not reasoned over: the eq-rep rules would
copy every fact about an entity onto its Wikidata IRI, which says nothing new.

Entailments that mention a blank node take part in the reasoning (a restriction is an
anonymous class) but are not materialized: the only blank nodes patrolkg stores are
the ontology's anonymous axiom nodes (user data is skolemized on write), and a copy of
such a node in another graph could not be joined back to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import owlrl
import pyoxigraph as ox
import rdflib
from rdflib.namespace import OWL, RDF, RDFS, XSD

from .rules import Fact, as_ntriples, entailments, store_facts, triple_facts

__all__ = [
    "CONSISTENCY_CHECKS",
    "FOCUS_VALUES_LIMIT",
    "Inconsistency",
    "Materialization",
    "Schema",
    "is_boilerplate",
    "schema_closure",
    "bundled_schema_closure",
    "materialize",
    "find_inconsistencies",
]

#: Most focus nodes named in the consistency queries (VALUES); past it, all are checked.
FOCUS_VALUES_LIMIT = 5_000

_PREFIXES = """PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
"""

#: OWL 2 RL rules whose conclusion is "false": each query returns the offending node
#: (?x), a property or class involved (?what) and the conflicting values (?a, ?b).
CONSISTENCY_CHECKS: dict[str, tuple[str, str]] = {
    "cax-dw": (
        "SELECT ?x ?a ?b WHERE { ?a owl:disjointWith ?b . ?x a ?a , ?b }",
        "{x} is typed both {a} and {b}, which are disjoint classes",
    ),
    "cax-adc": (
        "SELECT DISTINCT ?x ?a ?b WHERE { ?d a owl:AllDisjointClasses ; owl:members ?list . "
        "?list rdf:rest*/rdf:first ?a . ?list rdf:rest*/rdf:first ?b . FILTER(STR(?a) < STR(?b)) ?x a ?a , ?b }",
        "{x} is typed both {a} and {b}, which are disjoint classes",
    ),
    "prp-fp": (
        "SELECT ?x ?what ?a ?b WHERE { ?what a owl:FunctionalProperty . ?x ?what ?a , ?b . "
        "FILTER(isLiteral(?a) && isLiteral(?b) && STR(?a) < STR(?b) && ?a != ?b) }",
        "{x} has two values of the functional property {what}: {a} and {b}",
    ),
    "prp-irp": (
        "SELECT ?x ?what WHERE { ?what a owl:IrreflexiveProperty . ?x ?what ?x }",
        "{x} is related to itself by the irreflexive property {what}",
    ),
    "prp-asyp": (
        "SELECT ?x ?what ?a WHERE { ?what a owl:AsymmetricProperty . ?x ?what ?a . ?a ?what ?x }",
        "{x} and {a} are related both ways by the asymmetric property {what}",
    ),
    "cls-nothing2": ("SELECT ?x WHERE { ?x a owl:Nothing }", "{x} is typed owl:Nothing"),
}


@dataclass(frozen=True)
class Inconsistency:
    """One violation of an OWL 2 RL consistency rule."""

    rule: str
    focus_node: str
    message: str
    values: tuple[str, ...] = ()


@dataclass
class Materialization:
    """What :func:`materialize` derived: the triples of the inferred graph."""

    triples: set[ox.Triple] = field(default_factory=set)


def _to_ox(term: rdflib.term.Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    if isinstance(term, rdflib.URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, rdflib.BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, rdflib.Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"not an RDF term: {term!r}")


def is_boilerplate(s: rdflib.term.Node, p: rdflib.term.Node, o: rdflib.term.Node) -> bool:
    """owlrl output that says nothing about patrolkg's world: facts about literals,
    XML Schema datatypes and anonymous axiom nodes, reflexive sameAs/equivalence/
    sub-class triples, and typing everything as owl:Thing or rdfs:Resource."""
    return isinstance(s, rdflib.BNode) or isinstance(o, rdflib.BNode) or _says_nothing(s, p, o)


def _says_nothing(s: rdflib.term.Node, p: rdflib.term.Node, o: rdflib.term.Node) -> bool:
    if isinstance(s, rdflib.Literal) or str(s).startswith(str(XSD)):
        return True
    if s == o and p in (OWL.sameAs, OWL.equivalentClass, OWL.equivalentProperty, RDFS.subClassOf, RDFS.subPropertyOf):
        return True
    if p == RDF.type and o in (OWL.Thing, RDFS.Resource, RDFS.Class, OWL.Class, RDF.Property):
        return True
    if p in (RDFS.subClassOf,) and o in (OWL.Thing, RDFS.Resource):
        return True
    return False


@dataclass(frozen=True)
class Schema:
    """An ontology closed by owlrl, as :func:`materialize` uses it.

    ``closure`` is what the closure adds to the ontology and the inferred graph holds
    (no boilerplate, no blank nodes); ``facts`` is the ontology with everything the
    closure adds that the instance rules may use, axioms about its anonymous classes
    (restrictions, equivalences) included, written as in N-Triples
    (:data:`patrolkg.rules.Fact`).
    """

    ontology: frozenset[ox.Triple]
    closure: frozenset[ox.Triple]
    facts: tuple[Fact, ...]


def _to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> rdflib.term.Node:
    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)  # the same id, so that the closure joins the ontology
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))


@lru_cache(maxsize=4)
def _closed(ontology: frozenset[ox.Triple]) -> Schema:
    graph = rdflib.Graph()
    for t in ontology:
        graph.add((_to_rdflib(t.subject), _to_rdflib(t.predicate), _to_rdflib(t.object)))
    asserted = set(graph)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(graph)
    useful = [ox.Triple(_to_ox(s), _to_ox(p), _to_ox(o)) for s, p, o in set(graph) - asserted if not _says_nothing(s, p, o)]
    closure = frozenset(t for t in useful if not isinstance(t.subject, ox.BlankNode) and not isinstance(t.object, ox.BlankNode))
    return Schema(ontology, closure, tuple(triple_facts([*ontology, *useful])))


def schema_closure(ontology_triples: Iterable[ox.Triple]) -> Schema:
    """The ontology with what owlrl's OWL-RL closure adds to it alone (cached by content).

    :param ontology_triples: the ontology graph.
    """
    return _closed(frozenset(ontology_triples))


@lru_cache(maxsize=1)
def bundled_schema_closure() -> Schema:
    """:func:`schema_closure` of the shipped ontology, computed once per process.

    The store's ontology graph is always the shipped ontology (``patrolkg load``
    writes it and users cannot), so writers and validators use this.
    """
    from .resources import ONTOLOGY_PATH

    return schema_closure(q.triple for q in ox.parse(ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE))


def materialize(
    store: ox.Store,
    data_graphs: Sequence[str],
    ontology_graph: str,
    inferred_graph: str,
    *,
    schema: Schema | None = None,
) -> Materialization:
    """Derive the OWL 2 RL entailments of ``data_graphs`` + ontology into ``inferred_graph``.

    The inferred graph is replaced, and then holds exactly the derived triples that are
    not asserted in the data or ontology graphs: the ontology's closure and what the
    instance rules (:mod:`patrolkg.rules`) derive from it and the data.

    :param store: a pyoxigraph store holding every graph named here.
    :param schema: the ontology closed (see :func:`bundled_schema_closure`), when the
        ontology graph holds it; computed from the ontology graph otherwise.
    """
    inferred = ox.NamedNode(inferred_graph)
    if schema is None:
        schema = schema_closure(q.triple for q in store.quads_for_pattern(None, None, None, ox.NamedNode(ontology_graph)))
    data = [ox.NamedNode(g) for g in data_graphs]
    facts = [fact for graph in data for fact in store_facts(store, graph)]
    derived = entailments([*facts, *schema.facts])
    del facts
    fresh = [t for t in schema.closure if t not in schema.ontology and not any(next(iter(store.quads_for_pattern(t.subject, t.predicate, t.object, g)), None) for g in data)]
    store.remove_graph(inferred)
    store.load(as_ntriples(derived) + ox.serialize(fresh, format=ox.RdfFormat.N_TRIPLES), format=ox.RdfFormat.N_TRIPLES, to_graph=inferred)
    return Materialization({q.triple for q in store.quads_for_pattern(None, None, None, inferred)})


def find_inconsistencies(store: ox.Store, graphs: Sequence[str], *, focus: Iterable[str] | None = None) -> list[Inconsistency]:
    """Violations of the OWL 2 RL consistency rules in the union of ``graphs``.

    Include the inferred graph in ``graphs`` so that inherited types count.
    With ``focus``, only violations about those nodes are reported (and looked for).
    """
    dataset = [ox.NamedNode(g) for g in graphs]
    values = ""
    kept: set[str] | None = None
    if focus is not None:
        focus = set(focus)
        if not focus:
            return []
        if len(focus) > FOCUS_VALUES_LIMIT:  # naming them all costs more than checking everything
            kept = focus
        else:
            values = "VALUES ?x { " + " ".join(f"<{iri}>" for iri in focus) + " } "
    found = []
    for rule, (query, template) in CONSISTENCY_CHECKS.items():
        text = _PREFIXES + query.replace("WHERE {", "WHERE { " + values, 1)
        for row in store.query(text, default_graph=dataset):
            if kept is not None and row["x"].value not in kept:
                continue
            bound = {str(v.value): _show(row[v]) for v in _row_variables(row, query)}
            found.append(
                Inconsistency(
                    rule=rule,
                    focus_node=row["x"].value,
                    message=template.format(**{k: bound.get(k, "?") for k in ("x", "a", "b", "what")}),
                    values=tuple(bound[k] for k in ("a", "b") if k in bound),
                )
            )
    return found


def _row_variables(row: ox.QuerySolution, query: str) -> list[ox.Variable]:
    names = [n for n in ("x", "a", "b", "what") if f"?{n}" in query]
    return [ox.Variable(n) for n in names if row[n] is not None]


def _show(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> str:
    return f"<{term.value}>" if isinstance(term, ox.NamedNode) else str(term)
