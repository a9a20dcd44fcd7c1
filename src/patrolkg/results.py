"""Writers for SPARQL query results that stop at a row limit and say so.

pyoxigraph serializes whole results; a service must cut a result at its maximum and
signal it. :func:`write_natively` lets the engine write a result (several times faster
than Python) as long as it stays small, then counts its rows in the written text, and
gives up on a result too large or too long; :func:`write_solutions` then writes it
here, row by row, in the four formats of the SPARQL 1.1 specs, cut at the maximum.
ASK results and graphs are small or counted and use pyoxigraph.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from json.encoder import encode_basestring
from collections.abc import Callable
from typing import BinaryIO
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

__all__ = ["Written", "write_natively", "write_solutions", "SPILL_BYTES", "NATIVE_BYTES", "NATIVE_MEDIA_TYPES"]

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


@dataclass(frozen=True)
class Written:
    """A serialized result: bytes (or the file that holds them), how many rows,
    whether rows were cut off."""

    body: bytes
    rows: int
    truncated: bool
    file: str | None = None  # when set, the body is in this file and ``body`` is empty


class _Body:
    """A body being written: in memory, and past ``spill_bytes`` in a new file in
    ``spool_dir`` (when given), so that a large result never sits in memory whole."""

    def __init__(self, spool_dir: str | None, spill_bytes: int) -> None:
        self.spool_dir, self.spill_bytes = spool_dir, spill_bytes
        self.memory = bytearray()
        self.file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        if self.file is not None:
            self.file.write(data)
            return
        self.memory += data
        if self.spool_dir is not None and len(self.memory) > self.spill_bytes:
            self.file = tempfile.NamedTemporaryFile(dir=self.spool_dir, prefix=f"{os.getpid()}-", suffix=".body", delete=False)
            self.file.write(self.memory)
            self.memory = bytearray()

    def close(self) -> tuple[bytes, str | None]:
        if self.file is None:
            return bytes(self.memory), None
        self.file.close()
        return b"", self.file.name

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            os.unlink(self.file.name)


def _json_term(term: Term) -> dict[str, object]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, object] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != _XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {
        "type": "triple",
        "value": {"subject": _json_term(term.subject), "predicate": _json_term(term.predicate), "object": _json_term(term.object)},
    }


def _json_text(term: Term) -> str:
    """:func:`_json_term`, written as JSON text (built directly: the hot loop of big results)."""
    kind = type(term)
    if kind is ox.NamedNode:
        return '{"type":"uri","value":' + _string(term.value) + "}"
    if kind is ox.Literal:
        value = '{"type":"literal","value":' + _string(term.value)
        if term.language:
            return value + ',"xml:lang":' + _string(term.language) + "}"
        datatype = term.datatype.value
        return value + "}" if datatype == _XSD_STRING else value + ',"datatype":' + _string(datatype) + "}"
    if kind is ox.BlankNode:
        return '{"type":"bnode","value":' + _string(term.value) + "}"
    return json.dumps(_json_term(term), ensure_ascii=False, separators=(",", ":"))


#: A JSON string literal, non-ASCII kept (json.dumps's own C encoder, without its
#: per-call set-up).
_string: Callable[[str], str] = encode_basestring


def _cached(write: Callable[[Term], str]) -> Callable[[Term], str]:
    """``write`` with a memory of the terms it wrote: results repeat their IRIs (types,
    predicates, the same event in every row), and the cache halves the work."""
    cache: dict[Term, str] = {}

    def cached(term: Term) -> str:
        text = cache.get(term)
        if text is None:
            text = write(term)
            if len(cache) < _CACHE_TERMS:
                cache[term] = text
        return text

    return cached


#: Most distinct terms remembered while one result is written.
_CACHE_TERMS = 50_000


def _xml_term(term: Term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != _XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
        return f"<literal>{escape(term.value)}</literal>"
    return (
        f"<triple><subject>{_xml_term(term.subject)}</subject><predicate>{_xml_term(term.predicate)}</predicate>"
        f"<object>{_xml_term(term.object)}</object></triple>"
    )


def _csv_term(term: Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Triple):
        return str(term)
    return term.value


def _tsv_term(term: Term | None) -> str:
    # TSV uses the Turtle/N-Triples form of each term (SPARQL 1.1 CSV/TSV §3.2).
    return "" if term is None else str(term)


def _noop() -> None:
    pass


#: Rows written as text before they are encoded and added to the body: the body grows
#: by chunks, and no list of every row (or of its text) is ever held.
_CHUNK_ROWS = 2048


#: Bodies larger than this go to a file when a spool directory is given.
SPILL_BYTES = 4 * 2**20


#: Largest result the engine writes by itself (:func:`write_natively`).
NATIVE_BYTES = 1 << 20

#: The formats whose rows can be counted in the engine's text: JSON (parsed), XML (a
#: ``<result>`` tag cannot occur in text, where ``<`` is escaped) and TSV (one line a
#: row: line breaks in literals are escaped). CSV quotes line breaks; it is written here.
_NATIVE_FORMATS = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}


#: The media types :func:`write_natively` writes.
NATIVE_MEDIA_TYPES = frozenset(_NATIVE_FORMATS)


class _TooLarge(Exception):
    """The engine's text passed :data:`NATIVE_BYTES`."""


