"""SPARQL 1.1 Update through the write path: run the update on a staging copy, take the
difference it makes to each graph it writes, and hand that to the :class:`Writer`.

Rules (documented in the README):

- ``LOAD`` is refused: patrolkg never fetches anything.
- An operation that names one of patrolkg's own graphs (``https://w3id.org/patrolkg/graph/…``)
  as its target is refused; ``CLEAR``/``DROP`` ``ALL`` and ``NAMED``, and templates whose
  graph is a variable, apply to user graphs only.
- As the SPARQL spec says, the WHERE clause reads the store's default graph unless
  ``USING``/``WITH`` or the protocol's ``using-graph-uri``/``using-named-graph-uri``
  name graphs; use ``GRAPH`` to read named graphs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyoxigraph as ox
import rdflib
from rdflib.plugins.sparql.algebra import translateUpdate
from rdflib.plugins.sparql.parser import parseUpdate

from .errors import ForbiddenOperation, InputError
from .store import Store
from .store.base import syntax_error
from .writes import Change, GraphName, WriteOutcome, Writer, is_protected_graph, skolemize

__all__ = ["apply_update", "stage_update", "with_using_clauses"]

_STRING_COMMENT_IRI = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|<[^<>\s]*>|#[^\n]*", re.DOTALL
)
_ALL = object()  # "every user graph"


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


def _targets(update: str, base_iri: str | None) -> set[object]:
    """The graphs the update may write: IRIs, None (default graph) or _ALL."""
    try:
        operations = translateUpdate(parseUpdate(update), base=base_iri).algebra
    except Exception:  # rdflib cannot read it; pyoxigraph has judged it valid: diff all
        return {_ALL}
    targets: set[object] = set()

    def graph(term: object) -> object:
        if term in ("ALL", "NAMED") or isinstance(term, rdflib.Variable):
            return _ALL
        if term == "DEFAULT" or term is None:
            return None
        return str(term)

    for op in operations:
        name = op.name
        if name == "Load":
            raise ForbiddenOperation("LOAD is refused: patrolkg never fetches data from elsewhere", hint="send the data itself with INSERT DATA, a submission or the Graph Store Protocol")
        if name in ("InsertData", "DeleteData", "DeleteWhere"):
            if op.get("triples"):
                targets.add(None)
            targets.update(graph(g) for g in (op.get("quads") or {}))
        elif name == "Modify":
            default_target = graph(op.get("withClause")) if op.get("withClause") else None
            for key in ("delete", "insert"):
                template = op[key] if key in op else None
                if template is None or isinstance(template, str):
                    continue
                if template.get("triples"):
                    targets.add(default_target)
                targets.update(graph(g) for g in (template.get("quads") or {}))
        elif name in ("Clear", "Drop", "Create"):
            targets.add(graph(op.get("graphiri")))
        elif name in ("Add", "Copy", "Move"):
            source, destination = op.get("graph")
            targets.add(graph(destination))
            if name == "Move":
                targets.add(graph(source))
        else:
            targets.add(_ALL)
    return targets


def stage_update(store: Store, update: str, *, base_iri: str | None = None) -> Change:
    """The change ``update`` would make, computed on a staging copy of the store.

    :raises QuerySyntaxError: for a malformed update, with line and column.
    :raises ForbiddenOperation: for LOAD or a write to one of patrolkg's graphs.
    """
    if re.search(r"(?<![\w:$?])LOAD\b", _mask(update), re.IGNORECASE):
        raise ForbiddenOperation("LOAD is refused: patrolkg never fetches data from elsewhere", hint="send the data itself with INSERT DATA, a submission or the Graph Store Protocol")
    staging = ox.Store()
    staging.extend(store.quads())
    try:
        staging.update(update, base_iri=base_iri)
    except SyntaxError as exc:
        raise syntax_error(exc) from None
    except OSError as exc:  # e.g. CREATE of an existing graph without SILENT
        raise InputError(f"the update failed: {exc}") from None

    targets = _targets(update, base_iri)
    explicit = {t for t in targets if isinstance(t, str)}
    for graph in explicit:
        if is_protected_graph(graph):
            raise ForbiddenOperation(
                f"the update writes <{graph}>, one of patrolkg's own graphs",
                hint="submit facts through /submissions, or write to a graph outside https://w3id.org/patrolkg/graph/",
            )
    graphs: set[GraphName] = {t for t in targets if t is None or isinstance(t, str)}
    if _ALL in targets:
        names = {g.value for g in staging.named_graphs() if isinstance(g, ox.NamedNode)} | set(store.graph_names())
        graphs |= {g for g in names if not is_protected_graph(g)} | {None}

    change = Change()
    blank_nodes: dict[str, ox.NamedNode] = {}
    for graph in graphs:
        name: ox.NamedNode | ox.DefaultGraph = ox.NamedNode(graph) if graph is not None else ox.DefaultGraph()
        before = {q.triple for q in store.quads_in(graph)}
        after = {q.triple for q in staging.quads_for_pattern(None, None, None, name)}
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
) -> WriteOutcome:
    """Run a SPARQL Update through validation; commit it atomically or not at all.

    :raises patrolkg.errors.ValidationFailed: the result would not conform.
    """
    change = stage_update(store, with_using_clauses(update, using, using_named), base_iri=base_iri)
    return writer.write(change, dry_run=dry_run)
