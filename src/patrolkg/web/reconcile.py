"""The W3C Entity Reconciliation API (version 0.2, as OpenRefine speaks it) at ``/reconcile``,
so that spreadsheet users can match their rows to patrolkg's entities.

Routes::

    GET  /reconcile                  the service manifest
    GET  /reconcile?queries=...      a reconciliation query batch (JSON), answered in JSON
    POST /reconcile                  the same, as a form field ``queries``
    GET  /reconcile/preview?id=...   a small HTML preview of one entity (for an iframe)
    GET  /reconcile/suggest/entity   auto-completion of entities: ``prefix``, ``cursor``
    GET  /reconcile/suggest/type     ... of the ontology's classes
    GET  /reconcile/suggest/property ... of the properties queries can name

Every GET also answers as JSONP when given ``callback``. Identifiers are relative to
the manifest's spaces: an entity ``state/japan`` is ``<base_iri>id/state/japan``; types
and properties are CURIEs (``pk:State``, ``org:postIn``); full IRIs are accepted
everywhere. A query may also name an entity by identifier (``state/japan``, or a
linked Wikidata item such as ``wd:Q17``). Scores, evidence and the ``match`` flag
come from :mod:`patrolkg.reconcile`, the matcher ``patrolkg link`` uses too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import TooComplex
from ..namespaces import ONTOLOGY_GRAPH, PK, PREFIXES
from ..nesting import check_json_depth
from ..reconcile import Candidate, EntityIndex, Query, Record, normalize
from ..records import SAME_AS, names_of, read_records
from ..store import Store
from ..store_memo import StoreMemo
from . import openapi, pages
from .errors import HttpError
from .services import Services, services

__all__ = ["router", "MAX_BATCH", "MAX_LIMIT", "DEFAULT_TYPES", "manifest", "parse_batch", "answer_batch"]

router = APIRouter(prefix="/reconcile", tags=["reconciliation"])

#: The most queries one batch may hold (413 beyond), as the manifest's ``batchSize`` says.
MAX_BATCH = 100
#: The most candidates one query may ask for.
MAX_LIMIT = 100
_DEFAULT_LIMIT = 10
_SUGGEST_PAGE = 10
#: The types offered as good choices: the kinds of entity patrolkg links and reconciles.
DEFAULT_TYPES: tuple[str, ...] = tuple(str(PK[name]) for name in ("State", "Person", "Organization", "AircraftType", "Place", "Event"))

_OWL = "http://www.w3.org/2002/07/owl#"
_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_SKOS = "http://www.w3.org/2004/02/skos/core#"
_WD = "http://www.wikidata.org/entity/"
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*){0,4}")
_QID = re.compile(r"Q[1-9][0-9]*")
#: Properties every query may name besides the ontology's own.
_COMMON_PROPERTIES: tuple[str, ...] = (_RDFS + "label", _SKOS + "altLabel", SAME_AS)


# ------------------------------------------------------------------ identifiers


def _curie(iri: str) -> str:
    """``pk:State`` for an IRI in a known namespace, else the IRI."""
    for prefix, namespace in PREFIXES.items():
        local = iri[len(namespace):]
        if iri.startswith(namespace) and local and "/" not in local and "#" not in local:
            return f"{prefix}:{local}"
    return iri


def _expand_term(text: str) -> str:
    """A CURIE, a bare ontology term (``State``) or an IRI, as an IRI.

    >>> _expand_term("pk:State") == _expand_term("State") == "https://w3id.org/patrolkg/ontology#State"
    True
    """
    text = text.strip()
    if text.startswith(("http://", "https://", "urn:")):
        return text
    prefix, sep, local = text.partition(":")
    if sep and prefix in PREFIXES:
        return PREFIXES[prefix] + local
    return str(PK[text])


def _entity_forms(text: str, id_space: str) -> set[str]:
    """The IRIs a string may name an entity by: itself, a CURIE, an id relative to the
    identifier space, a bare Wikidata id (``Q17``)."""
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        return set()
    forms = {text, id_space + text.lstrip("/")}
    prefix, sep, local = text.partition(":")
    if sep and prefix in PREFIXES:
        forms.add(PREFIXES[prefix] + local)
    if _QID.fullmatch(text):
        forms.add(_WD + text)
    return forms


def _local_id(iri: str, id_space: str) -> str:
    return iri[len(id_space):] if iri.startswith(id_space) else iri


# ------------------------------------------------------------------ the protocol


def manifest(base_url: str, *, id_space: str, type_names: Mapping[str, str]) -> dict[str, Any]:
    """The service manifest, for a service answering at ``base_url`` (no trailing slash)."""
    root = f"{base_url}/reconcile"
    return {
        "versions": ["0.2"],
        "name": "patrolkg: the Russia–China joint bomber patrols",
        "identifierSpace": id_space,
        "schemaSpace": str(PK),
        "documentation": f"{base_url}/docs#/reconciliation",
        "serviceVersion": __version__,
        "batchSize": MAX_BATCH,
        "defaultTypes": [{"id": _curie(t), "name": type_names.get(t, _curie(t))} for t in DEFAULT_TYPES],
        "view": {"url": f"{base_url}/id/{{{{id}}}}"},
        "preview": {"url": f"{root}/preview?id={{{{id}}}}", "width": 420, "height": 220},
        "suggest": {
            "entity": {"service_url": root, "service_path": "/suggest/entity"},
            "type": {"service_url": root, "service_path": "/suggest/type"},
            "property": {"service_url": root, "service_path": "/suggest/property"},
        },
    }


def _bad(message: str, hint: str | None = None) -> HttpError:
    return HttpError(400, "bad_reconciliation_query", message, hint=hint or "send queries as in the Reconciliation API 0.2: {\"q0\": {\"query\": \"Japan\", \"type\": \"pk:State\"}}")


def _strings(value: Any, where: str) -> list[str]:
    """A property value (string, number, boolean, {"id", "name"}, or a list of them) as strings."""
    values = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in values:
        if isinstance(item, bool):
            found.append("true" if item else "false")
        elif isinstance(item, (int, float, str)):
            found.append(str(item))
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            found.append(item["id"])
            if isinstance(item.get("name"), str):
                found.append(item["name"])
        else:
            raise _bad(f"{where}: a property value must be a string, a number, a boolean or an object with an id")
    return found


def parse_batch(text: str, *, id_space: str) -> tuple[dict[str, Query], dict[str, int]]:
    """A reconciliation query batch (JSON) as :class:`Query` objects and their limits.

    >>> queries, limits = parse_batch('{"q0": {"query": "Japan", "type": "pk:State", "limit": 3}}', id_space="https://w3id.org/patrolkg/id/")
    >>> queries["q0"].names, sorted(queries["q0"].types), limits["q0"]
    (('Japan',), ['https://w3id.org/patrolkg/ontology#State'], 3)

    :raises HttpError: 400 for what is not a query batch, 413 for too many queries.
    """
    try:
        check_json_depth(text, source="queries")  # json.loads recurses: RecursionError at ~1000
        batch = json.loads(text)
    except TooComplex as exc:
        raise _bad(exc.message, exc.hint) from None
    except ValueError as exc:
        raise _bad(f"queries is not JSON: {exc}") from None
    if not isinstance(batch, dict):
        raise _bad("queries must be a JSON object mapping query ids to queries")
    if len(batch) > MAX_BATCH:
        raise HttpError(413, "batch_too_large", f"the batch holds {len(batch)} queries; at most {MAX_BATCH} are accepted", hint="split it (the manifest's batchSize)")
    queries: dict[str, Query] = {}
    limits: dict[str, int] = {}
    for key, body in batch.items():
        if not isinstance(body, dict):
            raise _bad(f"query {key!r} is not an object")
        unknown = set(body) - {"query", "type", "limit", "properties", "type_strict"}
        if unknown:
            raise _bad(f"query {key!r} has unknown fields: {', '.join(sorted(unknown))}")
        name = body.get("query")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise _bad(f"query {key!r}: query must be a non-empty string")
        types = body.get("type", [])
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise _bad(f"query {key!r}: type must be a type id or a list of them")
        limit = body.get("limit", _DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or limit < 1 or int(limit) != limit:
            raise _bad(f"query {key!r}: limit must be a positive integer")
        properties: dict[str, tuple[str, ...]] = {}
        raw_properties = body.get("properties", [])
        if not isinstance(raw_properties, list):
            raise _bad(f"query {key!r}: properties must be a list of {{pid, v}}")
        for index, item in enumerate(raw_properties):
            where = f"query {key!r}, property {index}"
            if not isinstance(item, dict) or not isinstance(item.get("pid"), str) or "v" not in item:
                raise _bad(f"{where}: each property is an object with pid and v")
            pid = _expand_term(item["pid"])
            # A value may name an entity ("state/japan", "wd:Q17", "Q17"): its IRIs count too.
            raw = _strings(item["v"], where)
            forms = [form for value in raw for form in sorted(_entity_forms(value, id_space))]
            properties[pid] = tuple(dict.fromkeys([*properties.get(pid, ()), *raw, *forms]))
        if name is None and not properties:
            raise _bad(f"query {key!r} has neither a query nor properties")
        # An owl:sameAs value (a Wikidata id, say) names the entity as surely as its own id.
        identifiers = (_entity_forms(name, id_space) if name else set()) | set(properties.get(SAME_AS, ()))
        queries[key] = Query(
            names=(name.strip(),) if name else (),
            identifiers=frozenset(identifiers),
            types=frozenset(_expand_term(t) for t in types),
            properties=properties,
        )
        limits[key] = min(int(limit), MAX_LIMIT)
    return queries, limits


def _types(record: Record, names: Mapping[str, str]) -> list[dict[str, str]]:
    mine = sorted(t for t in record.types if t.startswith(str(PK)))
    return [{"id": _curie(t), "name": names.get(t, _curie(t))} for t in mine]


def _candidate(candidate: Candidate, query: Query, names: Mapping[str, str], id_space: str) -> dict[str, Any]:
    record = candidate.record
    features: list[dict[str, Any]] = [{"id": "name", "value": candidate.points("identifier", "label", "alias", "word-order", "part-of-name", "similar-name")}]
    if query.properties:
        features.append({"id": "properties", "value": candidate.points("property", "property-mismatch")})
    if query.types:
        features.append({"id": "type", "value": True})
    found: dict[str, Any] = {
        "id": _local_id(record.iri, id_space),
        "name": record.name,
        "score": candidate.score,
        "match": candidate.match,
        "type": _types(record, names),
        "features": features,
    }
    if record.description:
        found["description"] = record.description
    return found


def _index(store: Store, id_space: str, properties: Sequence[str] = (), *, memo: StoreMemo) -> tuple[EntityIndex, dict[str, str]]:
    """The index of the entities in ``id_space`` (kept in ``memo`` until the next commit)."""
    def build() -> tuple[EntityIndex, dict[str, str]]:
        records, names = read_records(store, prefix=id_space, properties=properties)
        return EntityIndex(records, names=names), names

    return memo.get(store, ("reconciliation index", id_space, tuple(properties)), build)


def answer_batch(store: Store, queries: Mapping[str, Query], limits: Mapping[str, int], *, id_space: str, memo: StoreMemo) -> dict[str, Any]:
    """Answer a parsed batch: ``{id: {"result": [candidate, ...]}}``."""
    properties = sorted({pid for q in queries.values() for pid in q.properties})
    index, names = _index(store, id_space, properties, memo=memo)
    return {
        key: {"result": [_candidate(c, query, names, id_space) for c in index.search(query, limit=limits[key])]}
        for key, query in queries.items()
    }


# ------------------------------------------------------------------ responses


def _json(request: Request, data: Any, *, status: int = 200) -> Response:
    """JSON, or JSONP when the request names a ``callback``."""
    body = json.dumps(data, ensure_ascii=False)
    callback = request.query_params.get("callback")
    if callback is None:
        return Response(body, status_code=status, media_type="application/json")
    if not _CALLBACK.fullmatch(callback) or len(callback) > 100:
        raise HttpError(400, "bad_callback", "callback must be a JavaScript identifier (letters, digits, _ and $, dotted)")
    return Response(f"/**/{callback}({body});", status_code=status, media_type="application/javascript", headers={"X-Content-Type-Options": "nosniff"})


def _id_space(svc: Services) -> str:
    return svc.settings.base_iri + "id/"


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _answer_batch(request: Request, svc: Services, text: str) -> Response:
    queries, limits = parse_batch(text, id_space=_id_space(svc))
    data = await run_in_threadpool(answer_batch, svc.store, queries, limits, id_space=_id_space(svc), memo=svc.index_memo)
    return _json(request, data)


# ------------------------------------------------------------------ routes

_JSONP = "application/javascript"
_CALLBACK_PARAMETER = {"name": "callback", "in": "query", "schema": {"type": "string"}, "description": "Answer as JSONP: the name of the JavaScript function to call."}
_BATCH_EXAMPLE = '{"q0": {"query": "Japan", "type": "pk:State"}}'
_BATCH_ERRORS = openapi.errors(400, 413, 503, described={413: f"The batch holds more than {MAX_BATCH} queries (the manifest's batchSize)."})


def _answers(description: str, json_schema: dict[str, object]) -> dict[str, object]:
    """JSON, or JSONP when the request names a callback (:func:`_json`)."""
    return openapi.response(description, (openapi.JSON, _JSONP), json_schema)


_SUGGEST: dict[str, Any] = {
    "responses": {200: _answers("The matches, a page at a time.", openapi.ref("Suggestions")), **openapi.errors(400, 503, described={400: "cursor is not a non-negative integer, or callback is not a JavaScript name."})},
    "openapi_extra": {"parameters": [{"name": "cursor", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "How many matches to skip."}, _CALLBACK_PARAMETER]},
}


@router.get(
    "",
    summary="The service manifest, or the answers to a batch of reconciliation queries (queries=)",
    responses={
        200: _answers("The manifest, or the candidates for each query of the batch.", {"anyOf": [openapi.ref("ReconciliationManifest"), openapi.ref("ReconciliationResults")]}),
        **_BATCH_ERRORS,
    },
    openapi_extra={"parameters": [{"name": "queries", "in": "query", "schema": {"type": "string"}, "description": "A batch of queries (JSON); without it, the manifest.", "example": _BATCH_EXAMPLE}, _CALLBACK_PARAMETER]},
)
async def reconcile_get(request: Request, svc: Services = Depends(services)) -> Response:
    queries = request.query_params.get("queries")
    if queries is not None:
        return await _answer_batch(request, svc, queries)
    type_names = await run_in_threadpool(names_of, svc.store, set(DEFAULT_TYPES))
    return _json(request, manifest(_base_url(request), id_space=_id_space(svc), type_names=type_names))


@router.post(
    "",
    summary="Answer a batch of reconciliation queries sent as the form field queries",
    responses={200: _answers("The candidates for each query of the batch.", openapi.ref("ReconciliationResults")), **_BATCH_ERRORS, **openapi.errors(415)},
    openapi_extra={
        "parameters": [_CALLBACK_PARAMETER],
        "requestBody": {
            "required": True,
            "content": {
                form: {"schema": {"type": "object", "properties": {"queries": {"type": "string", "description": "The batch (JSON)."}}, "required": ["queries"]}, "example": {"queries": _BATCH_EXAMPLE}}
                for form in ("application/x-www-form-urlencoded", "multipart/form-data")
            },
        },
    },
)
async def reconcile_post(request: Request, svc: Services = Depends(services)) -> Response:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if media_type == "application/x-www-form-urlencoded":
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            raise HttpError(400, "not_utf8", "the form is not valid UTF-8") from None
        text = fields.get("queries")
    elif media_type == "multipart/form-data":
        form = await request.form()
        value = form.get("queries")
        text = value if isinstance(value, str) else None
    else:
        raise HttpError(415, "unsupported_media_type", f"reconciliation queries cannot be sent as {media_type or 'a body without Content-Type'}", hint="POST a form (application/x-www-form-urlencoded) with a queries field")
    if text is None:
        raise _bad("the form has no queries field")
    return await _answer_batch(request, svc, text)


def _preview_html(record: Record, names: Mapping[str, str], site: pages.Site) -> str:
    href = site.href(record.iri) or record.iri
    kinds = ", ".join(pages.esc(n["name"]) for n in _types(record, names))
    parts = [
        f'<h1><a href="{pages.esc(href)}" target="_blank" rel="noopener">{pages.esc(record.name)}</a></h1>',
        f'<p class="types">{kinds}</p>' if kinds else "",
        f"<p>{pages.esc(record.description)}</p>" if record.description else "",
        f'<p class="aliases">Also called {pages.esc(", ".join(record.aliases))}</p>' if record.aliases else "",
    ]
    for item in sorted(record.same_as):
        external = site.href(item)
        if external:
            parts.append(f'<p class="elsewhere">See also <a href="{pages.esc(external)}" target="_blank" rel="external noopener">{pages.esc(pages.compact(item))}</a></p>')
    parts.append(f'<p class="iri"><code>{pages.esc(record.iri)}</code></p>')
    style = "body{font:14px/1.4 system-ui,sans-serif;margin:.6em}h1{font-size:1.1em;margin:0 0 .3em}p{margin:.2em 0}.types,.iri{color:#555}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{pages.esc(record.name)}</title><style>{style}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


@router.get(
    "/preview",
    response_class=HTMLResponse,
    summary="A small HTML preview of one entity, for an iframe",
    responses={404: openapi.response("patrolkg holds no such entity (a small HTML page).", ("text/html",)), **openapi.errors(503)},
)
def preview(request: Request, id: str = "", svc: Services = Depends(services)) -> HTMLResponse:
    id_space = _id_space(svc)
    iri = id if id.startswith(("http://", "https://")) else id_space + id.lstrip("/")
    records, names = read_records(svc.store, prefix=iri) if id.strip() else ([], {})
    record = next((r for r in records if r.iri == iri), None)
    if record is None:
        return HTMLResponse(f'<!DOCTYPE html>\n<html lang="en"><meta charset="utf-8"><p>patrolkg holds no entity {pages.esc(id)!r}.</p></html>\n', status_code=404)
    site = pages.Site(root=request.scope.get("root_path", "").rstrip("/"), base_iri=svc.settings.base_iri)
    return HTMLResponse(_preview_html(record, names, site))


def _cursor(request: Request) -> int:
    raw = request.query_params.get("cursor", "0") or "0"
    if not (raw.isascii() and raw.isdigit()):  # "¹".isdigit(), but int("¹") fails
        raise HttpError(400, "bad_cursor", "cursor must be a non-negative integer")
    return int(raw)


@router.get("/suggest/entity", summary="Entities whose name starts with prefix", **_SUGGEST)
def suggest_entity(request: Request, prefix: str = "", svc: Services = Depends(services)) -> Response:
    index, names = _index(svc.store, _id_space(svc), memo=svc.index_memo)
    id_space = _id_space(svc)
    forms = _entity_forms(prefix, id_space)
    found = [r for r in (index.get(f) for f in sorted(forms)) if r is not None]
    found += [r for r in index.suggest(prefix, offset=_cursor(request), limit=_SUGGEST_PAGE) if r not in found]
    result = []
    for record in found[:_SUGGEST_PAGE]:
        item: dict[str, Any] = {"id": _local_id(record.iri, id_space), "name": record.name, "notable": _types(record, names)}
        if record.description:
            item["description"] = record.description
        result.append(item)
    return _json(request, {"result": result})


def _ontology_terms(store: Store, kinds: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """(IRI, label, definition) of the ontology's terms of the given OWL kinds."""
    rows = store.query(
        f"SELECT ?t (SAMPLE(?l) AS ?label) (SAMPLE(?d) AS ?definition) WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ "
        f"VALUES ?kind {{ {' '.join(f'<{k}>' for k in kinds)} }} ?t a ?kind ; <{_RDFS}label> ?l . "
        f"OPTIONAL {{ ?t <{_SKOS}definition> ?d }} FILTER(isIRI(?t)) }} }} GROUP BY ?t"
    )
    return [(row["t"].value, row["label"].value, row["definition"].value if row["definition"] else None) for row in rows]  # type: ignore[union-attr]


