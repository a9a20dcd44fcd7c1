"""Linked Data: every ``<base_iri>id/...`` IRI, the ontology and the VoID description,
dereferenceable over HTTP with content negotiation.

Routes::

    GET /id/{kind}/{slug}     an entity: HTML for browsers, RDF for machines
    GET /ontology             the whole ontology (HTML lists its terms, #JointPatrol...)
    GET /.well-known/void     the VoID description of the dataset (RDF only)
    GET /assets/ld.css        the pages' style sheet

Representations are chosen from the Accept header (:func:`patrolkg.negotiation.choose`)
or the ``?format=`` override (html, turtle, jsonld, ntriples, rdfxml). Every answer
carries ``Vary: Accept``. Nothing acceptable is a 406; what the graph does not hold,
or a path that is not a plain ``[A-Za-z0-9._~-]`` segment list, is a 404 (a small
HTML page for browsers, the JSON error shape for everyone else).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files

import pyoxigraph as ox
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from ..namespaces import GRAPH, INFERRED_GRAPH, ONTOLOGY_GRAPH, PK, PREFIXES
from ..negotiation import choose
from ..rdfio import RDF_FORMATS, serialize_triples
from ..store import Store
from . import openapi, pages
from .errors import error_response
from .services import Services, services
from .void import VOID_PREFIXES, void_description

__all__ = [
    "router",
    "ENTITY_TYPES",
    "VOID_TYPES",
    "STATEMENT_ROLES",
    "Fact",
    "StatementSummary",
    "Description",
    "describe",
    "fetch_labels",
    "store_holds",
    "ontology_triples",
    "negotiate",
    "id_prefixes",
    "is_safe_id_path",
    "entity",
    "ontology",
    "void_document",
    "stylesheet",
]

router = APIRouter()

_HTML = "text/html"
#: What the VoID description can be had as, in the order ties are broken.
VOID_TYPES = ("text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml")
#: What an entity or the ontology can be had as. Browsers name text/html; a bare
#: ``*/*`` (curl, most RDF libraries) gets Turtle.
ENTITY_TYPES = (*VOID_TYPES, _HTML)
_FORMAT_NAMES = {
    "html": _HTML,
    "turtle": "text/turtle",
    "ttl": "text/turtle",
    "jsonld": "application/ld+json",
    "json-ld": "application/ld+json",
    "ntriples": "application/n-triples",
    "nt": "application/n-triples",
    "rdfxml": "application/rdf+xml",
    "rdf": "application/rdf+xml",
    "xml": "application/rdf+xml",
}
_VARY = {"Vary": "Accept"}

_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_SKOS = "http://www.w3.org/2004/02/skos/core#"
_PROV = "http://www.w3.org/ns/prov#"
# Not in the query default graph (docs/model.md), so never part of a description.
_SHAPES_GRAPH = str(GRAPH["shapes"])
_LABEL = ox.NamedNode(_RDFS + "label")
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_OWL_ONTOLOGY = "http://www.w3.org/2002/07/owl#Ontology"

#: How a statement (or another reaction) can involve an entity, in display order.
STATEMENT_ROLES: tuple[str, ...] = tuple(str(PK[name]) for name in ("speaker", "onBehalfOf", "addressedTo", "about", "respondsTo"))

_SEGMENT = re.compile(r"[A-Za-z0-9._~-]{1,200}")


def is_safe_id_path(path: str) -> bool:
    """Whether ``path`` (after ``/id/``) is a plain list of unreserved segments.

    >>> is_safe_id_path("state/japan")
    True
    >>> [is_safe_id_path(p) for p in ("../etc/passwd", "state/..", "state//japan", "state/ja pan", "")]
    [False, False, False, False, False]
    """
    segments = path.split("/")
    return len(path) <= 1024 and all(_SEGMENT.fullmatch(s) and s.strip(".") for s in segments)


# --------------------------------------------------------------------- describing

Term = ox.NamedNode | ox.BlankNode | ox.Literal


@dataclass(frozen=True)
class Fact:
    """One triple about an entity and the named graphs that hold it."""

    subject: Term
    predicate: ox.NamedNode
    object: Term
    graphs: frozenset[str]

    @property
    def inferred(self) -> bool:
        """True when only the inferred graph holds it: no source asserts it."""
        return self.graphs == {str(INFERRED_GRAPH)}

    @property
    def sources(self) -> list[str]:
        """The graphs that assert it (the inferred graph left out)."""
        return sorted(g for g in self.graphs if g != str(INFERRED_GRAPH))

    @property
    def triple(self) -> ox.Triple:
        return ox.Triple(self.subject, self.predicate, self.object)


@dataclass
class StatementSummary:
    """A statement (or reaction) that involves the entity, with what the page shows of it."""

    iri: str
    roles: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    date: str = ""


@dataclass
class Description:
    """What the graph holds about one entity: its facts both ways, and its neighbours' names."""

    iri: str
    outgoing: list[Fact]
    incoming: list[Fact]
    labels: dict[str, ox.Literal]
    headlines: dict[str, str] = field(default_factory=dict)
    statements: list[StatementSummary] = field(default_factory=list)
    truncated: bool = False

    @property
    def exists(self) -> bool:
        return bool(self.outgoing or self.incoming)

    def label(self, iri: str) -> str | None:
        found = self.labels.get(iri)
        return found.value if found is not None else None

    def values(self, predicate: str) -> list[Term]:
        return [f.object for f in self.outgoing if f.predicate.value == predicate]

    def triples(self) -> list[ox.Triple]:
        """The concise bounded description both ways, plus the neighbours' rdfs:labels."""
        triples = dict.fromkeys(f.triple for f in [*self.outgoing, *self.incoming])
        for fact in [*self.outgoing, *self.incoming]:
            for node in (fact.subject, fact.object):
                if isinstance(node, ox.NamedNode) and node.value != self.iri and node.value in self.labels:
                    triples.setdefault(ox.Triple(node, _LABEL, self.labels[node.value]))
        return list(triples)


