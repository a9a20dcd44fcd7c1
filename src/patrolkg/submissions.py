"""Submissions: new facts from analysts, each in its own named graph with a provenance
record (who, when, source, status) that SPARQL can query.

A submission's data lives in ``pkg:submission/<id>``; its record in ``pkg:submissions``.
Retracting a submission takes its triples out of the queried graphs but keeps the
record, and the data itself as an N-Triples literal on the record, with who retracted
it and when.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import pyoxigraph as ox

from .errors import InputError, NotFound
from .namespaces import GRAPH, PK, PKID
from .rdfio import parse_rdf
from .store import Store
from .writes import SKOLEM_PREFIX, Change, WriteOutcome, Writer, skolemize

__all__ = [
    "SUBMISSIONS_GRAPH",
    "MAX_METADATA_CHARS",
    "SubmissionRecord",
    "Submissions",
    "submission_graph",
    "submission_iri",
    "parse_submission",
]

SUBMISSIONS_GRAPH = str(GRAPH["submissions"])
MAX_METADATA_CHARS = 2000

_XSD = "http://www.w3.org/2001/XMLSchema#"
_RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
_COMMENT = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#comment")
_SOURCE = ox.NamedNode("http://purl.org/dc/terms/source")
_GENERATED = ox.NamedNode("http://www.w3.org/ns/prov#generatedAtTime")
_ATTRIBUTED = ox.NamedNode("http://www.w3.org/ns/prov#wasAttributedTo")
_PROV_ENTITY = ox.NamedNode("http://www.w3.org/ns/prov#Entity")


def _pk(name: str) -> ox.NamedNode:
    return ox.NamedNode(str(PK[name]))


def submission_graph(submission_id: str) -> str:
    """The named graph of a submission's data."""
    return str(GRAPH[f"submission/{submission_id}"])


def submission_iri(submission_id: str) -> str:
    """The IRI of a submission's record."""
    return str(PKID[f"submission/{submission_id}"])


@dataclass(frozen=True)
class SubmissionRecord:
    id: str
    graph: str
    submitter: str
    submitted_at: str
    status: str  # "accepted" or "retracted"
    triples: int
    source: str | None = None
    comment: str | None = None
    retracted_by: str | None = None
    retracted_at: str | None = None

    @property
    def iri(self) -> str:
        return submission_iri(self.id)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "iri": self.iri,
            "graph": self.graph,
            "submitter": self.submitter,
            "submitted_at": self.submitted_at,
            "status": self.status,
            "triples": self.triples,
            "source": self.source,
            "comment": self.comment,
            "retracted_by": self.retracted_by,
            "retracted_at": self.retracted_at,
        }


