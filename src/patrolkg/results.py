"""Writers for SPARQL query results that stop at a row limit and say so.

pyoxigraph serializes whole results; a service must cut a result at its maximum and
signal it, so SELECT results are written here, row by row, in the four formats of the
SPARQL 1.1 specs. ASK results and graphs are small or counted and use pyoxigraph.
"""

from __future__ import annotations

import csv
import io
import json
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
        bindings = [{n: _json_term(r[n]) for n in names if r[n] is not None} for r in rows]
        body = json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}, ensure_ascii=False).encode()
    elif media_type == "application/sparql-results+xml":
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head>']
        out += [f"<variable name={quoteattr(n)}/>" for n in names]
        out.append("</head><results>")
        for r in rows:
            out.append("<result>")
            out += [f"<binding name={quoteattr(n)}>{_xml_term(r[n])}</binding>" for n in names if r[n] is not None]
            out.append("</result>")
        out.append("</results></sparql>\n")
        body = "".join(out).encode()
    elif media_type == "text/csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(names)
        for r in rows:
            writer.writerow([_csv_term(r[n]) for n in names])
        body = buffer.getvalue().encode()
    elif media_type == "text/tab-separated-values":
        lines = ["\t".join(f"?{n}" for n in names)]
        lines += ["\t".join(_tsv_term(r[n]) for n in names) for r in rows]
        body = ("\n".join(lines) + "\n").encode()
    else:
        raise ValueError(f"not a SELECT results media type: {media_type}")
    return Written(body, len(rows), truncated)
