"""The joint patrols in order, with their participants and the reactions to each.

:func:`load_timeline` reads the store into plain dataclasses; :func:`render_timeline`
writes them as HTML. Both are independent of the web framework, so the page is tested
without a server and the reading without HTML.

A reaction belongs to a patrol when it ``pk:respondsTo`` it or is ``pk:about`` it; a
statement about several patrols appears under each.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape

import pyoxigraph as ox

from ..namespaces import PK, PREFIXES
from ..store import Store

__all__ = ["Entity", "Reaction", "Patrol", "load_timeline", "render_timeline", "format_date"]

_XSD = PREFIXES["xsd"]
_PROLOGUE = "".join(f"PREFIX {name}: <{iri}>\n" for name, iri in PREFIXES.items())

_PATROLS = _PROLOGUE + """
SELECT DISTINCT ?patrol ?ordinal ?date WHERE {
  ?patrol a pk:JointPatrol .
  OPTIONAL { ?patrol pk:ordinal ?ordinal }
  OPTIONAL { ?patrol pk:date ?date }
}"""

_PATROL_FACTS = _PROLOGUE + """
SELECT DISTINCT ?patrol ?property ?value WHERE {
  VALUES ?property { rdfs:label pk:participant pk:aircraftType pk:aircraftCategory pk:flewNear }
  ?patrol a pk:JointPatrol ; ?property ?value .
}"""

_REACTIONS = _PROLOGUE + """
SELECT DISTINCT ?patrol ?reaction ?via ?type WHERE {
  ?patrol a pk:JointPatrol .
  { ?reaction pk:respondsTo ?patrol BIND("respondsTo" AS ?via) }
  UNION { ?reaction pk:about ?patrol BIND("about" AS ?via) }
  ?reaction a ?type .
  ?type rdfs:subClassOf* pk:Reaction .
}"""

_REACTION_FACTS = _PROLOGUE + """
SELECT DISTINCT ?reaction ?property ?value WHERE {
  VALUES ?property { rdfs:label pk:speaker pk:inPost pk:onBehalfOf pk:stance pk:quote pk:summary pk:sourceText }
  ?patrol a pk:JointPatrol .
  ?reaction pk:respondsTo|pk:about ?patrol ; ?property ?value .
}"""

_LABELS = _PROLOGUE + """
SELECT DISTINCT ?entity ?label ?state WHERE {
  VALUES ?entity { %s }
  OPTIONAL { ?entity rdfs:label ?label FILTER (lang(?label) = "" || langMatches(lang(?label), "en")) }
  BIND (EXISTS { ?entity a pk:State } AS ?state)
}"""


@dataclass(frozen=True, order=True)
class Entity:
    """Something with a page: its label first, so that sorting sorts by label."""

    label: str
    iri: str


@dataclass
class Reaction:
    iri: str
    label: str
    kind: str  # "statement", "military response" or "reaction"
    responds: bool = False  # pk:respondsTo the patrol (else only pk:about it)
    speakers: list[Entity] = field(default_factory=list)
    posts: list[Entity] = field(default_factory=list)
    on_behalf_of: list[Entity] = field(default_factory=list)
    stances: list[Entity] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    summary: str | None = None
    side: Entity | None = None  # the state it speaks for, if any


@dataclass
class Patrol:
    iri: str
    label: str
    ordinal: int | None
    date: str | None  # the lexical form, at the precision of the data
    date_type: str | None  # "date", "gYearMonth" or "gYear"
    participants: list[Entity] = field(default_factory=list)
    aircraft: list[Entity] = field(default_factory=list)
    flew_near: list[Entity] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)


def _solutions(store: Store, sparql: str) -> Iterable[ox.QuerySolution]:
    result = store.query(sparql)
    assert isinstance(result, ox.QuerySolutions)
    return result


def _compact(iri: str) -> str:
    for name, namespace in sorted(PREFIXES.items(), key=lambda item: -len(item[1])):
        if iri.startswith(namespace) and iri != namespace:
            return f"{name}:{iri[len(namespace):]}"
    return iri


def _labels(store: Store, iris: set[str]) -> tuple[dict[str, str], set[str]]:
    """The English (or untagged) label of each IRI, and which IRIs are states."""
    if not iris:
        return {}, set()
    values = " ".join(str(ox.NamedNode(iri)) for iri in sorted(iris))
    labels: dict[str, str] = {}
    states: set[str] = set()
    for row in _solutions(store, _LABELS % values):
        iri = row["entity"].value
        label = row["label"]
        if label is not None and (iri not in labels or label.value < labels[iri]):
            labels[iri] = label.value
        if row["state"] is not None and row["state"].value == "true":
            states.add(iri)
    return labels, states


def _ordinal(term: ox.Literal | None) -> int | None:
    try:
        return int(term.value) if term is not None else None
    except ValueError:
        return None


def _quote_order(quotes: list[str], source_texts: list[str]) -> list[str]:
    """Quotes in the order the article prints them (by position in the source text)."""
    text = " ".join(source_texts)

    def position(quote: str) -> tuple[int, str]:
        found = text.find(quote.rstrip(".,"))
        return (found if found >= 0 else len(text), quote)

    return sorted(quotes, key=position)


def load_timeline(store: Store) -> list[Patrol]:
    """Every ``pk:JointPatrol`` in order of ordinal (then date), with its reactions."""
    patrols: dict[str, Patrol] = {}
    for row in _solutions(store, _PATROLS):
        iri = row["patrol"].value
        ordinal, date = _ordinal(row["ordinal"]), row["date"]
        known = patrols.get(iri)
        if known is None:
            known = patrols[iri] = Patrol(iri, "", ordinal, None, None)
        if ordinal is not None and (known.ordinal is None or ordinal < known.ordinal):
            known.ordinal = ordinal
        if date is not None and known.date is None:
            known.date = date.value
            datatype = date.datatype.value
            known.date_type = datatype[len(_XSD):] if datatype.startswith(_XSD) else None

    facts: dict[str, dict[str, set[str]]] = {}
    for row in _solutions(store, _PATROL_FACTS):
        bucket = facts.setdefault(row["patrol"].value, {}).setdefault(row["property"].value, set())
        bucket.add(row["value"].value)

    reactions: dict[tuple[str, str], Reaction] = {}
    types: dict[str, set[str]] = {}
    for row in _solutions(store, _REACTIONS):
        patrol, iri = row["patrol"].value, row["reaction"].value
        types.setdefault(iri, set()).add(row["type"].value)
        reaction = reactions.setdefault((patrol, iri), Reaction(iri, "", ""))
        reaction.responds = reaction.responds or row["via"].value == "respondsTo"

    reaction_facts: dict[str, dict[str, set[str]]] = {}
    for row in _solutions(store, _REACTION_FACTS):
        bucket = reaction_facts.setdefault(row["reaction"].value, {}).setdefault(row["property"].value, set())
        bucket.add(row["value"].value)

    wanted = set(patrols) | {iri for _, iri in reactions}
    for by_property in [*facts.values(), *reaction_facts.values()]:
        for prop in (PK.participant, PK.aircraftType, PK.aircraftCategory, PK.flewNear, PK.speaker, PK.inPost, PK.onBehalfOf, PK.stance):
            wanted |= by_property.get(str(prop), set())
    labels, states = _labels(store, wanted)

    def entities(by_property: dict[str, set[str]], *props: str) -> list[Entity]:
        iris = set().union(*(by_property.get(str(p), set()) for p in props))
        return sorted(Entity(labels.get(iri) or _compact(iri), iri) for iri in iris)

    for iri, patrol in patrols.items():
        own = facts.get(iri, {})
        patrol.label = labels.get(iri) or _compact(iri)
        patrol.participants = entities(own, PK.participant)
        patrol.aircraft = entities(own, PK.aircraftType, PK.aircraftCategory)
        patrol.flew_near = entities(own, PK.flewNear)

    for (patrol_iri, iri), reaction in reactions.items():
        own = reaction_facts.get(iri, {})
        kinds = types[iri]
        reaction.kind = "statement" if str(PK.Statement) in kinds else "military response" if str(PK.MilitaryResponse) in kinds else "reaction"
        reaction.label = labels.get(iri) or _compact(iri)
        reaction.speakers = entities(own, PK.speaker)
        reaction.posts = entities(own, PK.inPost)
        reaction.on_behalf_of = entities(own, PK.onBehalfOf)
        reaction.stances = entities(own, PK.stance)
        reaction.quotes = _quote_order(sorted(own.get(str(PK.quote), set())), sorted(own.get(str(PK.sourceText), set())))
        summaries = sorted(own.get(str(PK.summary), set()))
        reaction.summary = summaries[0] if summaries else None
        speaking_states = [e for e in reaction.speakers if e.iri in states]
        reaction.side = (reaction.on_behalf_of or speaking_states or [None])[0]
        patrols[patrol_iri].reactions.append(reaction)

    for patrol in patrols.values():
        _order_reactions(patrol)
    return sorted(patrols.values(), key=lambda p: (p.ordinal is None, p.ordinal or 0, p.date or "", p.iri))


def _order_reactions(patrol: Patrol) -> None:
    """Group by the state each reaction speaks for: first the states that responded to
    the patrol itself, then the others, then voices that speak for no state."""
    responded = {r.side for r in patrol.reactions if r.responds and r.side}

    def key(r: Reaction) -> tuple[object, ...]:
        rank = 2 if r.side is None else 0 if r.side in responded else 1
        return (rank, r.side or Entity("", ""), not r.responds, [s.label for s in r.speakers], r.label)

    patrol.reactions.sort(key=key)


def format_date(lexical: str, date_type: str | None) -> str:
    """A date for people, at the precision of the data.

    >>> format_date("2019-07", "gYearMonth")
    'July 2019'
    >>> format_date("2022-05-24", "date")
    '24 May 2022'
    >>> format_date("2019", "gYear")
    '2019'
    """
    try:
        if date_type == "gYearMonth":
            year, month = lexical[:7].split("-")
            return f"{calendar.month_name[int(month)]} {year}"
        if date_type == "date":
            year, month, day = lexical[:10].split("-")
            return f"{int(day)} {calendar.month_name[int(month)]} {year}"
    except (ValueError, IndexError):
        pass
    return lexical


# ------------------------------------------------------------------ rendering

Href = Callable[[str], str]


def _link(entity: Entity, href: Href, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<a{cls} href="{escape(href(entity.iri))}" title="{escape(entity.iri)}">{escape(entity.label)}</a>'


def _links(entities: list[Entity], href: Href) -> str:
    return ", ".join(_link(e, href) for e in entities)


def _stance_class(stance: Entity) -> str:
    slug = stance.iri.rstrip("/").rsplit("/", 1)[-1]
    return "stance stance-" + "".join(c for c in slug if c.isalnum() or c == "-")


def _render_reaction(reaction: Reaction, href: Href) -> str:
    who = [_link(s, href, "speaker") for s in reaction.speakers]
    if reaction.posts:
        who.append('<span class="post">' + ", ".join(_link(p, href) for p in reaction.posts) + "</span>")
    if reaction.on_behalf_of and reaction.on_behalf_of != reaction.speakers:
        who.append('<span class="behalf">for ' + _links(reaction.on_behalf_of, href) + "</span>")
    relation = "responds to the patrol" if reaction.responds else "about the patrol"
    parts = [
        f'<li class="reaction" data-kind="{escape(reaction.kind)}">',
        f'<p class="reaction-who">{" ".join(who) or "<span>unattributed</span>"}'
        f'<span class="reaction-kind">{escape(reaction.kind)} · {relation}</span></p>',
        f'<p class="reaction-title">{_link(Entity(reaction.label, reaction.iri), href)}</p>',
    ]
    if reaction.stances:
        parts.append('<ul class="stances" aria-label="stances">')
        parts += [f"<li>{_link(s, href, _stance_class(s))}</li>" for s in reaction.stances]
        parts.append("</ul>")
    parts += [f'<blockquote class="quote" lang="en">“{escape(q)}”</blockquote>' for q in reaction.quotes]
    if reaction.summary and reaction.quotes:
        parts.append(f'<details class="summary"><summary>In context</summary><p lang="en">{escape(reaction.summary)}</p></details>')
    elif reaction.summary:
        parts.append(f'<p class="summary" lang="en">{escape(reaction.summary)}</p>')
    parts.append("</li>")
    return "".join(parts)


def _render_reactions(patrol: Patrol, href: Href) -> str:
    if not patrol.reactions:
        return '<p class="no-reactions">No reactions to this patrol are recorded.</p>'
    count = len(patrol.reactions)
    parts = [f'<section class="reactions"><h3>Reactions <span class="count">{count}</span></h3>']
    side: Entity | None | bool = False
    for reaction in patrol.reactions:
        if reaction.side != side:
            if side is not False:
                parts.append("</ul></div>")
            side = reaction.side
            heading = _link(side, href) if side else "Other voices"
            parts.append(f'<div class="side"><h4>{heading}</h4><ul class="reaction-list">')
        parts.append(_render_reaction(reaction, href))
    parts.append("</ul></div></section>")
    return "".join(parts)


def _render_patrol(patrol: Patrol, href: Href) -> str:
    anchor = f"patrol-{patrol.ordinal}" if patrol.ordinal is not None else None
    ident = f' id="{anchor}"' if anchor else ""
    ordinal = str(patrol.ordinal) if patrol.ordinal is not None else "?"
    when = (
        f'<time datetime="{escape(patrol.date)}">{escape(format_date(patrol.date, patrol.date_type))}</time>'
        if patrol.date
        else '<span class="undated">date unknown</span>'
    )
    facts = [("Participants", patrol.participants), ("Aircraft", patrol.aircraft), ("Flew near", patrol.flew_near)]
    rows = "".join(f"<dt>{name}</dt><dd>{_links(items, href)}</dd>" for name, items in facts if items)
    return (
        f'<li class="tl-item"{ident} data-ordinal="{escape(ordinal)}">'
        f'<div class="tl-marker" aria-hidden="true"><span>{escape(ordinal)}</span></div>'
        f'<article class="tl-card"><header><p class="tl-when">{when}'
        f'<span class="tl-ordinal">patrol no. {escape(ordinal)}</span></p>'
        f"<h2>{_link(Entity(patrol.label, patrol.iri), href)}</h2></header>"
        f'<dl class="facts">{rows}</dl>{_render_reactions(patrol, href)}</article></li>'
    )


def _gap(after: Patrol, before: Patrol) -> str:
    if after.ordinal is None or before.ordinal is None or before.ordinal - after.ordinal < 2:
        return ""
    first, last = after.ordinal + 1, before.ordinal - 1
    which = f"Patrol {first}" if first == last else f"Patrols {first}–{last}"
    return f'<li class="tl-gap"><p>{which}: not in the graph; none of the bundled sources describes them.</p></li>'


def render_timeline(patrols: list[Patrol], href: Href) -> str:
    """The timeline as an HTML fragment; ``href`` maps an IRI to the link to use."""
    if not patrols:
        return '<p class="empty">The store holds no joint patrols.</p>'
    items = []
    for index, patrol in enumerate(patrols):
        if index:
            items.append(_gap(patrols[index - 1], patrol))
        items.append(_render_patrol(patrol, href))
    return '<ol class="timeline">' + "".join(items) + "</ol>"
