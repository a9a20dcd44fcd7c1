"""The one write path: stage a change, validate what it touches, refresh the inferred
graph for it, then commit it atomically with one store update, or write nothing.

Every entrance — submissions, SPARQL Update, the Graph Store Protocol, user files
loaded by the CLI — builds a :class:`Change` and hands it to :meth:`Writer.write`.

Validation looks at what the write touches, not at the whole graph: the nodes whose
descriptions change, the nodes that point at them, and the nodes they point at, read
from the store with the ontology and checked against the shapes and the OWL 2 RL
consistency rules.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pyoxigraph as ox

from . import resources
from .errors import ForbiddenOperation, ValidationFailed, WriteConflict
from .namespaces import BASE, GRAPH, INFERRED_GRAPH, ONTOLOGY_GRAPH, PKID
from .reasoning import bundled_schema_closure, materialize
from .store import Store
from .validation import Report, validate

__all__ = [
    "WRITE_ATTEMPTS",
    "GraphName",
    "Change",
    "WriteOutcome",
    "Writer",
    "SKOLEM_PREFIX",
    "skolemize",
    "is_protected_graph",
    "change_from_graphs",
    "canonical",
    "RESERVED_SUBJECTS",
]

#: A graph: its IRI, or None for the store's default graph.
GraphName = str | None

log = logging.getLogger("patrolkg.writes")

#: Blank nodes in user data become IRIs under this prefix (RDF 1.1 §3.5 skolem IRIs).
SKOLEM_PREFIX = BASE + ".well-known/genid/"

_SCRATCH_DATA = "urn:patrolkg:scratch:data"

#: How often a write is staged and validated again when the store changed underneath it.
WRITE_ATTEMPTS = 5


def is_protected_graph(graph: GraphName) -> bool:
    """Graphs users cannot write directly: every graph in patrolkg's own graph namespace
    (the ontology, the inferred graph, the bundled data, submissions and their records).

    >>> is_protected_graph("https://w3id.org/patrolkg/graph/inferred")
    True
    >>> is_protected_graph("http://example.org/my-graph") or is_protected_graph(None)
    False
    """
    return graph is not None and graph.startswith(str(GRAPH))


def skolemize(triples: Iterable[ox.Triple], mapping: dict[str, ox.NamedNode] | None = None) -> list[ox.Triple]:
    """Replace blank nodes by fresh skolem IRIs (one per distinct blank node).

    >>> t = ox.Triple(ox.BlankNode("b"), ox.NamedNode("http://e/p"), ox.Literal("x"))
    >>> skolemize([t])[0].subject.value.startswith(SKOLEM_PREFIX)
    True
    """
    mapping = {} if mapping is None else mapping

    def fix(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> ox.NamedNode | ox.Literal:
        if isinstance(term, ox.BlankNode):
            if term.value not in mapping:
                mapping[term.value] = ox.NamedNode(SKOLEM_PREFIX + uuid.uuid4().hex)
            return mapping[term.value]
        return term

    return [ox.Triple(fix(t.subject), t.predicate, fix(t.object)) for t in triples]


_XSD = "http://www.w3.org/2001/XMLSchema#"
#: Datatypes the store keeps as another (value-preserving): validating what will be
#: stored means validating the canonical form.
_CANONICAL_DATATYPES = {
    _XSD + name: ox.NamedNode(_XSD + "integer")
    for name in (
        "int", "long", "short", "byte", "nonNegativeInteger", "positiveInteger", "negativeInteger",
        "nonPositiveInteger", "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte",
    )
} | {_XSD + "dateTimeStamp": ox.NamedNode(_XSD + "dateTime")}


def canonical(triple: ox.Triple) -> ox.Triple:
    """The triple as the store will keep it: derived integer types become xsd:integer.

    >>> t = ox.Triple(ox.NamedNode("http://e/a"), ox.NamedNode("http://e/p"),
    ...               ox.Literal("4", datatype=ox.NamedNode(_XSD + "positiveInteger")))
    >>> canonical(t).object.datatype.value
    'http://www.w3.org/2001/XMLSchema#integer'
    """
    literal = triple.object
    if isinstance(literal, ox.Literal) and literal.datatype.value in _CANONICAL_DATATYPES:
        return ox.Triple(triple.subject, triple.predicate, ox.Literal(literal.value, datatype=_CANONICAL_DATATYPES[literal.datatype.value]))
    return triple


@dataclass
class Change:
    """Triples to remove and to add, per graph. Build it, then give it to :class:`Writer`."""

    remove: dict[GraphName, set[ox.Triple]] = field(default_factory=dict)
    add: dict[GraphName, set[ox.Triple]] = field(default_factory=dict)

    def removing(self, graph: GraphName, triples: Iterable[ox.Triple]) -> Change:
        self.remove.setdefault(graph, set()).update(canonical(t) for t in triples)
        return self

    def adding(self, graph: GraphName, triples: Iterable[ox.Triple]) -> Change:
        self.add.setdefault(graph, set()).update(canonical(t) for t in triples)
        return self

    def graphs(self) -> set[GraphName]:
        return {g for g, t in self.remove.items() if t} | {g for g, t in self.add.items() if t}

    def counts(self) -> tuple[int, int]:
        return sum(map(len, self.remove.values())), sum(map(len, self.add.values()))

    def is_empty(self) -> bool:
        return self.counts() == (0, 0)

    def all_triples(self) -> Iterable[ox.Triple]:
        for triples in (*self.remove.values(), *self.add.values()):
            yield from triples


@dataclass
class WriteOutcome:
    """What a write did (or, for a dry run, would do)."""

    report: Report
    removed: int = 0
    added: int = 0
    inferred_removed: int = 0
    inferred_added: int = 0
    committed: bool = False


def _iri_nodes(triples: Iterable[ox.Triple], *, objects: bool) -> set[str]:
    nodes = set()
    for t in triples:
        if isinstance(t.subject, ox.NamedNode):
            nodes.add(t.subject.value)
        if objects and isinstance(t.object, ox.NamedNode):
            nodes.add(t.object.value)
    return nodes


class Writer:
    """Serializes writes to one store and runs each through validation.

    :param on_commit: called after every commit, before the write returns (the server
        tells its query workers that the store changed); a failure there is logged, the
        write stays committed and is answered as such.
    """

    def __init__(self, store: Store, *, on_commit: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_commit = on_commit or (lambda: None)
        self._lock = threading.Lock()

    def write(
        self,
        change: Change | Callable[[], Change],
        *,
        dry_run: bool = False,
        records: Change | Callable[[], Change] | None = None,
        allow_protected: bool = False,
    ) -> WriteOutcome:
        """Validate ``change`` and commit it with ``records`` in one atomic update.

        ``change`` may be a function that computes the change from the store as it is
        (a PUT's difference, a SPARQL Update's effect): it is called under the write
        lock, so no other write can slip in between staging and commit.
        ``records`` are patrolkg's own bookkeeping (submission records); they are not
        validated, only committed with the change (a function is called under the
        lock too, after ``change``).

        The store's write lease is held from staging to commit, and the commit is
        made only if the store's version is still the one read before staging: if
        another server changed the store in between, the change is staged and
        validated again (a few times, then WriteConflict).

        :raises ForbiddenOperation: when the change writes a protected graph.
        :raises ValidationFailed: with the report, when the result would not conform;
            nothing is written.
        :raises patrolkg.errors.WriteConflict: when the store kept changing underneath.
        :raises patrolkg.errors.StoreError: when the store cannot be written.
        """
        with self._lock:
            for attempt in range(WRITE_ATTEMPTS):
                with contextlib.nullcontext() if dry_run else self.store.write_lease():
                    outcome = self._write_once(change, dry_run=dry_run, records=records, allow_protected=allow_protected)
                if outcome is not None:
                    return outcome
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
        raise WriteConflict(
            f"the store changed underneath this write {WRITE_ATTEMPTS} times while it was validated; nothing was written",
            hint="retry; another writer is changing the store without patrolkg's write lease",
        )

    def _write_once(
        self,
        change: Change | Callable[[], Change],
        *,
        dry_run: bool,
        records: Change | Callable[[], Change] | None,
        allow_protected: bool,
    ) -> WriteOutcome | None:
        """Stage, validate and commit once; None when the store changed meanwhile."""
        version = self.store.version()
        if callable(change):
            change = change()
        if not allow_protected:
            for graph in change.graphs():
                if is_protected_graph(graph):
                    raise ForbiddenOperation(
                        f"the graph <{graph}> belongs to patrolkg and cannot be written directly",
                        hint="submit facts through /submissions, or write to a graph outside https://w3id.org/patrolkg/graph/",
                    )
        _refuse_reserved_subjects(change)  # every entrance; records come as ``records``
        change = self._normalized(change)
        report, context = self._validate(change)
        if not report.conforms:
            raise ValidationFailed(report)
        inferred_remove, inferred_add = self._inferred_change(change, context)
        removed, added = change.counts()
        outcome = WriteOutcome(report, removed, added, len(inferred_remove), len(inferred_add))
        if dry_run:
            return outcome
        remove = {g: t for g, t in change.remove.items() if t}
        add = {g: t for g, t in change.add.items() if t}
        if inferred_remove:
            remove[str(INFERRED_GRAPH)] = inferred_remove
        if inferred_add:
            add[str(INFERRED_GRAPH)] = inferred_add
        if callable(records):
            records = records()
        if records is not None:
            for graph, triples in records.remove.items():
                remove.setdefault(graph, set()).update(triples)
            for graph, triples in records.add.items():
                add.setdefault(graph, set()).update(triples)
        if not self.store.apply(remove, add, expect_version=version, new_version=uuid.uuid4().hex):
            return None
        outcome.committed = True
        try:
            self.on_commit()
        except Exception:  # committed is committed: the answer must say so
            log.exception("a write was committed, but what follows a commit failed")
        return outcome

    # -- staging -------------------------------------------------------------------

    def _normalized(self, change: Change) -> Change:
        """The same change with no-ops dropped: removals of absent triples, additions of
        present ones. A change removes first, then adds."""
        present = self._present(change)
        result = Change()
        for graph, triples in change.remove.items():
            result.removing(graph, (t for t in triples if (graph, t) in present and t not in change.add.get(graph, ())))
        for graph, triples in change.add.items():
            result.adding(graph, (t for t in triples if (graph, t) not in present))
        return result

    def _present(self, change: Change) -> set[tuple[GraphName, ox.Triple]]:
        subjects = _iri_nodes(change.all_triples(), objects=False)
        return {(_graph_of(q), q.triple) for q in self.store.quads_with_subjects(subjects)}

    # -- validation ----------------------------------------------------------------

    def _validate(self, change: Change) -> tuple[Report, list[ox.Quad]]:
        """Validate the descriptions the change alters, in their neighbourhood.

        Focus: the subjects of changed triples and the nodes that point at them (a
        retracted person may leave a statement without its speaker). Context: what
        the focus nodes point at (their types, schemes), as it will be after the change.
        """
        changed = _iri_nodes(change.all_triples(), objects=False)
        incoming = [q for q in self.store.quads_with_objects(changed) if not _is_inferred(q)]
        focus = changed | {q.subject.value for q in incoming if isinstance(q.subject, ox.NamedNode)}
        focus_quads = self.store.quads_with_subjects(focus)
        after = _apply(change, {(_graph_of(q), q.triple) for q in focus_quads if not _is_inferred(q)})
        focus_data = [t for _, t in after]
        neighbours = _iri_nodes(focus_data, objects=True) - focus
        neighbour_quads = self.store.quads_with_subjects(neighbours)
        context = [t for _, t in _apply(change, {(_graph_of(q), q.triple) for q in neighbour_quads if not _is_inferred(q)}, subjects=neighbours)]
        report = validate(focus_data, context=context)
        return report, [*focus_quads, *neighbour_quads, *incoming]

    # -- reasoning -----------------------------------------------------------------

    def _inferred_change(self, change: Change, context: list[ox.Quad]) -> tuple[set[ox.Triple], set[ox.Triple]]:
        if any(change.remove.values()):
            return self._rederive_all(change)
        return set(), self._derive_incrementally(change, context)

    def _derive_incrementally(self, change: Change, context: list[ox.Quad]) -> set[ox.Triple]:
        """Additions only: the rules over the touched neighbourhood find every new
        entailment, because the existing inferred graph is already closed."""
        scratch = ox.Store()
        scratch.load(resources.ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(str(ONTOLOGY_GRAPH)))
        data = ox.NamedNode(_SCRATCH_DATA)
        existing_inferred = {q.triple for q in context if _is_inferred(q)}
        scratch.extend(ox.Quad(q.subject, q.predicate, q.object, data) for q in context if q.graph_name != ox.NamedNode(str(ONTOLOGY_GRAPH)))
        scratch.extend(ox.Quad(t.subject, t.predicate, t.object, data) for triples in change.add.values() for t in triples)
        derived = materialize(scratch, [_SCRATCH_DATA], str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), schema=bundled_schema_closure()).triples
        candidates = derived - existing_inferred
        if not candidates:
            return set()
        # Drop what the store already holds, asserted or inferred, outside the context.
        known = {q.triple for q in self.store.quads_with_subjects(_iri_nodes(candidates, objects=False))}
        return {t for t in candidates if t not in known}

    def _rederive_all(self, change: Change) -> tuple[set[ox.Triple], set[ox.Triple]]:
        """Removals can invalidate entailments anywhere: derive them again from the
        data as it will be, and diff with the inferred graph."""
        scratch = ox.Store()
        for quad in self.store.quads():
            if _is_inferred(quad):
                continue
            scratch.add(quad)
        for graph, triples in change.remove.items():
            target = ox.NamedNode(graph) if graph is not None else ox.DefaultGraph()
            for t in triples:
                scratch.remove(ox.Quad(t.subject, t.predicate, t.object, target))
        for graph, triples in change.add.items():
            target = ox.NamedNode(graph) if graph is not None else ox.DefaultGraph()
            scratch.extend(ox.Quad(t.subject, t.predicate, t.object, target) for t in triples)
        # The default graph joins the reasoning as a named graph of its own.
        scratch.extend(ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(_SCRATCH_DATA)) for q in scratch.quads_for_pattern(None, None, None, ox.DefaultGraph()))
        links = str(GRAPH["links"])
        data_graphs = [g.value for g in scratch.named_graphs() if isinstance(g, ox.NamedNode) and g.value not in (str(ONTOLOGY_GRAPH), links)]
        derived = materialize(scratch, data_graphs, str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), schema=bundled_schema_closure()).triples
        current = {q.triple for q in self.store.quads(str(INFERRED_GRAPH))}
        return current - derived, derived - current


#: Subjects only patrolkg itself describes: the records of submissions and their
#: statuses. Nobody may assert (or remove) facts about them, in any graph: the union
#: default graph would show forged provenance.
RESERVED_SUBJECTS = (str(PKID) + "submission/", str(PKID) + "submission-status/")


def _refuse_reserved_subjects(change: Change) -> None:
    for triple in change.all_triples():
        if isinstance(triple.subject, ox.NamedNode) and triple.subject.value.startswith(RESERVED_SUBJECTS):
            raise ForbiddenOperation(
                f"<{triple.subject.value}> belongs to patrolkg's record of submissions; nobody may state facts about it",
                hint="a submission is retracted with DELETE /submissions/{id}; its record is kept by patrolkg",
            )


def _graph_of(quad: ox.Quad) -> GraphName:
    return quad.graph_name.value if isinstance(quad.graph_name, ox.NamedNode) else None


def _apply(change: Change, quads: set[tuple[GraphName, ox.Triple]], *, subjects: set[str] | None = None) -> set[tuple[GraphName, ox.Triple]]:
    """``quads`` as they will be after ``change`` (additions limited to ``subjects``),
    without the ontology graph, which validation adds itself."""
    result = set(quads)
    for graph, triples in change.remove.items():
        result -= {(graph, t) for t in triples}
    for graph, triples in change.add.items():
        result |= {(graph, t) for t in triples if subjects is None or (isinstance(t.subject, ox.NamedNode) and t.subject.value in subjects)}
    return {(g, t) for g, t in result if g != str(ONTOLOGY_GRAPH)}


def _is_inferred(quad: ox.Quad) -> bool:
    return isinstance(quad.graph_name, ox.NamedNode) and quad.graph_name.value == str(INFERRED_GRAPH)


def change_from_graphs(remove: Mapping[GraphName, Iterable[ox.Triple]] = {}, add: Mapping[GraphName, Iterable[ox.Triple]] = {}) -> Change:  # noqa: B006
    """A :class:`Change` from plain mappings."""
    change = Change()
    for graph, triples in remove.items():
        change.removing(graph, triples)
    for graph, triples in add.items():
        change.adding(graph, triples)
    return change