def _solutions(store: Store, sparql: str) -> ox.QuerySolutions:
    result = store.query(sparql)
    assert isinstance(result, ox.QuerySolutions), "a SELECT was expected"
    return result


def _grouped(rows: Iterable[tuple[Term, ox.NamedNode, Term, str]]) -> list[Fact]:
    graphs: dict[tuple[Term, ox.NamedNode, Term], set[str]] = {}
    for s, p, o, g in rows:
        graphs.setdefault((s, p, o), set()).add(g)
    return [Fact(s, p, o, frozenset(gs)) for (s, p, o), gs in graphs.items()]


def _values(iris: Iterable[str]) -> str:
    return " ".join(str(ox.NamedNode(i)) for i in sorted(set(iris)))


def _preferred(current: ox.Literal | None, candidate: ox.Literal) -> ox.Literal:
    rank = {"en": 0, None: 1}
    if current is None:
        return candidate
    return candidate if rank.get(candidate.language, 2) < rank.get(current.language, 2) else current


def fetch_labels(store: Store, iris: Iterable[str]) -> tuple[dict[str, ox.Literal], dict[str, str]]:
    """rdfs:label (else skos:prefLabel) of each IRI, English first, and pk:headline of articles."""
    iris = set(iris)
    if not iris:
        return {}, {}
    rows = _solutions(
        store,
        f"SELECT ?n ?p ?l WHERE {{ VALUES ?n {{ {_values(iris)} }} "
        f"VALUES ?p {{ <{_RDFS}label> <{_SKOS}prefLabel> <{PK.headline}> }} ?n ?p ?l FILTER(isLiteral(?l)) }}",
    )
    labels: dict[str, ox.Literal] = {}
    pref: dict[str, ox.Literal] = {}
    headlines: dict[str, ox.Literal] = {}
    for row in rows:
        node, prop, literal = row["n"].value, row["p"].value, row["l"]
        target = labels if prop == _RDFS + "label" else pref if prop == _SKOS + "prefLabel" else headlines
        target[node] = _preferred(target.get(node), literal)
    for node, literal in pref.items():
        labels.setdefault(node, literal)
    return labels, {n: lit.value for n, lit in headlines.items()}


