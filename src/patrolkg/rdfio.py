"""Reading and writing RDF: formats by media type, file name or short name, and parsing
with errors that say where.

>>> quads = parse_rdf(b'<http://e/a> <http://e/p> "x" .', "text/turtle", source="example")
>>> len(quads)
1
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath

import pyoxigraph as ox

from .errors import RdfSyntaxError, UnsafeInput, UnsupportedFormat
from .nesting import check_json_depth, check_xml_depth

__all__ = [
    "RDF_FORMATS",
    "rdf_format",
    "format_for_path",
    "parse_rdf",
    "serialize_triples",
]

#: Media types we read and write, mapped to pyoxigraph's formats.
RDF_FORMATS: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/trig": ox.RdfFormat.TRIG,
}

_SHORT_NAMES = {
    "turtle": "text/turtle",
    "ttl": "text/turtle",
    "ntriples": "application/n-triples",
    "nt": "application/n-triples",
    "n-triples": "application/n-triples",
    "jsonld": "application/ld+json",
    "json-ld": "application/ld+json",
    "rdfxml": "application/rdf+xml",
    "rdf": "application/rdf+xml",
    "xml": "application/rdf+xml",
    "owl": "application/rdf+xml",
    "nquads": "application/n-quads",
    "nq": "application/n-quads",
    "trig": "application/trig",
}


def rdf_format(name_or_media_type: str) -> ox.RdfFormat:
    """Resolve a media type (parameters ignored) or a short name to a format.

    >>> rdf_format("text/turtle; charset=utf-8").name
    'Turtle'
    >>> rdf_format("jsonld").name
    'JSON-LD'

    :raises UnsupportedFormat: for anything else.
    """
    key = name_or_media_type.split(";", 1)[0].strip().lower()
    key = _SHORT_NAMES.get(key, key)
    try:
        return RDF_FORMATS[key]
    except KeyError:
        raise UnsupportedFormat(
            f"unsupported RDF format {name_or_media_type!r}",
            hint="use one of " + ", ".join(RDF_FORMATS),
        ) from None


def format_for_path(path: str | PurePath) -> ox.RdfFormat:
    """The RDF format a file's extension names.

    >>> format_for_path("facts.nt").name
    'N-Triples'
    """
    suffix = PurePath(path).suffix.lstrip(".").lower()
    try:
        return rdf_format(suffix)
    except UnsupportedFormat:
        raise UnsupportedFormat(
            f"{path}: cannot tell the RDF format from the extension {suffix or '(none)'!r}",
            hint="name the file .ttl, .nt, .jsonld, .rdf, .nq or .trig",
        ) from None


_XML_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_LOCATION = re.compile(r"line (\d+) between columns (\d+)|at (\d+):(\d+)")


def _check_safe(data: bytes, fmt: ox.RdfFormat, source: str) -> None:
    if fmt == ox.RdfFormat.RDF_XML and _XML_DECLARATIONS.search(data):
        raise UnsafeInput(
            f"{source}: RDF/XML with a DOCTYPE or entity declaration is refused",
            hint="remove the DOCTYPE; entity expansion and external entities are never processed",
        )
    # The engine's parsers recurse per level (JSON-LD) or take quadratic time (RDF/XML).
    if fmt == ox.RdfFormat.JSON_LD:
        check_json_depth(data, source=source)
    elif fmt == ox.RdfFormat.RDF_XML:
        check_xml_depth(data, source=source)


def parse_rdf(
    data: bytes,
    fmt: ox.RdfFormat | str,
    *,
    source: str,
    base_iri: str | None = None,
    graph: ox.NamedNode | ox.DefaultGraph | None = None,
) -> list[ox.Quad]:
    """Parse ``data`` completely; triples go into ``graph`` (the default graph if None).

    Nothing is fetched: JSON-LD remote contexts are refused by the parser.

    :raises RdfSyntaxError: with the source, line and column of the first error.
    :raises UnsafeInput: for RDF/XML with DOCTYPE or entity declarations.
    :raises patrolkg.errors.TooComplex: for JSON-LD or RDF/XML nested deeper than
        :data:`patrolkg.nesting.MAX_DOCUMENT_DEPTH`.
    :raises UnsupportedFormat: for an unknown ``fmt``.
    """
    if isinstance(fmt, str):
        fmt = rdf_format(fmt)
    _check_safe(data, fmt, source)
    target = graph if graph is not None else ox.DefaultGraph()
    try:
        parsed = ox.parse(data, format=fmt, base_iri=base_iri, without_named_graphs=False)
        if fmt.supports_datasets or graph is None:
            return list(parsed)  # a triple format's quads are in the default graph
        return [ox.Quad(q.subject, q.predicate, q.object, target) for q in parsed]
    except SyntaxError as exc:
        line, column = _location(exc)
        message = exc.msg if isinstance(exc.msg, str) else str(exc)
        message = re.sub(r"^Parser error (at|between) [^:]*: ", "", message)
        if "remote context" in message:
            raise UnsafeInput(
                f"{source}: JSON-LD with a remote @context is refused; nothing is fetched",
                hint="inline the @context in the document",
            ) from None
        raise RdfSyntaxError(message, source=source, line=line, column=column) from None
    except ValueError as exc:  # pyoxigraph reports some JSON-LD problems as ValueError
        if "remote context" in str(exc):
            raise UnsafeInput(
                f"{source}: JSON-LD with a remote @context is refused; nothing is fetched",
                hint="inline the @context in the document",
            ) from None
        raise RdfSyntaxError(str(exc), source=source) from None


def _location(exc: SyntaxError) -> tuple[int | None, int | None]:
    if exc.lineno:
        return exc.lineno, exc.offset
    match = _LOCATION.search(str(exc))
    if not match:
        return None, None
    numbers = [int(g) for g in match.groups() if g is not None]
    return numbers[0], numbers[1]


def serialize_triples(triples: Iterable[ox.Triple], fmt: ox.RdfFormat, prefixes: dict[str, str] | None = None) -> bytes:
    """Serialize triples; prefixes are used by formats that have them."""
    kwargs = {}
    if prefixes and fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG):
        kwargs["prefixes"] = prefixes
    return ox.serialize(triples, format=fmt, **kwargs)
