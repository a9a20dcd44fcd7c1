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

from .errors import ForbiddenOperation, ValidationFailed, WriteConflict
from .namespaces import BASE, GRAPH, INFERRED_GRAPH, ONTOLOGY_GRAPH, PKID
from .reasoning import bundled_schema_closure
from .rules import Fact, as_ntriples, entailments, triple_facts
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

    blank = ox.BlankNode
    return [
        ox.Triple(fix(t.subject), t.predicate, fix(t.object)) if type(t.subject) is blank or type(t.object) is blank else t
        for t in triples
    ]


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
    named, nodes = ox.NamedNode, set()
    for t in triples:
        subject = t.subject  # each attribute read makes a new term object: read once
        if type(subject) is named:
            nodes.add(subject.value)
        if objects:
            obj = t.object
            if type(obj) is named:
                nodes.add(obj.value)
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
        subjects = _iri_nodes(change.all_triples(), objects=False)
        _refuse_reserved_subjects(subjects)  # every entrance; records come as ``records``
        change = self._normalized(change, subjects)
        report, inferred_remove, inferred_add = self._check(change, subjects)
        if not report.conforms:
            raise ValidationFailed(report)
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

    def _normalized(self, change: Change, subjects: set[str]) -> Change:
        """The same change with no-ops dropped: removals of absent triples, additions of
        present ones. A change removes first, then adds. ``subjects``: the change's."""
        present = {(_graph_of(q), q.triple) for q in self.store.quads_with_subjects(subjects)}
        if not present and not any(change.remove.values()):
            return change  # all new (a bulk load): nothing to drop
        result = Change()
        for graph, triples in change.remove.items():
            result.removing(graph, (t for t in triples if (graph, t) in present and t not in change.add.get(graph, ())))
        for graph, triples in change.add.items():
            result.adding(graph, (t for t in triples if (graph, t) not in present))
        return result

    # -- validation and reasoning ---------------------------------------------------

    def _check(self, change: Change, changed: set[str]) -> tuple[Report, set[ox.Triple], set[ox.Triple]]:
        """Validate the descriptions the change alters, in their neighbourhood, and find
        what the inferred graph must lose and gain: (report, inferred to remove,
        inferred to add).

        Focus: the subjects of changed triples and the nodes that point at them (a
        retracted person may leave a statement without its speaker). Context: what
        the focus nodes point at (their types, schemes), as it will be after the change.
        The OWL 2 RL rules run once over the neighbourhood; their entailments serve the
        consistency checks and, for a change that only adds, the inferred graph.
        """
        pointing = self.store.quads_with_objects(changed)
        incoming = [q for q in pointing if not _is_inferred(q)]
        focus = changed | {q.subject.value for q in incoming if isinstance(q.subject, ox.NamedNode)}
        focus_quads = self.store.quads_with_subjects(focus)
        focus_data = [t for _, t in _apply(change, {(_graph_of(q), q.triple) for q in focus_quads if not _is_inferred(q)})]
        focus_facts = triple_facts(focus_data)
        # What the focus nodes point at (their own subjects are the focus).
        neighbours = {o[1:-1] for _, _, o in focus_facts if o[0] == "<" and o[1] != "<"} - focus
        neighbour_quads = self.store.quads_with_subjects(neighbours)
        context = [t for _, t in _apply(change, {(_graph_of(q), q.triple) for q in neighbour_quads if not _is_inferred(q)}, subjects=neighbours)]
        schema = bundled_schema_closure()
        # The inferred graph is closed: what it holds about the neighbourhood stands
        # while nothing is removed, and lets the rules reach further than one hop.
        adds_only = not any(change.remove.values())
        existing = {q.triple for q in (*focus_quads, *neighbour_quads, *pointing) if _is_inferred(q)} if adds_only else set()
        derived = _triples(entailments([*focus_facts, *triple_facts([*context, *existing]), *schema.facts]))
        report = validate(focus_data, context=context, entailed=derived | existing | schema.closure)
        if not report.conforms or not adds_only:
            return report, *(self._rederive_all(change) if report.conforms else (set(), set()))
        # Drop what the store already holds, asserted or inferred, outside the neighbourhood.
        known = {q.triple for q in self.store.quads_with_subjects(_iri_nodes(derived, objects=False))}
        return report, set(), {t for t in derived if t not in known}

    def _rederive_all(self, change: Change) -> tuple[set[ox.Triple], set[ox.Triple]]:
        """Removals can invalidate entailments anywhere: derive them again from the
        data as it will be, and diff with the inferred graph."""
        schema = bundled_schema_closure()
        removed = {(graph, fact) for graph, triples in change.remove.items() for fact in triple_facts(triples)}
        links = str(GRAPH["links"])
        facts: list[Fact] = []
        for graph in [None, *self.store.graph_names()]:
            if graph in (str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH), links):
                continue
            held = triple_facts(self.store.quads_in(graph))
            facts += [fact for fact in held if (graph, fact) not in removed] if removed else held
        facts += [fact for graph, triples in change.add.items() if graph != links for fact in triple_facts(triples)]
        derived = entailments([*facts, *schema.facts])
        asserted = set(facts)
        derived.update(fact for fact in triple_facts(schema.closure) if fact not in asserted)
        current = set(triple_facts(self.store.quads(str(INFERRED_GRAPH))))
        return _triples(current - derived), _triples(derived - current)


#: Subjects only patrolkg itself describes: the records of submissions and their
#: statuses. Nobody may assert (or remove) facts about them, in any graph: the union
#: default graph would show forged provenance.
RESERVED_SUBJECTS = (str(PKID) + "submission/", str(PKID) + "submission-status/")


def _refuse_reserved_subjects(subjects: Iterable[str]) -> None:
    for subject in subjects:
        if subject.startswith(RESERVED_SUBJECTS):
            raise ForbiddenOperation(
                f"<{subject}> belongs to patrolkg's record of submissions; nobody may state facts about it",
                hint="a submission is retracted with DELETE /submissions/{id}; its record is kept by patrolkg",
            )


def _graph_of(quad: ox.Quad) -> GraphName:
    return quad.graph_name.value if isinstance(quad.graph_name, ox.NamedNode) else None


def _apply(change: Change, quads: set[tuple[GraphName, ox.Triple]], *, subjects: set[str] | None = None) -> set[tuple[GraphName, ox.Triple]]:
    """``quads`` as they will be after ``change`` (additions limited to ``subjects``),
    without the ontology graph, which validation adds itself."""
    if not quads and subjects is None and not any(change.remove.values()) and str(ONTOLOGY_GRAPH) not in change.add:
        return {(graph, t) for graph, triples in change.add.items() for t in triples}  # all new: nothing to merge
    result = set(quads)
    for graph, triples in change.remove.items():
        result -= {(graph, t) for t in triples}
    for graph, triples in change.add.items():
        result |= {(graph, t) for t in triples if subjects is None or (isinstance(t.subject, ox.NamedNode) and t.subject.value in subjects)}
    return {(g, t) for g, t in result if g != str(ONTOLOGY_GRAPH)}


def _triples(facts: Iterable[Fact]) -> set[ox.Triple]:
    return {q.triple for q in ox.parse(as_ntriples(facts), format=ox.RdfFormat.N_TRIPLES)}


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