def _check_metadata(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_METADATA_CHARS:
        raise InputError(f"the {name} is {len(value)} characters long; at most {MAX_METADATA_CHARS} are accepted")
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise InputError(f"the {name} contains control characters", hint="send plain text")
    return value


def parse_submission(data: bytes, media_type: str, *, source: str = "the submission") -> list[ox.Triple]:
    """Parse submitted RDF into skolemized triples, refusing what cannot be a submission.

    :raises patrolkg.errors.RdfSyntaxError: malformed RDF, with line and column.
    :raises patrolkg.errors.UnsupportedFormat: an unknown media type.
    :raises patrolkg.errors.UnsafeInput: remote JSON-LD contexts, XML DTDs.
    :raises InputError: empty data, named graphs, blank-node-only data, or IRIs in
        patrolkg's graph namespace.
    """
    quads = parse_rdf(data, media_type, source=source)
    if not quads:
        raise InputError(f"{source} holds no triples", hint="send at least one triple")
    if any(not isinstance(q.graph_name, ox.DefaultGraph) for q in quads):
        raise InputError(f"{source} names graphs; a submission is one graph", hint="send Turtle, N-Triples, JSON-LD or RDF/XML")
    triples = [q.triple for q in quads]
    if all(isinstance(t.subject, ox.BlankNode) for t in triples):
        raise InputError(
            f"every subject in {source} is a blank node, so nothing could ever refer to it",
            hint="name your resources with IRIs such as https://w3id.org/patrolkg/id/<kind>/<slug>",
        )
    for t in triples:
        for term in (t.subject, t.predicate, t.object):
            if isinstance(term, ox.NamedNode) and term.value.startswith((str(GRAPH), SKOLEM_PREFIX)):
                raise InputError(
                    f"{source} uses the IRI <{term.value}>, which is reserved for patrolkg's graphs",
                    hint="use IRIs under https://w3id.org/patrolkg/id/ for entities",
                )
    return skolemize(triples)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _new_id() -> str:
    # Sortable by time, unguessable enough to avoid collisions between servers.
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


class Submissions:
    """Submitting, listing, reading and retracting submissions on one store."""

    def __init__(self, store: Store, writer: Writer) -> None:
        self.store, self.writer = store, writer

    def submit(
        self,
        triples: list[ox.Triple],
        *,
        submitter: str,
        source: str | None = None,
        comment: str | None = None,
        dry_run: bool = False,
    ) -> tuple[SubmissionRecord, WriteOutcome]:
        """Validate and store ``triples`` (from :func:`parse_submission`) as a new submission.

        :raises patrolkg.errors.ValidationFailed: with the report; nothing is stored.
        """
        source = _check_metadata("source", source)
        comment = _check_metadata("comment", comment)
        record = SubmissionRecord(
            id=_new_id(),
            graph="",
            submitter=submitter,
            submitted_at=_now(),
            status="accepted",
            triples=len(set(triples)),
            source=source,
            comment=comment,
        )
        record = SubmissionRecord(**{**record.__dict__, "graph": submission_graph(record.id)})
        change = Change().adding(record.graph, triples)
        records = Change().adding(SUBMISSIONS_GRAPH, self._record_triples(record))
        outcome = self.writer.write(change, dry_run=dry_run, records=records, allow_protected=True)
        return record, outcome

    def _record_triples(self, record: SubmissionRecord) -> list[ox.Triple]:
        node = ox.NamedNode(record.iri)
        triples = [
            ox.Triple(node, _RDF_TYPE, _pk("Submission")),
            ox.Triple(node, _RDF_TYPE, _PROV_ENTITY),
            ox.Triple(node, _LABEL, ox.Literal(f"Submission {record.id}", language="en")),
            ox.Triple(node, _pk("dataGraph"), ox.NamedNode(record.graph)),
            ox.Triple(node, _pk("submitter"), ox.Literal(record.submitter)),
            ox.Triple(node, _ATTRIBUTED, ox.Literal(record.submitter)),
            ox.Triple(node, _GENERATED, ox.Literal(record.submitted_at, datatype=ox.NamedNode(_XSD + "dateTime"))),
            ox.Triple(node, _pk("status"), _status(record.status)),
            ox.Triple(node, _pk("tripleCount"), ox.Literal(str(record.triples), datatype=ox.NamedNode(_XSD + "integer"))),
        ]
        if record.source:
            triples.append(ox.Triple(node, _SOURCE, _source_term(record.source)))
        if record.comment:
            triples.append(ox.Triple(node, _COMMENT, ox.Literal(record.comment)))
        return triples

    def get(self, submission_id: str) -> SubmissionRecord:
        """:raises NotFound: for an unknown id."""
        found = self._records(f"VALUES ?s {{ <{submission_iri(submission_id)}> }}") if _safe_id(submission_id) else []
        if not found:
            raise NotFound(f"no submission {submission_id!r}", hint="list them at /submissions")
        return found[0]

    def list(self, *, offset: int = 0, limit: int = 50) -> tuple[list[SubmissionRecord], int]:
        """One page of records, newest first, and the total count."""
        total_query = f"SELECT (COUNT(?s) AS ?n) WHERE {{ GRAPH <{SUBMISSIONS_GRAPH}> {{ ?s a <{PK['Submission']}> }} }}"
        total = int(next(iter(self.store.query(total_query)))["n"].value)
        return self._records("", order="ORDER BY DESC(?at) DESC(?s)", offset=offset, limit=limit), total

    def _records(self, restriction: str, *, order: str = "", offset: int = 0, limit: int | None = None) -> list[SubmissionRecord]:
        page = f"OFFSET {offset}" + (f" LIMIT {limit}" if limit is not None else "")
        query = f"""
            PREFIX pk: <{PK}>
            SELECT ?s ?graph ?submitter ?at ?status ?n ?source ?comment ?by ?when WHERE {{
              GRAPH <{SUBMISSIONS_GRAPH}> {{
                {restriction}
                ?s a pk:Submission ; pk:dataGraph ?graph ; pk:submitter ?submitter ;
                   <{_GENERATED.value}> ?at ; pk:status ?status ; pk:tripleCount ?n .
                OPTIONAL {{ ?s <{_SOURCE.value}> ?source }}
                OPTIONAL {{ ?s <{_COMMENT.value}> ?comment }}
                OPTIONAL {{ ?s pk:retractedBy ?by ; pk:retractedAt ?when }}
              }}
            }} {order} {page}"""
        records = []
        for row in self.store.query(query):
            records.append(
                SubmissionRecord(
                    id=row["s"].value.rsplit("/", 1)[-1],
                    graph=row["graph"].value,
                    submitter=row["submitter"].value,
                    submitted_at=row["at"].value,
                    status=row["status"].value.rsplit("/", 1)[-1],
                    triples=int(row["n"].value),
                    source=row["source"].value if row["source"] else None,
                    comment=row["comment"].value if row["comment"] else None,
                    retracted_by=row["by"].value if row["by"] else None,
                    retracted_at=row["when"].value if row["when"] else None,
                )
            )
        return records

    def data(self, submission_id: str) -> list[ox.Triple]:
        """The submitted triples, whether the submission is accepted or retracted."""
        record = self.get(submission_id)
        if record.status == "accepted":
            return [q.triple for q in self.store.quads(record.graph)]
        query = f"SELECT ?d WHERE {{ GRAPH <{SUBMISSIONS_GRAPH}> {{ <{record.iri}> <{PK['retractedData']}> ?d }} }}"
        rows = list(self.store.query(query))
        if not rows:
            return []
        return [q.triple for q in ox.parse(rows[0]["d"].value.encode(), format=ox.RdfFormat.N_TRIPLES)]

    def retract(self, submission_id: str, *, by: str) -> SubmissionRecord:
        """Take a submission's triples out of the queried graphs; keep record and data.

        Retraction is a write like any other: it is refused (ValidationFailed) if the
        remaining data would no longer conform, e.g. another submission's statement
        whose speaker only this one defines.

        :raises NotFound: for an unknown id.
        :raises InputError: if it is already retracted.
        """
        record = self.get(submission_id)
        node = ox.NamedNode(record.iri)
        when = _now()
        triples: list[ox.Triple] = []

        def removal() -> Change:  # under the writer's lock: one retraction wins
            current = self.get(submission_id)
            if current.status != "accepted":
                raise InputError(f"submission {submission_id} was already retracted by {current.retracted_by} at {current.retracted_at}")
            triples[:] = [q.triple for q in self.store.quads_in(record.graph)]  # a retried write stages again
            return Change().removing(record.graph, triples)

        def bookkeeping() -> Change:
            records = Change()
            records.removing(SUBMISSIONS_GRAPH, [ox.Triple(node, _pk("status"), _status("accepted"))])
            records.adding(
                SUBMISSIONS_GRAPH,
                [
                    ox.Triple(node, _pk("status"), _status("retracted")),
                    ox.Triple(node, _pk("retractedBy"), ox.Literal(by)),
                    ox.Triple(node, _pk("retractedAt"), ox.Literal(when, datatype=ox.NamedNode(_XSD + "dateTime"))),
                    ox.Triple(node, _pk("retractedData"), ox.Literal(ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES).decode())),
                ],
            )
            return records

        self.writer.write(removal, records=bookkeeping, allow_protected=True)
        return self.get(submission_id)


def _source_term(source: str) -> ox.NamedNode | ox.Literal:
    """An article URL as an IRI; a citation, or anything that is no valid IRI, as text."""
    if source.startswith(("http://", "https://")):
        try:
            return ox.NamedNode(source)
        except ValueError:
            pass
    return ox.Literal(source)


def _status(name: str) -> ox.NamedNode:
    return ox.NamedNode(str(PKID[f"submission-status/{name}"]))


def _safe_id(submission_id: str) -> bool:
    return bool(submission_id) and len(submission_id) < 64 and all(c.isalnum() or c in "-T" for c in submission_id)
