"""The store interface: what the rest of patrolkg needs from a quad store.

The embedded implementation is :class:`patrolkg.store.oxigraph.OxigraphStore`; the remote
one, :class:`patrolkg.store.remote.RemoteStore`, speaks SPARQL 1.1 to any engine. Their
callers do not change: the contract tests (tests/test_store_contract.py) run on both.

Writes by several servers sharing one store stay validate-then-commit: a writer holds
:meth:`Store.write_lease`, reads :meth:`Store.version`, validates, then commits with
:meth:`Store.apply` only if the version is still the one it read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, Protocol, Union, runtime_checkable

import pyoxigraph as ox

from ..errors import QuerySyntaxError
from ..memo import SHORT_TEXT_CHARS, remembered_when_short

__all__ = ["Store", "QueryResult", "TripleStream", "query_has_dataset", "query_error_location", "syntax_error"]


class TripleStream:
    """The triples of a CONSTRUCT or DESCRIBE result that pyoxigraph's own engine did not
    compute (a remote engine's answer, parsed as it arrives). Iterate it once.

    >>> t = ox.Triple(ox.NamedNode("http://e/a"), ox.NamedNode("http://e/p"), ox.Literal("x"))
    >>> TripleStream(iter([t])).serialize(format=ox.RdfFormat.N_TRIPLES)
    b'<http://e/a> <http://e/p> "x" .\\n'
    """

    def __init__(self, triples: Iterator[ox.Triple]) -> None:
        self._triples = triples

    def __iter__(self) -> TripleStream:
        return self

    def __next__(self) -> ox.Triple:
        return next(self._triples)

    def serialize(self, output: IO[bytes] | None = None, format: ox.RdfFormat = ox.RdfFormat.N_TRIPLES) -> bytes | None:
        """Write the (remaining) triples, as :meth:`pyoxigraph.QueryTriples.serialize` does."""
        return ox.serialize(self, output, format)


#: What a query returns: solutions (SELECT), a boolean (ASK) or triples (CONSTRUCT/DESCRIBE).
QueryResult = Union[ox.QuerySolutions, ox.QueryBoolean, ox.QueryTriples, TripleStream]


@runtime_checkable
class Store(Protocol):
    """A quad store patrolkg can load, reason over, validate against and query."""

    def query(
        self,
        sparql: str,
        *,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base_iri: str | None = None,
    ) -> QueryResult:
        """Run a SPARQL query; relative IRIs in it resolve against ``base_iri``.

        Without ``default_graphs``/``named_graphs`` and without FROM/FROM NAMED in the
        query, the default graph is the union of all named graphs (see docs/model.md).
        The two arguments override the query's own dataset clauses, as the SPARQL
        Protocol's ``default-graph-uri``/``named-graph-uri`` do.

        :raises patrolkg.errors.QuerySyntaxError: with line and column.
        :raises patrolkg.errors.StoreError: when the store cannot be read.
        """
        ...

    def graph_names(self) -> list[str]:
        """IRIs of the named graphs that hold at least one triple, sorted."""
        ...

    def triple_count(self, graph: str | None = None) -> int:
        """Triples in one named graph, or quads in the whole store when ``graph`` is None."""
        ...

    def quads(self, graph: str | None = None) -> Iterator[ox.Quad]:
        """The quads of one named graph, or of the whole store."""
        ...

    def quads_in(self, graph: str | None) -> Iterator[ox.Quad]:
        """The quads of one graph: a named graph's IRI, or None for the default graph."""
        ...

    def replace_graphs(self, graphs: Mapping[str, Iterable[ox.Triple]], drop: Iterable[str] = ()) -> None:
        """Atomically drop ``drop`` and replace each graph in ``graphs`` by its triples.

        Either every change is visible afterwards or none is, even if the process dies.
        The store's :meth:`version` changes.

        :raises patrolkg.errors.StoreError: when the store cannot be written.
        """
        ...

    def apply(
        self,
        remove: Mapping[str | None, Iterable[ox.Triple]],
        add: Mapping[str | None, Iterable[ox.Triple]],
        *,
        expect_version: str | None = None,
        new_version: str | None = None,
    ) -> bool:
        """Atomically delete then insert triples, per graph (None is the default graph).

        With ``new_version`` the change is conditional: it is made, and the store's
        version becomes ``new_version``, only if the version is still ``expect_version``
        (None: no write yet). Without it the change is made whatever the version is,
        and the version changes all the same. Returns whether the change was made.
        Hold :meth:`write_lease` around reading the version and applying: an engine
        that runs updates side by side on snapshots (Oxigraph's server does) may
        otherwise make two racing conditional changes that expected the same version.

        Triples to remove must not contain blank nodes (SPARQL cannot name them);
        patrolkg skolemizes user data so that stored data graphs have none.

        :raises patrolkg.errors.StoreError: when the store cannot be written.
        """
        ...

    def version(self) -> str | None:
        """A token that every commit changes, by whichever process or server; None
        before the first. Read it before validating a write, then pass it to :meth:`apply`.

        :raises patrolkg.errors.StoreError: when the store cannot be read.
        """
        ...

    def write_lease(self) -> AbstractContextManager[None]:
        """Keep every other writer of this store (threads, processes, other patrolkg
        servers sharing the engine) from committing while the block runs. Reentrant.

        :raises patrolkg.errors.WriteConflict: when the lease cannot be had in time.
        """
        ...

    def quads_with_subjects(self, nodes: Iterable[str]) -> list[ox.Quad]:
        """Every quad, in any graph, whose subject is one of the IRIs ``nodes``."""
        ...

    def quads_with_objects(self, nodes: Iterable[str]) -> list[ox.Quad]:
        """Every quad, in any graph, whose object is one of the IRIs ``nodes``."""
        ...

    def close(self) -> None:
        """Release the store (flush to disk where there is one)."""
        ...


_STRINGS_AND_COMMENTS = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|<[^<>\s]*>|#[^\n]*",
    re.DOTALL,
)
_DATASET_CLAUSE = re.compile(r"(?<![\w:$?])FROM\s+(?:NAMED\s+)?(?:<|[A-Za-z_][\w.-]*:|:)", re.IGNORECASE)