def describe(store: Store, iri: str, *, limit: int, with_statements: bool = False) -> Description:
    """Everything the query default graph says of ``iri``, with the graphs that say it.

    :param limit: most (triple, graph) rows read in each direction; the description is
        flagged ``truncated`` beyond.
    :param with_statements: also gather the statements by or about the entity (for HTML).
    :raises patrolkg.errors.StoreError: when the store cannot be read.
    """
    node = ox.NamedNode(iri)
    not_shapes = f"FILTER(?g != <{_SHAPES_GRAPH}>)"
    out_rows = list(_solutions(store, f"SELECT ?p ?o ?g WHERE {{ GRAPH ?g {{ {node} ?p ?o }} {not_shapes} }} LIMIT {limit + 1}"))
    in_rows = list(_solutions(store, f"SELECT ?s ?p ?g WHERE {{ GRAPH ?g {{ ?s ?p {node} }} {not_shapes} }} LIMIT {limit + 1}"))
    truncated = len(out_rows) > limit or len(in_rows) > limit
    outgoing = _grouped((node, r["p"], r["o"], r["g"].value) for r in out_rows[:limit])
    incoming = _grouped((r["s"], r["p"], node, r["g"].value) for r in in_rows[:limit])

    statements: list[StatementSummary] = []
    if with_statements:
        statements = _statements(store, incoming)
    named = {iri}
    for fact in [*outgoing, *incoming]:
        named.update(t.value for t in (fact.subject, fact.predicate, fact.object) if isinstance(t, ox.NamedNode))
    for statement in statements:
        named.update([statement.iri, *statement.speakers, *statement.sources])
    labels, headlines = fetch_labels(store, named)
    return Description(iri, outgoing, incoming, labels, headlines, statements, truncated)


def _statements(store: Store, incoming: Sequence[Fact]) -> list[StatementSummary]:
    found: dict[str, StatementSummary] = {}
    for fact in incoming:
        if fact.predicate.value in STATEMENT_ROLES and isinstance(fact.subject, ox.NamedNode):
            summary = found.setdefault(fact.subject.value, StatementSummary(fact.subject.value))
            if fact.predicate.value not in summary.roles:
                summary.roles.append(fact.predicate.value)
    if not found:
        return []
    rows = _solutions(
        store,
        f"SELECT DISTINCT ?st ?p ?o WHERE {{ VALUES ?st {{ {_values(found)} }} "
        f"VALUES ?p {{ <{PK.speaker}> <{PK.quote}> <{PK.date}> <{_PROV}wasDerivedFrom> }} ?st ?p ?o }}",
    )
    for row in rows:
        summary, prop, value = found[row["st"].value], row["p"].value, row["o"]
        if prop == str(PK.quote):
            summary.quotes.append(value.value)
        elif prop == str(PK.date):
            summary.date = value.value
        elif isinstance(value, ox.NamedNode):
            (summary.speakers if prop == str(PK.speaker) else summary.sources).append(value.value)
    for summary in found.values():
        summary.roles.sort(key=STATEMENT_ROLES.index)
        summary.quotes.sort()
        summary.speakers.sort()
        summary.sources.sort()
    return sorted(found.values(), key=lambda s: (s.date, s.iri))


def store_holds(store: Store, iri: str) -> bool:
    """Whether any triple of the query default graph has ``iri`` as subject or object."""
    node = ox.NamedNode(iri)
    pattern = f"{{ GRAPH ?g {{ {node} ?p ?o }} }} UNION {{ GRAPH ?g {{ ?s ?p {node} }} }}"
    return bool(store.query(f"ASK {{ {pattern} FILTER(?g != <{_SHAPES_GRAPH}>) }}"))


def ontology_triples(store: Store) -> list[ox.Triple]:
    """The triples of the ontology graph: the ontology's header first, then by subject."""
    triples = [quad.triple for quad in store.quads(str(ONTOLOGY_GRAPH))]
    header = {t.subject for t in triples if t.predicate.value == _RDF_TYPE and t.object.value == _OWL_ONTOLOGY}
    return sorted(triples, key=lambda t: (t.subject not in header, isinstance(t.subject, ox.BlankNode), str(t.subject)))