def _suggest_terms(request: Request, terms: Sequence[tuple[str, str, str | None]], prefix: str) -> Response:
    wanted = normalize(prefix)
    hits = []
    for iri, label, definition in terms:
        curie = _curie(iri)
        local = curie.split(":", 1)[-1]
        names = (normalize(label), normalize(local), normalize(curie))
        if wanted and not any(n.startswith(wanted) or any(w.startswith(wanted) for w in n.split()) for n in names):
            continue
        hits.append((not normalize(label).startswith(wanted), label.lower(), curie, label, definition))
    hits.sort()
    cursor = _cursor(request)
    result = []
    for *_, curie, label, definition in hits[cursor : cursor + _SUGGEST_PAGE]:
        item = {"id": curie, "name": label}
        if definition:
            item["description"] = definition
        result.append(item)
    return _json(request, {"result": result})


@router.get("/suggest/type", summary="The ontology's classes whose name starts with prefix", **_SUGGEST)
def suggest_type(request: Request, prefix: str = "", svc: Services = Depends(services)) -> Response:
    return _suggest_terms(request, _ontology_terms(svc.store, [_OWL + "Class"]), prefix)


@router.get("/suggest/property", summary="Properties whose name starts with prefix", **_SUGGEST)
def suggest_property(request: Request, prefix: str = "", svc: Services = Depends(services)) -> Response:
    terms = _ontology_terms(svc.store, [_OWL + "ObjectProperty", _OWL + "DatatypeProperty"])
    known = {iri for iri, _, _ in terms}
    common = names_of(svc.store, set(_COMMON_PROPERTIES) - known)
    fallback = {_RDFS + "label": "label", _SKOS + "altLabel": "alternative label", SAME_AS: "same as (an identifier elsewhere, e.g. a Wikidata item)"}
    terms += [(iri, common.get(iri) or fallback[iri], None) for iri in _COMMON_PROPERTIES if iri not in known]
    return _suggest_terms(request, terms, prefix)

