"""What a SPARQL 1.1 Protocol query request asks for, read without the web framework:
the one query, its dataset and format parameters, and the headers of its answer. The
``/sparql`` routes (:mod:`patrolkg.web.sparql`) and the reader processes
(:mod:`patrolkg.web.readers`) share it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ForbiddenOperation, NotAcceptable
from ..execution import QueryRequest, QueryResponse
from ..memo import remembered_when_short
from .errors import HttpError
from .protocol import Pairs, form_pairs, graph_iris

__all__ = ["FORMAT_NAMES", "TRUNCATED_HEADER", "Operation", "answer_headers", "content_type_header", "media_types", "operation", "query_in_url", "query_request", "refuse_update"]

#: Set on a response whose rows were cut at the maximum, as ``max-rows=<N>``. It is the
#: HTTP layer's signal, so it is defined here (and exposed to browsers by the CORS setup).
TRUNCATED_HEADER = "Patrolkg-Truncated"

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


@dataclass(frozen=True)
class Operation:
    """What one request asks for, read from its parameters and body."""

    query: str
    default_graphs: tuple[str, ...] | None
    named_graphs: tuple[str, ...] | None
    formats: tuple[str, ...]


def refuse_update() -> ForbiddenOperation:
    return ForbiddenOperation("SPARQL Update is not accepted by the query service (send updates to /update)")


def operation(pairs: Pairs, *, body_query: str | None = None) -> Operation:
    """The one query of a request and its dataset and format parameters.

    :raises HttpError: 400 for no query, an empty one or more than one.
    :raises ForbiddenOperation: 400 for an update.
    """
    if any(key == "update" for key, _ in pairs):
        raise refuse_update()
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
    return Operation(queries[0], graph_iris(pairs, "default-graph-uri"), graph_iris(pairs, "named-graph-uri"), formats)


def media_types(formats: Sequence[str]) -> list[str]:
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


def content_type_header(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type


def query_request(base_iri: str | None, operation: Operation, accept: str | None) -> QueryRequest:
    """The query to run for ``operation``, given the request's Accept header.

    :raises NotAcceptable: for a ``format`` that names no format.
    """
    wanted = media_types(operation.formats)
    # One named type is asked for exactly; several (``format=xml``) are alternatives.
    return QueryRequest(
        text=operation.query,
        default_graphs=operation.default_graphs,
        named_graphs=operation.named_graphs,
        base_iri=base_iri,
        accept=", ".join(wanted) if len(wanted) > 1 else accept,
        format=wanted[0] if len(wanted) == 1 else None,
    )


def query_in_url(query_string: bytes, accept: str | None, base_iri: str | None) -> QueryRequest | None:
    """The query a ``GET /sparql`` asks for, None if it names none.

    :raises PatrolkgError: for whatever the route would refuse before running anything.
    """
    asked = _operation_in_url(query_string)
    return None if asked is None else query_request(base_iri, asked, accept)


#: Query strings up to this length are remembered with what they ask (decoding a
#: query's percent-escapes takes tens of µs; dashboards send the same ones again).
REMEMBERED_URL_BYTES = 4096


@remembered_when_short(maxsize=512, max_length=REMEMBERED_URL_BYTES)  # at most 4 MB: the strings and their texts
def _operation_in_url(query_string: bytes) -> Operation | None:
    pairs = form_pairs(query_string, "the query string")
    if all(key != "query" for key, _ in pairs):
        return None
    return operation(pairs)


def answer_headers(result: QueryResponse, *, max_rows: int, vary_origin: bool) -> dict[str, str]:
    """The headers of a query's answer, but its length."""
    headers = {"Vary": "Accept, Origin" if vary_origin else "Accept"}
    if result.truncated:
        headers[TRUNCATED_HEADER] = f"max-rows={max_rows}"
    headers["Content-Type"] = content_type_header(result.media_type)
    return headers
