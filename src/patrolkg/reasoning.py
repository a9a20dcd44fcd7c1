"""OWL 2 RL materialization that scales: owlrl on the ontology, SPARQL on the data.

owlrl is the reference for correctness but runs in pure Python over the whole graph.
patrolkg runs it only over the ontology (a few thousand triples) to close the schema
(sub-class and sub-property hierarchies, inverses, equivalences), then applies the
instance-level OWL 2 RL rules as SPARQL CONSTRUCT queries inside the store's engine,
round after round, until nothing new is derived.

The ``owl:sameAs`` link set to Wikidata is not reasoned over: the eq-rep rules would
copy every fact about an entity onto its Wikidata IRI, which says nothing new.

Entailments that mention a blank node are not materialized: the only blank nodes
patrolkg stores are the ontology's anonymous axiom nodes (user data is skolemized on
write), and a copy of such a node in another graph could not be joined back to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import owlrl
import pyoxigraph as ox
import rdflib
from rdflib.namespace import OWL, RDF, RDFS, XSD

__all__ = [
    "INSTANCE_RULES",
    "CONSISTENCY_CHECKS",
    "Inconsistency",
    "Materialization",
    "is_boilerplate",
    "schema_closure",
    "bundled_schema_closure",
    "materialize",
    "find_inconsistencies",
]

_PREFIXES = """PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
"""

#: The OWL 2 RL instance rules (names as in the OWL 2 Profiles spec, table 4–6) as
#: CONSTRUCT queries; the schema they join with is already closed by owlrl.
INSTANCE_RULES: dict[str, str] = {
    "cax-sco": "CONSTRUCT { ?x a ?d } WHERE { ?c rdfs:subClassOf ?d . ?x a ?c . FILTER(?c != ?d) }",
    "prp-spo1": "CONSTRUCT { ?x ?q ?y } WHERE { ?p rdfs:subPropertyOf ?q . ?x ?p ?y . FILTER(?p != ?q) }",
    "prp-inv1": "CONSTRUCT { ?y ?q ?x } WHERE { ?p owl:inverseOf ?q . ?x ?p ?y . FILTER(!isLiteral(?y)) }",
    "prp-inv2": "CONSTRUCT { ?y ?p ?x } WHERE { ?p owl:inverseOf ?q . ?x ?q ?y . FILTER(!isLiteral(?y)) }",
    "prp-symp": "CONSTRUCT { ?y ?p ?x } WHERE { ?p a owl:SymmetricProperty . ?x ?p ?y . FILTER(!isLiteral(?y)) }",
    "prp-trp": "CONSTRUCT { ?x ?p ?z } WHERE { ?p a owl:TransitiveProperty . ?x ?p ?y . ?y ?p ?z }",
    "prp-dom": "CONSTRUCT { ?x a ?c } WHERE { ?p rdfs:domain ?c . ?x ?p ?y }",
    "prp-rng": "CONSTRUCT { ?y a ?c } WHERE { ?p rdfs:range ?c . ?x ?p ?y . FILTER(!isLiteral(?y)) }",
    "cls-hv1": "CONSTRUCT { ?x ?p ?v } WHERE { ?c owl:hasValue ?v ; owl:onProperty ?p . ?x a ?c }",
    "cls-hv2": "CONSTRUCT { ?x a ?c } WHERE { ?c owl:hasValue ?v ; owl:onProperty ?p . ?x ?p ?v }",
    "cls-svf1": "CONSTRUCT { ?u a ?x } WHERE { ?x owl:someValuesFrom ?y ; owl:onProperty ?p . ?u ?p ?v . ?v a ?y }",
    "cls-svf2": "CONSTRUCT { ?u a ?x } WHERE { ?x owl:someValuesFrom owl:Thing ; owl:onProperty ?p . ?u ?p ?v }",
    "cls-avf": "CONSTRUCT { ?v a ?y } WHERE { ?x owl:allValuesFrom ?y ; owl:onProperty ?p . ?u a ?x ; ?p ?v . FILTER(!isLiteral(?v)) }",
}

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
    """What :func:`materialize` derived: the new triples and the rounds it took."""

    triples: set[ox.Triple] = field(default_factory=set)
    rounds: int = 0


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
    if isinstance(s, rdflib.Literal) or str(s).startswith(str(XSD)):
        return True
    if isinstance(s, rdflib.BNode) or isinstance(o, rdflib.BNode):
        return True
    if s == o and p in (OWL.sameAs, OWL.equivalentClass, OWL.equivalentProperty, RDFS.subClassOf, RDFS.subPropertyOf):
        return True
    if p == RDF.type and o in (OWL.Thing, RDFS.Resource, RDFS.Class, OWL.Class, RDF.Property):
        return True
    if p in (RDFS.subClassOf,) and o in (OWL.Thing, RDFS.Resource):
        return True
    return False


@lru_cache(maxsize=4)
def _schema_closure_cached(ontology_ntriples: str) -> frozenset[ox.Triple]:
    ontology = rdflib.Graph().parse(data=ontology_ntriples, format="nt")
    closed = rdflib.Graph()
    for triple in ontology:
        closed.add(triple)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(closed)
    derived = set()
    for s, p, o in closed - ontology:
        if not is_boilerplate(s, p, o):
            derived.add(ox.Triple(_to_ox(s), _to_ox(p), _to_ox(o)))
    return frozenset(derived)


def schema_closure(ontology_triples: Iterable[ox.Triple]) -> frozenset[ox.Triple]:
    """The triples owlrl's OWL-RL closure adds to the ontology alone (cached by content).

    :param ontology_triples: the ontology graph.
    """
    text = ox.serialize(sorted(ontology_triples, key=str), format=ox.RdfFormat.N_TRIPLES).decode()
    return _schema_closure_cached(text)


@lru_cache(maxsize=1)
def bundled_schema_closure() -> frozenset[ox.Triple]:
    """:func:`schema_closure` of the shipped ontology, computed once per process.

    The store's ontology graph is always the shipped ontology (``patrolkg load``
    writes it and users cannot), so writers and validators use this.
    """
    from .resources import ONTOLOGY_PATH

    return schema_closure(q.triple for q in ox.parse(ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE))


def _run_construct(store: ox.Store, query: str, graphs: list[ox.NamedNode]) -> Iterable[ox.Triple]:
    return store.query(_PREFIXES + query, default_graph=graphs)


def materialize(
    store: ox.Store,
    data_graphs: Sequence[str],
    ontology_graph: str,
    inferred_graph: str,
    *,
    schema: frozenset[ox.Triple] | None = None,
    max_rounds: int = 32,
) -> Materialization:
    """Derive the OWL 2 RL entailments of ``data_graphs`` + ontology into ``inferred_graph``.

    The inferred graph is cleared first and then holds exactly the derived triples that
    are not asserted in the data or ontology graphs.

    :param store: a pyoxigraph store holding every graph named here.
    :param schema: the ontology's closure if already known (see
        :func:`bundled_schema_closure`); computed from the ontology graph otherwise.
    :raises RuntimeError: if no fixpoint is reached in ``max_rounds`` (a bug).
    """
    inferred = ox.NamedNode(inferred_graph)
    ontology = ox.NamedNode(ontology_graph)
    store.remove_graph(inferred)
    asserted_graphs = [ox.NamedNode(g) for g in data_graphs] + [ontology]
    all_graphs = asserted_graphs + [inferred]

    result = Materialization()
    if schema is None:
        schema = schema_closure(q.triple for q in store.quads_for_pattern(None, None, None, ontology))
    fresh = [t for t in schema if not _asserted(store, t, asserted_graphs)]
    store.extend(ox.Quad(t.subject, t.predicate, t.object, inferred) for t in fresh)
    result.triples.update(fresh)

    while True:
        result.rounds += 1
        if result.rounds > max_rounds:
            raise RuntimeError(f"OWL RL materialization did not converge in {max_rounds} rounds")
        new: set[ox.Triple] = set()
        for query in INSTANCE_RULES.values():
            for triple in _run_construct(store, query, all_graphs):
                if triple not in result.triples and triple not in new:
                    new.add(triple)
        new = {t for t in new if not _mentions_blank_node(t) and not _asserted(store, t, asserted_graphs)}
        if not new:
            return result
        store.extend(ox.Quad(t.subject, t.predicate, t.object, inferred) for t in new)
        result.triples.update(new)


def _mentions_blank_node(triple: ox.Triple) -> bool:
    return isinstance(triple.subject, ox.BlankNode) or isinstance(triple.object, ox.BlankNode)


def _asserted(store: ox.Store, triple: ox.Triple, graphs: list[ox.NamedNode]) -> bool:
    return any(
        next(iter(store.quads_for_pattern(triple.subject, triple.predicate, triple.object, g)), None) is not None
        for g in graphs
    )


def find_inconsistencies(store: ox.Store, graphs: Sequence[str], *, focus: Iterable[str] | None = None) -> list[Inconsistency]:
    """Violations of the OWL 2 RL consistency rules in the union of ``graphs``.

    Include the inferred graph in ``graphs`` so that inherited types count.
    With ``focus``, only violations about those nodes are reported (and looked for).
    """
    dataset = [ox.NamedNode(g) for g in graphs]
    values = ""
    if focus is not None:
        nodes = " ".join(f"<{iri}>" for iri in focus)
        if not nodes:
            return []
        values = f"VALUES ?x {{ {nodes} }} "
    found = []
    for rule, (query, template) in CONSISTENCY_CHECKS.items():
        text = _PREFIXES + query.replace("WHERE {", "WHERE { " + values, 1)
        for row in store.query(text, default_graph=dataset):
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
