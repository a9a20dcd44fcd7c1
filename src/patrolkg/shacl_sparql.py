"""SHACL validation compiled to SPARQL and run inside pyoxigraph's engine.

:func:`patrolkg.validation.validate` runs pySHACL over an rdflib graph: the reference,
but minutes at a million triples. :func:`compile_shapes` reads a shapes graph once into
SPARQL queries; :meth:`CompiledShapes.validate` runs them over graphs of a
:class:`pyoxigraph.Store` and returns the :class:`~patrolkg.validation.Violation` list
pySHACL's report gives (``tests/test_shacl_sparql.py`` compares the two).

The queries follow the cost of the data rather than the layout of the shapes:

- a value check (``sh:class``, ``sh:datatype``, ``sh:or``...) does not depend on the
  focus node, so all value checks on one path are flag columns of one scan of that
  path's triples, and only failing rows are tested against the shapes' targets;
- ``sh:maxCount`` and ``sh:uniqueLang`` are one aggregate per path, tested the same way;
- ``sh:minCount``, ``sh:equals`` and checks of the focus node itself start from the
  targets, since missing data cannot be scanned for.

With ``focus``, every query starts from ``VALUES ?focus``, and a query is not run at
all when no focus node has its path's predicate or is a target of its shapes (one small
query lists the focus nodes' predicates and types): a submission touches only its own
nodes, in a few dozen milliseconds on a million-triple store.

Supported, with SHACL semantics (exactly what patrolkg's shapes use): ``sh:targetClass``,
``sh:targetSubjectsOf``; ``sh:path`` as a predicate or an ``sh:alternativePath`` of
predicates; ``sh:class``, ``sh:datatype``, ``sh:nodeKind``, ``sh:minCount``,
``sh:maxCount``, ``sh:minInclusive``, ``sh:maxInclusive``, ``sh:pattern`` with
``sh:flags``, ``sh:languageIn``, ``sh:uniqueLang``, ``sh:in``, ``sh:not``, ``sh:or``,
``sh:equals``, ``sh:property``, ``sh:message``, ``sh:severity``. Any other ``sh:`` term
raises :class:`NotImplementedError`, so that a new shape is never silently ignored.

Two points where pySHACL and the spec part, and which side this module takes:

- ``sh:datatype``: a literal must also be well-typed. Like pySHACL, this is rdflib's
  ``ill_typed`` plus pySHACL's value-type test, run in Python through a SPARQL custom
  function on literals of the required datatype (cached by lexical form);
- ``sh:pattern``: SPARQL ``REGEX``, as the spec defines it. pySHACL uses Python's
  ``re`` and ignores the ``s`` flag, so a multi-line ``pk:quote`` passes here and fails
  there.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

import pyoxigraph as ox
import rdflib
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH, XSD
from rdflib.term import XSDToPython

from .validation import Violation, _node_shape_of, _text

__all__ = ["CompiledShapes", "compile_shapes", "FOCUS_VALUES_LIMIT"]

_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
_SUBCLASS = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"
_FOCUS = "#FOCUS#"  # where a query restricts ?focus; replaced by VALUES or nothing
#: Most focus nodes named in the queries (VALUES); past it, every node is evaluated.
FOCUS_VALUES_LIMIT = 5_000
_WELL_TYPED = ox.NamedNode("urn:patrolkg:shacl-sparql:well-typed")

#: Parameters checked one value node at a time; the rest need all values of a focus node.
_VALUE_LEVEL = frozenset({"class", "datatype", "nodeKind", "minInclusive", "maxInclusive", "pattern", "languageIn", "in", "not", "or"})
_PARAMETERS = frozenset(_VALUE_LEVEL | {"minCount", "maxCount", "uniqueLang", "equals"})
_ACCEPTED = frozenset({SH.path, SH.property, SH.targetClass, SH.targetSubjectsOf, SH.message, SH.severity, SH.flags})
#: Non-validating shape characteristics (SHACL 2.3.2): they change no result.
_NON_VALIDATING = frozenset({SH.name, SH.description, SH.order, SH.group, SH.defaultValue})
_NESTED_COUNT_LIMIT = 3  # distinct values compared pairwise inside sh:or / sh:not
_NODE_KIND_FAILS = {
    SH.IRI: "!isIRI({v})",
    SH.Literal: "!isLiteral({v})",
    SH.BlankNode: "!isBlank({v})",
    SH.BlankNodeOrIRI: "isLiteral({v})",
    SH.BlankNodeOrLiteral: "isIRI({v})",
    SH.IRIOrLiteral: "isBlank({v})",
}
#: pySHACL's DatatypeConstraintComponent also requires these Python value types.
_PYSHACL_VALUE_TYPES: dict[str, type | tuple[type, ...]] = {
    str(XSD.integer): int, str(XSD.float): float, str(XSD.decimal): Decimal, str(XSD.boolean): bool,
    str(XSD.date): date, str(XSD.time): time, str(XSD.dateTime): datetime,
}


@lru_cache(maxsize=65536)
def _well_typed(lexical: str, datatype: str) -> bool:
    """pySHACL's test of a literal whose datatype is the one required."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdflib warns about booleans such as "yes"
        literal = rdflib.Literal(lexical, datatype=rdflib.URIRef(datatype))
    if literal.ill_typed:
        return False
    expected = _PYSHACL_VALUE_TYPES.get(datatype)
    return expected is None or isinstance(literal.value, expected)


