"""Matching names to entities: the one matcher behind ``patrolkg link`` and ``/reconcile``.

A :class:`Record` is an entity as the matcher sees it: its IRI, names, types, links
and property values, read from any store by :func:`patrolkg.records.read_records`. A :class:`Query`
asks for entities by name, with optional types, property values and related IRIs.
:meth:`EntityIndex.search` scores every record against a query and returns
:class:`Candidate` objects, best first, each with the :class:`Evidence` that produced
its score and a ``match`` flag on the one candidate certain enough to accept unseen.

Scores run from 0 to 100; a candidate's score is the sum of its evidence's points:

- the query names the record's IRI (or one of its ``owl:sameAs``): 100;
- a name equals the record's label: 100; equals an alias, on either side: 90;
- the same words in another order: 85 (80 with an alias);
- all the query's words within a longer name: 50 + 20 x the share of that name's
  words they make up (45 + ... with an alias);
- similar names (difflib ratio r >= 0.6, and every word of three letters or more
  of one nearly spelled, >= 0.8, in the other): r x 80 (r x 75 with an alias);
- each queried property whose value agrees: +5 (with properties only, 100 x the
  share that agree); whose values differ: -20;
- related entities both records share: +5.

A record whose types share none with the query's types is not a candidate. A
candidate is a *match* when it is the best, scores at least 85 with an exact name or
identifier, leads the next one by more than 10 points and contradicts no queried
property: two namesakes are never matched, nor an entity whose name another one
has as an alias ("China" the region, and the state it names).

>>> japan = Record("http://e/japan", labels=("Japan",), aliases=("Nippon",), types=frozenset({"http://e/State"}))
>>> tokyo = Record("http://e/tokyo", labels=("Tokyo",), types=frozenset({"http://e/City"}))
>>> best, = EntityIndex([japan, tokyo]).search(Query(names=("nippon",)))
>>> best.record.iri, best.score, best.match
('http://e/japan', 90.0, True)
>>> print(best.evidence[0].detail)
"nippon" equals the alias "Nippon"
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .namespaces import PREFIXES

__all__ = [
    "MATCH_SCORE",
    "MATCH_MARGIN",
    "normalize",
    "compact",
    "Record",
    "Query",
    "Evidence",
    "Candidate",
    "EntityIndex",
]

MATCH_SCORE = 85.0
MATCH_MARGIN = 10.0
_SIMILAR = 0.6  # the least difflib ratio that makes two names a candidate pair
_WORD_SIMILAR = 0.8  # ... provided each word of one is spelled nearly so in the other


def normalize(name: str) -> str:
    """A name reduced for comparison: no accents, case or punctuation, single spaces.

    >>> normalize("  People’s Republic of  China ")
    'peoples republic of china'
    >>> normalize("Tu-95"), normalize("U.S."), normalize("Zürich")
    ('tu 95', 'u s', 'zurich')
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"['’ʼ`]", "", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def compact(iri: str) -> str:
    """``wd:Q17`` for an IRI in a known namespace, else the IRI in angle brackets.

    >>> compact("http://www.wikidata.org/entity/Q17"), compact("http://e/x")
    ('wd:Q17', '<http://e/x>')
    """
    for prefix, namespace in (*PREFIXES.items(), ("wdt", "http://www.wikidata.org/prop/direct/")):
        if iri.startswith(namespace) and iri != namespace and "/" not in iri[len(namespace):]:
            return f"{prefix}:{iri[len(namespace):]}"
    return f"<{iri}>"


@dataclass(frozen=True)
class Record:
    """An entity as the matcher sees it.

    ``values`` maps a property IRI to the entity's values for it (IRIs, literals'
    lexical forms, and the names of IRI values); ``related`` holds IRIs of other
    entities it is connected to, compared between the two sides of a link.
    """

    iri: str
    labels: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    types: frozenset[str] = frozenset()
    same_as: frozenset[str] = frozenset()
    description: str | None = None
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    related: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.labels[0] if self.labels else (self.aliases[0] if self.aliases else self.iri)

    def names(self) -> Iterable[tuple[str, bool]]:
        """Every name with whether it is an alias."""
        yield from ((n, False) for n in self.labels)
        yield from ((n, True) for n in self.aliases)


