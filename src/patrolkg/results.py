"""Writers for SPARQL query results that stop at a row limit and say so.

pyoxigraph serializes whole results; a service must cut a result at its maximum and
signal it, so SELECT results are written here, row by row, in the four formats of the
SPARQL 1.1 specs. ASK results and graphs are small or counted and use pyoxigraph.
"""

from __future__ import annotations

import csv
import io
import json
from json.encoder import encode_basestring
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

__all__ = ["Written", "write_solutions"]

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


@dataclass(frozen=True)
class Written:
    """A serialized result: bytes, how many rows, whether rows were cut off."""

    body: bytes
    rows: int
    truncated: bool


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


def _limited(solutions: Iterable[ox.QuerySolution], limit: int, check: Callable[[], None]) -> tuple[list[ox.QuerySolution], bool]:
    rows = []
    for index, solution in enumerate(solutions):
        if index >= limit:
            return rows, True
        if index % 256 == 0:
            check()
        rows.append(solution)
    return rows, False


def _noop() -> None:
    pass


def write_solutions(
    solutions: ox.QuerySolutions,
    media_type: str,
    *,
    limit: int,
    check: Callable[[], None] = _noop,
) -> Written:
    """Write a SELECT result in ``media_type``, at most ``limit`` rows.

    ``check`` is called every few rows; it raises to abandon the query (timeouts).
    """
    names = [v.value for v in solutions.variables]
    rows, truncated = _limited(solutions, limit, check)
    if media_type == "application/sparql-results+json":
        term = _cached(_json_text)
        keys = [json.dumps(n, ensure_ascii=False) + ":" for n in names]
        bindings = ",".join("{" + ",".join(k + term(v) for k, v in zip(keys, row) if v is not None) + "}" for row in rows)
        head = json.dumps({"vars": names}, ensure_ascii=False, separators=(",", ":"))
        body = ('{"head":' + head + ',"results":{"bindings":[' + bindings + "]}}").encode()
    elif media_type == "application/sparql-results+xml":
        term = _cached(_xml_term)
        opening = [f"<binding name={quoteattr(n)}>" for n in names]
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head>']
        out += [f"<variable name={quoteattr(n)}/>" for n in names]
        out.append("</head><results>")
        for row in rows:
            out.append("<result>" + "".join(o + term(v) + "</binding>" for o, v in zip(opening, row) if v is not None) + "</result>")
        out.append("</results></sparql>\n")
        body = "".join(out).encode()
    elif media_type == "text/csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(names)
        writer.writerows([_csv_term(v) for v in row] for row in rows)
        body = buffer.getvalue().encode()
    elif media_type == "text/tab-separated-values":
        term = _cached(str)
        lines = ["\t".join(f"?{n}" for n in names)]
        lines += ["\t".join("" if v is None else term(v) for v in row) for row in rows]
        body = ("\n".join(lines) + "\n").encode()
    else:
        raise ValueError(f"not a SELECT results media type: {media_type}")
    return Written(body, len(rows), truncated)