@remembered_when_short(maxsize=512, max_length=SHORT_TEXT_CHARS)
def query_has_dataset(sparql: str) -> bool:
    """Whether a query names its own dataset with FROM or FROM NAMED (remembered for
    short texts: a query asked again is read once).

    >>> query_has_dataset("SELECT * FROM <http://e/g> WHERE { ?s ?p ?o }")
    True
    >>> query_has_dataset('SELECT * WHERE { ?s ?p "FROM <x>" }  # FROM <y>')
    False
    """
    if "from" not in sparql.lower():  # most queries: no need to read their strings
        return False

    # IRIs are blanked rather than removed so that "FROM <...>" keeps its "<".
    def blank(match: re.Match[str]) -> str:
        text = match.group(0)
        return "<>" if text.startswith("<") else " "

    return bool(_DATASET_CLAUSE.search(_STRINGS_AND_COMMENTS.sub(blank, sparql)))


_QUERY_LOCATION = re.compile(r"at (\d+):(\d+)")


def syntax_error(exc: SyntaxError) -> QuerySyntaxError:
    """A :class:`QuerySyntaxError` from the engine's, with its position and a readable
    message (the engine's list of expected tokens can run to hundreds of characters).

    >>> str(syntax_error(SyntaxError("error at 1:5: expected one of a, b")))
    'SPARQL syntax error: line 1, column 5: expected one of a, b'
    """
    text = str(exc)
    line, column = query_error_location(text)
    reason = re.sub(r"^error at \d+:\d+: ", "", text)
    if len(reason) > 160:
        reason = reason[:157].rsplit(",", 1)[0] + ", …"
    return QuerySyntaxError(reason, line=line, column=column)


def query_error_location(message: str) -> tuple[int | None, int | None]:
    """Line and column from a pyoxigraph query syntax error message.

    >>> query_error_location("error at 2:9: expected one of LATERAL, SERVICE")
    (2, 9)
    """
    match = _QUERY_LOCATION.search(message)
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)