@dataclass(frozen=True)
class Query:
    """What to look for: names (the first the main one, the rest aliases), identifiers
    (IRIs the record itself, or one of its ``owl:sameAs``, may have), types (any one
    suffices), property values (``pid`` IRI to wanted values) and related IRIs."""

    names: tuple[str, ...] = ()
    identifiers: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    properties: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    related: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Evidence:
    """One reason for a score: a kind (``identifier``, ``label``, ``alias``,
    ``word-order``, ``part-of-name``, ``similar-name``, ``type``, ``property``,
    ``property-mismatch``, ``related``), what it is in words, and the points it adds."""

    kind: str
    detail: str
    points: float = 0.0


@dataclass(frozen=True)
class Candidate:
    record: Record
    score: float
    match: bool
    evidence: tuple[Evidence, ...]

    def points(self, *kinds: str) -> float:
        return sum(e.points for e in self.evidence if e.kind in kinds)


def _name_evidence(query_names: Sequence[tuple[str, str, bool]], record: Record, normalized: Sequence[tuple[str, str, bool]]) -> Evidence | None:
    """The best evidence that one of the query's names names the record."""
    best: Evidence | None = None
    for raw_q, q, q_alias in query_names:
        if not q:
            continue
        q_words = sorted(q.split())
        for raw_r, r, r_alias in normalized:
            alias = q_alias or r_alias
            what = f"the alias {_quoted(raw_r)}" if r_alias else f"the label {_quoted(raw_r)}"
            if q == r:
                found = Evidence("alias" if alias else "label", f"{_quoted(raw_q)} equals {what}", 90.0 if alias else 100.0)
            elif q_words == sorted(r.split()):
                found = Evidence("word-order", f"{_quoted(raw_q)} has the words of {what}", 80.0 if alias else 85.0)
            elif set(q_words) < set(r_words := r.split()) and any(len(w) >= 3 for w in q_words):
                # The more of the longer name the query covers, the likelier it names it.
                points = (45.0 if alias else 50.0) + 20.0 * len(set(q_words)) / len(set(r_words))
                found = Evidence("part-of-name", f"{_quoted(raw_q)} is part of {what}", round(points, 1))
            else:
                matcher = difflib.SequenceMatcher(None, q, r, autojunk=False)
                if matcher.real_quick_ratio() < _SIMILAR or matcher.quick_ratio() < _SIMILAR:
                    continue
                ratio = matcher.ratio()
                if ratio < _SIMILAR or not _words_correspond(q, r):
                    continue
                points = round(ratio * (75.0 if alias else 80.0), 1)
                found = Evidence("similar-name", f"{_quoted(raw_q)} is similar to {what} (ratio {ratio:.2f})", points)
            if best is None or found.points > best.points:
                best = found
    return best


def _words_correspond(a: str, b: str) -> bool:
    """Whether every word of three letters or more of the name with fewer words is
    nearly spelled (ratio >= 0.8) in the other: "Mariya Zakharova" for "Maria
    Zakharova", but not "Republic of India" for "Republic of Korea", nor "Jill Biden"
    for "Joe Biden", however alike the whole strings are.

    >>> _words_correspond("maria zakharova", "mariya zakharova"), _words_correspond("republic of korea", "republic of india")
    (True, False)
    """
    short, long = sorted((a.split(), b.split()), key=len)
    for word in short:
        if len(word) >= 3 and not any(difflib.SequenceMatcher(None, word, other, autojunk=False).ratio() >= _WORD_SIMILAR for other in long):
            return False
    return True


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