# ------------------------------------------------------------------- responding


def negotiate(request: Request, offered: Sequence[str]) -> str | None:
    """The media type to answer with: ``?format=`` if given, else the Accept header's pick."""
    asked = request.query_params.get("format")
    if asked is not None:
        media_type = _FORMAT_NAMES.get(asked.strip().lower())
        return media_type if media_type in offered else None
    return choose(request.headers.get("accept"), offered)


def _not_acceptable(request: Request, offered: Sequence[str]) -> Response:
    names = [n for n in ("html", "turtle", "jsonld", "ntriples", "rdfxml") if _FORMAT_NAMES[n] in offered]
    return error_response(
        406,
        "not_acceptable",
        f"{request.url.path} is available as {', '.join(offered)}; none of them is acceptable",
        hint=f"send an Accept header naming one of them, or add ?format= with one of {', '.join(names)}",
        headers=_VARY,
    )


def _not_found(request: Request, media_type: str | None, site: pages.Site, iri: str | None) -> Response:
    message = f"patrolkg holds nothing about <{iri}>" if iri else f"{request.url.path} is not an identifier patrolkg mints"
    if media_type == _HTML:
        return HTMLResponse(pages.render_not_found(message, site), status_code=404, headers=_VARY)
    return error_response(
        404,
        "not_found",
        message,
        hint="identifiers look like /id/<kind>/<slug>, e.g. /id/state/japan; search with the SPARQL endpoint",
        headers=_VARY,
    )


def _rdf_response(triples: Iterable[ox.Triple], media_type: str, prefixes: dict[str, str]) -> Response:
    # Grouped by subject (in order of first appearance), types first, so that each
    # subject reads as one block.
    by_subject: dict[object, list[ox.Triple]] = {}
    for triple in triples:
        by_subject.setdefault(triple.subject, []).append(triple)
    grouped = [
        triple
        for group in by_subject.values()
        for triple in sorted(group, key=lambda t: (t.predicate.value != _RDF_TYPE, t.predicate.value, str(t.object)))
    ]
    body = serialize_triples(grouped, RDF_FORMATS[media_type], prefixes)
    return Response(body, media_type=media_type, headers=_VARY)


_KIND = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def id_prefixes(triples: Sequence[ox.Triple], base_iri: str) -> dict[str, str]:
    """Prefixes for writing ``triples``: the usual ones, and one per kind of identifier
    (``state:`` for ``<base_iri>id/state/``), as the bundled Turtle files have them."""
    prefixes = {name: iri for name, iri in PREFIXES.items() if name not in ("pkid", "pkg")}
    ids = base_iri + "id/"
    for triple in triples:
        for node in (triple.subject, triple.object):
            if isinstance(node, ox.NamedNode) and node.value.startswith(ids) and "/" in node.value[len(ids):]:
                kind = node.value[len(ids):].split("/", 1)[0]
                if _KIND.fullmatch(kind):
                    prefixes.setdefault(kind if kind not in PREFIXES else f"pk{kind}", f"{ids}{kind}/")
    return prefixes


def _site(request: Request, svc: Services) -> pages.Site:
    return pages.Site(root=request.scope.get("root_path", "").rstrip("/"), base_iri=svc.settings.base_iri)


# --- routes: GET and HEAD of each are two operations with the same declarations ---------

_FORMAT = {
    "name": "format",
    "in": "query",
    "schema": {"type": "string", "enum": sorted(_FORMAT_NAMES)},
    "description": "The representation, overriding Accept.",
}
_NOT_ACCEPTABLE = openapi.errors(406, 503)
_NOT_FOUND = openapi.response("Nothing is known by that IRI: a small HTML page for browsers, the error shape for everyone else.", ("application/json", _HTML), openapi.ref("Error"))