class _Capped:
    """Where the engine writes: in memory, calling ``check`` at each of its writes
    (every 8 KiB or so), up to ``max_bytes``."""

    def __init__(self, check: Callable[[], None], max_bytes: int) -> None:
        self.check, self.max_bytes = check, max_bytes
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.check()
        self.buffer += data
        if len(self.buffer) > self.max_bytes:
            raise _TooLarge()
        return len(data)

    def flush(self) -> None:
        pass


_JSON_HEAD = b'{"head":{"vars":['


def _json_rows(body: bytes) -> int:
    """The rows of a SELECT result the engine wrote in JSON, counted without parsing it
    (a tenth of the time for a large one).

    The engine writes compactly, a row as ``{"var":{"type":...},...}``. In its text a
    quote inside a string is escaped, so ``{"v":{"type":"`` with ``v`` a variable (a
    name that holds no quote, brace or colon) is the start of a row that binds ``v``
    first, and nothing else: a string cannot hold it, and a term's own keys (type,
    value, datatype, xml:lang) name strings. Rows that bind nothing (``{}``) and
    quoted triples (whose value has keys naming terms) are counted by parsing.
    """
    if body.startswith(_JSON_HEAD) and b"{}" not in body and b'"type":"triple"' not in body:
        names = json.loads(body[len(_JSON_HEAD) - 1 : body.index(b"]") + 1])
        return sum(body.count(b'{"' + name.encode() + b'":{"type":"') for name in names)
    return len(json.loads(body)["results"]["bindings"])


def write_natively(
    solutions: ox.QuerySolutions,
    media_type: str,
    *,
    limit: int,
    check: Callable[[], None] = _noop,
    max_bytes: int = NATIVE_BYTES,
) -> Written | None:
    """A SELECT result written by the engine, when it can be: in JSON, XML or TSV
    (:data:`NATIVE_MEDIA_TYPES`), in at most ``max_bytes`` and ``limit`` rows. None
    otherwise, the result consumed (for a media type it writes): run the query again
    and :func:`write_solutions` it. ``check`` is called as the engine writes; it raises
    to abandon the query (timeouts).
    """
    native = _NATIVE_FORMATS.get(media_type)
    if native is None:
        return None
    out = _Capped(check, max_bytes)
    try:
        solutions.serialize(out, format=native)
    except _TooLarge:
        return None
    body = bytes(out.buffer)
    if media_type == "application/sparql-results+json":
        rows = _json_rows(body)
    elif media_type == "application/sparql-results+xml":
        rows = body.count(b"<result>")
    else:
        rows = body.count(b"\n") - 1
    return Written(body, rows, False) if rows <= limit else None


def write_solutions(
    solutions: ox.QuerySolutions,
    media_type: str,
    *,
    limit: int,
    check: Callable[[], None] = _noop,
    spool_dir: str | None = None,
) -> Written:
    """Write a SELECT result in ``media_type``, at most ``limit`` rows.

    Rows are read from the engine and written one by one, so that memory holds the
    body being written, not the rows too; with ``spool_dir``, a body past
    :data:`SPILL_BYTES` goes on in a file there (``Written.file``, which the caller
    then owns). ``check`` is called every few rows; it raises to abandon the query
    (timeouts).
    """
    names = [v.value for v in solutions.variables]
    if media_type == "application/sparql-results+json":
        term = _cached(_json_text)
        keys = [json.dumps(n, ensure_ascii=False) + ":" for n in names]
        head = json.dumps({"vars": names}, ensure_ascii=False, separators=(",", ":"))
        opening, separator, closing = '{"head":' + head + ',"results":{"bindings":[', ",", "]}}"
        row_text: Callable[[ox.QuerySolution], str] = lambda row: "{" + ",".join(k + term(v) for k, v in zip(keys, row) if v is not None) + "}"  # noqa: E731
    elif media_type == "application/sparql-results+xml":
        term = _cached(_xml_term)
        bindings = [f"<binding name={quoteattr(n)}>" for n in names]
        opening = '<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head>'
        opening += "".join(f"<variable name={quoteattr(n)}/>" for n in names) + "</head><results>"
        separator, closing = "", "</results></sparql>\n"
        row_text = lambda row: "<result>" + "".join(b + term(v) + "</binding>" for b, v in zip(bindings, row) if v is not None) + "</result>"  # noqa: E731
    elif media_type == "text/csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(names)
        opening, separator, closing = buffer.getvalue(), "", ""

        def row_text(row: ox.QuerySolution) -> str:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([_csv_term(v) for v in row])
            return buffer.getvalue()
    elif media_type == "text/tab-separated-values":
        term = _cached(str)
        opening, separator, closing = "\t".join(f"?{n}" for n in names) + "\n", "", ""
        row_text = lambda row: "\t".join("" if v is None else term(v) for v in row) + "\n"  # noqa: E731
    else:
        raise ValueError(f"not a SELECT results media type: {media_type}")

    body = _Body(spool_dir, SPILL_BYTES)
    try:
        body.write(opening.encode())
        chunk: list[str] = []
        rows, truncated = 0, False
        for row in solutions:
            if rows >= limit:
                truncated = True
                break
            if rows % 256 == 0:
                check()
            chunk.append(row_text(row))
            rows += 1
            if len(chunk) == _CHUNK_ROWS:
                body.write(((separator if rows > _CHUNK_ROWS else "") + separator.join(chunk)).encode())
                chunk = []
        if chunk:
            body.write(((separator if rows > len(chunk) else "") + separator.join(chunk)).encode())
        body.write(closing.encode())
    except BaseException:
        body.discard()
        raise
    data, file = body.close()
    return Written(data, rows, truncated, file)