class EntityIndex:
    """Records ready to be searched. ``names`` holds a readable name for IRIs that
    are not records themselves (types, property values), for evidence texts."""

    def __init__(self, records: Iterable[Record], *, names: Mapping[str, str] | None = None) -> None:
        self.records = list(records)
        self.names = dict(names or {})
        for record in self.records:
            self.names.setdefault(record.iri, record.name)
        self._by_iri = {r.iri: r for r in self.records}
        self._normalized = {r.iri: [(raw, normalize(raw), alias) for raw, alias in r.names()] for r in self.records}

    def __len__(self) -> int:
        return len(self.records)

    def get(self, iri: str) -> Record | None:
        return self._by_iri.get(iri)

    def describe(self, iri: str) -> str:
        """``wd:Q6256 (country)``: an IRI, compacted, with its name when known."""
        name = self.names.get(iri)
        return f"{compact(iri)} ({name})" if name else compact(iri)

    def search(self, query: Query, *, limit: int = 10) -> list[Candidate]:
        """The records that answer ``query``, best first, at most ``limit``.

        Only records with a name or identifier in common with the query are
        candidates (with properties only, records agreeing on one of them); the
        first is flagged ``match`` when it is certain (see the module's docstring).
        """
        query_names = [(n, normalize(n), i > 0) for i, n in enumerate(query.names)]
        scored: list[Candidate] = []
        for record in self.records:
            candidate = self._score(query, query_names, record)
            if candidate is not None:
                scored.append(candidate)
        scored.sort(key=lambda c: (-c.score, c.record.name, c.record.iri))
        if scored:
            first = scored[0]
            runner_up = scored[1].score if len(scored) > 1 else 0.0
            certain = (
                first.score >= MATCH_SCORE
                and first.score - runner_up > MATCH_MARGIN
                and not any(e.kind == "property-mismatch" for e in first.evidence)
                and any(e.kind in ("identifier", "label", "alias") for e in first.evidence)
            )
            scored[0] = dataclasses.replace(first, match=certain)
        return scored[:limit]

    def _score(self, query: Query, query_names: Sequence[tuple[str, str, bool]], record: Record) -> Candidate | None:
        evidence: list[Evidence] = []
        if query.types:
            shared = sorted(query.types & record.types)
            if not shared:
                return None
            evidence.append(Evidence("type", "a " + ", ".join(self.describe(t) for t in shared)))
        known = query.identifiers & ({record.iri} | record.same_as)
        if known:
            evidence.append(Evidence("identifier", f"the query names {compact(sorted(known)[0])}", 100.0))
        elif query_names:
            named = _name_evidence(query_names, record, self._normalized[record.iri])
            if named is None:
                return None
            evidence.append(named)
        elif not query.properties:
            return None
        # With a name or identifier, properties confirm or contradict it; alone, the
        # share of queried properties that agree is the score.
        by_name = bool(known or query_names)
        agree_points = 5.0 if by_name else 100.0 / max(1, len(query.properties))
        agreed = 0
        for pid, wanted in query.properties.items():
            have = record.values.get(pid, frozenset())
            normalized_have = {normalize(v) for v in have}
            hit = next((w for w in wanted if w in have or normalize(w) in normalized_have), None)
            if hit is not None:
                agreed += 1
                evidence.append(Evidence("property", f"{compact(pid)} is {_quoted(hit)}", round(agree_points, 1)))
            elif have:
                shown = ", ".join(sorted(_quoted(self.names.get(v, v)) for v in have)[:3])
                evidence.append(Evidence("property-mismatch", f"{compact(pid)} is {shown}, not {_quoted(wanted[0])}", -20.0))
        if not by_name and not agreed:
            return None
        shared_related = sorted(query.related & record.related)
        if shared_related:
            shown = ", ".join(self.describe(i) for i in shared_related[:3])
            evidence.append(Evidence("related", f"both are connected to {shown}", 5.0))
        score = max(0.0, min(100.0, round(sum(e.points for e in evidence), 1)))
        return Candidate(record, score, False, tuple(evidence))

    def suggest(self, prefix: str, *, offset: int = 0, limit: int = 10) -> list[Record]:
        """Records with a name that starts with ``prefix`` (or a word of a name that
        does, ranked after), or whose IRI is ``prefix``; shortest names first."""
        wanted = normalize(prefix)
        if not wanted:
            return []
        ranked: list[tuple[int, int, str, Record]] = []
        for record in self.records:
            rank = None
            if prefix.strip() in ({record.iri} | record.same_as):
                rank = 0
            for raw, name, _ in self._normalized[record.iri]:
                if name.startswith(wanted):
                    rank = min(rank if rank is not None else 1, 1)
                elif rank is None and any(word.startswith(wanted) for word in name.split()[1:]):
                    rank = 2
            if rank is not None:
                ranked.append((rank, len(record.name), record.name, record))
        ranked.sort(key=lambda item: item[:3])
        return [item[3] for item in ranked[offset : offset + limit]]
