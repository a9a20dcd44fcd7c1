"""Synthetic patrolkg data at any scale, in patrolkg's own vocabulary (docs/model.md).

The generated world has the shape of the bundled articles, repeated: states with posts
(one per role), alliances with pk:Membership records and pk:memberOf shortcuts,
aircraft types, places, and then, article after article, one event (a pk:JointPatrol,
an exercise as a pk:MilitaryActivity, or a pk:Summit) and the statements the article
reports about it: a speaker (pk:Person) in a post, for a state, with one or two
stances, verbatim quotes, a summary, the sentence it comes from and its source article.
Speakers recur across articles, statements answer one another, patrols coincide with
summits: the joins a real graph has.

Everything is deterministic for a seed, conforms to the shapes (the tests check it at
small scale), and every IRI is under ``https://w3id.org/patrolkg/id/<kind>/bench-...``,
so the data never collides with the bundled facts and can be loaded beside them.

    python bench/generate.py --triples 1000000 --seed 7 -o var/bench/data-1m.nt
    python bench/generate.py --triples 5000 --format turtle -o small.ttl

Next to the data it writes ``<file>.manifest.json``: the counts and sample IRIs (states,
persons, events, statements) that the query benchmark draws its parameters from.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["World", "generate", "write", "submission", "main"]

ID = "https://w3id.org/patrolkg/id/"
PK = "https://w3id.org/patrolkg/ontology#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
ORG = "http://www.w3.org/ns/org#"
PROV = "http://www.w3.org/ns/prov#"
DCT = "http://purl.org/dc/terms/"
SKOS = "http://www.w3.org/2004/02/skos/core#"

STANCES = (
    "protest", "concern", "criticism", "accusation", "warning", "justification",
    "denial", "reassurance", "restraint", "report", "assessment", "condemnation",
)
ROLES = (
    ("president", "President"),
    ("prime-minister", "Prime Minister"),
    ("chief-cabinet-secretary", "Chief Cabinet Secretary"),
    ("defense-minister", "Minister of Defense"),
    ("foreign-ministry-spokesperson", "Foreign Ministry Spokesperson"),
    ("defense-ministry-spokesperson", "Defense Ministry Spokesperson"),
)
_STATE_STEMS = ("Al", "Bel", "Cor", "Dar", "El", "Fen", "Gal", "Hal", "Is", "Jor", "Kal", "Lor", "Mar", "Nor", "Or", "Pel", "Ros", "Sel", "Tor", "Val")
_STATE_ENDINGS = ("ania", "esia", "ovia", "aria", "onia")
_FIRST = ("Akira", "Maria", "Wei", "Sergei", "Min-jun", "Anna", "Hiro", "Li", "Olga", "Jae", "Yuki", "Ivan", "Mei", "Dmitri", "Soo-ah", "Kenji", "Elena", "Jun", "Pavel", "Hana")
_LAST = ("Tanaka", "Petrova", "Zhang", "Volkov", "Kim", "Sato", "Ivanova", "Chen", "Park", "Suzuki", "Smirnov", "Wang", "Lee", "Kato", "Orlov", "Liu", "Choi", "Ito", "Popov", "Yang")
_PUBLISHERS = ("Benchmark Wire", "Pacific Herald", "Northern Dispatch", "Asia Defense Review", "The Strait Times", "Eastern Ledger")
_SUBJECTS = ("The joint patrol", "This exercise", "Such flights", "The deployment of strategic bombers", "These military activities", "The flight near our airspace")
_CLAIMS = (
    "violates international law",
    "threatens peace and stability in the region",
    "is a serious provocation",
    "was held in strict accordance with the norms of international law",
    "does not target any third party",
    "heightens tensions in East Asia",
    "serves strategic mutual trust and practical cooperation",
    "was part of the annual cooperation plan of both militaries",
    "is a grave concern for our security",
    "elevated the level of provocation",
)
_TAILS = ("", " in the Asia-Pacific region", " at a time of great sensitivity", " near our territory", " as the world watches")
_EXERCISES = ("Northern Shield", "Joint Sea", "Peace Mission", "Vostok", "Maritime Interaction", "Eastern Resolve", "Sky Guardian")


#: One generated patrol a month from 2026-01 to 2099-12: pk:date must stay before 2100.
MAX_PATROLS = (2099 - 2026 + 1) * 12


def _iri(kind: str, slug: str) -> str:
    return f"<{ID}{kind}/bench-{slug}>"


def _lit(text: str, lang: str | None = None) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"@{lang}' if lang else f'"{escaped}"'


def _typed(value: str, datatype: str) -> str:
    return f'"{value}"^^<{XSD}{datatype}>'


def _p(prefix: str, name: str) -> str:
    return f"<{prefix}{name}>"


A = f"<{RDF_TYPE}>"
LABEL = _p(RDFS, "label")
SOURCE_TEXT = _p(PK, "sourceText")
DERIVED = _p(PROV, "wasDerivedFrom")


@dataclass
class World:
    """What has been generated so far: the fixed world and samples for the benchmark."""

    seed: int
    states: list[tuple[str, str]] = field(default_factory=list)  # (iri, label)
    posts: list[tuple[str, str, int]] = field(default_factory=list)  # (iri, label, state index)
    aircraft: list[tuple[str, int]] = field(default_factory=list)  # (iri, operator state index)
    places: list[str] = field(default_factory=list)
    alliances: list[str] = field(default_factory=list)
    persons: list[tuple[str, str, int]] = field(default_factory=list)  # (iri, name, post index)
    events: list[str] = field(default_factory=list)
    patrols: list[str] = field(default_factory=list)
    summits: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    articles: int = 0
    triples: int = 0

    def manifest(self) -> dict[str, object]:
        """Counts, and up to 200 IRIs of each kind (spread over the whole data)."""

        def sample(items: list[str]) -> list[str]:
            step = max(1, len(items) // 200)
            return [iri.strip("<>") for iri in items[::step][:200]]

        return {
            "seed": self.seed,
            "triples": self.triples,
            "counts": {
                "states": len(self.states), "posts": len(self.posts), "persons": len(self.persons),
                "events": len(self.events), "patrols": len(self.patrols), "summits": len(self.summits),
                "statements": len(self.statements), "articles": self.articles, "alliances": len(self.alliances),
            },
            "states": sample([s for s, _ in self.states]),
            "persons": sample([p for p, _, _ in self.persons]),
            "events": sample(self.events),
            "patrols": sample(self.patrols),
            "statements": sample(self.statements),
        }


Triple = tuple[str, str, str]


def _state_names(rng: random.Random, count: int) -> list[str]:
    names = [stem + ending for stem in _STATE_STEMS for ending in _STATE_ENDINGS]
    rng.shuffle(names)
    return names[:count]


def _fixed_world(world: World, rng: random.Random, states: int) -> Iterator[Triple]:
    """States, their posts, alliances and memberships, aircraft types, places."""
    for index, name in enumerate(_state_names(rng, states)):
        iri = _iri("state", name.lower())
        world.states.append((iri, name))
        yield iri, A, _p(PK, "State")
        yield iri, LABEL, _lit(name, "en")
        yield iri, _p(DCT, "source"), _lit("patrolkg benchmark generator (synthetic)")
        for slug, title in ROLES:
            post = _iri("post", f"{name.lower()}-{slug}")
            label = f"{title} of {name}"
            world.posts.append((post, label, index))
            yield post, A, _p(PK, "Post")
            yield post, LABEL, _lit(label, "en")
            yield post, _p(ORG, "role"), f"<{ID}role/{slug}>"
            yield post, _p(ORG, "postIn"), iri
    # Alliances: bilateral treaty alliances, strategic partnerships of four, and two
    # larger alliances; each membership as a record and as the pk:memberOf shortcut.
    kinds = [("TreatyAlliance", 2)] * 6 + [("StrategicPartnership", 4)] * 2 + [("Alliance", 8)] * 2
    for number, (kind, size) in enumerate(kinds):
        members = rng.sample(range(len(world.states)), min(size, len(world.states)))
        names = [world.states[m][1] for m in members]
        label = f"{'–'.join(names)} {'alliance' if kind != 'StrategicPartnership' else 'partnership'}" if size <= 4 else f"Alliance {number + 1}"
        org = _iri("org", f"alliance-{number + 1:02d}")
        world.alliances.append(org)
        yield org, A, _p(PK, kind)
        yield org, LABEL, _lit(label, "en")
        for m in members:
            state_iri, state_name = world.states[m]
            record = _iri("membership", f"alliance-{number + 1:02d}-{state_name.lower()}")
            yield state_iri, _p(PK, "memberOf"), org
            yield record, A, _p(PK, "Membership")
            yield record, LABEL, _lit(f"{state_name} in {label}", "en")
            yield record, _p(ORG, "member"), state_iri
            yield record, _p(ORG, "organization"), org
            yield record, _p(DCT, "source"), _lit(f"Treaty register entry {number + 1}")
        if kind == "TreatyAlliance":
            yield world.states[members[0]][0], _p(PK, "allyOf"), world.states[members[1]][0]
    for number in range(12):
        operator = number % len(world.states)
        iri = _iri("aircraft-type", f"type-{number + 1:02d}")
        world.aircraft.append((iri, operator))
        yield iri, A, _p(PK, "AircraftType")
        yield iri, LABEL, _lit(f"{'HTB'[number % 3]}-{10 + number * 7}", "en")
        yield iri, _p(SKOS, "broader"), f"<{ID}aircraft-category/strategic-bomber>"
        yield iri, _p(PK, "operator"), world.states[operator][0]
        yield iri, _p(PK, "nuclearCapable"), _typed("true" if number % 2 == 0 else "false", "boolean")
    for number in range(40):
        iri = _iri("place", f"place-{number + 1:02d}")
        world.places.append(iri)
        yield iri, A, _p(PK, "Place")
        yield iri, LABEL, _lit(f"Port {world.states[number % len(world.states)][1]} {number + 1}", "en")


def _quote(rng: random.Random) -> tuple[str, str]:
    subject, claim, tail = rng.choice(_SUBJECTS), rng.choice(_CLAIMS), rng.choice(_TAILS)
    return f"{subject} {claim}{tail}.", claim


def _article(world: World, rng: random.Random) -> Iterator[Triple]:
    """One article: the event it reports and the statements about it."""
    world.articles += 1
    n = world.articles
    article = _iri("article", f"{n:07d}")
    year = 2000 + rng.randrange(26)
    publisher = rng.choice(_PUBLISHERS)
    yield article, A, _p(PK, "Article")
    yield article, LABEL, _lit(f"{publisher} report {n}", "en")
    yield article, _p(PK, "headline"), _lit(f"Bombers and diplomats: report {n} of {publisher}", "en")
    yield article, _p(DCT, "publisher"), _lit(publisher)
    yield article, _p(DCT, "identifier"), _lit(f"bench-{n:07d}.txt")

    event = _iri("event", f"{n:07d}")
    kind = rng.random()
    pair = rng.sample(range(len(world.states)), 2) if rng.random() < 0.3 else [0, 1]
    participants = [world.states[i] for i in pair]
    sentence = f"{participants[0][1]} and {participants[1][1]} conducted the activity, {publisher} reported."
    if kind < 0.12 and len(world.patrols) < MAX_PATROLS:
        # The series goes on after the bundled ones (1-4, 10): ordinals from 11, one
        # a month from January 2026 to December 2099 (the shapes' last year).
        ordinal = 11 + len(world.patrols)
        months = len(world.patrols)
        date = f"{2026 + months // 12}-{months % 12 + 1:02d}"
        world.patrols.append(event)
        yield event, A, _p(PK, "JointPatrol")
        yield event, LABEL, _lit(f"Joint strategic bomber patrol {ordinal} of {participants[0][1]} and {participants[1][1]}", "en")
        yield event, _p(PK, "ordinal"), _typed(str(ordinal), "positiveInteger")
        yield event, _p(PK, "date"), _typed(date, "gYearMonth")
        for state, _ in participants:
            yield event, _p(PK, "participant"), state
        for aircraft, _ in rng.sample(world.aircraft, 2):
            yield event, _p(PK, "aircraftType"), aircraft
        yield event, _p(PK, "aircraftCount"), _typed(str(rng.randrange(2, 40)), "nonNegativeInteger")
        near = rng.sample([s for i, s in enumerate(world.states) if i not in pair], 2)
        breached = rng.random() < 0.05
        for state, _ in near:
            yield event, _p(PK, "approachedAirspaceOf"), state
        if breached:
            yield event, _p(PK, "breachedAirspaceOf"), near[0][0]
        yield event, _p(PK, "airspaceBreached"), _typed("true" if breached else "false", "boolean")
        if world.summits and rng.random() < 0.3:
            yield event, _p(PK, "coincidedWith"), rng.choice(world.summits)
    elif kind < 0.3:
        world.summits.append(event)
        place = rng.choice(world.places)
        yield event, A, _p(PK, "Summit")
        yield event, LABEL, _lit(f"Summit of {participants[0][1]} and {participants[1][1]} ({year}, {n})", "en")
        yield event, _p(PK, "date"), _typed(f"{year}-{rng.randrange(1, 13):02d}", "gYearMonth")
        yield event, _p(PK, "location"), place
        for state, _ in participants:
            yield event, _p(PK, "participant"), state
    else:
        yield event, A, _p(PK, "MilitaryActivity")
        yield event, LABEL, _lit(f"Exercise {rng.choice(_EXERCISES)} {year} of {participants[0][1]} and {participants[1][1]} ({n})", "en")
        yield event, _p(PK, "date"), _typed(f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}", "date")
        yield event, _p(PK, "location"), rng.choice(world.places)
        for state, _ in participants:
            yield event, _p(PK, "participant"), state
    yield event, SOURCE_TEXT, _lit(sentence)
    yield event, DERIVED, article
    world.events.append(event)

    earlier: list[str] = []
    for number in range(rng.randrange(2, 7)):
        yield from _statement(world, rng, article, event, n, number, earlier)


def _speaker(world: World, rng: random.Random, article: str, n: int) -> tuple[tuple[str, str, int], list[Triple]]:
    """A speaker and the triples that introduce them (none for one already known).

    About one statement in twelve has a new speaker: officials speak again and again."""
    if world.persons and rng.random() > 1 / 12:
        return rng.choice(world.persons), []
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    person = _iri("person", f"{len(world.persons) + 1:06d}")
    post = rng.randrange(len(world.posts))
    world.persons.append((person, name, post))
    triples = [(person, A, _p(PK, "Person")), (person, LABEL, _lit(name, "en"))]
    if rng.random() < 0.05:
        triples.append((person, _p(PK, "militaryRank"), f"<{ID}rank/senior-colonel>"))
    triples += [
        (person, SOURCE_TEXT, _lit(f"{world.posts[post][1]} {name} spoke to reporters, according to report {n}.")),
        (person, DERIVED, article),
        (world.posts[post][0], _p(ORG, "heldBy"), person),
    ]
    return world.persons[-1], triples


def _statement(world: World, rng: random.Random, article: str, event: str, n: int, number: int, earlier: list[str]) -> Iterator[Triple]:
    (person, name, post_index), introduction = _speaker(world, rng, article, n)
    yield from introduction
    post, post_label, state_index = world.posts[post_index]
    statement = _iri("statement", f"{n:07d}-{number + 1}")
    quote, claim = _quote(rng)
    stances = rng.sample(STANCES, rng.choice((1, 1, 2)))
    yield statement, A, _p(PK, "Statement")
    yield statement, LABEL, _lit(f"{name}: {claim} ({n}.{number + 1})", "en")
    yield statement, _p(PK, "speaker"), person
    yield statement, _p(PK, "inPost"), post
    yield statement, _p(PK, "onBehalfOf"), world.states[state_index][0]
    if earlier and rng.random() < 0.3:
        yield statement, _p(PK, "respondsTo"), rng.choice(earlier)
    else:
        yield statement, _p(PK, "respondsTo"), event
    yield statement, _p(PK, "about"), event
    for stance in stances:
        yield statement, _p(PK, "stance"), f"<{ID}stance/{stance}>"
    if rng.random() < 0.8:
        yield statement, _p(PK, "quote"), _lit(quote, "en")
    yield statement, _p(PK, "summary"), _lit(f"{name} said that {quote[0].lower()}{quote[1:]}", "en")
    yield statement, SOURCE_TEXT, _lit(f"“{quote}” said {post_label} {name}.")
    yield statement, DERIVED, article
    earlier.append(statement)
    world.statements.append(statement)


def generate(triples: int = 1_000_000, *, seed: int = 7, states: int = 40) -> tuple[World, Iterator[Triple]]:
    """The world (filled in as the iterator runs) and the triples, about ``triples`` of
    them: whole articles are generated until the count is reached."""
    rng = random.Random(seed)
    world = World(seed=seed)

    def run() -> Iterator[Triple]:
        for triple in _fixed_world(world, rng, states):
            world.triples += 1
            yield triple
        while world.triples < triples:
            for triple in _article(world, rng):
                world.triples += 1
                yield triple

    return world, run()


_TURTLE_PREFIXES = {
    "pk": PK, "rdfs": RDFS, "xsd": XSD, "org": ORG, "prov": PROV, "dcterms": DCT, "skos": SKOS,
    "state": ID + "state/", "post": ID + "post/", "person": ID + "person/", "event": ID + "event/",
    "statement": ID + "statement/", "article": ID + "article/", "stance": ID + "stance/",
}


def write(path: Path, triples: int = 1_000_000, *, seed: int = 7, fmt: str = "ntriples") -> World:
    """Generate into ``path`` (N-Triples, or Turtle with prefixes) and its manifest."""
    world, stream = generate(triples, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "ntriples":
        with path.open("w", encoding="utf-8") as out:
            buffer = []
            for s, p, o in stream:
                buffer.append(f"{s} {p} {o} .\n")
                if len(buffer) >= 10_000:
                    out.writelines(buffer)
                    buffer.clear()
            out.writelines(buffer)
    elif fmt == "turtle":
        import pyoxigraph as ox

        data = "".join(f"{s} {p} {o} .\n" for s, p, o in stream).encode()
        parsed = ox.parse(data, format=ox.RdfFormat.N_TRIPLES)
        path.write_bytes(ox.serialize(parsed, format=ox.RdfFormat.TURTLE, prefixes=_TURTLE_PREFIXES))
    else:
        raise ValueError(f"unknown format {fmt!r}: use ntriples or turtle")
    Path(str(path) + ".manifest.json").write_text(json.dumps(world.manifest(), indent=1), encoding="utf-8")
    return world


def _statement_sizes(room: int) -> list[int]:
    """Split ``room`` triples into statements of 6 (what the shapes require) to 11."""
    sizes = []
    while room > 33:
        sizes.append(11)
        room -= 11
    if 0 < room < 6:
        raise ValueError("a submission needs room for at least one statement (6 triples)")
    parts = next((k for k in (0, 1, 2, 3) if 6 * k <= room <= 11 * k), 0)
    for k in range(parts):
        share = room // (parts - k)
        sizes.append(share)
        room -= share
    return sizes


def submission(manifest: dict[str, object], index: int, *, size: int = 100, seed: int = 7) -> str:
    """Exactly ``size`` triples of N-Triples, as an analyst would submit them: a new
    article, the exercise it reports and statements about it by officials already in
    the graph, answering an event already in the graph. ``index`` makes it unique.

    :raises ValueError: if ``size`` is below 15 (one event and one statement).
    """
    rng = random.Random(f"{seed}-{index}")
    persons, events, states = manifest["persons"], manifest["events"], manifest["states"]
    tag = f"sub{index:05d}"
    article, event = _iri("article", tag), _iri("event", tag)
    lines = [
        (article, A, _p(PK, "Article")),
        (article, LABEL, _lit(f"Submitted report {index}", "en")),
        (event, A, _p(PK, "MilitaryActivity")),
        (event, LABEL, _lit(f"Exercise {rng.choice(_EXERCISES)} (submitted {index})", "en")),
        (event, _p(PK, "date"), _typed(f"{2000 + rng.randrange(26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}", "date")),
        (event, SOURCE_TEXT, _lit("The exercise took place, the report said.")),
        (event, DERIVED, article),
    ]
    lines += [(event, _p(PK, "participant"), f"<{state}>") for state in rng.sample(states, 2)]  # type: ignore[arg-type]
    lines.append((article, _p(DCT, "publisher"), _lit(rng.choice(_PUBLISHERS))))
    for number, statement_size in enumerate(_statement_sizes(size - len(lines)), start=1):
        statement = _iri("statement", f"{tag}-{number}")
        quote, claim = _quote(rng)
        required = [
            (statement, A, _p(PK, "Statement")),
            (statement, LABEL, _lit(f"Submitted statement {index}.{number}: {claim}", "en")),
            (statement, _p(PK, "speaker"), f"<{rng.choice(persons)}>"),  # type: ignore[arg-type]
            (statement, _p(PK, "about"), event),
            (statement, _p(PK, "stance"), f"<{ID}stance/{rng.choice(STANCES)}>"),
            (statement, DERIVED, article),
        ]
        optional = [
            (statement, _p(PK, "respondsTo"), f"<{rng.choice(events)}>"),  # type: ignore[arg-type]
            (statement, _p(PK, "onBehalfOf"), f"<{rng.choice(states)}>"),  # type: ignore[arg-type]
            (statement, _p(PK, "quote"), _lit(quote, "en")),
            (statement, SOURCE_TEXT, _lit(f"“{quote}” an official said.")),
            (statement, _p(PK, "summary"), _lit(f"An official said that {quote[0].lower()}{quote[1:]}", "en")),
        ]
        lines += required + optional[: statement_size - len(required)]
    assert len(lines) == size, (len(lines), size)
    return "".join(f"{s} {p} {o} .\n" for s, p, o in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triples", type=int, default=1_000_000, help="about how many triples to generate (default: 1,000,000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same data (default: 7)")
    parser.add_argument("--format", choices=["ntriples", "turtle"], default=None, help="output format (default: from the file name, else ntriples)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write (.nt or .ttl)")
    args = parser.parse_args(argv)
    fmt = args.format or ("turtle" if args.output.suffix == ".ttl" else "ntriples")
    world = write(args.output, args.triples, seed=args.seed, fmt=fmt)
    print(f"{world.triples} triples ({world.articles} articles, {len(world.statements)} statements, {len(world.persons)} persons) -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