def _well_typed_function(value: object, datatype: object) -> ox.Literal:
    # The engine may call this before testing datatype(?v) (it does not always
    # short-circuit &&), so the datatype is compared here too.
    ok = (
        isinstance(value, ox.Literal)
        and isinstance(datatype, ox.NamedNode)
        and value.datatype == datatype
        and _well_typed(value.value, datatype.value)
    )
    return ox.Literal(ok)


def _can_be_ill_typed(datatype: str) -> bool:
    return XSDToPython.get(rdflib.URIRef(datatype)) is not None or datatype in _PYSHACL_VALUE_TYPES


def _sparql(term: rdflib.term.Node, where: str) -> str:
    """A term as SPARQL text (N-Triples form, which SPARQL reads)."""
    if isinstance(term, rdflib.URIRef):
        return str(ox.NamedNode(str(term)))
    if isinstance(term, rdflib.Literal):
        if term.language:
            return str(ox.Literal(str(term), language=term.language))
        return str(ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype or XSD.string))))
    raise NotImplementedError(f"{where}: a blank node cannot be written into a SPARQL query")


def _term_text(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> str:
    """The string validation._text gives the same term after a round trip through rdflib."""
    return f"_:{term.value}" if isinstance(term, ox.BlankNode) else term.value


@dataclass(frozen=True)
class _Path:
    predicates: tuple[str, ...]  # SPARQL IRIs, several for an sh:alternativePath
    text: str  # as a report gives it: the IRI, or _:id of the sh:alternativePath node

    @property
    def sparql(self) -> str:
        return self.predicates[0] if len(self.predicates) == 1 else "(" + "|".join(self.predicates) + ")"


@dataclass(frozen=True)
class _Constraint:
    parameter: str  # local name of the sh: parameter, e.g. "minCount"
    value: object  # SPARQL text, int, tuple, or _Shape(s), by parameter

    @property
    def component(self) -> str:
        return f"{SH}{self.parameter[0].upper()}{self.parameter[1:]}ConstraintComponent"


@dataclass(eq=False)
class _Shape:
    node: rdflib.term.Node
    name: str
    path: _Path | None = None
    constraints: list[_Constraint] = field(default_factory=list)
    properties: list[_Shape] = field(default_factory=list)
    targets: list[tuple[str, str]] = field(default_factory=list)  # ("class" | "subjectsOf", SPARQL IRI)
    messages: list[str] = field(default_factory=list)
    severity: str = "Violation"

    @property
    def message(self) -> str:
        return "; ".join(sorted(self.messages))


class _Reader:
    """Reads shapes from an rdflib graph, refusing what it cannot compile."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.graph = graph
        self.shapes: dict[rdflib.term.Node, _Shape] = {}
        self.read_nodes: set[rdflib.term.Node] = set()
        self._open: set[rdflib.term.Node] = set()

    def read(self, node: rdflib.term.Node) -> _Shape:
        if node in self.shapes:
            return self.shapes[node]
        name = _text(node) or ""
        if node in self._open:
            raise NotImplementedError(f"recursive shapes are not supported: {name} refers to itself")
        self._open.add(node)
        shape = _Shape(node, name)
        flags = [str(f) for f in self.graph.objects(node, SH.flags)]
        for predicate, value in sorted(self.graph.predicate_objects(node), key=lambda pv: (str(pv[0]), str(pv[1]))):
            self._read_statement(shape, predicate, value, flags)
        self._open.discard(node)
        self.shapes[node] = shape
        self.read_nodes.add(node)
        return shape

    def _read_statement(self, shape: _Shape, predicate: rdflib.term.Node, value: rdflib.term.Node, flags: list[str]) -> None:
        local = str(predicate).removeprefix(str(SH))
        if predicate == RDF.type:
            if value not in (SH.NodeShape, SH.PropertyShape):
                raise NotImplementedError(f"{shape.name} is also a {value}: implicit class targets are not supported")
        elif predicate == SH.targetClass:
            shape.targets.append(("class", _sparql(value, shape.name)))
        elif predicate == SH.targetSubjectsOf:
            shape.targets.append(("subjectsOf", _sparql(value, shape.name)))
        elif predicate == SH.path:
            shape.path = self._path(value, shape.name)
        elif predicate == SH.property:
            shape.properties.append(self.read(value))
        elif predicate == SH.message:
            shape.messages.append(str(value))
        elif predicate == SH.severity:
            shape.severity = str(value).rsplit("#", 1)[-1]
        elif local in _PARAMETERS and predicate == SH[local]:
            constraint = self._constraint(local, value, shape.name, flags)
            if constraint is not None:
                shape.constraints.append(constraint)
        elif str(predicate).startswith(str(SH)) and predicate not in _ACCEPTED | _NON_VALIDATING:
            raise NotImplementedError(f"sh:{local} (on {shape.name}) is not supported by patrolkg.shacl_sparql")

    def _list(self, node: rdflib.term.Node, where: str) -> list[rdflib.term.Node]:
        if node != RDF.nil and self.graph.value(node, RDF.first) is None:
            raise NotImplementedError(f"{where}: expected an RDF list, found {node}")
        return list(Collection(self.graph, node))

    def _path(self, node: rdflib.term.Node, where: str) -> _Path:
        if isinstance(node, rdflib.URIRef):
            return _Path((_sparql(node, where),), str(node))
        kinds = sorted(str(p).removeprefix(str(SH)) for p in set(self.graph.predicates(node)))
        if kinds != ["alternativePath"]:
            raise NotImplementedError(f"sh:path {kinds} (on {where}): only a predicate or an sh:alternativePath of predicates is supported")
        members = self._list(self.graph.value(node, SH.alternativePath), f"sh:alternativePath of {where}")
        if not members or not all(isinstance(m, rdflib.URIRef) for m in members):
            raise NotImplementedError(f"sh:alternativePath (on {where}): only alternatives of predicates are supported")
        self.read_nodes.add(node)
        return _Path(tuple(_sparql(m, where) for m in members), _text(node) or "")

    def _constraint(self, parameter: str, value: rdflib.term.Node, where: str, flags: list[str]) -> _Constraint | None:
        where = f"sh:{parameter} of {where}"
        if parameter in ("class", "equals", "datatype", "nodeKind") and not isinstance(value, rdflib.URIRef):
            raise NotImplementedError(f"{where}: expected an IRI, found {value}")
        if parameter in ("class", "equals"):
            return _Constraint(parameter, _sparql(value, where))
        if parameter == "datatype":
            if value in (RDFS.Literal, RDFS.Datatype):
                raise NotImplementedError(f"{where}: pySHACL's special meaning of {value} is not reproduced")
            return _Constraint(parameter, str(value))
        if parameter == "nodeKind":
            if value not in _NODE_KIND_FAILS:
                raise NotImplementedError(f"{where}: unknown node kind {value}")
            return _Constraint(parameter, value)
        if parameter in ("minCount", "maxCount"):
            count = value.toPython() if isinstance(value, rdflib.Literal) else None
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise NotImplementedError(f"{where}: expected a non-negative integer, found {value}")
            return _Constraint(parameter, count)
        if parameter in ("minInclusive", "maxInclusive"):
            if not isinstance(value, rdflib.Literal):
                raise NotImplementedError(f"{where}: expected a literal, found {value}")
            return _Constraint(parameter, _sparql(value, where))
        if parameter == "pattern":
            if len(flags) > 1:
                raise NotImplementedError(f"{where}: several sh:flags")
            _check_regex(str(value), flags[0] if flags else "", where)
            return _Constraint(parameter, (str(value), flags[0] if flags else ""))
        if parameter == "languageIn":
            return _Constraint(parameter, tuple(str(tag) for tag in self._list(value, where)))
        if parameter == "uniqueLang":
            if not (isinstance(value, rdflib.Literal) and isinstance(value.toPython(), bool)):
                raise NotImplementedError(f"{where}: expected true or false, found {value}")
            return _Constraint(parameter, True) if value.toPython() else None
        if parameter == "in":
            return _Constraint(parameter, tuple(_sparql(member, where) for member in self._list(value, where)))
        if parameter == "not":
            return _Constraint(parameter, self.read(value))
        assert parameter == "or", parameter
        return _Constraint(parameter, tuple(self.read(member) for member in self._list(value, where)))


def _check_regex(pattern: str, flags: str, where: str) -> None:
    query = f"SELECT (REGEX('', {ox.Literal(pattern)}, {ox.Literal(flags)}) AS ?ok) {{}}"
    if next(iter(ox.Store().query(query)))["ok"] is None:
        raise NotImplementedError(f"{where}: the SPARQL engine cannot run the regular expression {pattern!r} with flags {flags!r}")


# rdf:type/rdfs:subClassOf* costs ~50 µs a node in the engine; a membership test against
# the sub-classes, found once per validation, is ~15 times cheaper. Queries carry markers
# that validate() replaces with the sub-classes of the moment.
_CLASS_MARKER = re.compile(r"#(ISA|INSTANCES) (\?\w+) (<[^>]*>)#")


def _isa(x: str, cls: str) -> str:
    """A SPARQL expression: ``x`` is an instance of ``cls`` (rdf:type/rdfs:subClassOf*)."""
    return f"#ISA {x} {cls}#"


def _instances(x: str, cls: str) -> str:
    """Triple patterns binding ``x`` to each instance of ``cls``."""
    return f"#INSTANCES {x} {cls}#"


def _classes_in(text: str) -> set[str]:
    return {match[2] for match in _CLASS_MARKER.findall(text)}


def _render_classes(text: str, subclasses: dict[str, tuple[str, ...] | None], focused: bool) -> str:
    """Replace class markers; ``None`` (a blank node among the sub-classes, which a query
    cannot name) falls back to the property path. Instances are listed through the
    rdf:type index, one class at a time, unless ``?focus`` is already bound by VALUES
    (the engine would evaluate the index lookups before joining with VALUES)."""

    def replace(match: re.Match[str]) -> str:
        kind, x, cls = match.groups()
        members = subclasses[cls]
        if kind == "ISA":
            if members is None:
                return f"EXISTS {{ {x} {_TYPE}/{_SUBCLASS}* {cls} }}"
            return f"EXISTS {{ {x} {_TYPE} ?isaType FILTER(?isaType IN ({', '.join(members)})) }}"
        if members is None:
            return f"{x} {_TYPE}/{_SUBCLASS}* {cls} ."
        if focused:
            return f"{x} {_TYPE} ?isaType FILTER(?isaType IN ({', '.join(members)}))"
        return " UNION ".join(f"{{ {x} {_TYPE} {member} }}" for member in members)

    return _CLASS_MARKER.sub(replace, text)


class _Expressions:
    """SPARQL expressions that are true where a node fails a check; fresh variable names."""

    def __init__(self) -> None:
        self._count = 0

    def var(self, stem: str = "v") -> str:
        self._count += 1
        return f"?{stem}{self._count}"

    def fails(self, c: _Constraint, v: str) -> str:
        """True if the value node ``v`` breaks the value-level constraint ``c``."""
        p, value = c.parameter, c.value
        if p == "class":
            return f"!{_isa(v, value)}"  # type: ignore[arg-type]
        if p == "datatype":
            assert isinstance(value, str)
            if value == str(RDF.langString):
                return f'!(isLiteral({v}) && lang({v}) != "")'
            check = f"isLiteral({v}) && datatype({v}) = <{value}>"
            if _can_be_ill_typed(value):
                check += f" && {_WELL_TYPED}({v}, <{value}>)"
            return f"!({check})"
        if p == "nodeKind":
            return _NODE_KIND_FAILS[value].format(v=v)  # type: ignore[index]
        if p == "minInclusive":
            return f"!COALESCE({value} <= {v}, false)"
        if p == "maxInclusive":
            return f"!COALESCE({v} <= {value}, false)"
        if p == "pattern":
            pattern, flags = value  # type: ignore[misc]
            return f"(isBlank({v}) || !COALESCE(REGEX(STR({v}), {ox.Literal(pattern)}, {ox.Literal(flags)}), false))"
        if p == "languageIn":
            ranges = " || ".join(f"langMatches(lang({v}), {ox.Literal(tag)})" for tag in value) or "false"  # type: ignore[attr-defined]
            return f"!(isLiteral({v}) && ({ranges}))"
        if p == "in":
            return "!(" + (" || ".join(f"sameTerm({v}, {member})" for member in value) or "false") + ")"  # type: ignore[attr-defined]
        if p == "not":
            return f"!{self.nonconforming(value, v)}"  # type: ignore[arg-type]
        assert p == "or", p
        return "(" + (" && ".join(self.nonconforming(member, v) for member in value) or "true") + ")"  # type: ignore[attr-defined]

    def nonconforming(self, shape: _Shape, x: str) -> str:
        """True if node ``x`` does not conform to ``shape`` (sh:or, sh:not members)."""
        parts = []
        if shape.path is None:
            for c in shape.constraints:
                if c.parameter not in _VALUE_LEVEL:
                    raise NotImplementedError(f"sh:{c.parameter} on {shape.name}, which has no sh:path")
                parts.append(self.fails(c, x))
        else:
            if shape.properties:
                raise NotImplementedError(f"sh:property on the property shape {shape.name}")
            path = shape.path.sparql
            checks = [c for c in shape.constraints if c.parameter in _VALUE_LEVEL]
            if checks:
                v = self.var()
                parts.append(f"EXISTS {{ {x} {path} {v} FILTER({' || '.join(self.fails(c, v) for c in checks)}) }}")
            for c in shape.constraints:
                if c.parameter in ("minCount", "maxCount"):
                    n = c.value if c.parameter == "minCount" else c.value + 1  # type: ignore[operator]
                    if n > _NESTED_COUNT_LIMIT:
                        raise NotImplementedError(f"sh:{c.parameter} {c.value} inside sh:or or sh:not ({shape.name}): at most {_NESTED_COUNT_LIMIT} values are compared")
                    if n:
                        parts.append(("NOT " if c.parameter == "minCount" else "") + self.distinct_values(x, path, n))  # type: ignore[arg-type]
                elif c.parameter == "uniqueLang":
                    a, b = self.var(), self.var()
                    parts.append(f"EXISTS {{ {x} {path} {a}, {b} FILTER({_same_language(a, b)}) }}")
                elif c.parameter == "equals":
                    v, w = self.var(), self.var()
                    parts.append(f"EXISTS {{ {x} {path} {v} FILTER NOT EXISTS {{ {x} {c.value} {v} }} }}")
                    parts.append(f"EXISTS {{ {x} {c.value} {w} FILTER NOT EXISTS {{ {x} {path} {w} }} }}")
        parts += [self.nonconforming(p, x) for p in shape.properties]
        return "(" + (" || ".join(parts) or "false") + ")"

    def distinct_values(self, x: str, path: str, n: int) -> str:
        """EXISTS n distinct values of ``path`` from ``x``."""
        vs = [self.var() for _ in range(n)]
        different = " && ".join(f"!sameTerm({a}, {b})" for i, a in enumerate(vs) for b in vs[i + 1 :])
        return "EXISTS { " + " ".join(f"{x} {path} {v} ." for v in vs) + (f" FILTER({different})" if different else "") + " }"


def _same_language(a: str, b: str) -> str:
    return f'isLiteral({a}) && lang({a}) != "" && !sameTerm({a}, {b}) && LCASE(lang({a})) = LCASE(lang({b}))'


def _target_test(shape: _Shape) -> str:
    """True if ?focus is a focus node of ``shape``."""
    return " || ".join(_isa("?focus", t) if kind == "class" else f"EXISTS {{ ?focus {t} ?targetObject }}" for kind, t in shape.targets)


def _target_rows(shape: _Shape) -> str:
    """A subquery giving each focus node of ``shape`` once. The focus restriction goes
    into each branch: the engine evaluates a group before joining it with what is outside."""
    patterns = " UNION ".join(
        f"{{ {_FOCUS} {_instances('?focus', t) if kind == 'class' else f'?focus {t} ?targetObject'} }}" for kind, t in shape.targets
    )
    return f"{{ SELECT DISTINCT ?focus WHERE {{ {patterns} }} }}"


@dataclass(frozen=True)
class _Present:
    """What the focus nodes have: their predicates, their types, the sub-classes in use."""

    predicates: frozenset[str]
    types: frozenset[str]
    subclasses: dict[str, tuple[str, ...] | None]

    def targets(self, shape: _Shape) -> bool:
        """Whether some focus node can be a focus node of ``shape``."""
        for kind, t in shape.targets:
            if kind == "subjectsOf" and t in self.predicates:
                return True
            if kind == "class":
                members = self.subclasses.get(t)
                if members is None or self.types.intersection(members):  # None: cannot tell
                    return True
        return False


def _flag(row: ox.QuerySolution, name: str) -> bool:
    term = row[name]
    if term is None:
        raise RuntimeError(f"a SHACL check could not be evaluated (?{name} unbound): a bug in patrolkg.shacl_sparql")
    return term.value == "true"


@dataclass(frozen=True)
class _Result:
    """Which check a row reports: ``constraint`` of ``shape``, reached from ``top``'s targets."""

    top: _Shape
    shape: _Shape
    constraint: _Constraint
    node_shape: str


_Term = ox.NamedNode | ox.BlankNode | ox.Literal
_Run = Callable[[str], Iterable[ox.QuerySolution]]
_Found = Iterator[tuple[_Term, _Result, _Term | None]]


class _Query:
    """One query template (with focus and class markers) and how its rows report;
    ``run`` runs any further query the report needs."""

    @property
    def text(self) -> str:
        raise NotImplementedError

    def can_report(self, present: _Present) -> bool:
        """False if, given what the focus nodes have, the query cannot report anything."""
        raise NotImplementedError

    def results(self, rows: Iterable[ox.QuerySolution], run: _Run) -> _Found:
        raise NotImplementedError


class _PathScan(_Query):
    """A scan of one path's triples; only failing rows are tested against targets."""

    def __init__(self, path: _Path) -> None:
        self.predicates = path.predicates
        self.path = path.sparql
        self.checks: dict[object, tuple[str, str]] = {}  # key -> (variable, expression)
        self.tops: dict[_Shape, str] = {}  # top shape -> variable of its target test
        self.uses: list[tuple[_Result, str, object]] = []  # result, top variable, check variable or maximum

    def check(self, key: object, expression: Callable[[], str]) -> str:
        if key not in self.checks:
            self.checks[key] = (f"b{len(self.checks)}", expression())
        return self.checks[key][0]

    def use(self, result: _Result, check: object) -> None:
        top = self.tops.setdefault(result.top, f"t{len(self.tops)}")
        self.uses.append((result, top, check))

    def can_report(self, present: _Present) -> bool:
        return bool(present.predicates.intersection(self.predicates)) and any(map(present.targets, self.tops))

    def _with_targets(self, inner: str) -> str:
        tests = " ".join(f"BIND(({_target_test(shape)}) AS ?{name})" for shape, name in self.tops.items())
        return f"SELECT * WHERE {{ {{ {inner} }} {tests} }}"


class _ValueScan(_PathScan):
    """Value checks depend on the value alone: each distinct value is checked once (a
    speaker or a state recurs thousands of times), and only failing values are joined
    back to their focus nodes."""

    @property
    def text(self) -> str:
        names = " ".join(f"?{name}" for name, _ in self.checks.values())
        binds = " ".join(f"BIND(({expression}) AS ?{name})" for name, expression in self.checks.values())
        any_fails = " || ".join(f"COALESCE(?{name}, true)" for name, _ in self.checks.values())
        values = f"SELECT DISTINCT ?value WHERE {{ {_FOCUS} ?focus {self.path} ?value }}"
        failing = f"SELECT ?value {names} WHERE {{ {{ {values} }} {binds} FILTER({any_fails}) }}"
        tests = " ".join(f"BIND(({_target_test(shape)}) AS ?{name})" for shape, name in self.tops.items())
        return f"SELECT DISTINCT * WHERE {{ {{ {failing} }} {_FOCUS} ?focus {self.path} ?value . {tests} }}"

    def results(self, rows: Iterable[ox.QuerySolution], run: _Run) -> _Found:
        for row in rows:
            for result, top, check in self.uses:
                if _flag(row, check) and _flag(row, top):  # type: ignore[arg-type]
                    yield row["focus"], result, row["value"]


class _CountScan(_PathScan):
    """sh:maxCount and sh:uniqueLang: focus nodes with more distinct values than the
    lowest maximum (two for sh:uniqueLang), then the languages of those nodes alone."""

    @property
    def text(self) -> str:
        least = min(1 if n is None else n for _, _, n in self.uses)  # type: ignore[type-var]
        return self._with_targets(
            f"SELECT ?focus (COUNT(DISTINCT ?value) AS ?count) WHERE {{ {_FOCUS} ?focus {self.path} ?value }} "
            f"GROUP BY ?focus HAVING (COUNT(DISTINCT ?value) > {least})"
        )

    def results(self, rows: Iterable[ox.QuerySolution], run: _Run) -> _Found:
        several: dict[_Result, list[_Term]] = {}
        for row in rows:
            for result, top, maximum in self.uses:
                if maximum is None:  # sh:uniqueLang
                    if _flag(row, top):
                        several.setdefault(result, []).append(row["focus"])
                elif int(row["count"].value) > maximum and _flag(row, top):  # type: ignore[operator]
                    yield row["focus"], result, None
        languages = (f'?focus {self.path} ?value . FILTER(isLiteral(?value) && lang(?value) != "") '
                     f"BIND(LCASE(lang(?value)) AS ?lang)")
        for result, nodes in several.items():
            for where in _for_nodes(nodes, languages, _FOCUS):
                for row in run(f"SELECT ?focus ?lang WHERE {{ {where} }} GROUP BY ?focus ?lang HAVING (COUNT(DISTINCT ?value) > 1)"):
                    if row["focus"] in nodes:
                        yield row["focus"], result, None


def _for_nodes(nodes: list[_Term], pattern: str, all_focus: str) -> list[str]:
    """Group patterns that evaluate ``pattern`` for ``nodes`` only. A blank node cannot
    be named in a query, so blank nodes take ``pattern`` from ``all_focus`` (a pattern
    binding every candidate ?focus) and the caller keeps its own."""
    named = [n for n in nodes if not isinstance(n, ox.BlankNode)]
    found = [f"VALUES ?focus {{ {' '.join(map(str, named))} }} {pattern}"] if named else []
    if len(named) < len(nodes):
        found.append(f"{all_focus} FILTER(isBlank(?focus)) {pattern}")
    return found


class _NodeScan(_Query):
    """Checks evaluated once per focus node of one shape: sh:minCount, node-level
    constraints, and sh:equals (whose values a second query lists for failing nodes)."""

    def __init__(self, top: _Shape) -> None:
        self.top = top
        self.checks: dict[object, tuple[str, str]] = {}
        self.uses: list[tuple[_Result, str, str | None]] = []  # result, check, what to report

    def add(self, result: _Result, key: object, expression: Callable[[], str], report: str | None) -> None:
        """``report``: "focus" (the focus node is the value), None (no value), or the
        pattern binding ?value for a focus node that fails (sh:equals)."""
        if key not in self.checks:
            self.checks[key] = (f"b{len(self.checks)}", expression())
        self.uses.append((result, self.checks[key][0], report))

    @property
    def text(self) -> str:
        binds = " ".join(f"BIND(({expression}) AS ?{name})" for name, expression in self.checks.values())
        any_fails = " || ".join(f"COALESCE(?{name}, true)" for name, _ in self.checks.values())
        return f"SELECT * WHERE {{ {_target_rows(self.top)} {binds} FILTER({any_fails}) }}"

    def can_report(self, present: _Present) -> bool:
        return present.targets(self.top)

    def results(self, rows: Iterable[ox.QuerySolution], run: _Run) -> _Found:
        failing: dict[tuple[_Result, str], list[_Term]] = {}
        for row in rows:
            for result, check, report in self.uses:
                if not _flag(row, check):
                    continue
                if report is None or report == "focus":
                    yield row["focus"], result, row["focus"] if report else None
                else:
                    failing.setdefault((result, report), []).append(row["focus"])
        for (result, pattern), nodes in failing.items():
            for where in _for_nodes(nodes, pattern, _target_rows(self.top)):
                for row in run(f"SELECT DISTINCT ?focus ?value WHERE {{ {where} }}"):
                    if row["focus"] in nodes:
                        yield row["focus"], result, row["value"]


class _MinCountQuery(_Query):
    """sh:minCount above what _NodeScan compares pairwise: an aggregate per focus node."""

    def __init__(self, result: _Result, path: str, minimum: int) -> None:
        self.result, self.path, self.minimum = result, path, minimum

    def can_report(self, present: _Present) -> bool:
        return present.targets(self.result.top)

    @property
    def text(self) -> str:
        return (f"SELECT ?focus WHERE {{ {_target_rows(self.result.top)} OPTIONAL {{ ?focus {self.path} ?value }} }} "
                f"GROUP BY ?focus HAVING (COUNT(DISTINCT ?value) < {self.minimum})")

    def results(self, rows: Iterable[ox.QuerySolution], run: _Run) -> _Found:
        for row in rows:
            yield row["focus"], self.result, None


class _Planner:
    """Lays the checks of the targeted shapes out as queries (see the module docstring)."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.graph = graph
        self.exprs = _Expressions()
        self.values: dict[str, _ValueScan] = {}
        self.counts: dict[str, _CountScan] = {}
        self.nodes: dict[_Shape, _NodeScan] = {}
        self.others: list[_Query] = []

    def add(self, top: _Shape) -> None:
        if not top.targets:
            return
        if top.path is None:
            for c in top.constraints:
                if c.parameter not in _VALUE_LEVEL:
                    raise NotImplementedError(f"sh:{c.parameter} on {top.name}, which has no sh:path")
                self._node(top).add(self._result(top, top, c), ("node", c), lambda c=c: self.exprs.fails(c, "?focus"), "focus")
        for shape in ([top] if top.path is not None else []) + top.properties:
            if shape.path is None:
                raise NotImplementedError(f"sh:property {shape.name} of {top.name} has no sh:path")
            if shape.properties:
                raise NotImplementedError(f"sh:property on the property shape {shape.name}")
            for c in shape.constraints:
                self._property_check(self._result(top, shape, c), shape.path)

    def _result(self, top: _Shape, shape: _Shape, constraint: _Constraint) -> _Result:
        if not shape.messages:
            raise NotImplementedError(f"{shape.name} has no sh:message: pySHACL's generated messages are not reproduced")
        return _Result(top, shape, constraint, _text(_node_shape_of(self.graph, shape.node)) or "")

    def _node(self, top: _Shape) -> _NodeScan:
        return self.nodes.setdefault(top, _NodeScan(top))

    def _property_check(self, result: _Result, shape_path: _Path) -> None:
        c, exprs, path = result.constraint, self.exprs, shape_path.sparql
        if c.parameter in _VALUE_LEVEL:
            scan = self.values.setdefault(path, _ValueScan(shape_path))
            scan.use(result, scan.check((c.parameter, c.value), lambda: exprs.fails(c, "?value")))
        elif c.parameter == "maxCount":
            self.counts.setdefault(path, _CountScan(shape_path)).use(result, c.value)
        elif c.parameter == "uniqueLang":
            self.counts.setdefault(path, _CountScan(shape_path)).use(result, None)
        elif c.parameter == "minCount" and 0 < c.value <= _NESTED_COUNT_LIMIT:  # type: ignore[operator]
            expression = lambda: "NOT " + exprs.distinct_values("?focus", path, c.value)  # type: ignore[arg-type]
            self._node(result.top).add(result, ("minCount", path, c.value), expression, None)
        elif c.parameter == "minCount" and c.value:
            self.others.append(_MinCountQuery(result, path, c.value))  # type: ignore[arg-type]
        elif c.parameter == "equals":
            both = f"?focus ({path}|{c.value}) ?value FILTER(NOT EXISTS {{ ?focus {path} ?value }} || NOT EXISTS {{ ?focus {c.value} ?value }})"
            expression = lambda: f"EXISTS {{ {both.replace('?value', '?equalsValue')} }}"
            self._node(result.top).add(result, ("equals", path, c.value), expression, both)

    def queries(self) -> list[_Query]:
        scans: list[_Query] = [*self.values.values(), *self.counts.values(), *self.nodes.values()]
        return scans + self.others


@dataclass(frozen=True)
class CompiledShapes:
    """A shapes graph compiled to SPARQL queries; build it once with :func:`compile_shapes`."""

    _queries: tuple[_Query, ...]
    _classes: tuple[str, ...]  # every class whose sub-classes the queries need
    _rendered: dict[tuple, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)  # by sub-classes

    def sparql(self, store: ox.Store, graphs: list[ox.NamedNode], *, focus: Iterable[str] | None = None) -> list[str]:
        """The queries :meth:`validate` would run now, for reading or explaining.

        :raises ValueError: if a focus node is not a valid IRI.
        """
        values = _focus_values(focus)
        return [text.replace(_FOCUS, values) for text in self._render(store, list(graphs), focused=focus is not None)[0]]

    def validate(self, store: ox.Store, graphs: list[ox.NamedNode], *, focus: Iterable[str] | None = None) -> list[Violation]:
        """The SHACL results for the union of ``graphs`` in ``store``, sorted.

        ``focus`` restricts the results to those IRIs. Up to :data:`FOCUS_VALUES_LIMIT`
        of them, the others are not evaluated at all; past it (a bulk load), naming them
        in every query costs more than evaluating every node, so all are evaluated and
        the results kept for those only.

        :raises ValueError: if a focus node is not a valid IRI.
        :raises RuntimeError: if a check cannot be evaluated (a bug in this module).

        >>> import rdflib, pyoxigraph as ox
        >>> shapes = rdflib.Graph().parse(format="turtle", data='''
        ...   @prefix sh: <http://www.w3.org/ns/shacl#> .
        ...   <urn:S> a sh:NodeShape ; sh:targetClass <urn:C> ; sh:property <urn:S-label> .
        ...   <urn:S-label> sh:path <urn:label> ; sh:minCount 1 ; sh:message "needs a label" .''')
        >>> store = ox.Store()
        >>> store.load(b"<urn:x> a <urn:C> .", format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode("urn:g"))
        >>> [v.describe() for v in compile_shapes(shapes).validate(store, [ox.NamedNode("urn:g")])]
        ['Violation: urn:x urn:label: needs a label [urn:S]']
        """
        kept: frozenset[str] | None = None
        if focus is not None:
            focus = set(focus)
            if len(focus) > FOCUS_VALUES_LIMIT:
                kept, focus = frozenset(focus), None
        values = _focus_values(focus)
        graphs = list(graphs)
        texts, subclasses = self._render(store, graphs, focused=focus is not None)

        def execute(rendered: str) -> Iterable[ox.QuerySolution]:
            functions = {_WELL_TYPED: _well_typed_function}
            return store.query(rendered.replace(_FOCUS, values), default_graph=graphs, custom_functions=functions)  # type: ignore[return-value]

        def run(text: str) -> Iterable[ox.QuerySolution]:
            return execute(_render_classes(text, subclasses, focus is not None))

        queries = list(zip(self._queries, texts))
        if focus is not None:
            # Most queries cannot report on a handful of nodes; skip them unparsed.
            present = _present(execute, subclasses)
            queries = [(query, text) for query, text in queries if query.can_report(present)]
        found = []
        for query, text in queries:
            for focus_node, result, value in query.results(execute(text), run):
                if kept is not None and (not isinstance(focus_node, ox.NamedNode) or focus_node.value not in kept):
                    continue
                shape = result.shape
                found.append(Violation(
                    focus_node=_term_text(focus_node),
                    message=shape.message,
                    severity=shape.severity,
                    path=shape.path.text if shape.path else None,
                    value=_term_text(value) if value is not None else None,
                    source_shape=shape.name,
                    node_shape=result.node_shape,
                    constraint=result.constraint.component,
                ))
        return sorted(found, key=lambda v: (v.focus_node, v.node_shape or "", v.path or "", v.message, v.source_shape or "", v.constraint or "", v.value or ""))

    def _render(self, store: ox.Store, graphs: list[ox.NamedNode], *, focused: bool) -> tuple[tuple[str, ...], dict[str, tuple[str, ...] | None]]:
        """The query texts with the class markers replaced by the sub-classes in ``graphs``,
        and those sub-classes."""
        subclasses: dict[str, list[str] | None] = {cls: [cls] for cls in self._classes}
        if self._classes:
            query = f"SELECT ?class ?sub WHERE {{ VALUES ?class {{ {' '.join(self._classes)} }} ?sub {_SUBCLASS}* ?class }}"
            for row in store.query(query, default_graph=graphs):  # type: ignore[union-attr]
                members = subclasses[str(row["class"])]
                if members is None or isinstance(row["sub"], ox.BlankNode):
                    subclasses[str(row["class"])] = None
                elif str(row["sub"]) not in members:
                    members.append(str(row["sub"]))
        closed = {cls: tuple(sorted(m)) if m is not None else None for cls, m in subclasses.items()}
        key = (focused, tuple(sorted(closed.items())))
        if key not in self._rendered:
            if len(self._rendered) > 16:
                self._rendered.clear()
            self._rendered[key] = tuple(_render_classes(query.text, closed, focused) for query in self._queries)
        return self._rendered[key], closed


def _present(execute: Callable[[str], Iterable[ox.QuerySolution]], subclasses: dict[str, tuple[str, ...] | None]) -> _Present:
    predicates, types = set(), set()
    rows = execute(f"SELECT DISTINCT ?p ?type WHERE {{ {_FOCUS} ?focus ?p ?o BIND(IF(sameTerm(?p, {_TYPE}), ?o, ?none) AS ?type) }}")
    for row in rows:
        predicates.add(str(row["p"]))
        if row["type"] is not None:
            types.add(str(row["type"]))
    return _Present(frozenset(predicates), frozenset(types), subclasses)


def _focus_values(focus: Iterable[str] | None) -> str:
    if focus is None:
        return ""
    return "VALUES ?focus { " + " ".join(str(ox.NamedNode(iri)) for iri in sorted(set(focus))) + " }"


def compile_shapes(shapes: rdflib.Graph) -> CompiledShapes:
    """Compile the shapes of ``shapes`` into SPARQL queries.

    :raises NotImplementedError: naming the feature and the shape, for any SHACL feature
        outside the supported set (see the module docstring).
    """
    reader = _Reader(shapes)
    targets = (SH.targetClass, SH.targetSubjectsOf, SH.targetNode, SH.targetObjectsOf, SH.target)
    roots = set(shapes.subjects(RDF.type, SH.NodeShape)) | set(shapes.subjects(RDF.type, SH.PropertyShape))
    roots |= {s for t in targets for s in shapes.subjects(t, None)}
    for node in sorted(roots, key=str):
        reader.read(node)
    for subject in sorted(set(shapes.subjects()) - reader.read_nodes, key=str):
        stray = sorted(str(p).removeprefix(str(SH)) for p in shapes.predicates(subject) if str(p).startswith(str(SH)))
        if stray:
            raise NotImplementedError(
                f"sh:{stray[0]} (on {_text(subject)}, which is neither a shape nor part of one) is not supported by patrolkg.shacl_sparql"
            )
    planner = _Planner(shapes)
    for node in sorted(roots, key=str):
        planner.add(reader.shapes[node])
    queries = tuple(planner.queries())
    classes = tuple(sorted(set().union(*(_classes_in(q.text) for q in queries))))
    return CompiledShapes(queries, classes)
