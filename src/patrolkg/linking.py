"""Link discovery: propose ``owl:sameAs`` links from patrolkg's entities to another
dataset's, for a person to review and then submit through the validated write path.

The other dataset is an RDF file, or a SPARQL endpoint on the service allow-list
(``PATROLKG_SERVICE_ALLOWLIST``). Each local entity of one kind (:data:`KINDS`) is
looked up by its names among the source's entities of that kind with the matcher of
:mod:`patrolkg.reconcile`, which scores labels, aliases, types and shared neighbours
(a person's state and the state's existing link, say) and says why.

:func:`link_set_turtle` writes the proposals as a Turtle link set: confident matches
as statements, the rest as ``#?`` lines to accept or drop, every one with its score
and evidence in comments. Nothing here writes to the store: accepted links go in
with ``patrolkg load FILE`` or ``patrolkg submit FILE``, where the shapes check them.

From an endpoint only entities whose label or alias equals one of the local names
(in its language) are fetched, since a remote query cannot run the fuzzy matching;
a file is matched in full.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph as ox

from . import __version__
from .errors import InputError, LimitExceeded, QueryTimeout
from .execution import Limits, check_endpoint
from .namespaces import PK, PREFIXES
from .rdfio import RDF_FORMATS, format_for_path, parse_rdf, rdf_format
from .reconcile import Candidate, EntityIndex, Evidence, Query, Record, compact
from .records import ALIAS_PREDICATES, LABEL_PREDICATES, SAME_AS, TYPE_PREDICATES, read_records
from .store import Store

__all__ = [
    "Kind",
    "KINDS",
    "Proposal",
    "read_source_file",
    "fetch_source",
    "local_records",
    "local_names",
    "propose_links",
    "link_set_turtle",
    "summary",
    "proposals_json",
]

WD = "http://www.wikidata.org/entity/"
DBO = "http://dbpedia.org/ontology/"
SCHEMA = "http://schema.org/"


@dataclass(frozen=True)
class Kind:
    """A kind of entity: its classes in patrolkg and the classes that mark it elsewhere
    (Wikidata items by ``wdt:P31``, DBpedia, schema.org and FOAF by ``rdf:type``)."""

    name: str
    local_type: str
    external_types: frozenset[str]
    help: str


def _kind(name: str, local: str, external: Iterable[str], help: str) -> Kind:
    local_type = str(PK[local])
    return Kind(name, local_type, frozenset({local_type, *external}), help)


#: The kinds ``patrolkg link --kind`` knows.
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        _kind("state", "State", [WD + "Q6256", WD + "Q3624078", DBO + "Country", SCHEMA + "Country"], "sovereign states (Wikidata: country, sovereign state)"),
        _kind("person", "Person", [WD + "Q5", DBO + "Person", SCHEMA + "Person", "http://xmlns.com/foaf/0.1/Person"], "people (Wikidata: human)"),
        _kind(
            "organization",
            "Organization",
            [WD + "Q43229", WD + "Q484652", WD + "Q245065", WD + "Q1127126", DBO + "Organisation", SCHEMA + "Organization", "http://www.w3.org/ns/org#Organization"],
            "alliances, international bodies, ministries (Wikidata: organization, international or intergovernmental organization, military alliance)",
        ),
        _kind("aircraft-type", "AircraftType", [WD + "Q15056993", WD + "Q15056995", DBO + "Aircraft"], "aircraft models (Wikidata: aircraft model or family)"),
        _kind("place", "Place", [WD + "Q515", WD + "Q5119", WD + "Q1549591", DBO + "Place", SCHEMA + "Place"], "cities and regions (Wikidata: city, capital city, big city)"),
    )
}


@dataclass(frozen=True)
class Proposal:
    """The candidates for one local entity, best first."""

    entity: Record
    candidates: tuple[Candidate, ...]

    @property
    def accepted(self) -> Candidate | None:
        """The candidate that is certain enough to link without review, if any."""
        return self.candidates[0] if self.candidates and self.candidates[0].match else None

    @property
    def already_linked(self) -> bool:
        return bool(self.candidates) and self.candidates[0].record.iri in self.entity.same_as


# ------------------------------------------------------------------------ sources


def read_source_file(path: Path) -> ox.Store:
    """An RDF file, parsed into an in-memory store (its named graphs kept).

    :raises patrolkg.errors.RdfSyntaxError: with the file, line and column.
    :raises patrolkg.errors.UnsupportedFormat: for an extension that names no RDF format.
    :raises InputError: when the file cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    store = ox.Store()
    store.extend(parse_rdf(data, format_for_path(path), source=str(path), base_iri=path.resolve().as_uri()))
    return store


_ACCEPT = "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5"
_BATCH = 40  # names per remote query, to keep each request small


