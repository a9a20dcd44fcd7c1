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

import re
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
    "Rule",
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

@dataclass(frozen=True)
class Rule:
    """An OWL 2 RL rule: its conclusion, its premises on the data, its premises on the
    schema (already closed by owlrl), and a filter on the data's terms."""

    conclusion: str
    data: tuple[str, ...]
    schema: str
    filter: str = "true"


#: The OWL 2 RL instance rules (names as in the OWL 2 Profiles spec, tables 4–6).
INSTANCE_RULES: dict[str, Rule] = {
    "cax-sco": Rule("?x a ?d", ("?x a ?c",), "?c rdfs:subClassOf ?d . FILTER(?c != ?d)"),
    "prp-spo1": Rule("?x ?q ?y", ("?x ?p ?y",), "?p rdfs:subPropertyOf ?q . FILTER(?p != ?q)"),
    "prp-inv1": Rule("?y ?q ?x", ("?x ?p ?y",), "?p owl:inverseOf ?q", "!isLiteral(?y)"),
    "prp-inv2": Rule("?y ?p ?x", ("?x ?q ?y",), "?p owl:inverseOf ?q", "!isLiteral(?y)"),
    "prp-symp": Rule("?y ?p ?x", ("?x ?p ?y",), "?p a owl:SymmetricProperty", "!isLiteral(?y)"),
    "prp-trp": Rule("?x ?p ?z", ("?x ?p ?y", "?y ?p ?z"), "?p a owl:TransitiveProperty"),
    "prp-dom": Rule("?x a ?c", ("?x ?p ?y",), "?p rdfs:domain ?c"),
    "prp-rng": Rule("?y a ?c", ("?x ?p ?y",), "?p rdfs:range ?c", "!isLiteral(?y)"),
    "cls-hv1": Rule("?x ?p ?v", ("?x a ?c",), "?c owl:hasValue ?v ; owl:onProperty ?p"),
    "cls-hv2": Rule("?x a ?c", ("?x ?p ?v",), "?c owl:hasValue ?v ; owl:onProperty ?p"),
    "cls-svf1": Rule("?u a ?x", ("?u ?p ?v", "?v a ?y"), "?x owl:someValuesFrom ?y ; owl:onProperty ?p"),
    "cls-svf2": Rule("?u a ?x", ("?u ?p ?v",), "?x owl:someValuesFrom owl:Thing ; owl:onProperty ?p"),
    "cls-avf": Rule("?v a ?y", ("?u a ?x", "?u ?p ?v"), "?x owl:allValuesFrom ?y ; owl:onProperty ?p", "!isLiteral(?v)"),
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


_DELTA = "urn:patrolkg:reasoning:delta"
_NEXT = "urn:patrolkg:reasoning:next"
_VARIABLE = re.compile(r"\?\w+")


def _schema_values(store: ox.Store, rule: Rule, dataset: str) -> str | None:
    """The rule's schema premises, solved once, as a VALUES block (None: no bindings,
    so the rule cannot fire). Inlining them lets the engine start each rule from the
    few properties or classes it concerns, through its indexes."""
    names = sorted(set(_VARIABLE.findall(rule.schema)) & set(_VARIABLE.findall(" ".join((*rule.data, rule.conclusion)))))
    rows = list(store.query(f"{_PREFIXES}SELECT DISTINCT {' '.join(names)} {dataset} WHERE {{ {rule.schema} }}"))
    if not rows:
        return None
    cells = " ".join("(" + " ".join(str(row[name[1:]]) for name in names) + ")" for row in rows)
    return f"VALUES ({' '.join(names)}) {{ {cells} }}"


def _rule_updates(rule: Rule, values: str, using: str, inferred: str, *, first_round: bool) -> list[str]:
    """The rule as SPARQL Updates deriving only what is not there yet, into the
    inferred graph and the next round's delta.

    In the first round the data premises match everything; later rounds are
    semi-naive: one data premise must match the previous round's delta, so a round
    costs in proportion to what the last one derived, not to the store.
    """
    subject, _, obj = rule.conclusion.split(" ", 2)
    named = " && ".join(f"!isBlank({term})" for term in (subject, obj) if term.startswith("?")) or "true"
    conclusion = rule.conclusion
    insert = f"INSERT {{ GRAPH <{inferred}> {{ {conclusion} }} GRAPH <{_NEXT}> {{ {conclusion} }} }}"
    tail = f"FILTER NOT EXISTS {{ {conclusion} }} FILTER({named} && {rule.filter})"
    if first_round:
        premises = " . ".join(rule.data)
        return [f"{_PREFIXES}{insert}\n{using} WHERE {{ {values} {premises} . {tail} }}"]
    updates = []
    for index in range(len(rule.data)):
        premises = " . ".join(f"GRAPH <{_DELTA}> {{ {p} }}" if i == index else p for i, p in enumerate(rule.data))
        updates.append(f"{_PREFIXES}{insert}\n{using} USING NAMED <{_DELTA}> WHERE {{ {values} {premises} . {tail} }}")
    return updates


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
    are not asserted in the data or ontology graphs. The work happens inside the engine:
    each rule is one SPARQL Update over the union of the graphs, and rounds repeat until
    a round derives nothing.

    :param store: a pyoxigraph store holding every graph named here (a scratch store:
        two working graphs are created in it and dropped again).
    :param schema: the ontology's closure if already known (see
        :func:`bundled_schema_closure`); computed from the ontology graph otherwise.
    :raises RuntimeError: if no fixpoint is reached in ``max_rounds`` (a bug).
    """
    inferred = ox.NamedNode(inferred_graph)
    store.remove_graph(inferred)
    store.update(f"DROP SILENT GRAPH <{_DELTA}> ; DROP SILENT GRAPH <{_NEXT}>")
    graphs = [*data_graphs, ontology_graph, inferred_graph]
    using = " ".join(f"USING <{g}>" for g in graphs)
    dataset = " ".join(f"FROM <{g}>" for g in graphs)

    result = Materialization()
    if schema is None:
        schema = schema_closure(q.triple for q in store.quads_for_pattern(None, None, None, ox.NamedNode(ontology_graph)))
    asserted = [ox.NamedNode(g) for g in (*data_graphs, ontology_graph)]
    fresh = [t for t in schema if not any(next(iter(store.quads_for_pattern(t.subject, t.predicate, t.object, g)), None) for g in asserted)]
    store.extend(ox.Quad(t.subject, t.predicate, t.object, inferred) for t in fresh)

    first, later = [], []
    for rule in INSTANCE_RULES.values():
        values = _schema_values(store, rule, dataset)
        if values is None:
            continue
        first += _rule_updates(rule, values, using, inferred_graph, first_round=True)
        later += _rule_updates(rule, values, using, inferred_graph, first_round=False)
    count = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{_NEXT}> {{ ?s ?p ?o }} }}"
    try:
        while True:
            result.rounds += 1
            if result.rounds > max_rounds:
                raise RuntimeError(f"OWL RL materialization did not converge in {max_rounds} rounds")
            for update in first if result.rounds == 1 else later:
                store.update(update)
            if int(next(iter(store.query(count)))["n"].value) == 0:
                break
            store.update(f"DROP SILENT GRAPH <{_DELTA}> ; MOVE SILENT <{_NEXT}> TO <{_DELTA}>")
    finally:
        store.update(f"DROP SILENT GRAPH <{_DELTA}> ; DROP SILENT GRAPH <{_NEXT}>")
    result.triples = {q.triple for q in store.quads_for_pattern(None, None, None, inferred)}
    return result



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