def _declared(summary: str, offered: Sequence[str], description: str, *, not_found: bool = True) -> dict[str, object]:
    responses: dict[int | str, dict[str, object]] = {200: openapi.response(description, offered), **_NOT_ACCEPTABLE}
    if not_found:
        responses[404] = _NOT_FOUND
    return {"tags": ["linked data"], "summary": summary, "response_class": Response, "responses": responses, "openapi_extra": {"parameters": [_FORMAT]}}


_ENTITY = _declared("Dereference a patrolkg identifier", ENTITY_TYPES, "The entity: an HTML page, or its description (both ways, with its neighbours' labels) in RDF.")
_ONTOLOGY = _declared("The patrolkg ontology", ENTITY_TYPES, "The ontology: an HTML page listing each term, or the ontology graph in RDF.")
_VOID = _declared("VoID description of the dataset", VOID_TYPES, "The VoID description, in RDF.", not_found=False)


@router.head("/id/{path:path}", **_ENTITY)  # type: ignore[arg-type]
@router.get("/id/{path:path}", **_ENTITY)  # type: ignore[arg-type]
def entity(request: Request, path: str = Path(openapi_examples={"japan": {"summary": "A state", "value": "state/japan"}}), svc: Services = Depends(services)) -> Response:
    """The entity ``<base_iri>id/{path}``: an HTML page or its description in RDF."""
    site = _site(request, svc)
    media_type = negotiate(request, ENTITY_TYPES)
    if not is_safe_id_path(path):
        return _not_found(request, media_type, site, None)
    iri = f"{svc.settings.base_iri}id/{path}"
    if media_type is None:
        # A missing entity is a 404 whatever the client accepts.
        held = store_holds(svc.store, iri)
        return _not_acceptable(request, ENTITY_TYPES) if held else _not_found(request, None, site, iri)
    description = describe(svc.store, iri, limit=svc.settings.max_rows, with_statements=media_type == _HTML)
    if not description.exists:
        return _not_found(request, media_type, site, iri)
    if media_type == _HTML:
        return HTMLResponse(pages.render_entity(description, site), headers=_VARY)
    triples = description.triples()
    return _rdf_response(triples, media_type, id_prefixes(triples, svc.settings.base_iri))


@router.head("/ontology", **_ONTOLOGY)  # type: ignore[arg-type]
@router.get("/ontology", **_ONTOLOGY)  # type: ignore[arg-type]
def ontology(request: Request, svc: Services = Depends(services)) -> Response:
    """The whole ontology graph; the HTML page lists each class and property under its own anchor."""
    site = _site(request, svc)
    media_type = negotiate(request, ENTITY_TYPES)
    if media_type is None:
        return _not_acceptable(request, ENTITY_TYPES)
    triples = ontology_triples(svc.store)
    if not triples:
        return _not_found(request, media_type, site, f"{svc.settings.base_iri}ontology")
    if media_type == _HTML:
        labels, _ = fetch_labels(svc.store, {t.object.value for t in triples if isinstance(t.object, ox.NamedNode)})
        return HTMLResponse(pages.render_ontology(triples, labels, site), headers=_VARY)
    return _rdf_response(triples, media_type, id_prefixes(triples, svc.settings.base_iri))


@router.head("/.well-known/void", **_VOID)  # type: ignore[arg-type]
@router.get("/.well-known/void", **_VOID)  # type: ignore[arg-type]
def void_document(request: Request, svc: Services = Depends(services)) -> Response:
    """The dataset, its named graphs, class partitions and the link set to Wikidata, in VoID."""
    media_type = negotiate(request, VOID_TYPES)
    if media_type is None:
        return _not_acceptable(request, VOID_TYPES)
    endpoint_base = str(request.base_url).rstrip("/")
    triples = svc.memo.get(svc.store, ("void", endpoint_base), lambda: void_description(svc.store, base_iri=svc.settings.base_iri, service_base=endpoint_base))
    return _rdf_response(triples, media_type, VOID_PREFIXES)


@router.get("/assets/ld.css", include_in_schema=False)
def stylesheet() -> Response:
    css = (files("patrolkg.web") / "static" / "ld.css").read_bytes()
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})
