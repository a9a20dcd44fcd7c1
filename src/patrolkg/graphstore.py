"""The SPARQL 1.1 Graph Store HTTP Protocol as plain functions over a store and a writer
(https://www.w3.org/TR/sparql11-http-rdf-update/).

A graph is named by its IRI, or by None for the store's default graph. Every write
builds a :class:`patrolkg.writes.Change` and goes through :meth:`Writer.write`, so it
is validated and committed atomically or not at all. Blank nodes are stored as skolem
IRIs (:data:`patrolkg.writes.SKOLEM_PREFIX`) and read back as blank nodes, so a graph
read after a PUT is isomorphic to the graph that was put.

>>> from patrolkg.store import open_store
>>> from patrolkg.writes import Writer
>>> writer = Writer(open_store(None))
>>> triples = parse_graph(b'<http://e/a> <http://e/p> [ <http://e/q> "x" ] .', "text/turtle", source="example")
>>> put(writer, "http://e/g", triples)
True
>>> sorted(type(t.object).__name__ for t in get(writer.store, "http://e/g"))
['BlankNode', 'Literal']
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

import pyoxigraph as ox

from .errors import ForbiddenOperation, InputError, NotFound
from .rdfio import parse_rdf
from .store import Store
from .writes import SKOLEM_PREFIX, Change, GraphName, WriteOutcome, Writer, canonical, is_protected_graph, skolemize

__all__ = ["parse_graph", "new_graph_iri", "get", "put", "post", "delete"]


def parse_graph(data: bytes, media_type: str, *, source: str, base_iri: str | None = None) -> list[ox.Triple]:
    """Parse a request body that carries one graph; blank nodes become skolem IRIs.

    :raises patrolkg.errors.RdfSyntaxError: malformed RDF, with line and column.
    :raises patrolkg.errors.UnsupportedFormat: an unknown media type.
    :raises patrolkg.errors.UnsafeInput: JSON-LD remote contexts, RDF/XML DOCTYPEs.
    :raises InputError: no triples, or triples in named graphs (TriG, N-Quads).
    """
    quads = parse_rdf(data, media_type, source=source, base_iri=base_iri)
    if not quads:
        raise InputError(f"{source} holds no triples", hint="send at least one triple; to empty a graph, DELETE it")
    if any(not isinstance(q.graph_name, ox.DefaultGraph) for q in quads):
        raise InputError(f"{source} names graphs; the Graph Store Protocol writes one graph per request", hint="send the triples without GRAPH blocks")
    return skolemize(q.triple for q in quads)


def new_graph_iri(base_iri: str) -> str:
    """A fresh IRI for a graph created by POST to the graph store.

    >>> new_graph_iri("https://example.org/").startswith("https://example.org/user-graph/")
    True
    """
    return f"{base_iri}user-graph/{uuid.uuid4()}"


def get(store: Store, graph: GraphName) -> list[ox.Triple]:
    """The triples of ``graph``, with skolem IRIs turned back into blank nodes.

    :raises NotFound: if the graph holds no triples.
    """
    triples = [q.triple for q in store.quads_in(graph)]
    if not triples:
        raise NotFound(f"{_shown(graph)} holds no triples", hint="PUT or POST triples to create it")

    def unskolemized(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> ox.NamedNode | ox.BlankNode | ox.Literal:
        if isinstance(term, ox.NamedNode) and term.value.startswith(SKOLEM_PREFIX):
            # A label derived from the IRI, not a random one: the same graph serializes
            # to the same bytes each time, so HEAD's Content-Length is GET's.
            return ox.BlankNode("b" + hashlib.sha256(term.value.encode()).hexdigest()[:32])  # "b": an XML name for RDF/XML
        return term

    return [ox.Triple(unskolemized(t.subject), t.predicate, unskolemized(t.object)) for t in triples]


def put(writer: Writer, graph: GraphName, triples: Iterable[ox.Triple]) -> bool:
    """Replace the content of ``graph`` by ``triples``; True if the graph was empty.

    Only the difference is written: what the graph holds and ``triples`` lack is
    removed, what ``triples`` add is added.

    :raises ForbiddenOperation: for one of patrolkg's own graphs.
    :raises patrolkg.errors.ValidationFailed: if the result would not conform;
        nothing is written.
    """
    _refuse_protected(graph)
    new = {canonical(t) for t in triples}
    was_empty = True

    def difference() -> Change:  # computed under the writer's lock
        nonlocal was_empty
        current = {q.triple for q in writer.store.quads_in(graph)}
        was_empty = not current
        return Change().removing(graph, current - new).adding(graph, new - current)

    writer.write(difference)
    return was_empty


def post(writer: Writer, graph: GraphName, triples: Iterable[ox.Triple]) -> bool:
    """Merge ``triples`` into ``graph``; True if the graph was empty.

    :raises ForbiddenOperation: for one of patrolkg's own graphs.
    :raises patrolkg.errors.ValidationFailed: if the result would not conform;
        nothing is written.
    """
    _refuse_protected(graph)
    triples = list(triples)
    created = True

    def addition() -> Change:  # computed under the writer's lock
        nonlocal created
        created = next(iter(writer.store.quads_in(graph)), None) is None
        return Change().adding(graph, triples)

    writer.write(addition)
    return created


def delete(writer: Writer, graph: GraphName) -> WriteOutcome:
    """Remove every triple of ``graph``.

    :raises ForbiddenOperation: for one of patrolkg's own graphs.
    :raises NotFound: if the graph holds no triples.
    :raises patrolkg.errors.ValidationFailed: if other data would no longer conform
        without it; nothing is written.
    """
    _refuse_protected(graph)

    def removal() -> Change:  # computed under the writer's lock
        triples = [q.triple for q in writer.store.quads_in(graph)]
        if not triples:
            raise NotFound(f"{_shown(graph)} holds no triples", hint="nothing to delete")
        return Change().removing(graph, triples)

    return writer.write(removal)


def _refuse_protected(graph: GraphName) -> None:
    # The writer refuses these too, but only for a change that is not empty: a PUT of
    # a protected graph's own content, or a DELETE of an empty one, must fail the same.
    if is_protected_graph(graph):
        raise ForbiddenOperation(
            f"the graph <{graph}> belongs to patrolkg and cannot be written directly",
            hint="submit facts through /submissions, or write to a graph outside https://w3id.org/patrolkg/graph/",
        )


def _shown(graph: GraphName) -> str:
    return "the default graph" if graph is None else f"the graph <{graph}>"