def fetch_source(
    endpoint: str,
    names: Iterable[ox.Literal],
    kind: Kind,
    limits: Limits,
    *,
    max_bytes: int = 10 * 1024 * 1024,
) -> ox.Store:
    """The entities of ``kind`` that an allow-listed SPARQL endpoint names by one of
    ``names`` (as label or alias), with their names, types and IRI-valued facts.

    Each request is bounded by ``limits.timeout`` (``PATROLKG_QUERY_TIMEOUT``).

    :raises patrolkg.errors.ForbiddenOperation: for an endpoint not on the allow-list
        (before any connection).
    :raises QueryTimeout: when the endpoint does not answer in time.
    :raises InputError: when it cannot be reached or answers with an error.
    """
    check_endpoint(endpoint, limits)
    store = ox.Store()
    unique = list(dict.fromkeys(names))
    name_predicates = " ".join(f"<{p}>" for p in (*LABEL_PREDICATES, *ALIAS_PREDICATES))
    type_predicates = "|".join(f"<{p}>" for p in TYPE_PREDICATES)
    types = " ".join(f"<{t}>" for t in sorted(kind.external_types))
    with httpx.Client(timeout=limits.timeout, follow_redirects=False, trust_env=False) as client:
        for start in range(0, len(unique), _BATCH):
            batch = " ".join(str(n) for n in unique[start : start + _BATCH])
            # Names in the entity's own languages only, and no Wikidata statement nodes
            # (``p:``): the rest of an item's truthy facts are its neighbours.
            query = f"""CONSTRUCT {{ ?x ?p ?o }} WHERE {{
  VALUES ?name {{ {batch} }}
  VALUES ?namedBy {{ {name_predicates} }}
  VALUES ?type {{ {types} }}
  ?x ?namedBy ?name ; {type_predicates} ?type .
  ?x ?p ?o .
  FILTER(isIRI(?o) || LANG(?o) IN ("en", "") || ?o = ?name)
  FILTER(!STRSTARTS(STR(?p), "http://www.wikidata.org/prop/P"))
}}"""
            store.extend(_construct(client, endpoint, query, limits, max_bytes))
    return store


