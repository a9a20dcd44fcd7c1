"""The OWL 2 RL instance rules, applied by forward chaining over hash indexes.

:func:`entailments` takes the facts (the data, the ontology and the ontology's closure)
and returns every new triple the instance rules derive from them, until nothing new
follows. Facts are tuples of terms written as in N-Triples (``<iri>``, ``"text"@en``,
``_:b``): Python strings hash once and compare fast, and a store reads and writes them
in bulk (:func:`store_facts`, :func:`as_ntriples`). The schema premises of the rules (sub-classes, sub-properties,
inverses, domains, ranges, restrictions...) are read once from the facts into
:class:`RuleTables`; the schema is expected closed already (see
:func:`patrolkg.reasoning.schema_closure`), so one step along a hierarchy reaches
every ancestor.

Each fact is handled once: it is matched against every rule it can be a premise of,
and joined through the indexes with the facts already known for the rules with two
data premises (``prp-trp``, ``cls-svf1``, ``cls-avf``). Every fact is indexed before any
is handled, and a derived fact is indexed when it is derived, so each pair of
premises is joined when the later of the two is handled: the result is the fixpoint,
whatever the order. It is held equal to owlrl's closure by ``tests/test_reasoning.py``.

Conclusions that name a blank node (one of the ontology's anonymous classes, such as
a restriction) take part in later steps but are not returned: outside the ontology's
graph they could not be joined back to it. User data holds no blank nodes (they are
skolemized on write).

>>> pk = "https://w3id.org/patrolkg/ontology#"
>>> facts = [(f"<{pk}State>", f"<{RDFS}subClassOf>", f"<{pk}Actor>"), ("<urn:japan>", f"<{RDF_TYPE}>", f"<{pk}State>")]
>>> entailments(facts)
{('<urn:japan>', '<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>', '<https://w3id.org/patrolkg/ontology#Actor>')}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyoxigraph as ox

__all__ = ["Fact", "RuleTables", "entailments", "RULE_NAMES", "store_facts", "triple_facts", "as_ntriples"]

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
RDF_TYPE = RDF + "type"

#: The OWL 2 RL instance rules applied (names as in the OWL 2 Profiles spec, tables 4–6).
RULE_NAMES = (
    "cax-sco", "prp-spo1", "prp-inv1", "prp-inv2", "prp-symp", "prp-trp", "prp-dom", "prp-rng",
    "cls-hv1", "cls-hv2", "cls-svf1", "cls-svf2", "cls-avf",
)

#: A term in N-Triples syntax.
Term = str
#: A triple of terms in N-Triples syntax.
Fact = tuple[str, str, str]


def _N(iri: str) -> str:
    return f"<{iri}>"


_TYPE = _N(RDF_TYPE)
_THING = _N(OWL + "Thing")
_SUB_CLASS, _SUB_PROPERTY, _INVERSE = _N(RDFS + "subClassOf"), _N(RDFS + "subPropertyOf"), _N(OWL + "inverseOf")
_DOMAIN, _RANGE = _N(RDFS + "domain"), _N(RDFS + "range")
_SYMMETRIC, _TRANSITIVE = _N(OWL + "SymmetricProperty"), _N(OWL + "TransitiveProperty")
_ON_PROPERTY, _HAS_VALUE = _N(OWL + "onProperty"), _N(OWL + "hasValue")
_SOME, _ALL = _N(OWL + "someValuesFrom"), _N(OWL + "allValuesFrom")
_SCHEMA_PREDICATES = frozenset({_SUB_CLASS, _SUB_PROPERTY, _INVERSE, _DOMAIN, _RANGE, _ON_PROPERTY, _HAS_VALUE, _SOME, _ALL})


def _table() -> defaultdict[object, list[object]]:
    return defaultdict(list)


@dataclass
class RuleTables:
    """The schema premises of the rules, as lookups from what a data premise binds."""

    super_classes: dict[Term, list[Term]] = field(default_factory=_table)  # cax-sco: c -> d
    super_properties: dict[Term, list[Term]] = field(default_factory=_table)  # prp-spo1: p -> q
    inverses: dict[Term, list[Term]] = field(default_factory=_table)  # prp-inv1/2: p -> q, both ways
    symmetric: set[Term] = field(default_factory=set)  # prp-symp
    transitive: set[Term] = field(default_factory=set)  # prp-trp
    domains: dict[Term, list[Term]] = field(default_factory=_table)  # prp-dom: p -> c
    ranges: dict[Term, list[Term]] = field(default_factory=_table)  # prp-rng: p -> c
    values_of_class: dict[Term, list[tuple[Term, Term]]] = field(default_factory=_table)  # cls-hv1: c -> (p, v)
    classes_of_value: dict[tuple[Term, Term], list[Term]] = field(default_factory=_table)  # cls-hv2: (p, v) -> c
    some_by_property: dict[Term, list[tuple[Term, Term]]] = field(default_factory=_table)  # cls-svf1: p -> (x, y)
    some_by_filler: dict[Term, list[tuple[Term, Term]]] = field(default_factory=_table)  # cls-svf1: y -> (x, p)
    some_thing: dict[Term, list[Term]] = field(default_factory=_table)  # cls-svf2: p -> x
    all_by_class: dict[Term, list[tuple[Term, Term]]] = field(default_factory=_table)  # cls-avf: x -> (p, y)
    all_by_property: dict[Term, list[tuple[Term, Term]]] = field(default_factory=_table)  # cls-avf: p -> (x, y)

    @classmethod
    def read(cls, facts: Iterable[Fact]) -> RuleTables:
        """The tables from the schema triples among ``facts`` (the rest are skipped)."""
        tables = cls()
        on_property: dict[Term, list[Term]] = defaultdict(list)
        restrictions: list[tuple[Term, Term, Term]] = []
        for s, p, o in facts:
            if p == _TYPE:
                if o == _SYMMETRIC:
                    tables.symmetric.add(s)
                elif o == _TRANSITIVE:
                    tables.transitive.add(s)
                continue
            if p not in _SCHEMA_PREDICATES:
                continue
            if p == _SUB_CLASS and s != o:
                _add(tables.super_classes, s, o)
            elif p == _SUB_PROPERTY and s != o:
                _add(tables.super_properties, s, o)
            elif p == _INVERSE:
                _add(tables.inverses, s, o)
                _add(tables.inverses, o, s)
            elif p == _DOMAIN:
                _add(tables.domains, s, o)
            elif p == _RANGE:
                _add(tables.ranges, s, o)
            elif p == _ON_PROPERTY:
                on_property[s].append(o)
            else:  # hasValue, someValuesFrom, allValuesFrom: joined with onProperty below
                restrictions.append((s, p, o))
        for restriction, kind, value in restrictions:
            for prop in on_property.get(restriction, ()):
                if kind == _HAS_VALUE:
                    _add(tables.values_of_class, restriction, (prop, value))
                    _add(tables.classes_of_value, (prop, value), restriction)
                elif kind == _SOME:
                    _add(tables.some_by_property, prop, (restriction, value))
                    _add(tables.some_by_filler, value, (restriction, prop))
                    if value == _THING:
                        _add(tables.some_thing, prop, restriction)
                else:
                    _add(tables.all_by_class, restriction, (prop, value))
                    _add(tables.all_by_property, prop, (restriction, value))
        return tables

    def derivable_predicates(self) -> set[Term]:
        """Predicates a rule can conclude, other than rdf:type."""
        found = {q for qs in self.super_properties.values() for q in qs}
        found |= {q for qs in self.inverses.values() for q in qs}
        found |= self.symmetric | self.transitive
        found |= {p for pairs in self.values_of_class.values() for p, _ in pairs}
        return found


def _add(table: dict, key: object, value: object) -> None:
    values = table[key]
    if value not in values:
        values.append(value)


class _Closure:
    """The facts, their indexes, and what has been derived."""

    def __init__(self, tables: RuleTables) -> None:
        self.t = tables
        self.types: defaultdict[Term, set[Term]] = defaultdict(set)
        self.derivable = tables.derivable_predicates()
        self.known: set[tuple[Term, Term, Term]] = set()  # facts whose predicate a rule can conclude
        out_props = tables.transitive | set(tables.all_by_property)
        in_props = tables.transitive | set(tables.some_by_property)
        self.out_props, self.in_props = out_props, in_props
        self.out: defaultdict[tuple[Term, Term], set[Term]] = defaultdict(set)  # (s, p) -> o
        self.into: defaultdict[tuple[Term, Term], set[Term]] = defaultdict(set)  # (o, p) -> s
        self.derived: list[tuple[Term, Term, Term]] = []

    def index(self, s: Term, p: Term, o: Term) -> bool:
        """Record a fact; False if it was known."""
        if p == _TYPE:
            classes = self.types[s]
            if o in classes:
                return False
            classes.add(o)
            return True
        if p in self.derivable:
            key = (s, p, o)
            if key in self.known:
                return False
            self.known.add(key)
        if p in self.out_props:
            self.out[(s, p)].add(o)
        if p in self.in_props:
            self.into[(o, p)].add(s)
        return True

    def derive(self, s: Term, p: Term, o: Term) -> None:
        # A subject is an IRI or a blank node, never a literal or a triple term.
        if s[0] == '"' or s[1] == "<":
            return
        if self.index(s, p, o):
            self.derived.append((s, p, o))

    def handle(self, s: Term, p: Term, o: Term) -> None:
        """Apply every rule ``(s, p, o)`` is a premise of."""
        t, derive = self.t, self.derive
        if p == _TYPE:
            for d in t.super_classes.get(o, ()):  # cax-sco
                derive(s, _TYPE, d)
            for prop, value in t.values_of_class.get(o, ()):  # cls-hv1
                derive(s, prop, value)
            for x, prop in t.some_by_filler.get(o, ()):  # cls-svf1, s as the value
                for u in self.into.get((s, prop), ()):
                    derive(u, _TYPE, x)
            for prop, y in t.all_by_class.get(o, ()):  # cls-avf, s as the subject
                for v in self.out.get((s, prop), ()):
                    derive(v, _TYPE, y)
        object_is_literal = o[0] == '"'
        for q in t.super_properties.get(p, ()):  # prp-spo1
            derive(s, q, o)
        if not object_is_literal:
            for q in t.inverses.get(p, ()):  # prp-inv1, prp-inv2
                derive(o, q, s)
            if p in t.symmetric:  # prp-symp
                derive(o, p, s)
            for c in t.ranges.get(p, ()):  # prp-rng
                derive(o, _TYPE, c)
        if p in t.transitive:  # prp-trp, both ways
            for z in list(self.out.get((o, p), ())):
                derive(s, p, z)
            for w in list(self.into.get((s, p), ())):
                derive(w, p, o)
        for c in t.domains.get(p, ()):  # prp-dom
            derive(s, _TYPE, c)
        for c in t.classes_of_value.get((p, o), ()):  # cls-hv2
            derive(s, _TYPE, c)
        for x, y in t.some_by_property.get(p, ()):  # cls-svf1, (s p o) as the link
            if y in self.types.get(o, ()):
                derive(s, _TYPE, x)
        for x in t.some_thing.get(p, ()):  # cls-svf2
            derive(s, _TYPE, x)
        if not object_is_literal:
            for x, y in t.all_by_property.get(p, ()):  # cls-avf, (s p o) as the link
                if x in self.types.get(s, ()):
                    derive(o, _TYPE, y)


def entailments(facts: Iterable[Fact], *, tables: RuleTables | None = None) -> set[Fact]:
    """The triples the instance rules derive from ``facts`` that are not among them.

    :param facts: everything the rules may use: data, ontology and its closure.
    :param tables: the schema premises, if already read (:meth:`RuleTables.read`);
        read from ``facts`` otherwise.
    """
    facts = facts if isinstance(facts, list) else list(facts)
    closure = _Closure(tables if tables is not None else RuleTables.read(facts))
    index, handle = closure.index, closure.handle
    for s, p, o in [fact for fact in facts if index(*fact)]:
        handle(s, p, o)
    derived = closure.derived
    position = 0
    while position < len(derived):  # grows while it is read: the derived facts' turn
        handle(*derived[position])
        position += 1
    return {fact for fact in derived if fact[0][0] != "_" and fact[2][0] != "_"}


def store_facts(store: ox.Store, graph: ox.NamedNode | ox.DefaultGraph) -> list[Fact]:
    """Every triple of ``graph`` as a fact (dumped as N-Triples by the engine and split:
    much faster than reading term objects one by one).

    >>> store = ox.Store()
    >>> store.add(ox.Quad(ox.NamedNode("urn:a"), ox.NamedNode("urn:p"), ox.Literal("x y"), ox.NamedNode("urn:g")))
    >>> store_facts(store, ox.NamedNode("urn:g"))
    [('<urn:a>', '<urn:p>', '"x y"')]
    """
    text = store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=graph).decode()
    # Subjects and predicates hold no space; every line ends with " ."
    # (split on "\n" only: literals may hold other line separators unescaped).
    return [tuple(line[:-2].split(" ", 2)) for line in text.split("\n") if line]  # type: ignore[misc]


def triple_facts(triples: Iterable[ox.Triple | ox.Quad]) -> list[Fact]:
    """Triples (or quads, for their triples) as facts."""
    return [(str(t.subject), str(t.predicate), str(t.object)) for t in triples]


def as_ntriples(facts: Iterable[Fact]) -> bytes:
    """Facts as an N-Triples document, for :func:`pyoxigraph.parse` or ``Store.load``."""
    return "".join(f"{s} {p} {o} .\n" for s, p, o in facts).encode()
