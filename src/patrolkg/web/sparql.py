"""The SPARQL 1.1 Protocol at ``/sparql`` (https://www.w3.org/TR/sparql11-protocol/).

- A query arrives by GET (``?query=``), by POST as a form
  (``application/x-www-form-urlencoded``, ``query=``) or by POST as the body
  (``application/sparql-query``); exactly one query per request, in UTF-8.
- ``default-graph-uri`` and ``named-graph-uri`` (repeatable) set the dataset and
  override the query's FROM and FROM NAMED; a graph the store does not hold is empty.
- The result format comes from the ``format`` parameter when given (a short name such
  as ``json`` or ``turtle``, or a media type), else from the Accept header.
- Relative IRIs in a query resolve against the data's base IRI
  (``PATROLKG_BASE_IRI``), so ``<id/state/japan>`` names Japan; a BASE in the query wins.
- A GET without a query returns the service description to RDF clients and sends
  browsers to the query UI at ``/query``.

Each failure has one status: 400 (malformed request, syntax error with line and
column, an update, a SERVICE call that is not allow-listed), 405 (a method other than
GET, HEAD or POST), 406 (no acceptable format), 415 (unsupported Content-Type or a
charset other than UTF-8), 503 (past ``PATROLKG_QUERY_TIMEOUT``). Queries run in the
executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from ..errors import ForbiddenOperation, NotAcceptable, PatrolkgError
from ..execution import GRAPH_MEDIA_TYPES, RESULT_MEDIA_TYPES, QueryRequest, QueryResponse
from ..negotiation import choose
from . import openapi
from .errors import ClientLeft, HttpError, library_error, unexpected_error
from .protocol import Pairs, content_type, form_pairs, graph_iris, not_utf8, require_utf8
from .service_description import describe, serialize_description
from .services import Services, services

T = TypeVar("T")

__all__ = ["router", "answer_directly", "TRUNCATED_HEADER", "FORMAT_NAMES", "ALLOWED_METHODS"]

router = APIRouter(tags=["sparql"])

#: Set on a response whose rows were cut at the maximum, as ``max-rows=<N>``. It is the
#: HTTP layer's signal, so it is defined here (and exposed to browsers by the CORS setup).
TRUNCATED_HEADER = "Patrolkg-Truncated"

#: The methods /sparql answers, as sent in ``Allow``.
ALLOWED_METHODS = "GET, HEAD, POST"

#: Short names of the ``format`` parameter. ``json`` and ``xml`` name a results format
#: and a graph format; the one that suits the query's result is used. ``json-ld``,
#: ``rdf+xml`` and ``n3`` are the names SPARQLWrapper sends.
FORMAT_NAMES: dict[str, tuple[str, ...]] = {
    "json": ("application/sparql-results+json", "application/ld+json"),
    "xml": ("application/sparql-results+xml", "application/rdf+xml"),
    "csv": ("text/csv",),
    "tsv": ("text/tab-separated-values",),
    "turtle": ("text/turtle",),
    "ntriples": ("application/n-triples",),
    "jsonld": ("application/ld+json",),
    "rdfxml": ("application/rdf+xml",),
    "json-ld": ("application/ld+json",),
    "rdf+xml": ("application/rdf+xml",),
    "n3": ("text/turtle",),  # Turtle is N3
}

_FORM = "application/x-www-form-urlencoded"
_SPARQL_QUERY = "application/sparql-query"
_SPARQL_UPDATE = "application/sparql-update"
_HTML = "text/html"
_VARY = {"Vary": "Accept"}



@dataclass(frozen=True)
class _Operation:
    """What one request asks for, read from its parameters and body."""

    query: str
    default_graphs: tuple[str, ...] | None
    named_graphs: tuple[str, ...] | None
    formats: tuple[str, ...]


# --- reading the request ---------------------------------------------------------


def _refuse_update() -> ForbiddenOperation:
    return ForbiddenOperation("SPARQL Update is not accepted by the query service (send updates to /update)")


def _operation(pairs: Pairs, *, body_query: str | None = None) -> _Operation:
    """The one query of a request and its dataset and format parameters.

    :raises HttpError: 400 for no query, an empty one or more than one.
    :raises ForbiddenOperation: 400 for an update.
    """
    if any(key == "update" for key, _ in pairs):
        raise _refuse_update()
    queries = [value for key, value in pairs if key == "query"]
    if body_query is not None:
        queries.append(body_query)
    if len(queries) > 1:
        raise HttpError(400, "multiple_queries", f"the request holds {len(queries)} queries; send exactly one", hint="give the query once, in the URL, the form or the body")
    if not queries:
        raise HttpError(400, "missing_query", "the request holds no query", hint="send the query as the query parameter")
    if not queries[0].strip():
        raise HttpError(400, "missing_query", "the query is empty", hint="send a SPARQL query")
    formats = tuple(value for key, value in pairs if key == "format" and value.strip())
    return _Operation(queries[0], graph_iris(pairs, "default-graph-uri"), graph_iris(pairs, "named-graph-uri"), formats)


def _media_types(formats: Sequence[str]) -> list[str]:
    """The media types the ``format`` values name, in order, without repeats.

    :raises NotAcceptable: for a value that is neither a short name nor a media type.
    """
    wanted: list[str] = []
    for value in formats:
        key = value.split(";", 1)[0].strip().lower()
        named = FORMAT_NAMES.get(key, (key,) if "/" in key else None)
        if named is None:
            raise NotAcceptable(f"unknown format {value!r}", hint="use one of " + ", ".join(FORMAT_NAMES) + ", or a media type")
        wanted += [media_type for media_type in named if media_type not in wanted]
    return wanted


# --- answering ---------------------------------------------------------------------


def _content_type_header(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type


def _query_request(svc: Services, operation: _Operation, accept: str | None) -> QueryRequest:
    """The query to run for ``operation``, given the request's Accept header.

    :raises NotAcceptable: for a ``format`` that names no format.
    """
    wanted = _media_types(operation.formats)
    # One named type is asked for exactly; several (``format=xml``) are alternatives.
    return QueryRequest(
        text=operation.query,
        default_graphs=operation.default_graphs,
        named_graphs=operation.named_graphs,
        base_iri=svc.settings.base_iri,
        accept=", ".join(wanted) if len(wanted) > 1 else accept,
        format=wanted[0] if len(wanted) == 1 else None,
    )


def _response(svc: Services, result: QueryResponse) -> Response:
    headers = dict(_VARY)
    if result.truncated:
        headers[TRUNCATED_HEADER] = f"max-rows={svc.limits.max_rows}"
    headers["Content-Type"] = _content_type_header(result.media_type)
    if result.body_file is not None:
        return _streamed(result.body_file, headers)
    return Response(result.body, headers=headers)


async def _answer(request: Request, operation: _Operation) -> Response:
    svc = services(request)
    query = _query_request(svc, operation, request.headers.get("accept"))
    return _response(svc, await _run(svc, query, request.receive))


async def _run(svc: Services, query: QueryRequest, receive: Receive) -> QueryResponse:
    """The executor's answer: made at once for a bounded query, else awaited unless the
    client leaves first."""
    answer = svc.executor.answer_now(query)
    if answer is not None:
        return answer
    return await _unless_client_leaves(receive, svc.executor.run(query, inline=False))


async def answer_directly(app: Any, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer ``GET /sparql?query=...`` straight from the ASGI call, past the
    middleware and the router: what a request costs there (about 0.3 ms) is more than
    a lookup costs the engine. True when it answered; False, having sent and received
    nothing, for any request it leaves to the app: other methods and paths, a
    cross-origin request (CORS), one without a query or that the query route would
    refuse before running anything. What it answers, the route would answer the same:
    both are made by the functions above.
    """
    if scope["method"] != "GET" or _route_path(scope) != "/sparql":
        return False
    svc = getattr(app.state, "services", None)
    accept = None
    for name, value in scope["headers"]:
        if name == b"origin":
            return False
        if name == b"accept" and accept is None:
            accept = value.decode("latin-1")
    if svc is None:
        return False
    try:
        pairs = form_pairs(scope["query_string"], "the query string")
        if all(key != "query" for key, _ in pairs):
            return False
        query = _query_request(svc, _operation(pairs), accept)
    except PatrolkgError:
        return False
    try:
        response = _response(svc, await _run(svc, query, receive))
    except ClientLeft:
        return True  # nobody to answer
    except PatrolkgError as error:
        response = library_error(error, "GET", "/sparql")
    except Exception:  # noqa: BLE001 - answered in the one error shape, and logged
        response = unexpected_error("GET", "/sparql")
    if "*" not in svc.settings.cors_origins:
        response.headers.add_vary_header("Origin")  # as the CORS middleware marks every answer
    await response(scope, receive, send)
    return True


