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

With ``focus``, every query starts from ``VALUES ?focus``: a submission touches only
its own nodes.

Supported, with SHACL semantics (exactly what patrolkg's shapes use): ``sh:targetClass``,
``sh:targetSubjectsOf``; ``sh:path`` as a predicate or an ``sh:alternativePath`` of
predicates; ``sh:class``, ``sh:datatype``, ``sh:nodeKind``, ``sh:minCount``,
``sh:maxCount``, ``sh:minInclusive``, ``sh:maxInclusive``, ``sh:pattern`` with
``sh:flags``, ``sh:languageIn``, ``sh:uniqueLang``, ``sh:in``, ``sh:not``, ``sh:or``,
``sh:equals``, ``sh:property``, ``sh:message``, ``sh:severity``. Any other ``sh:`` term
raises :class:`NotImplementedError`, so that a new shape is never silently ignored.

Two points where pySHACL and the spec part, and which side this module takes:

- ``sh:datatype``: a literal must also be well-typed. Like pySHACL, this is rdflib's
  ``ill_typed`` plus pySHACL's value-type test, evaluated in Python through a SPARQL
  custom function called only for literals of the right datatype;
- ``sh:pattern``: SPARQL ``REGEX``, as the spec defines it. pySHACL uses Python's
  ``re`` and ignores the ``s`` flag, so a multi-line ``pk:quote`` passes here and fails
  there.
"""

from __future__ import annotations

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

__all__ = ["CompiledShapes", "compile_shapes"]

_TYPED = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>/<http://www.w3.org/2000/01/rdf-schema#subClassOf>*"
_FOCUS = "#FOCUS#"  # where a query restricts ?focus; replaced by VALUES or nothing
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
    ok = isinstance(value, ox.Literal) and isinstance(datatype, ox.NamedNode) and _well_typed(value.value, datatype.value)
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
    sparql: str  # <p> or (<p1>|<p2>)
    text: str  # as a report gives it: the IRI, or _:id of the sh:alternativePath node


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
    targets: list[str] = field(default_factory=list)  # group patterns binding ?focus
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
            shape.targets.append(f"{{ ?focus {_TYPED} {_sparql(value, shape.name)} }}")
        elif predicate == SH.targetSubjectsOf:
            shape.targets.append(f"{{ ?focus {_sparql(value, shape.name)} ?targetObject }}")
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
            return _Path(_sparql(node, where), str(node))
        kinds = sorted(str(p).removeprefix(str(SH)) for p in set(self.graph.predicates(node)))
        if kinds != ["alternativePath"]:
            raise NotImplementedError(f"sh:path {kinds} (on {where}): only a predicate or an sh:alternativePath of predicates is supported")
        members = self._list(self.graph.value(node, SH.alternativePath), f"sh:alternativePath of {where}")
        if not members or not all(isinstance(m, rdflib.URIRef) for m in members):
            raise NotImplementedError(f"sh:alternativePath (on {where}): only alternatives of predicates are supported")
        self.read_nodes.add(node)
        return _Path("(" + "|".join(_sparql(m, where) for m in members) + ")", _text(node) or "")

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
            return f"NOT EXISTS {{ {v} {_TYPED} {value} }}"
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


@dataclass(frozen=True)
class _Result:
    """Where a check's rows become violations: the check of ``shape``, focus from ``top``."""

    top: _Shape
    shape: _Shape
    constraint: _Constraint
    node_shape: str


@dataclass
class _Query:
    """One SPARQL query (``_FOCUS`` marks where focus nodes go) and how its rows report."""

    text: str
    report: Callable[[ox.QuerySolution], Iterator[tuple[_Result, ox.Term | None]]]


def _flag(row: ox.QuerySolution, name: str) -> bool:
    term = row[name]
    if term is None:
        raise RuntimeError(f"a SHACL check could not be evaluated (?{name} unbound): a bug in patrolkg.shacl_sparql")
    return term.value == "true"


class _Scan:
    """Rows of one path (or one target set) with a flag per check and a flag per target."""

    def __init__(self, exprs: _Expressions) -> None:
        self.exprs = exprs
        self.checks: dict[object, tuple[str, str]] = {}  # key -> (flag variable, expression)
        self.tops: dict[_Shape, tuple[str, str]] = {}  # top shape -> (flag variable, expression)
        self.uses: list[tuple[_Result, str, object]] = []  # result, top flag, check flag or threshold

    def check(self, key: object, expression: Callable[[], str]) -> str:
        if key not in self.checks:
            self.checks[key] = (f"b{len(self.checks)}", expression())
        return self.checks[key][0]

    def top(self, shape: _Shape) -> str:
        if shape not in self.tops:
            self.tops[shape] = (f"t{len(self.tops)}", " || ".join(f"EXISTS {t}" for t in shape.targets))
        return self.tops[shape][0]

    def binds(self, table: dict) -> str:
        return " ".join(f"BIND(({expression}) AS ?{name})" for name, expression in table.values())

    def names(self, table: dict) -> str:
        return " ".join(f"?{name}" for name, _ in table.values())

    def any_flag(self) -> str:
        return " || ".join(f"COALESCE(?{name}, true)" for name, _ in self.checks.values())


def _targets(shape: _Shape) -> str:
    return f"{{ SELECT DISTINCT ?focus WHERE {{ {_FOCUS} {' UNION '.join(shape.targets)} }} }}"


class _Planner:
    """Lays the checks of the targeted shapes out as queries (see the module docstring)."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.graph = graph
        self.exprs = _Expressions()
        self.values: dict[str, _Scan] = {}
        self.counts: dict[str, _Scan] = {}
        self.languages: dict[str, _Scan] = {}
        self.nodes: dict[_Shape, _Scan] = {}
        self.queries: list[_Query] = []

    def result(self, top: _Shape, shape: _Shape, constraint: _Constraint) -> _Result:
        if not shape.messages:
            raise NotImplementedError(f"{shape.name} has no sh:message: pySHACL's generated messages are not reproduced")
        return _Result(top, shape, constraint, _text(_node_shape_of(self.graph, shape.node)) or "")

    def add(self, top: _Shape) -> None:
        if not top.targets:
            return
        owned = [top] if top.path is not None else []
        if top.path is None:
            for c in top.constraints:
                if c.parameter not in _VALUE_LEVEL:
                    raise NotImplementedError(f"sh:{c.parameter} on {top.name}, which has no sh:path")
                self._node_check(top, ("node", c), lambda c=c: self.exprs.fails(c, "?focus"), self.result(top, top, c), True)
        for shape in owned + top.properties:
            if shape.properties and shape.path is not None:
                raise NotImplementedError(f"sh:property on the property shape {shape.name}")
            for c in shape.constraints:
                self._property_check(top, shape, c)

    def _node_check(self, top: _Shape, key: object, expression: Callable[[], str], result: _Result, with_value: bool) -> None:
        scan = self.nodes.setdefault(top, _Scan(self.exprs))
        scan.uses.append((result, "", (scan.check(key, expression), with_value)))

    def _property_check(self, top: _Shape, shape: _Shape, c: _Constraint) -> None:
        path = shape.path
        assert path is not None
        result = self.result(top, shape, c)
        if c.parameter in _VALUE_LEVEL:
            scan = self.values.setdefault(path.sparql, _Scan(self.exprs))
            flag = scan.check((c.parameter, c.value), lambda: self.exprs.fails(c, "?value"))
            scan.uses.append((result, scan.top(top), flag))
        elif c.parameter == "maxCount":
            scan = self.counts.setdefault(path.sparql, _Scan(self.exprs))
            scan.uses.append((result, scan.top(top), c.value))
        elif c.parameter == "uniqueLang":
            scan = self.languages.setdefault(path.sparql, _Scan(self.exprs))
            scan.uses.append((result, scan.top(top), None))
        elif c.parameter == "minCount" and 0 < c.value <= _NESTED_COUNT_LIMIT:  # type: ignore[operator]
            expression = lambda: "NOT " + self.exprs.distinct_values("?focus", path.sparql, c.value)  # type: ignore[arg-type]  # noqa: E731
            self._node_check(top, ("minCount", path.sparql, c.value), expression, result, False)
        elif c.parameter == "minCount" and c.value:
            text = (f"SELECT ?focus WHERE {{ {_targets(top)} OPTIONAL {{ ?focus {path.sparql} ?value }} }} "
                    f"GROUP BY ?focus HAVING (COUNT(DISTINCT ?value) < {c.value})")
            self.queries.append(_Query(text, lambda row, r=result: iter([(r, None)])))
        elif c.parameter == "equals":
            text = (f"SELECT DISTINCT ?focus ?value WHERE {{ {_targets(top)} "
                    f"{{ ?focus {path.sparql} ?value FILTER NOT EXISTS {{ ?focus {c.value} ?value }} }} UNION "
                    f"{{ ?focus {c.value} ?value FILTER NOT EXISTS {{ ?focus {path.sparql} ?value }} }} }}")
            self.queries.append(_Query(text, lambda row, r=result: iter([(r, row["value"])])))

    def finish(self) -> list[_Query]:
        queries = list(self.queries)
        for path, scan in self.values.items():
            inner = (f"SELECT DISTINCT ?focus ?value {scan.names(scan.checks)} WHERE {{ {_FOCUS} ?focus {path} ?value . "
                     f"{scan.binds(scan.checks)} FILTER({scan.any_flag()}) }}")
            text = f"SELECT * WHERE {{ {{ {inner} }} {scan.binds(scan.tops)} }}"
            queries.append(_Query(text, lambda row, s=scan: ((r, row["value"]) for r, t, b in s.uses if _flag(row, t) and _flag(row, b))))
        for path, scan in self.counts.items():
            least = min(n for _, _, n in scan.uses)
            inner = (f"SELECT ?focus (COUNT(DISTINCT ?value) AS ?count) WHERE {{ {_FOCUS} ?focus {path} ?value }} "
                     f"GROUP BY ?focus HAVING (COUNT(DISTINCT ?value) > {least})")
            text = f"SELECT * WHERE {{ {{ {inner} }} {scan.binds(scan.tops)} }}"
            queries.append(_Query(text, lambda row, s=scan: ((r, None) for r, t, n in s.uses if int(row["count"].value) > n and _flag(row, t))))
        for path, scan in self.languages.items():
            inner = (f'SELECT ?focus ?lang WHERE {{ {_FOCUS} ?focus {path} ?value . FILTER(isLiteral(?value) && lang(?value) != "") '
                     f"BIND(LCASE(lang(?value)) AS ?lang) }} GROUP BY ?focus ?lang HAVING (COUNT(DISTINCT ?value) > 1)")
            text = f"SELECT * WHERE {{ {{ {inner} }} {scan.binds(scan.tops)} }}"
            queries.append(_Query(text, lambda row, s=scan: ((r, None) for r, t, _ in s.uses if _flag(row, t))))
        for top, scan in self.nodes.items():
            text = f"SELECT * WHERE {{ {_targets(top)} {scan.binds(scan.checks)} FILTER({scan.any_flag()}) }}"
            queries.append(_Query(text, lambda row, s=scan: ((r, row["focus"] if v else None) for r, _, (b, v) in s.uses if _flag(row, b))))
        return queries


@dataclass(frozen=True)
class CompiledShapes:
    """A shapes graph compiled to SPARQL queries; build it once with :func:`compile_shapes`."""

    _queries: tuple[_Query, ...]

    def sparql(self, *, focus: Iterable[str] | None = None) -> list[str]:
        """The queries :meth:`validate` runs, for reading or explaining.

        :raises ValueError: if a focus node is not a valid IRI.
        """
        values = _focus_values(focus)
        return [query.text.replace(_FOCUS, values) for query in self._queries]

    def validate(self, store: ox.Store, graphs: list[ox.NamedNode], *, focus: Iterable[str] | None = None) -> list[Violation]:
        """The SHACL results for the union of ``graphs`` in ``store``, sorted.

        ``focus`` restricts the focus nodes to those IRIs; the others are not evaluated.

        :raises ValueError: if a focus node is not a valid IRI.
        :raises RuntimeError: if a check cannot be evaluated (a bug in this module).

        >>> import rdflib, pyoxigraph as ox
        >>> shapes = rdflib.Graph().parse(format="turtle", data='''
        ...   @prefix sh: <http://www.w3.org/ns/shacl#> .
        ...   <urn:S> a sh:NodeShape ; sh:targetClass <urn:C> ; sh:property <urn:S-label> .
        ...   <urn:S-label> sh:path <urn:label> ; sh:minCount 1 ; sh:message "needs a label" .''')
        >>> store = ox.Store()
        >>> store.load(b"<urn:x> a <urn:C> .", format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode("urn:g"))
        >>> [v.describe() for v in compile_shapes(shapes).validate(store, [ox.NamedNode("urn:g")])]
        ['Violation: urn:x urn:label: needs a label [urn:S]']
        """
        values = _focus_values(focus)
        found = []
        for query in self._queries:
            rows = store.query(query.text.replace(_FOCUS, values), default_graph=list(graphs), custom_functions={_WELL_TYPED: _well_typed_function})
            for row in rows:  # type: ignore[union-attr]
                focus_node = _term_text(row["focus"])
                for result, value in query.report(row):
                    shape = result.shape
                    found.append(Violation(
                        focus_node=focus_node,
                        message=shape.message,
                        severity=shape.severity,
                        path=shape.path.text if shape.path else None,
                        value=_term_text(value) if value is not None else None,
                        source_shape=shape.name,
                        node_shape=result.node_shape,
                        constraint=result.constraint.component,
                    ))
        return sorted(found, key=lambda v: (v.focus_node, v.node_shape or "", v.path or "", v.message, v.source_shape or "", v.constraint or "", v.value or ""))


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
            raise NotImplementedError(f"sh:{stray[0]} (on {_text(subject)}) is not supported by patrolkg.shacl_sparql")
    planner = _Planner(shapes)
    for node in sorted(roots, key=str):
        planner.add(reader.shapes[node])
    return CompiledShapes(tuple(planner.finish()))
