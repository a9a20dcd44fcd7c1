"""Running queries and writing their results in every SPARQL and RDF format."""

from __future__ import annotations

from dataclasses import dataclass

import pyoxigraph as ox

from .errors import UnsupportedFormat
from .namespaces import PREFIXES
from .rdfio import rdf_format, serialize_triples
from .store import QueryResult, Store, TripleStream

__all__ = [
    "RESULTS_FORMATS",
    "ResultsFormat",
    "results_format",
    "is_graph_result",
    "serialize_result",
    "select_rows",
    "render_table",
    "term_text",
]


@dataclass(frozen=True)
class ResultsFormat:
    """A format for SELECT/ASK results: its short name and exact media type."""

    name: str
    media_type: str
    native: ox.QueryResultsFormat


#: Media types of SELECT/ASK results, exactly as the SPARQL 1.1 specs name them.
RESULTS_FORMATS: dict[str, ResultsFormat] = {
    f.media_type: f
    for f in (
        ResultsFormat("json", "application/sparql-results+json", ox.QueryResultsFormat.JSON),
        ResultsFormat("xml", "application/sparql-results+xml", ox.QueryResultsFormat.XML),
        ResultsFormat("csv", "text/csv", ox.QueryResultsFormat.CSV),
        ResultsFormat("tsv", "text/tab-separated-values", ox.QueryResultsFormat.TSV),
    )
}
_BY_NAME = {f.name: f for f in RESULTS_FORMATS.values()}


def results_format(name_or_media_type: str) -> ResultsFormat:
    """Resolve ``json``/``xml``/``csv``/``tsv`` or a media type.

    >>> results_format("json").media_type
    'application/sparql-results+json'

    :raises UnsupportedFormat: for anything else.
    """
    key = name_or_media_type.split(";", 1)[0].strip().lower()
    found = _BY_NAME.get(key) or RESULTS_FORMATS.get(key)
    if found is None:
        raise UnsupportedFormat(
            f"unsupported results format {name_or_media_type!r}",
            hint="use json, xml, csv or tsv for SELECT and ASK",
        )
    return found


def is_graph_result(result: QueryResult) -> bool:
    """True for CONSTRUCT and DESCRIBE results (from the embedded engine or a remote one)."""
    return isinstance(result, (ox.QueryTriples, TripleStream))


def serialize_result(result: QueryResult, fmt: str) -> tuple[bytes, str]:
    """Serialize a result in the format named by ``fmt`` (short name or media type).

    :returns: the bytes and their media type.
    :raises UnsupportedFormat: if ``fmt`` does not suit the kind of result.
    """
    if is_graph_result(result):
        try:
            rdf = rdf_format(fmt)
        except UnsupportedFormat:
            raise UnsupportedFormat(
                f"a CONSTRUCT or DESCRIBE result cannot be written as {fmt!r}",
                hint="use turtle, ntriples, jsonld or rdfxml",
            ) from None
        return serialize_triples(result, rdf, PREFIXES), rdf.media_type
    target = results_format(fmt)
    return result.serialize(format=target.native), target.media_type


def term_text(term: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple) -> str:
    """An IRI's text, a literal's lexical form, or ``_:id`` for a blank node."""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Triple):
        return str(term)
    return term.value


def select_rows(store: Store, sparql: str) -> list[dict[str, str]]:
    """Run a SELECT and return its rows as plain strings (see :func:`term_text`).

    Unbound variables are absent from a row.
    """
    result = store.query(sparql)
    if not isinstance(result, ox.QuerySolutions):
        raise UnsupportedFormat("select_rows needs a SELECT query")
    names = [v.value for v in result.variables]
    rows = []
    for solution in result:
        rows.append({name: term_text(solution[name]) for name in names if solution[name] is not None})
    return rows


def _compact(term: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.NamedNode):
        for prefix, iri in PREFIXES.items():
            if term.value.startswith(iri) and term.value != iri:
                return f"{prefix}:{term.value[len(iri):]}"
        return f"<{term.value}>"
    if isinstance(term, ox.Literal):
        return term.value
    return term_text(term)


def render_table(result: QueryResult, *, max_width: int = 60) -> str:
    """A readable text table of a SELECT result, ``yes``/``no`` for ASK."""
    if isinstance(result, ox.QueryBoolean):
        return "yes" if bool(result) else "no"
    if not isinstance(result, ox.QuerySolutions):
        raise UnsupportedFormat("tables are for SELECT and ASK results", hint="use --format turtle")
    names = [v.value for v in result.variables]
    rows = [[_clip(_compact(s[n]), max_width) for n in names] for s in result]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(names), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