def _route_path(scope: Scope) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def _unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T:
    """``work``'s result; if the client disconnects first, ``work`` is cancelled (the
    executor then stops the query, freeing its worker for clients still waiting) and
    :class:`ClientLeft` raised, to which nobody listens."""
    task = asyncio.ensure_future(work)
    left = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, left), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        left.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientLeft()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has closed the connection. The request's body has been
    read by now: what ``receive`` yields next is the disconnection."""
    while (await receive())["type"] != "http.disconnect":
        pass


#: Bytes read from a spooled result at a time.
_STREAM_CHUNK = 1 << 20


def _streamed(path: str, headers: dict[str, str]) -> StreamingResponse:
    """A large result a query worker wrote to ``path``, sent in chunks. The file is
    unlinked once open: it is gone when the answer ends, however it ends."""
    handle = open(path, "rb")  # noqa: SIM115 (closed by the stream)
    os.unlink(path)
    size = os.fstat(handle.fileno()).st_size

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await run_in_threadpool(handle.read, _STREAM_CHUNK):
                yield chunk
        finally:
            handle.close()

    return StreamingResponse(chunks(), headers={**headers, "Content-Length": str(size)})


async def _service_description(request: Request, formats: Sequence[str]) -> Response:
    offered = (*GRAPH_MEDIA_TYPES, _HTML)
    wanted = _media_types(formats)
    if wanted:
        chosen = next((media_type for media_type in wanted if media_type in offered), None)
    else:
        chosen = choose(request.headers.get("accept"), offered)
    if chosen is None:
        raise NotAcceptable(
            "the service description cannot be written in any accepted type",
            hint="accept one of " + ", ".join(offered),
        )
    if chosen == _HTML:
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{root}/query", status_code=303, headers=_VARY)
    svc = services(request)
    endpoint = str(request.url_for("sparql_get"))
    triples = await run_in_threadpool(describe, svc.store, endpoint, service_allowlist=svc.settings.service_allowlist)
    body = serialize_description(triples, chosen)
    return Response(body, headers={**_VARY, "Content-Type": _content_type_header(chosen)})


# --- routes ------------------------------------------------------------------------

_EXAMPLE_QUERY = "PREFIX pk: <https://w3id.org/patrolkg/ontology#> SELECT ?patrol ?ordinal WHERE { ?patrol a pk:JointPatrol ; pk:ordinal ?ordinal } ORDER BY ?ordinal"
_PARAMETERS = [
    {
        "name": "query",
        "in": "query",
        "schema": {"type": "string"},
        "description": "The SPARQL query. Without it, GET returns the service description (or, to browsers, a redirect to /query).",
        "example": _EXAMPLE_QUERY,
    },
    {"name": "default-graph-uri", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "description": "A graph of the default graph (repeatable); overrides FROM."},
    {"name": "named-graph-uri", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "description": "A named graph (repeatable); overrides FROM NAMED."},
    {"name": "format", "in": "query", "schema": {"type": "string"}, "description": "json, xml, csv, tsv, turtle, ntriples, jsonld, rdfxml or a media type; overrides Accept."},
]


_ANSWERED = (*RESULT_MEDIA_TYPES, *GRAPH_MEDIA_TYPES)
_ANSWER = openapi.response(
    "The query's result: SELECT and ASK results in SPARQL JSON, XML, CSV or TSV, graphs (and the service description) in Turtle, N-Triples, JSON-LD or RDF/XML.",
    _ANSWERED,
    headers={TRUNCATED_HEADER: "max-rows=<N> when the rows were cut at PATROLKG_MAX_ROWS."},
)
_GET_RESPONSES = {
    200: _ANSWER,
    303: openapi.response("To a browser asking for no query: the query UI.", headers={"Location": "The query UI, /query."}),
    **openapi.errors(400, 406, 503),
}


@router.head("/sparql", name="sparql_head", summary="The headers a GET would answer", response_class=Response, responses=_GET_RESPONSES, openapi_extra={"parameters": _PARAMETERS})
@router.get(
    "/sparql",
    name="sparql_get",
    summary="Run a SPARQL query given in the URL, or describe the service",
    response_class=Response,
    responses=_GET_RESPONSES,
    openapi_extra={"parameters": _PARAMETERS},
)
async def _sparql_get(request: Request) -> Response:
    pairs = form_pairs(request.scope["query_string"], "the query string")
    names = {key for key, _ in pairs}
    if "update" in names:
        raise ForbiddenOperation("SPARQL Update cannot be sent with GET, and is not accepted by the query service")
    if "query" not in names:
        return await _service_description(request, [value for key, value in pairs if key == "format" and value.strip()])
    return await _answer(request, _operation(pairs))


@router.post(
    "/sparql",
    name="sparql_post",
    summary="Run a SPARQL query sent as a form or as the request body",
    response_class=Response,
    responses={200: _ANSWER, **openapi.errors(400, 406, 413, 415, 503)},
    openapi_extra={
        "parameters": _PARAMETERS[1:],
        "requestBody": {
            "required": True,
            "content": {
                _SPARQL_QUERY: {"schema": {"type": "string"}, "example": _EXAMPLE_QUERY},
                _FORM: {"schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
            },
        },
    },
)
async def _sparql_post(request: Request) -> Response:
    media_type, params = content_type(request.headers.get("content-type"))
    url_pairs = form_pairs(request.scope["query_string"], "the query string")
    if media_type == _SPARQL_UPDATE:
        raise _refuse_update()
    if media_type not in (_FORM, _SPARQL_QUERY):
        shown = media_type or "a body without Content-Type"
        raise HttpError(
            415,
            "unsupported_media_type",
            f"a query cannot be sent as {shown}",
            hint=f"POST the query as {_SPARQL_QUERY}, or as {_FORM} with a query parameter",
        )
    require_utf8(media_type, params)
    body = await request.body()
    if media_type == _FORM:
        return await _answer(request, _operation(url_pairs + form_pairs(body, "the form")))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8("the query", error) from None
    return await _answer(request, _operation(url_pairs, body_query=text))


@router.api_route("/sparql", methods=["PUT", "DELETE", "PATCH"], include_in_schema=False)
async def _sparql_other(request: Request) -> Response:
    raise HttpError(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed on /sparql",
        hint="query with GET or POST",
        headers={"Allow": ALLOWED_METHODS},
    )
