"""The remote store: any SPARQL 1.1 engine (Apache Jena Fuseki, GraphDB, Virtuoso, QLever,
Amazon Neptune, the Oxigraph server) behind the :class:`patrolkg.store.Store` interface.

patrolkg speaks SPARQL 1.1 Query, Update and the Graph Store Protocol to the engine and
keeps the embedded store's guarantees this way:

- **The union default graph.** With ``union="explicit"`` (the default, right on every
  engine) each query that names no dataset is sent with every named graph as a
  ``default-graph-uri`` and a ``named-graph-uri``: one more small query per query.
  With ``union="engine"`` the engine's own union default graph is trusted (Fuseki's
  ``tdb2:unionDefaultGraph``, GraphDB, Virtuoso, QLever, Neptune, ``oxigraph serve
  --union-default-graph``); start-up checks that it is on.
- **The default graph** of patrolkg (the Graph Store Protocol's ``?default``, updates
  without GRAPH) is kept in the engine's named graph ``<…/graph/default>``, because a
  union default graph hides an engine's own default graph.
- **Writes** are one SPARQL Update request each, atomic on the engine. Servers sharing
  the engine take turns through a lease (:mod:`patrolkg.store.lease`), and each commit
  checks the version marker it validated against inside its update and leaves a
  receipt that says whether it applied. Both live in ``<…/graph/system>``, which
  patrolkg hides from the graphs it lists.
- **Results stream**: rows are parsed as they arrive (:mod:`patrolkg.store.sparql_client`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager

import pyoxigraph as ox

from ..errors import ConfigError, InputError, StoreError, StoreUnavailable
from ..namespaces import GRAPH
from .base import QueryResult, query_has_dataset
from .lease import EngineLease
from .sparql_client import Credentials, Endpoints, SparqlClient, shown_url

__all__ = ["RemoteStore", "UNION_MODES", "SYSTEM_GRAPH", "DEFAULT_GRAPH"]

#: How the union default graph is obtained (see the module docstring).
UNION_MODES = ("explicit", "engine")
#: patrolkg's bookkeeping on the engine: the version marker, commit receipts, the lease.
SYSTEM_GRAPH = str(GRAPH["system"])
#: Where patrolkg's default graph lives on the engine.
DEFAULT_GRAPH = str(GRAPH["default"])
# A graph nothing writes: the dataset of a query whose default graph must be empty.
_EMPTY_GRAPH = str(GRAPH["none"])
_HIDDEN = frozenset({SYSTEM_GRAPH, DEFAULT_GRAPH})

_SYS = f"<{SYSTEM_GRAPH}>"
_VERSION = f"<{SYSTEM_GRAPH}#version>"
_COMMITTED = f"<{SYSTEM_GRAPH}#committed>"
_BATCH = 200  # IRIs per VALUES block
_RECEIPT_TRIES = 10  # after a lost connection, how often to ask whether a commit applied


def _iri(value: str) -> str:
    """An IRI written for SPARQL; a ValueError for one that cannot be written."""
    return str(ox.NamedNode(value))


class RemoteStore:
    """A :class:`patrolkg.store.Store` on a SPARQL 1.1 engine.

    :param query_url: the engine's query endpoint.
    :param update_url: its update endpoint (see :meth:`Endpoints.from_urls` for the default).
    :param gsp_url: its Graph Store Protocol endpoint, used to read whole graphs.
    :param union: ``"explicit"`` or ``"engine"`` (see the module docstring).
    :param timeout: patrolkg's query timeout: a query whose answer stalls that long is
        abandoned with QueryTimeout.
    :raises ConfigError: for an unknown union mode.
    """

    def __init__(
        self,
        query_url: str,
        *,
        update_url: str | None = None,
        gsp_url: str | None = None,
        union: str = "explicit",
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        lease_seconds: float = 30.0,
        lease_wait: float = 60.0,
    ) -> None:
        if union not in UNION_MODES:
            raise ConfigError(f"unknown union mode {union!r}", hint="use explicit or engine")
        self.endpoints = Endpoints.from_urls(query_url, update_url, gsp_url)
        self.union = union
        self._client = SparqlClient(self.endpoints, credentials=credentials, timeout=timeout)
        self._lease = EngineLease(self._client, SYSTEM_GRAPH, seconds=lease_seconds, wait=lease_wait)

    def __repr__(self) -> str:
        return f"RemoteStore({shown_url(self.endpoints.query)!r})"

    @property
    def location(self) -> str:
        """Where the data is, for people (no credentials)."""
        return shown_url(self.endpoints.query)

    # -- reading ---------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base_iri: str | None = None,
    ) -> QueryResult:
        if default_graphs is None and named_graphs is None:
            if self.union == "engine" or query_has_dataset(sparql):
                return self._client.query(sparql, base_iri=base_iri)
            named = self._visible_graphs()
            return self._client.query(sparql, default_graphs=[*named, DEFAULT_GRAPH], named_graphs=named, base_iri=base_iri)
        # As in the embedded store: the protocol's graphs replace the query's dataset,
        # and without named graphs every named graph can still be reached by GRAPH.
        named = list(named_graphs) if named_graphs is not None else self._visible_graphs()
        return self._client.query(sparql, default_graphs=list(default_graphs or ()) or [_EMPTY_GRAPH], named_graphs=named, base_iri=base_iri)

    def graph_names(self) -> list[str]:
        return sorted(g for g in self._engine_graphs(non_empty=True) if g not in _HIDDEN)

    def triple_count(self, graph: str | None = None) -> int:
        if graph is None:
            query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != {_SYS}) }}"
        else:
            query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {_iri(graph)} {{ ?s ?p ?o }} }}"
        return int(self._one(query)["n"].value)

    def quads(self, graph: str | None = None) -> Iterator[ox.Quad]:
        if graph is not None:
            return self._graph_quads(graph, ox.NamedNode(graph))
        rows = self._client.query(f"SELECT ?g ?s ?p ?o WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != {_SYS}) }}")
        return (quad for row in rows if (quad := _quad(row)) is not None)  # type: ignore[union-attr]

    def quads_in(self, graph: str | None) -> Iterator[ox.Quad]:
        if graph is None:
            return self._graph_quads(DEFAULT_GRAPH, ox.DefaultGraph())
        return self._graph_quads(graph, ox.NamedNode(graph))

    def quads_with_subjects(self, nodes: Iterable[str]) -> list[ox.Quad]:
        return self._quads_with("s", nodes)

    def quads_with_objects(self, nodes: Iterable[str]) -> list[ox.Quad]:
        return self._quads_with("o", nodes)

    def version(self) -> str | None:
        rows = [row["v"].value for row in self._client.query(f"SELECT ?v WHERE {{ GRAPH {_SYS} {{ {_SYS} {_VERSION} ?v }} }}")]  # type: ignore[union-attr,index]
        return min(rows) if rows else None

    # -- writing ---------------------------------------------------------------------

    def write_lease(self) -> AbstractContextManager[None]:
        return self._lease.hold()

    def replace_graphs(self, graphs: Mapping[str, Iterable[ox.Triple]], drop: Iterable[str] = ()) -> None:
        names = {name: _iri(name) for name in {*drop, *graphs}}  # fail before anything is sent

        def parts() -> Iterator[str]:
            for name in names.values():
                # DELETE WHERE rather than DROP: every engine has it (QLever lacks DROP).
                yield f"DELETE WHERE {{ GRAPH {name} {{ ?s ?p ?o }} }} ;\n"
            for name, triples in graphs.items():
                yield f"INSERT DATA {{ GRAPH {names[name]} {{\n"
                yield from (_line(t) for t in triples)
                yield "} } ;\n"
            yield _version_bump(uuid.uuid4().hex)

        with self._lease.hold():
            self._client.update(parts())

    def apply(
        self,
        remove: Mapping[str | None, Iterable[ox.Triple]],
        add: Mapping[str | None, Iterable[ox.Triple]],
        *,
        expect_version: str | None = None,
        new_version: str | None = None,
    ) -> bool:
        conditional = new_version is not None
        if conditional and self._lease.lost:
            return False  # another server may hold the lease now: validate again
        token = new_version or uuid.uuid4().hex
        graphs = {graph: _engine_graph(graph) for graph in {*remove, *add}}
        marker = f"GRAPH {_SYS} {{ {_SYS} {_VERSION} ?v }}"
        if not conditional:
            condition = f"OPTIONAL {{ {marker} }}"
        elif expect_version is None:
            condition = f"FILTER NOT EXISTS {{ GRAPH {_SYS} {{ {_SYS} {_VERSION} ?any }} }}"
        else:
            condition = f"{marker} FILTER(STR(?v) = {ox.Literal(expect_version)})"

        def parts() -> Iterator[str]:
            yield f"DELETE {{\n{marker}\n"
            for graph, triples in remove.items():
                yield f"GRAPH {graphs[graph]} {{\n"
                yield from (_line(t) for t in triples)
                yield "}\n"
            yield f"}}\nINSERT {{\nGRAPH {_SYS} {{ {_SYS} {_VERSION} {ox.Literal(token)} . {_SYS} {_COMMITTED} {ox.Literal(token)} }}\n"
            for graph, triples in add.items():
                yield f"GRAPH {graphs[graph]} {{\n"
                yield from (_line(t) for t in triples)
                yield "}\n"
            yield f"}}\nWHERE {{ {condition} }}"

        try:
            self._client.update(parts())
        except StoreUnavailable:
            # The connection was lost: the update may have been applied. The receipt says.
            return self._receipt(token)
        if conditional:
            return self._receipt(token)
        self._drop_receipt(token)
        return True

    def _receipt(self, token: str) -> bool:
        """Whether the commit ``token`` applied (its receipt is then removed); asked
        again for a few seconds if the engine does not answer."""
        for attempt in range(_RECEIPT_TRIES):
            try:
                applied = bool(self._client.query(f"ASK {{ {_receipt(token)} }}"))
            except StoreUnavailable:
                time.sleep(0.5 * (attempt + 1))
                continue
            if applied:
                self._drop_receipt(token)
            return applied
        raise StoreUnavailable(
            "the SPARQL engine stopped answering while a write was committed; it may or may not have been applied",
            hint="when the engine is back, check whether the write is there before sending it again",
        )

    def _drop_receipt(self, token: str) -> None:
        try:
            self._client.update([f"DELETE DATA {{ {_receipt(token)} }}"])
        except StoreError:
            pass  # a stray receipt is harmless

    # -- operations --------------------------------------------------------------------

    def check(self) -> None:
        """Reach the engine and, in ``engine`` union mode, make sure its default graph is
        the union of its named graphs (on an empty store nothing can be told).

        :raises StoreUnavailable: when the engine does not answer.
        :raises ConfigError: when the engine's union default graph is off.
        """
        self.version()
        if self.union != "engine":
            return
        rows = list(self._client.query("SELECT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o FILTER(!isBlank(?s) && !isBlank(?o)) } } LIMIT 1"))  # type: ignore[arg-type]
        if rows:
            s, p, o = (rows[0][name] for name in ("s", "p", "o"))
            if not bool(self._client.query(f"ASK {{ {s} {p} {o} }}")):
                raise ConfigError(
                    f"PATROLKG_STORE_UNION=engine, but the default graph of the engine at {self.location} is not the union of its named graphs",
                    hint="turn the engine's union default graph on (see docs/deployment.md), or set PATROLKG_STORE_UNION=explicit",
                )

    def limitations(self) -> list[str]:
        """What this store does differently from the embedded one, for people."""
        union = (
            "the union default graph is the engine's own (PATROLKG_STORE_UNION=engine): GRAPH ?g also reaches patrolkg's "
            f"bookkeeping graphs <{DEFAULT_GRAPH}> and <{SYSTEM_GRAPH}>"
            if self.union == "engine"
            else "the union default graph is sent with each query as the list of named graphs (PATROLKG_STORE_UNION=explicit)"
        )
        return [
            f"the store is the SPARQL engine at {self.location}; queries that time out are abandoned by patrolkg, "
            "but only the engine's own timeout stops them there",
            union,
            f"the default graph is kept in the engine's named graph <{DEFAULT_GRAPH}>",
            "allow-listed SERVICE calls are made by the engine, from its network; FROM and default-graph-uri name only "
            "graphs the engine holds on engines that never fetch them (Oxigraph, Fuseki, GraphDB, QLever)",
            "each write is one SPARQL Update request, as atomic as the engine makes it; patrolkg servers sharing the "
            f"engine take turns through a lease in <{SYSTEM_GRAPH}>",
        ]

    def close(self) -> None:
        self._client.close()

    # -- helpers -----------------------------------------------------------------------

    def _one(self, query: str) -> ox.QuerySolution:
        return next(iter(self._client.query(query)))  # type: ignore[call-overload]

    def _engine_graphs(self, *, non_empty: bool = False) -> list[str]:
        exists = " FILTER EXISTS { GRAPH ?g { ?s ?p ?o } }" if non_empty else ""
        try:
            rows = self._client.query(f"SELECT ?g WHERE {{ GRAPH ?g {{ }}{exists} }}")
        except StoreUnavailable:
            raise
        except (InputError, StoreError):  # an engine that cannot list graphs with an empty pattern
            rows = self._client.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return [row["g"].value for row in rows if isinstance(row["g"], ox.NamedNode)]  # type: ignore[union-attr,index]

    def _visible_graphs(self) -> list[str]:
        return [g for g in self._engine_graphs() if g not in _HIDDEN]

    def _graph_quads(self, engine_graph: str, name: ox.NamedNode | ox.DefaultGraph) -> Iterator[ox.Quad]:
        triples = self._client.graph(engine_graph)
        if triples is None:
            triples = iter(self._client.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {_iri(engine_graph)} {{ ?s ?p ?o }} }}"))  # type: ignore[arg-type]
        return (ox.Quad(t.subject, t.predicate, t.object, name) for t in triples)

    def _quads_with(self, position: str, nodes: Iterable[str]) -> list[ox.Quad]:
        iris = sorted(set(nodes))
        found: list[ox.Quad] = []
        for start in range(0, len(iris), _BATCH):
            values = " ".join(_iri(iri) for iri in iris[start : start + _BATCH])
            rows = self._client.query(f"SELECT ?g ?s ?p ?o WHERE {{ VALUES ?{position} {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }}")
            found += [quad for row in rows if (quad := _quad(row)) is not None]  # type: ignore[union-attr]
        return found


def _engine_graph(graph: str | None) -> str:
    return _iri(DEFAULT_GRAPH if graph is None else graph)


def _quad(row: ox.QuerySolution) -> ox.Quad | None:
    """A result row ?g ?s ?p ?o as a quad of patrolkg's dataset (None for bookkeeping)."""
    graph = row["g"].value
    if graph == SYSTEM_GRAPH:
        return None
    name = ox.DefaultGraph() if graph == DEFAULT_GRAPH else row["g"]
    return ox.Quad(row["s"], row["p"], row["o"], name)


def _receipt(token: str) -> str:
    return f"GRAPH {_SYS} {{ {_SYS} {_COMMITTED} {ox.Literal(token)} }}"


def _line(triple: ox.Triple) -> str:
    return f"{triple.subject} {triple.predicate} {triple.object} .\n"


def _version_bump(token: str) -> str:
    marker = f"GRAPH {_SYS} {{ {_SYS} {_VERSION} ?v }}"
    return f"DELETE {{ {marker} }} INSERT {{ GRAPH {_SYS} {{ {_SYS} {_VERSION} {ox.Literal(token)} }} }} WHERE {{ OPTIONAL {{ {marker} }} }}"
