"""SPARQL 1.1 Update through the write path: run the update on a staging copy, take the
difference it makes to each graph it writes, and hand that to the :class:`Writer`.

Rules (documented in the README):

- ``LOAD`` is refused: patrolkg never fetches anything.
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
from .store import Store
from .store.base import syntax_error
from .writes import Change, WriteOutcome, Writer, is_protected_graph, skolemize

__all__ = ["apply_update", "stage_update", "with_using_clauses"]

_STRING_COMMENT_IRI = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|<[^<>\s]*>|#[^\n]*", re.DOTALL
)


def _mask(text: str) -> str:
    """The update with strings, comments and IRIs replaced by spaces, same length."""
    return _STRING_COMMENT_IRI.sub(lambda m: " " * len(m.group(0)), text)


def with_using_clauses(update: str, using: Sequence[str], using_named: Sequence[str]) -> str:
    """Apply the protocol's ``using-graph-uri``/``using-named-graph-uri`` to every
    DELETE/INSERT ... WHERE operation.

    >>> with_using_clauses("INSERT { ?s ?p 1 } WHERE { ?s ?p ?o }", ["http://e/g"], [])
    'INSERT { ?s ?p 1 } USING <http://e/g> WHERE { ?s ?p ?o }'

    :raises InputError: if the update has its own USING or WITH (the protocol forbids both).
    """
    if not using and not using_named:
        return update
    masked = _mask(update)
    if re.search(r"(?<![\w:$?])(USING|WITH)\b", masked, re.IGNORECASE):
        raise InputError(
            "the update has USING or WITH clauses and the request has using-graph-uri/using-named-graph-uri; use one or the other",
        )
    clause = "".join(f"USING <{g}> " for g in using) + "".join(f"USING NAMED <{g}> " for g in using_named)
    depth, inserts = 0, []
    for match in re.finditer(r"[{}]|(?<![\w:$?])WHERE\b", masked, re.IGNORECASE):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0 and masked[: match.start()].rstrip().endswith("}"):
            inserts.append(match.start())
    for position in reversed(inserts):
        update = update[:position] + clause + update[position:]
    return update


_ALL_OR_NAMED = re.compile(r"(?<![\w:$?])(CLEAR|DROP)\s+(SILENT\s+)?(ALL|NAMED)\b", re.IGNORECASE)
_LOAD = re.compile(r"(?<![\w:$?])LOAD\b", re.IGNORECASE)


def _user_graphs_only(update: str, store: Store) -> str:
    """Rewrite CLEAR/DROP ALL and NAMED into the same operation on each user graph, so
    that patrolkg's own graphs are neither changed nor seen empty by later operations."""
    masked = _mask(update)
    user_graphs = [g for g in store.graph_names() if not is_protected_graph(g)]
    for match in reversed(list(_ALL_OR_NAMED.finditer(masked))):
        verb, silent, scope = match.group(1).upper(), "SILENT " if match.group(2) else "", match.group(3).upper()
        operations = [f"{verb} {silent}GRAPH <{g}>" for g in user_graphs]
        if scope == "ALL":
            operations.append(f"{verb} {silent}DEFAULT")
        replacement = " ;\n".join(operations) or "INSERT DATA { }"
        update = update[: match.start()] + replacement + update[match.end() :]
    return update


def stage_update(store: Store, update: str, *, base_iri: str | None = None) -> Change:
    """The change ``update`` would make, computed on a staging copy of the store.

    Staging copies the store, so an update costs time in proportion to the store's size.

    :raises patrolkg.errors.QuerySyntaxError: for a malformed update, with line and column.
    :raises ForbiddenOperation: for LOAD, or an update that would change one of
        patrolkg's own graphs.
    """
    if _LOAD.search(_mask(update)):
        raise ForbiddenOperation("LOAD is refused: patrolkg never fetches data from elsewhere", hint="send the data itself with INSERT DATA, a submission or the Graph Store Protocol")
    update = _user_graphs_only(update, store)
    staging = ox.Store()
    staging.extend(store.quads())
    try:
        staging.update(update, base_iri=base_iri)
    except SyntaxError as exc:
        raise syntax_error(exc) from None
    except OSError as exc:  # e.g. CREATE of an existing graph without SILENT
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
    dry_run: bool = False,
    stage: Callable[..., Change] | None = None,
) -> WriteOutcome:
    """Run a SPARQL Update through validation; commit it atomically or not at all.

    :param stage: runs :func:`stage_update` on the store (the server's executor stages
        it in a worker process stopped at the timeout); here, by default.
    :raises patrolkg.errors.ValidationFailed: the result would not conform.
    :raises patrolkg.errors.QueryTimeout: ``stage`` stopped the update at the timeout.
    """
    update = with_using_clauses(update, using, using_named)
    staged = stage or (lambda text, **options: stage_update(store, text, **options))
    # Staged under the writer's lock: nothing can change the store in between.
    return writer.write(lambda: staged(update, base_iri=base_iri), dry_run=dry_run)