def _construct(client: httpx.Client, endpoint: str, query: str, limits: Limits, max_bytes: int) -> list[ox.Quad]:
    # A form POST is the one way every SPARQL 1.1 endpoint must accept a query.
    headers = {"Accept": _ACCEPT, "User-Agent": f"patrolkg/{__version__} (link discovery)"}
    try:
        with client.stream("POST", endpoint, data={"query": query}, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise InputError(
                    f"{endpoint} answered {response.status_code}: {response.text[:200].strip()}",
                    hint="check that the URL is a SPARQL endpoint that answers CONSTRUCT queries",
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise LimitExceeded(f"{endpoint} sent more than {max_bytes} bytes", setting="PATROLKG_MAX_BODY_BYTES", limit=max_bytes)
            media_type = response.headers.get("content-type", "text/turtle")
    except httpx.TimeoutException:
        raise QueryTimeout(f"{endpoint} did not answer within {limits.timeout:g}s", setting="PATROLKG_QUERY_TIMEOUT", limit=limits.timeout) from None
    except httpx.HTTPError as exc:
        raise InputError(f"cannot reach {endpoint}: {exc}", hint="check the URL and that the endpoint is up") from None
    fmt = rdf_format(media_type) if media_type.split(";")[0].strip() in RDF_FORMATS else ox.RdfFormat.TURTLE
    return parse_rdf(bytes(body), fmt, source=endpoint)


# ------------------------------------------------------------------------ matching


def local_records(store: Store, kind: Kind, *, id_space: str) -> list[Record]:
    """patrolkg's entities of ``kind``, each with the external IRIs its neighbours
    (within two steps, not through types) are already linked to as ``related``."""
    records, _ = read_records(store, prefix=id_space)
    mine = [r for r in records if kind.local_type in r.types]
    if not mine:
        return []
    values = " ".join(f"<{r.iri}>" for r in mine)
    step = f"!(<{TYPE_PREDICATES[0]}>|^<{TYPE_PREDICATES[0]}>|<{SAME_AS}>|^<{SAME_AS}>)"
    rows = store.query(
        f"SELECT DISTINCT ?e ?x WHERE {{ VALUES ?e {{ {values} }} ?e {step}/{step}? ?n . ?n <{SAME_AS}> ?x FILTER(?n != ?e) }}"
    )
    related: dict[str, set[str]] = {}
    for row in rows:  # type: ignore[union-attr]
        related.setdefault(row["e"].value, set()).add(row["x"].value)
    return [dataclasses.replace(r, related=frozenset(related.get(r.iri, ()))) for r in mine]


def local_names(records: Sequence[Record], store: Store) -> list[ox.Literal]:
    """Every label and alias of ``records`` as the literals the store holds (with
    their language tags), to look them up in a remote endpoint."""
    if not records:
        return []
    values = " ".join(f"<{r.iri}>" for r in records)
    predicates = " ".join(f"<{p}>" for p in (*LABEL_PREDICATES, *ALIAS_PREDICATES))
    rows = store.query(f"SELECT DISTINCT ?l WHERE {{ VALUES ?e {{ {values} }} VALUES ?p {{ {predicates} }} ?e ?p ?l FILTER(isLiteral(?l)) }}")
    return sorted((row["l"] for row in rows), key=str)  # type: ignore[union-attr]


def propose_links(
    local: Sequence[Record],
    source: ox.Store,
    kind: Kind,
    *,
    min_score: float = 50.0,
    per_entity: int = 3,
) -> list[Proposal]:
    """Candidates in ``source`` for each of the ``local`` entities, best first.

    A candidate must have one of the kind's types and a name in common with the
    entity (exact, reordered or similar); candidates below ``min_score`` are dropped.
    """
    records, names = read_records(source, related=True)
    external = EntityIndex((r for r in records if r.types & kind.external_types), names=names)
    proposals = []
    for entity in local:
        query = Query(names=(*entity.labels, *entity.aliases), types=kind.external_types, related=entity.related)
        found = [c for c in external.search(query, limit=per_entity) if c.score >= min_score]
        found = [_note_linked(c, entity) for c in found]
        proposals.append(Proposal(entity, tuple(found)))
    return proposals


def _note_linked(candidate: Candidate, entity: Record) -> Candidate:
    if candidate.record.iri not in entity.same_as:
        return candidate
    return dataclasses.replace(candidate, evidence=(*candidate.evidence, _ALREADY))


_ALREADY = Evidence("already-linked", "patrolkg already holds this link")


# ------------------------------------------------------------------------ writing


def _term(iri: str) -> str:
    shown = compact(iri)
    return shown if not shown.startswith("<") and shown.split(":", 1)[0] in ("wd", "owl") else f"<{iri}>"


def link_set_turtle(proposals: Sequence[Proposal], *, source: str, kind: Kind, include_linked: bool = False) -> str:
    """The proposals as a Turtle link set to review: a statement per confident match,
    a ``#?`` line per candidate to decide on, each after its score and evidence.
    Links patrolkg already holds are left out unless ``include_linked``."""
    lines = [
        f"# owl:sameAs links proposed by `patrolkg link --kind {kind.name}` from {source}.",
        "#",
        "# Review before loading. Each statement is a confident match (an exact name,",
        "# the right type, no namesake close behind). Lines starting with \"#? \" are",
        "# candidates that need a decision: remove the \"#? \" to accept one, delete the",
        "# statements you reject. Then load the file through the validated write path:",
        "# `patrolkg load FILE` (local store) or `patrolkg submit FILE` (a server).",
        "",
        f"@prefix owl: <{PREFIXES['owl']}> .",
        f"@prefix wd: <{WD}> .",
        "",
    ]
    for proposal in proposals:
        entity = proposal.entity
        if (proposal.already_linked and not include_linked) or not proposal.candidates:
            continue
        for candidate in proposal.candidates:
            status = "match" if candidate.match else "to review"
            lines.append(f"# {_term(entity.iri)} \"{entity.name}\" -> {compact(candidate.record.iri)} \"{candidate.record.name}\": score {candidate.score:g} ({status})")
            lines.extend(f"#   {e.detail}" + (f" ({e.points:+g})" if e.points else "") for e in candidate.evidence)
            statement = f"{_term(entity.iri)} owl:sameAs {_term(candidate.record.iri)} ."
            lines.append(statement if candidate.match else f"#? {statement}")
        lines.append("")
    lines.append("# " + summary(proposals, include_linked=include_linked))
    return "\n".join(lines) + "\n"


def summary(proposals: Sequence[Proposal], *, include_linked: bool = False) -> str:
    """One line: how many entities were matched, are to review, have no candidate,
    or are already linked (counted apart unless ``include_linked``)."""
    linked = sum(1 for p in proposals if p.already_linked and not include_linked)
    shown = [p for p in proposals if include_linked or not p.already_linked]
    matched = sum(1 for p in shown if p.accepted)
    review = sum(1 for p in shown if p.candidates and not p.accepted)
    none = sum(1 for p in shown if not p.candidates)
    return f"{len(proposals)} entities: {matched} matched, {review} to review, {none} without a candidate, {linked} already linked."


def proposals_json(proposals: Sequence[Proposal]) -> list[dict[str, object]]:
    """The proposals as plain data (for ``--format json``)."""
    return [
        {
            "entity": p.entity.iri,
            "name": p.entity.name,
            "already_linked": p.already_linked,
            "candidates": [
                {
                    "id": c.record.iri,
                    "name": c.record.name,
                    "score": c.score,
                    "match": c.match,
                    "evidence": [{"kind": e.kind, "detail": e.detail, "points": e.points} for e in c.evidence],
                }
                for c in p.candidates
            ],
        }
        for p in proposals
    ]
