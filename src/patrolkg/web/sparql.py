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
from .protocol import content_type, form_pairs, not_utf8, require_utf8
from .query_request import FORMAT_NAMES, TRUNCATED_HEADER, Operation, answer_headers, content_type_header, media_types, operation, query_in_url, query_request, refuse_update
from .service_description import describe, serialize_description
from .services import Services, services

T = TypeVar("T")

__all__ = ["router", "answer_directly", "TRUNCATED_HEADER", "FORMAT_NAMES", "ALLOWED_METHODS"]

router = APIRouter(tags=["sparql"])

#: The methods /sparql answers, as sent in ``Allow``.
ALLOWED_METHODS = "GET, HEAD, POST"

_FORM = "application/x-www-form-urlencoded"
_SPARQL_QUERY = "application/sparql-query"
_SPARQL_UPDATE = "application/sparql-update"
_HTML = "text/html"
_VARY = {"Vary": "Accept"}


# --- reading the request ---------------------------------------------------------


# --- answering ---------------------------------------------------------------------


def _response(svc: Services, result: QueryResponse) -> Response:
    headers = answer_headers(result, max_rows=svc.limits.max_rows, vary_origin=False)
    if result.body_file is not None:
        return _streamed(result.body_file, headers)
    return Response(result.body, headers=headers)


async def _answer(request: Request, operation: Operation) -> Response:
    svc = services(request)
    query = query_request(svc.settings.base_iri, operation, request.headers.get("accept"))
    return _response(svc, await _run(svc, query, request.receive))


async def _run(svc: Services, query: QueryRequest, receive: Receive) -> QueryResponse:
    """The executor's answer: made at once for a bounded query, else awaited unless the
    client leaves first."""
    answer = svc.executor.answer_now(query, alone=svc.alone())
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
        query = query_in_url(scope["query_string"], accept, svc.settings.base_iri)
    except PatrolkgError:
        return False
    if query is None:
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
    wanted = media_types(formats)
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
    return Response(body, headers={**_VARY, "Content-Type": content_type_header(chosen)})


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
    return await _answer(request, operation(pairs))


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
        raise refuse_update()
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
        return await _answer(request, operation(url_pairs + form_pairs(body, "the form")))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8("the query", error) from None
    return await _answer(request, operation(url_pairs, body_query=text))


@router.api_route("/sparql", methods=["PUT", "DELETE", "PATCH"], include_in_schema=False)
async def _sparql_other(request: Request) -> Response:
    raise HttpError(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed on /sparql",
        hint="query with GET or POST",
        headers={"Allow": ALLOWED_METHODS},
    )
