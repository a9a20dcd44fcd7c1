"""The query mix: the same SPARQL, with the same parameters in the same order, for
every server.

Each :class:`BenchQuery` is a template; ``{person}``, ``{event}``, ``{statement}``,
``{state}`` and ``{word}`` are filled from the generator's manifest by a random
generator seeded with the query's name, so request *n* is the same text on patrolkg,
Oxigraph and rdflib-endpoint. ``kind`` says which target a query answers to: ``point``
(a point lookup: throughput against Oxigraph's), ``engine`` (the work is in the
query engine: median latency against Oxigraph's) or ``floor`` (no work at all: the
cost of one request on each server, which no target is about). The competency questions in
``queries/`` run as they are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchQuery", "query_mix", "competency_questions"]

PREFIXES = """PREFIX pk: <https://w3id.org/patrolkg/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX org: <http://www.w3.org/ns/org#>
"""
STANCE = "https://w3id.org/patrolkg/id/stance/"
WORDS = ("international law", "provocation", "stability", "cooperation", "tensions", "third party", "security")


@dataclass(frozen=True)
class BenchQuery:
    """One query of the mix."""

    name: str
    kind: str  # "point", "engine" or "floor"
    what: str  # one line for the report
    template: str
    graph_result: bool = False  # DESCRIBE/CONSTRUCT: ask for N-Triples

    def texts(self, manifest: dict[str, object], stream: str = "") -> Callable[[int], str]:
        """Request number -> query text: the same sequence for every server (one
        sequence per ``stream``, so that each phase has its own)."""
        rng = random.Random(f"{self.name}/{stream}")
        pools = {key: manifest.get(key) or [] for key in ("persons", "events", "statements", "states", "patrols")}
        cache: list[str] = []

        def text(index: int) -> str:
            while len(cache) <= index:
                values = {key: f"<{rng.choice(pool)}>" if pool else "<urn:none>" for key, pool in pools.items()}
                cache.append(self.template.format(word=rng.choice(WORDS), **{k[:-1]: v for k, v in values.items()}))
            return cache[index]

        return text


_MIX = [
    BenchQuery(
        "empty-ask", "floor", "ASK {}: what a request costs when the engine has nothing to do",
        "ASK {{}}",
    ),
    BenchQuery(
        "lookup", "point", "entity lookup: every property of one statement",
        PREFIXES + "SELECT ?p ?o WHERE {{ {statement} ?p ?o }}",
    ),
    BenchQuery(
        "describe", "point", "DESCRIBE one person",
        "DESCRIBE {person}", graph_result=True,
    ),
    BenchQuery(
        "speaker-statements", "engine", "join: one speaker's statements with their events and stances",
        PREFIXES + """SELECT ?statement ?event ?eventLabel ?stance WHERE {{
  ?statement pk:speaker {person} ; pk:about ?event ; pk:stance ?stance .
  ?event rdfs:label ?eventLabel .
}}""",
    ),
    BenchQuery(
        "event-reactions", "engine", "join across statements, speakers, posts and states for one event",
        PREFIXES + """SELECT ?statement ?speakerLabel ?postLabel ?stateLabel ?stance WHERE {{
  ?statement pk:respondsTo|pk:about {event} ; pk:speaker ?speaker ; pk:stance ?stance .
  ?speaker rdfs:label ?speakerLabel .
  OPTIONAL {{ ?statement pk:inPost ?post . ?post rdfs:label ?postLabel }}
  OPTIONAL {{ ?statement pk:onBehalfOf ?state . ?state rdfs:label ?stateLabel }}
}}""",
    ),
    BenchQuery(
        "protests-of-approached", "engine", "join: states protesting patrols that approached their airspace (whole graph)",
        PREFIXES + f"""SELECT ?stateLabel (COUNT(DISTINCT ?patrol) AS ?patrols) (COUNT(?statement) AS ?statements) WHERE {{{{
  ?patrol a pk:JointPatrol ; pk:approachedAirspaceOf ?state .
  ?statement pk:about ?patrol ; pk:onBehalfOf ?state ; pk:stance ?stance .
  VALUES ?stance {{{{ <{STANCE}protest> <{STANCE}concern> <{STANCE}warning> }}}}
  ?state rdfs:label ?stateLabel .
}}}} GROUP BY ?stateLabel ORDER BY DESC(?statements) ?stateLabel""",
    ),
    BenchQuery(
        "statements-by-state-year", "engine", "aggregate: statements per state and year of the event",
        PREFIXES + """SELECT ?state ?year (COUNT(?statement) AS ?statements) WHERE {{
  ?statement a pk:Statement ; pk:onBehalfOf ?state ; pk:about ?event .
  ?event pk:date ?date .
  BIND (SUBSTR(STR(?date), 1, 4) AS ?year)
}} GROUP BY ?state ?year ORDER BY ?state ?year""",
    ),
    BenchQuery(
        "activities-by-state-year", "engine", "aggregate over inferred types: military activities (patrols included) per state and year",
        PREFIXES + """SELECT ?state ?year (COUNT(?activity) AS ?activities) WHERE {{
  ?activity a pk:MilitaryActivity ; pk:participant ?state ; pk:date ?date .
  BIND (SUBSTR(STR(?date), 1, 4) AS ?year)
}} GROUP BY ?state ?year ORDER BY ?state ?year""",
    ),
    BenchQuery(
        "quote-text", "engine", "text filter: how many quotes contain a phrase",
        PREFIXES + """SELECT (COUNT(?statement) AS ?n) WHERE {{
  ?statement pk:quote ?quote .
  FILTER (CONTAINS(LCASE(STR(?quote)), "{word}"))
}}""",
    ),
]


def competency_questions(folder: Path) -> Iterator[BenchQuery]:
    """The shipped competency questions (``queries/*.rq``), as they are."""
    for path in sorted(folder.glob("cq*.rq")):
        text = path.read_text(encoding="utf-8")
        title = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# title:")), path.stem)
        yield BenchQuery(path.stem, "engine", f"competency question: {title}", text.replace("{", "{{").replace("}", "}}"))


def query_mix(queries_folder: Path) -> list[BenchQuery]:
    """The whole mix: the queries above, then the competency questions."""
    return [*_MIX, *competency_questions(queries_folder)]
