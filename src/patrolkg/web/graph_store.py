"""The SPARQL 1.1 Graph Store HTTP Protocol at ``/store``
(https://www.w3.org/TR/sparql11-http-rdf-update/); the work is done by
:mod:`patrolkg.graphstore`.

- Indirect identification: ``/store?graph=<iri>`` names a graph, ``/store?default`` the
  default graph. Direct identification: ``/store/<path>`` is the graph whose IRI is the
  request URL itself (without its query string).
- GET and HEAD are open; PUT (replace), POST (merge) and DELETE need
  ``Authorization: Bearer <token>``. A POST to ``/store`` naming no graph creates one
  with a fresh IRI under ``<base>user-graph/`` and answers 201 with its IRI in
  ``Location``.
- Bodies are Turtle, N-Triples, JSON-LD or RDF/XML (TriG and N-Quads without named
  graphs), by Content-Type, in UTF-8; a POST may also be ``multipart/form-data``, one
  RDF document per part. Relative IRIs resolve against the graph's IRI. Blank nodes
  are stored as skolem IRIs and come back as blank nodes.
- GET answers Turtle by default, or N-Triples, JSON-LD or RDF/XML by Accept.

Statuses: 200 GET/HEAD; 201 PUT/POST that created the graph; 204 other writes; 400
bad graph parameters, an empty or malformed body (with line and column), a JSON-LD
remote context or an RDF/XML DOCTYPE; 401/403 no or wrong token, no token configured;
403 a write to one of patrolkg's own graphs; 404 GET/HEAD/DELETE of a graph that holds
nothing; 406 no acceptable format; 415 a missing or unsupported Content-Type or
charset; 422 the result does not conform (nothing written).
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

import pyoxigraph as ox
from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from .. import graphstore
from ..errors import ForbiddenOperation, NotAcceptable, PatrolkgError, UnsupportedFormat
from ..execution import GRAPH_MEDIA_TYPES
from ..negotiation import choose
from ..rdfio import rdf_format, serialize_triples
from ..writes import GraphName
from . import openapi
from .auth import writer_name
from .errors import HttpError, status_for
from .services import services
from .protocol import content_type, form_pairs, require_utf8

__all__ = ["router", "ALLOWED_METHODS"]

log = logging.getLogger("patrolkg.web")

router = APIRouter(tags=["graph store"])

#: The methods /store and /store/<path> answer, as sent in ``Allow``.
ALLOWED_METHODS = "GET, HEAD, PUT, POST, DELETE"

_MULTIPART = "multipart/form-data"
_VARY = {"Vary": "Accept"}


class _NoGraph:
    """Neither ``graph`` nor ``default``: a POST creates a graph, the rest is refused."""


_NO_GRAPH = _NoGraph()
_T = TypeVar("_T")


# --- which graph ---------------------------------------------------------------------


def _indirect_graph(request: Request) -> GraphName | _NoGraph:
    """The graph ``?graph=`` or ``?default`` names.

    :raises HttpError: 400 for both, several graphs, or a graph that is not an absolute IRI.
    """
    pairs = form_pairs(request.scope["query_string"], "the query string")
    graphs = [value for key, value in pairs if key == "graph"]
    default = any(key == "default" for key, _ in pairs)
    if graphs and default:
        raise HttpError(400, "ambiguous_graph", "the request names a graph and the default graph", hint="give either graph=<iri> or default")
    if len(graphs) > 1:
        raise HttpError(400, "ambiguous_graph", f"the request names {len(graphs)} graphs; name one", hint="give graph=<iri> once")
    if default:
        return None
    if not graphs:
        return _NO_GRAPH
    return _absolute_iri(graphs[0], "graph")


def _direct_graph(request: Request) -> str:
    """The graph IRI of a request to ``/store/<path>``: its URL, as sent, without query.

    :raises HttpError: 400 if the URL has graph or default parameters, or is not an IRI.
    """
    pairs = form_pairs(request.scope["query_string"], "the query string")
    if any(key in ("graph", "default") for key, _ in pairs):
        raise HttpError(400, "ambiguous_graph", "a request to /store/<path> names its graph by its URL and takes no graph or default parameter", hint="use /store?graph=<iri> to name another graph")
    raw_path = request.scope.get("raw_path")
    # The decoded path would turn %20 into a space: keep the URL as the client sent it.
    path = raw_path.decode("latin-1") if raw_path else quote(request.url.path)
    return _absolute_iri(str(request.url.replace(path=path, query="")), "the request URL")


def _absolute_iri(value: str, where: str) -> str:
    try:
        ox.NamedNode(value)
    except ValueError as error:
        raise HttpError(400, "bad_graph_uri", f"{where} {value!r} is not an absolute IRI: {error}", hint="name the graph by an absolute IRI") from None
    return value


def _required(graph: GraphName | _NoGraph) -> GraphName:
    if isinstance(graph, _NoGraph):
        raise HttpError(400, "missing_graph", "the request names no graph", hint="add graph=<iri> or default to the query string")
    return graph


# --- bodies and answers --------------------------------------------------------------


async def _body_triples(request: Request, graph_iri: str | None) -> list[ox.Triple]:
    """The triples of a request body, blank nodes skolemized.

    :raises HttpError: 400 for an empty body, 415 for no Content-Type or a charset
        other than UTF-8.
    :raises patrolkg.errors.InputError: what :func:`patrolkg.graphstore.parse_graph` raises.
    """
    media_type, params = content_type(request.headers.get("content-type"))
    if not media_type:
        raise HttpError(415, "unsupported_media_type", "the body has no Content-Type", hint="send Turtle (text/turtle), N-Triples, JSON-LD or RDF/XML with its Content-Type")
    require_utf8(media_type, params)
    body = await request.body()
    if not body.strip():
        raise HttpError(400, "empty_body", "the request body is empty", hint="send the graph's triples; to empty a graph, DELETE it")
    base_iri = graph_iri or str(request.url.replace(query=""))
    if media_type == _MULTIPART:
        if request.method != "POST":
            raise UnsupportedFormat(f"{request.method} cannot take {_MULTIPART}; only POST can", hint="send one RDF document with its Content-Type")
        return await run_in_threadpool(_multipart_triples, request.headers["content-type"], body, base_iri)
    return await run_in_threadpool(graphstore.parse_graph, body, media_type, source="the request body", base_iri=base_iri)


def _multipart_triples(header: str, body: bytes, base_iri: str) -> list[ox.Triple]:
    """The triples of every part of a ``multipart/form-data`` body, each part an RDF
    document with its own Content-Type (GSP §5.5)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(b"Content-Type: " + header.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise HttpError(400, "bad_multipart", "the multipart body cannot be read", hint="check its boundary")
    triples: list[ox.Triple] = []
    for index, part in enumerate(message.iter_parts(), 1):
        name = part.get_filename() or part.get_param("name", header="content-disposition") or f"part {index}"
        media_type, params = content_type(part.get("content-type"))
        if not media_type:
            raise HttpError(415, "unsupported_media_type", f"the multipart part {name!r} has no Content-Type", hint="give each part the Content-Type of its RDF")
        require_utf8(media_type, params)
        data = part.get_payload(decode=True) or b""
        triples += graphstore.parse_graph(data, media_type, source=f"the multipart part {name!r}", base_iri=base_iri)
    if not triples:
        raise HttpError(400, "empty_body", "the multipart body has no parts", hint="send one RDF document per part")
    return triples


def _graph_response(request: Request, graph: GraphName, *, head: bool) -> Response:
    chosen = choose(request.headers.get("accept"), GRAPH_MEDIA_TYPES)
    if chosen is None:
        raise NotAcceptable("the graph cannot be written in any accepted type", hint="accept one of " + ", ".join(GRAPH_MEDIA_TYPES))
    triples = graphstore.get(services(request).store, graph)
    body = serialize_triples(triples, rdf_format(chosen))
    content_type = f"{chosen}; charset=utf-8" if chosen.startswith("text/") else chosen
    headers = {**_VARY, "Content-Type": content_type}
    if head:
        return Response(headers={**headers, "Content-Length": str(len(body))})
    return Response(body, headers=headers)


def _write_response(created: bool, location: str | None = None) -> Response:
    if not created:
        return Response(status_code=204)
    return Response(status_code=201, headers={"Location": location} if location else None)


async def _run_write(call: Callable[..., _T], *args: object) -> _T:
    """Run a graph store write off the event loop; a policy refusal is 403."""
    try:
        return await run_in_threadpool(call, *args)
    except ForbiddenOperation as error:
        raise HttpError(403, error.code, error.message, hint=error.hint) from None


async def _head(handler: Callable[[], Awaitable[Response]]) -> Response:
    """HEAD: the GET's status and headers without a body, errors included."""
    try:
        return await handler()
    except PatrolkgError as error:
        return Response(status_code=status_for(error), headers=getattr(error, "headers", None))


# --- the operations, for either kind of identification --------------------------------


async def _get(request: Request, graph: GraphName, *, head: bool = False) -> Response:
    return await run_in_threadpool(_graph_response, request, graph, head=head)


async def _put(request: Request, graph: GraphName, writer: str) -> Response:
    triples = await _body_triples(request, graph)
    created = await _run_write(graphstore.put, services(request).writer, graph, triples)
    log.info("graph store PUT by %s: %s, %d triples", writer, graph or "default graph", len(triples))
    return _write_response(created)


async def _post(request: Request, graph: GraphName | _NoGraph, writer: str) -> Response:
    location = None
    if isinstance(graph, _NoGraph):
        graph = location = graphstore.new_graph_iri(services(request).settings.base_iri)
    triples = await _body_triples(request, graph)
    created = await _run_write(graphstore.post, services(request).writer, graph, triples)
    log.info("graph store POST by %s: %s, %d triples", writer, graph or "default graph", len(triples))
    return _write_response(created, location)


async def _delete(request: Request, graph: GraphName, writer: str) -> Response:
    await _run_write(graphstore.delete, services(request).writer, graph)
    log.info("graph store DELETE by %s: %s", writer, graph or "default graph")
    return Response(status_code=204)


# --- routes --------------------------------------------------------------------------


class _GraphPath(Convertor[str]):
    """Starlette's ``path`` across line breaks too: ``/store/a%0Ab`` names the graph
    ``<.../store/a%0Ab>`` like any other URL, instead of matching no route (a 404 to a PUT)."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_path", _GraphPath())  # before the routes below are compiled



def _indirect(example: str) -> dict[str, object]:
    """The parameters naming the graph, with an example of the graph a method acts on."""
    return {
        "parameters": [
            {"name": "graph", "in": "query", "schema": {"type": "string"}, "description": "The IRI of the graph.", "example": example},
            {"name": "default", "in": "query", "schema": {"type": "string"}, "allowEmptyValue": True, "description": "The default graph (give no value)."},
        ]
    }


_READING = _indirect("https://w3id.org/patrolkg/graph/links")
_WRITING = _indirect("https://example.org/notes")
_DIRECT_EXAMPLES = {"notes": {"summary": "The graph <.../store/notes>", "value": "notes"}}
_NOTE = '@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n<https://example.org/notes/1> rdfs:comment "a note" .\n'
_BODY_TYPES = (*GRAPH_MEDIA_TYPES, "application/trig", "application/n-quads")  # TriG and N-Quads without named graphs
_RDF_BODY = {"required": True, "content": {**openapi.content(_BODY_TYPES), "text/turtle": {"schema": {"type": "string"}, "example": _NOTE}}}
_POST_BODY = {**_RDF_BODY, "content": {**_RDF_BODY["content"], _MULTIPART: {"schema": {"type": "object", "description": "One RDF document per part, each with its Content-Type."}}}}

_READ_OK = openapi.response("The graph's triples.", GRAPH_MEDIA_TYPES)
_READ_ERRORS = openapi.errors(400, 404, 406, 503, described={404: "The graph holds no triples."})
_READ = {200: _READ_OK, **_READ_ERRORS}
_HEAD = {200: _READ_OK, **openapi.without_bodies(_READ_ERRORS)}  # _head answers an error without a body
_WRITE_ERRORS = openapi.errors(400, 401, 403, 413, 415, 422, 503)
_CREATED = openapi.response("The graph did not exist: created.")
_CHANGED = openapi.response("The graph was changed.")
_PUT = {201: _CREATED, 204: _CHANGED, **_WRITE_ERRORS}
_POST_CREATING = {201: openapi.response("Created: the graph did not exist, or none was named (its new IRI is in Location).", headers={"Location": "The IRI of a graph the POST created for it."}), 204: _CHANGED, **_WRITE_ERRORS}
_POST = {201: _CREATED, 204: _CHANGED, **_WRITE_ERRORS}
_DELETE = {204: openapi.response("Deleted."), **openapi.errors(400, 401, 403, 404, 422, 503, described={404: "The graph holds no triples."})}


@router.get("/store", name="graph_store_get", summary="Read a graph (graph=<iri> or default)", response_class=Response, responses=_READ, openapi_extra=_READING)
async def _store_get(request: Request) -> Response:
    return await _get(request, _required(_indirect_graph(request)))


@router.head("/store", name="graph_store_head", summary="The headers a GET would answer", response_class=Response, responses=_HEAD, openapi_extra=_READING)
async def _store_head(request: Request) -> Response:
    return await _head(lambda: _get(request, _required(_indirect_graph(request)), head=True))


@router.put("/store", name="graph_store_put", summary="Replace a graph", status_code=204, responses=_PUT, openapi_extra={**_WRITING, "requestBody": _RDF_BODY})
async def _store_put(request: Request, writer: str = Depends(writer_name)) -> Response:
    return await _put(request, _required(_indirect_graph(request)), writer)


@router.post("/store", name="graph_store_post", summary="Merge triples into a graph, or create a new graph", status_code=204, responses=_POST_CREATING, openapi_extra={**_WRITING, "requestBody": _POST_BODY})
async def _store_post(request: Request, writer: str = Depends(writer_name)) -> Response:
    return await _post(request, _indirect_graph(request), writer)


@router.delete("/store", name="graph_store_delete", summary="Delete a graph", status_code=204, responses=_DELETE, openapi_extra=_WRITING)
async def _store_delete(request: Request, writer: str = Depends(writer_name)) -> Response:
    return await _delete(request, _required(_indirect_graph(request)), writer)


@router.get("/store/{path:graph_path}", name="graph_store_direct_get", summary="Read the graph named by this URL", response_class=Response, responses=_READ)
async def _direct_get(request: Request, path: str = Path(openapi_examples=_DIRECT_EXAMPLES)) -> Response:
    return await _get(request, _direct_graph(request))


@router.head("/store/{path:graph_path}", name="graph_store_direct_head", summary="The headers a GET would answer", response_class=Response, responses=_HEAD)
async def _direct_head(request: Request, path: str = Path(openapi_examples=_DIRECT_EXAMPLES)) -> Response:
    return await _head(lambda: _get(request, _direct_graph(request), head=True))


@router.put("/store/{path:graph_path}", name="graph_store_direct_put", summary="Replace the graph named by this URL", status_code=204, responses=_PUT, openapi_extra={"requestBody": _RDF_BODY})
async def _direct_put(request: Request, path: str = Path(openapi_examples=_DIRECT_EXAMPLES), writer: str = Depends(writer_name)) -> Response:
    return await _put(request, _direct_graph(request), writer)


@router.post("/store/{path:graph_path}", name="graph_store_direct_post", summary="Merge triples into the graph named by this URL", status_code=204, responses=_POST, openapi_extra={"requestBody": _POST_BODY})
async def _direct_post(request: Request, path: str = Path(openapi_examples=_DIRECT_EXAMPLES), writer: str = Depends(writer_name)) -> Response:
    return await _post(request, _direct_graph(request), writer)


@router.delete("/store/{path:graph_path}", name="graph_store_direct_delete", summary="Delete the graph named by this URL", status_code=204, responses=_DELETE)
async def _direct_delete(request: Request, path: str = Path(openapi_examples=_DIRECT_EXAMPLES), writer: str = Depends(writer_name)) -> Response:
    return await _delete(request, _direct_graph(request), writer)


@router.api_route("/store", methods=["PATCH"], include_in_schema=False)
@router.api_route("/store/{path:graph_path}", methods=["PATCH"], include_in_schema=False)
async def _store_other(request: Request) -> None:
    raise HttpError(405, "method_not_allowed", f"{request.method} is not allowed on the graph store", hint="use GET, HEAD, PUT, POST or DELETE", headers={"Allow": ALLOWED_METHODS})
