"""Reading :class:`patrolkg.reconcile.Record` objects from a store: an entity's names
(labels and aliases, in any of the usual vocabularies), types (``rdf:type`` and
Wikidata's ``wdt:P31``), links, description, and on request its values for some
properties and the IRIs it points at.

Works on patrolkg's stores and on plain pyoxigraph stores (a file read for
``patrolkg link``, the triples fetched from an endpoint) alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import pyoxigraph as ox

from .namespaces import PK
from .reconcile import Record
from .store import Store

__all__ = [
    "LABEL_PREDICATES",
    "ALIAS_PREDICATES",
    "TYPE_PREDICATES",
    "DESCRIPTION_PREDICATES",
    "SAME_AS",
    "read_records",
    "names_of",
]

RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
SCHEMA = "http://schema.org/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
WDT_P31 = "http://www.wikidata.org/prop/direct/P31"
SAME_AS = "http://www.w3.org/2002/07/owl#sameAs"

#: Where names are read from, preferred first; Wikidata, schema.org and FOAF included.
LABEL_PREDICATES: tuple[str, ...] = (RDFS + "label", SKOS + "prefLabel", SCHEMA + "name", "http://xmlns.com/foaf/0.1/name")
ALIAS_PREDICATES: tuple[str, ...] = (SKOS + "altLabel",)
#: ``rdf:type``, and Wikidata's "instance of" as its query service writes it.
TYPE_PREDICATES: tuple[str, ...] = (RDF_TYPE, WDT_P31)
DESCRIPTION_PREDICATES: tuple[str, ...] = (SKOS + "definition", str(PK.summary), SCHEMA + "description", RDFS + "comment")


def _rank(literal: ox.Literal, languages: Sequence[str]) -> int:
    language = literal.language or ""
    return languages.index(language) if language in languages else len(languages)


def read_records(
    store: Store | ox.Store,
    *,
    prefix: str | None = None,
    properties: Iterable[str] = (),
    related: bool = False,
    languages: Sequence[str] = ("en", ""),
) -> tuple[list[Record], dict[str, str]]:
    """The named entities of ``store``, and a name for every IRI that has one.

    :param prefix: only subjects whose IRI starts with it (patrolkg's ``id/`` space).
    :param properties: property IRIs whose values to read into :attr:`Record.values`
        (with the names of IRI values).
    :param related: read every IRI an entity points at (but its types) into
        :attr:`Record.related`.
    :param languages: preferred languages of the main name, in order (``""`` is none).
    :raises patrolkg.errors.StoreError: when the store cannot be read.
    """
    properties = tuple(dict.fromkeys(properties))
    wanted = (*LABEL_PREDICATES, *ALIAS_PREDICATES, *TYPE_PREDICATES, *DESCRIPTION_PREDICATES, SAME_AS, *properties)
    where = f'FILTER(STRSTARTS(STR(?e), "{_escape(prefix)}"))' if prefix else "FILTER(isIRI(?e))"
    rows = _select(store, f"SELECT DISTINCT ?e ?p ?v WHERE {{ VALUES ?p {{ {' '.join(f'<{p}>' for p in wanted)} }} ?e ?p ?v {where} }}")
    facts: dict[str, dict[str, list[ox.NamedNode | ox.Literal]]] = {}
    for row in rows:
        facts.setdefault(row["e"].value, {}).setdefault(row["p"].value, []).append(row["v"])

    names: dict[str, str] = {}
    records: list[Record] = []
    for iri, by_predicate in facts.items():
        labels = [v for p in LABEL_PREDICATES for v in by_predicate.get(p, []) if isinstance(v, ox.Literal)]
        aliases = [v for p in ALIAS_PREDICATES for v in by_predicate.get(p, []) if isinstance(v, ox.Literal)]
        if not labels and not aliases:
            continue
        # The best-ranked label leads; the order of predicates breaks ties.
        labels.sort(key=lambda lit: _rank(lit, languages))
        label_texts = tuple(dict.fromkeys(lit.value for lit in labels))
        alias_texts = tuple(a for a in dict.fromkeys(lit.value for lit in aliases) if a not in label_texts)
        descriptions = sorted((v for p in DESCRIPTION_PREDICATES for v in by_predicate.get(p, []) if isinstance(v, ox.Literal)), key=lambda lit: _rank(lit, languages))
        record = Record(
            iri=iri,
            labels=label_texts,
            aliases=alias_texts,
            types=frozenset(v.value for p in TYPE_PREDICATES for v in by_predicate.get(p, []) if isinstance(v, ox.NamedNode)),
            same_as=frozenset(v.value for v in by_predicate.get(SAME_AS, []) if isinstance(v, ox.NamedNode)),
            description=descriptions[0].value if descriptions else None,
        )
        names[iri] = record.name
        records.append(record)

    # Types (classes, Wikidata items) need names too, for evidence that reads well.
    names.update(names_of(store, {t for r in records for t in r.types} - names.keys(), languages))
    if properties:
        records = _with_values(store, records, properties, names, languages, prefix)
    if related:
        records = _with_related(store, records, prefix)
    return records, names


def _escape(text: str) -> str:
    r"""``text`` as the inside of a SPARQL string literal, which holds no bare quote,
    backslash or line break.

    >>> print(_escape('a "b" \\ c\r\nd'))
    a \"b\" \\ c\r\nd
    """
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def _select(store: Store | ox.Store, sparql: str) -> ox.QuerySolutions:
    if isinstance(store, ox.Store):
        result = store.query(sparql, use_default_graph_as_union=True)
    else:
        result = store.query(sparql)
    assert isinstance(result, ox.QuerySolutions), "a SELECT was expected"
    return result


def _values_clause(iris: Iterable[str]) -> str:
    return " ".join(f"<{i}>" for i in sorted(set(iris)))


def names_of(store: Store | ox.Store, iris: set[str], languages: Sequence[str] = ("en", "")) -> dict[str, str]:
    """A name for each of ``iris`` that has one (its best-ranked label)."""
    if not iris:
        return {}
    rows = _select(store, f"SELECT ?n ?l WHERE {{ VALUES ?n {{ {_values_clause(iris)} }} VALUES ?p {{ {' '.join(f'<{p}>' for p in LABEL_PREDICATES)} }} ?n ?p ?l FILTER(isLiteral(?l)) }}")
    best: dict[str, ox.Literal] = {}
    for row in rows:
        node, literal = row["n"].value, row["l"]
        if node not in best or _rank(literal, languages) < _rank(best[node], languages):
            best[node] = literal
    return {node: literal.value for node, literal in best.items()}


def _with_values(store: Store | ox.Store, records: list[Record], properties: Sequence[str], names: dict[str, str], languages: Sequence[str], prefix: str | None) -> list[Record]:
    where = f'FILTER(STRSTARTS(STR(?e), "{_escape(prefix)}"))' if prefix else ""
    rows = _select(store, f"SELECT DISTINCT ?e ?p ?v WHERE {{ VALUES ?p {{ {_values_clause(properties)} }} ?e ?p ?v {where} }}")
    values: dict[str, dict[str, set[str]]] = {}
    targets: set[str] = set()
    for row in rows:
        value = row["v"]
        if isinstance(value, ox.BlankNode):
            continue
        values.setdefault(row["e"].value, {}).setdefault(row["p"].value, set()).add(value.value)
        if isinstance(value, ox.NamedNode):
            targets.add(value.value)
    names.update(names_of(store, targets - names.keys(), languages))
    result = []
    for record in records:
        mine = values.get(record.iri, {})
        # An IRI value also answers to its name, so "Japan" matches pkid:state/japan.
        full = {p: frozenset(vs | {names[v] for v in vs if v in names}) for p, vs in mine.items()}
        result.append(dataclasses.replace(record, values=full))
    return result


def _with_related(store: Store | ox.Store, records: list[Record], prefix: str | None) -> list[Record]:
    types = _values_clause(TYPE_PREDICATES)
    where = f'FILTER(STRSTARTS(STR(?e), "{_escape(prefix)}"))' if prefix else ""
    rows = _select(store, f"SELECT DISTINCT ?e ?o WHERE {{ ?e ?p ?o FILTER(isIRI(?o) && ?e != ?o) FILTER(?p NOT IN ({types.replace(' ', ', ')})) {where} }}")
    related: dict[str, set[str]] = {}
    for row in rows:
        related.setdefault(row["e"].value, set()).add(row["o"].value)
    return [dataclasses.replace(r, related=frozenset(related.get(r.iri, ()))) for r in records]
