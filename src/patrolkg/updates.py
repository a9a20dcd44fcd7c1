"""SPARQL 1.1 Update through the write path: run the update on a staging copy, take the
difference it makes to each graph it writes, and hand that to the :class:`Writer`.

Rules (documented in the README):

- ``LOAD`` is refused: patrolkg never fetches anything; SERVICE reaches only the
  allow-listed endpoints, as in queries.
- An update that would change one of patrolkg's own graphs
  (``https://w3id.org/patrolkg/graph/…``) is refused; ``CLEAR``/``DROP`` ``ALL`` and
  ``NAMED`` mean every *user* graph (and, for ALL, the default graph).
- As the SPARQL spec says, the WHERE clause reads the store's default graph unless
  ``USING``/``WITH`` or the protocol's ``using-graph-uri``/``using-named-graph-uri``
  name graphs; use ``GRAPH`` to read named graphs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pyoxigraph as ox

from .errors import ForbiddenOperation, InputError
from .execution import service_failed
from .sparql_guard import MAX_NESTING, check_services, scan_sparql
from .sparql_lexer import PNAME, WORD, Token, name_part, tokenize
from .store import Store
from .store.base import syntax_error
from .writes import Change, WriteOutcome, Writer, is_protected_graph, skolemize

__all__ = ["apply_update", "stage_update", "with_using_clauses"]

def with_using_clauses(update: str, using: Sequence[str], using_named: Sequence[str]) -> str:
    """Apply the protocol's ``using-graph-uri``/``using-named-graph-uri`` to every
    DELETE/INSERT ... WHERE operation.

    >>> with_using_clauses("INSERT { ?s ?p 1 } WHERE { ?s ?p ?o }", ["http://e/g"], [])
    'INSERT { ?s ?p 1 } USING <http://e/g> WHERE { ?s ?p ?o }'

    :raises InputError: if the update has its own USING or WITH (the protocol forbids both).
    :raises patrolkg.errors.QuerySyntaxError: for text that is no SPARQL, with line and column.
    """
    if not using and not using_named:
        return update
    clause = "".join(f"USING <{g}> " for g in using) + "".join(f"USING NAMED <{g}> " for g in using_named)
    inserts = []
    previous: Token | None = None
    for token in tokenize(update, max_depth=MAX_NESTING):
        if token.depth == 0 and token.kind in (WORD, PNAME) and name_part(token).upper().startswith(("USING", "WITH")):
            raise InputError(
                "the update has USING or WITH clauses and the request has using-graph-uri/using-named-graph-uri; use one or the other",
            )
        if token.depth == 0 and token.kind == WORD and token.text.upper() == "WHERE" and previous is not None and previous.text == "}":
            inserts.append(token.start)
        previous = token
    for position in reversed(inserts):
        update = update[:position] + clause + update[position:]
    return update


_ALL_OR_NAMED = re.compile(r"(CLEAR|DROP)(SILENT)?(ALL|NAMED)")


def _user_graphs_only(update: str, store: Store) -> str:
    """Rewrite CLEAR/DROP ALL and NAMED into the same operation on each user graph, so
    that patrolkg's own graphs are neither changed nor seen empty by later operations."""
    if not re.search("clear|drop", update, re.IGNORECASE):
        return update  # no token pass for the common case (a long INSERT DATA)
    words = [(index, token) for index, token in enumerate(tokenize(update, max_depth=MAX_NESTING)) if token.depth == 0 and token.kind == WORD]
    spans = []
    for at, (index, first) in enumerate(words):
        run = [first]  # the engine reads CLEAR SILENT ALL run together too (CLEARALL)
        for next_index, token in words[at + 1 : at + 3]:
            if next_index != index + len(run):
                break
            run.append(token)
        for length in range(len(run), 0, -1):
            match = _ALL_OR_NAMED.fullmatch("".join(t.text.upper() for t in run[:length]))
            if match:
                spans.append((first.start, run[length - 1].end, match))
                break
    user_graphs = [g for g in store.graph_names() if not is_protected_graph(g)]
    for start, end, match in reversed(spans):
        verb, silent, scope = match.group(1), "SILENT " if match.group(2) else "", match.group(3)
        operations = [f"{verb} {silent}GRAPH <{g}>" for g in user_graphs]
        if scope == "ALL":
            operations.append(f"{verb} {silent}DEFAULT")
        replacement = " ;\n".join(operations) or "INSERT DATA { }"
        update = update[:start] + replacement + update[end:]
    return update


def stage_update(store: Store, update: str, *, base_iri: str | None = None, service_allowlist: Sequence[str] = ()) -> Change:
    """The change ``update`` would make, computed on a staging copy of the store.

    Staging copies the store, so an update costs time in proportion to the store's size.
    Before anything runs the update is read as :func:`patrolkg.execution.check_query`
    reads a query: its SERVICE calls must name endpoints on ``service_allowlist``.

    :raises patrolkg.errors.QuerySyntaxError: for a malformed update, with line and column.
    :raises patrolkg.errors.TooComplex: for an update nested too deep or too long to parse safely.
    :raises ForbiddenOperation: for LOAD, a SERVICE call off the allow-list, or an
        update that would change one of patrolkg's own graphs.
    :raises InputError: for an operation the SPARQL spec makes an error (DROP of an
        absent graph, CREATE of an existing one, without SILENT).
    :raises patrolkg.errors.ServiceFailed: when an allow-listed SERVICE endpoint fails.
    """
    scan = scan_sparql(update, what="update")
    if scan.loads:
        raise ForbiddenOperation("LOAD is refused: patrolkg never fetches data from elsewhere", hint="send the data itself with INSERT DATA, a submission or the Graph Store Protocol")
    endpoints = check_services(scan, service_allowlist)
    update = _user_graphs_only(update, store)
    staging = ox.Store()
    staging.extend(store.quads())
    try:
        staging.update(update, base_iri=base_iri)
    except SyntaxError as exc:
        raise syntax_error(exc) from None
    except RuntimeError as exc:  # pyoxigraph's evaluation errors: "The graph <…> does not exist"
        raise InputError(f"the update failed: {exc}", hint="add SILENT (DROP SILENT GRAPH, CREATE SILENT GRAPH) to ignore an absent or existing graph") from None
    except OSError as exc:
        if endpoints:
            raise service_failed(endpoints, exc) from None
        raise InputError(f"the update failed: {exc}") from None

    names = {g.value for g in staging.named_graphs() if isinstance(g, ox.NamedNode)} | set(store.graph_names())
    change = Change()
    blank_nodes: dict[str, ox.NamedNode] = {}
    for graph in sorted(names, key=str) + [None]:
        target: ox.NamedNode | ox.DefaultGraph = ox.NamedNode(graph) if graph is not None else ox.DefaultGraph()
        before = {q.triple for q in store.quads_in(graph)}
        after = {q.triple for q in staging.quads_for_pattern(None, None, None, target)}
        if before == after:
            continue
        if is_protected_graph(graph):
            raise ForbiddenOperation(
                f"the update would change <{graph}>, one of patrolkg's own graphs",
                hint="submit facts through /submissions, or write to a graph outside https://w3id.org/patrolkg/graph/",
            )
        change.removing(graph, before - after)
        change.adding(graph, skolemize(after - before, blank_nodes))
    return change


def apply_update(
    store: Store,
    writer: Writer,
    update: str,
    *,
    using: Sequence[str] = (),
    using_named: Sequence[str] = (),
    base_iri: str | None = None,
    service_allowlist: Sequence[str] = (),
    dry_run: bool = False,
    stage: Callable[..., Change] | None = None,
) -> WriteOutcome:
    """Run a SPARQL Update through validation; commit it atomically or not at all.

    :param stage: runs :func:`stage_update` on the store (the server's executor stages
        it in a worker process stopped at the timeout); here, by default.
    :raises patrolkg.errors.ValidationFailed: the result would not conform.
    :raises patrolkg.errors.QueryTimeout: ``stage`` stopped the update at the timeout.
    :raises ForbiddenOperation: see :func:`stage_update`.
    """
    update = with_using_clauses(update, using, using_named)
    staged = stage or (lambda text, **options: stage_update(store, text, **options))
    # Staged under the writer's lock: nothing can change the store in between.
    return writer.write(lambda: staged(update, base_iri=base_iri, service_allowlist=tuple(service_allowlist)), dry_run=dry_run)
