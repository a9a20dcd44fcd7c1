"""HTML pages of the Linked Data interface: entities, the ontology, and "not found".

Plain server-side HTML: no JavaScript, no third-party assets, one style sheet served
by the app at ``/assets/ld.css``. Every piece of data is escaped on its way in
(:func:`esc`), and only http(s) IRIs ever become links.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import pyoxigraph as ox

from ..namespaces import GRAPH, INFERRED_GRAPH, PK, PREFIXES

if TYPE_CHECKING:
    from .linked_data import Description, Fact, StatementSummary

__all__ = ["Site", "esc", "compact", "render_entity", "render_ontology", "render_not_found"]

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
XSD = "http://www.w3.org/2001/XMLSchema#"
PROV = "http://www.w3.org/ns/prov#"
WIKIDATA_ENTITY = "http://www.wikidata.org/entity/"
_PLAIN_DATATYPES = {XSD + "string", RDF + "langString"}
# How a statement involves the entity, read as "<role> <entity>": "on behalf of Japan".
_ROLE_PHRASES = {
    str(PK.speaker): "said by",
    str(PK.onBehalfOf): "on behalf of",
    str(PK.addressedTo): "addressed to",
    str(PK.about): "about",
    str(PK.respondsTo): "in response to",
}
_ALTERNATES = (("turtle", "text/turtle", "Turtle"), ("jsonld", "application/ld+json", "JSON-LD"),
               ("ntriples", "application/n-triples", "N-Triples"), ("rdfxml", "application/rdf+xml", "RDF/XML"))

Names = Callable[[str], "str | None"]


def esc(text: object) -> str:
    """Escape text for HTML element content and quoted attribute values.

    >>> esc('<a href="x">&</a>')
    '&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;'
    """
    return html.escape(str(text), quote=True)


def compact(iri: str) -> str:
    """``pk:JointPatrol`` for a IRI in a known namespace, else the IRI itself.

    >>> compact("https://w3id.org/patrolkg/ontology#JointPatrol")
    'pk:JointPatrol'
    """
    for prefix, namespace in PREFIXES.items():
        if iri.startswith(namespace) and iri != namespace:
            return f"{prefix}:{iri[len(namespace):]}"
    return iri


def _graph_name(graph: str) -> str:
    """A graph's short name: ``reference``, ``article/cnsnews-2022-05``; other IRIs whole."""
    return graph[len(str(GRAPH)):] if graph.startswith(str(GRAPH)) else graph


@dataclass(frozen=True)
class Site:
    """Where the app is mounted (``root``, "" at the top) and the public base IRI."""

    root: str
    base_iri: str

    def url(self, path: str) -> str:
        return self.root + path

    def href(self, iri: str) -> str | None:
        """Where a link to ``iri`` should go: our own pages for our IRIs, the Wikidata
        page for a Wikidata item, the IRI itself if it is http(s), else nowhere."""
        ids, ontology = self.base_iri + "id/", self.base_iri + "ontology"
        if iri.startswith(ids):
            return self.url("/id/" + quote(iri[len(ids):], safe="/._~-"))
        if iri == ontology or iri.startswith(ontology + "#"):
            return self.url("/ontology" + iri[len(ontology):])
        if iri.startswith(WIKIDATA_ENTITY):
            return "https://www.wikidata.org/wiki/" + quote(iri[len(WIKIDATA_ENTITY):], safe="")
        if iri.startswith(("http://", "https://")):
            return iri
        return None


def _link(iri: str, text: str, site: Site, *, cls: str = "") -> str:
    href = site.href(iri)
    attrs = f' class="{esc(cls)}"' if cls else ""
    if href is None:
        return f'<span title="{esc(iri)}"{attrs}>{esc(text)}</span>'
    return f'<a href="{esc(href)}" title="{esc(iri)}"{attrs}>{esc(text)}</a>'


def _literal(term: ox.Literal) -> str:
    lang = f' lang="{esc(term.language)}"' if term.language else ""
    text = f'<span class="literal"{lang}>{esc(term.value)}</span>'
    if term.language:
        return f'{text} <span class="lang">@{esc(term.language)}</span>'
    if term.datatype.value not in _PLAIN_DATATYPES:
        return f'{text} <span class="datatype">{esc(compact(term.datatype.value))}</span>'
    return text


def _term(node: object, names: Names, site: Site) -> str:
    """Any RDF term as HTML: a named link, a literal, or a blank node."""
    if isinstance(node, ox.NamedNode):
        if node.value.startswith(WIKIDATA_ENTITY):
            return _link(node.value, f"Wikidata {node.value[len(WIKIDATA_ENTITY):]}", site, cls="external")
        return _link(node.value, names(node.value) or compact(node.value), site)
    if isinstance(node, ox.Literal):
        return _literal(node)
    return f'<span class="bnode">{esc(node)}</span>'


def _predicate(iri: str, names: Names, site: Site) -> str:
    label, short = names(iri), compact(iri)
    code = f"<code>{esc(short)}</code>"
    return f"{_link(iri, label, site)} {code}" if label else _link(iri, short, site)


def _layout(title: str, body: str, site: Site, *, alternates: bool = True) -> str:
    links = "".join(
        f'<link rel="alternate" type="{t}" href="?format={f}" title="{n}">' for f, t, n in _ALTERNATES
    ) if alternates else ""
    nav = "".join(
        f'<a href="{esc(site.url(path))}">{name}</a>'
        for path, name in (("/query", "Query"), ("/timeline", "Timeline"), ("/ontology", "Ontology"), ("/.well-known/void", "Dataset"))
    )
    formats = " · ".join(f'<a href="?format={f}">{n}</a>' for f, _, n in _ALTERNATES)
    footer = f"<p>Also as {formats}.</p>" if alternates else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)} · patrolkg</title>\n"
        f'<link rel="stylesheet" href="{esc(site.url("/assets/ld.css"))}">\n{links}\n</head>\n<body>\n'
        f'<header class="site"><a class="home" href="{esc(site.url("/"))}">patrolkg</a><nav>{nav}</nav></header>\n'
        f"<main>\n{body}\n</main>\n"
        f'<footer class="site">{footer}<p>patrolkg: a knowledge graph of the Russia–China joint bomber patrols.</p></footer>\n'
        "</body>\n</html>\n"
    )


# ------------------------------------------------------------------------ entities


def _sources(fact: Fact) -> str:
    tags = [f'<span class="graph" title="{esc(g)}">{esc(_graph_name(g))}</span>' for g in fact.sources]
    if fact.inferred:
        tags.append(f'<span class="inferred" title="only in {esc(INFERRED_GRAPH)}">inferred</span>')
    return " ".join(tags)


def _fact_table(facts: Sequence[Fact], other: Callable[[Fact], object], heading: str, names: Names, site: Site) -> str:
    by_predicate: dict[str, list[Fact]] = {}
    for fact in facts:
        by_predicate.setdefault(fact.predicate.value, []).append(fact)

    def order(iri: str) -> tuple[int, str]:
        first = {RDF + "type": 0, RDFS + "label": 1, SKOS + "altLabel": 2}
        return first.get(iri, 3), (names(iri) or compact(iri)).lower()

    rows = []
    for iri in sorted(by_predicate, key=order):
        group = sorted(by_predicate[iri], key=lambda f: (f.inferred, _sort_text(other(f), names)))
        for index, fact in enumerate(group):
            head = f'<th scope="row" rowspan="{len(group)}">{_predicate(iri, names, site)}</th>' if index == 0 else ""
            css = ' class="inferred-fact"' if fact.inferred else ""
            rows.append(f"<tr{css}>{head}<td>{_term(other(fact), names, site)}</td><td>{_sources(fact)}</td></tr>")
    return (
        f'<table class="facts"><thead><tr><th scope="col">Property</th><th scope="col">{esc(heading)}</th>'
        f'<th scope="col">Source graph</th></tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody></table>"
    )


def _sort_text(node: object, names: Names) -> str:
    if isinstance(node, ox.NamedNode):
        return (names(node.value) or node.value).lower()
    return str(getattr(node, "value", node)).lower()


def _citation(article: str, description: Description, site: Site) -> str:
    text = description.headlines.get(article) or description.label(article) or compact(article)
    return f"<cite>{_link(article, text, site)}</cite>"


def _quotes(quotes: Iterable[str]) -> str:
    return "".join(f'<blockquote lang="en"><p>“{esc(q)}”</p></blockquote>' for q in quotes)


def _statement(summary: StatementSummary, description: Description, names: Names, site: Site) -> str:
    title = _link(summary.iri, names(summary.iri) or compact(summary.iri), site)
    name = description.label(description.iri) or "this"
    roles = ", ".join(f"{_ROLE_PHRASES.get(r, compact(r))} {name}" for r in summary.roles)
    parts = [f'<h3>{title}</h3><p class="meta"><span class="role">{esc(roles)}</span>']
    if summary.date:
        parts.append(f' · <time>{esc(summary.date)}</time>')
    parts.append("</p>")
    if summary.speakers:
        parts.append("<p>Said by " + ", ".join(_link(s, names(s) or compact(s), site) for s in summary.speakers) + "</p>")
    parts.append(_quotes(summary.quotes))
    if summary.sources:
        parts.append('<p class="source">Source: ' + "; ".join(_citation(a, description, site) for a in summary.sources) + "</p>")
    return '<li class="statement">' + "".join(parts) + "</li>"


def _site_name(href: str) -> str:
    host = urlsplit(href).hostname or href
    return "Wikidata" if host == "www.wikidata.org" else host


def _elsewhere(description: Description, title: str, names: Names, site: Site) -> str:
    """The entity's links to other datasets (owl:sameAs, with the graph that holds
    each) and a "see also" to each linked item's own page (and to rdfs:seeAlso pages)."""
    links = sorted(
        (f for f in description.outgoing if f.predicate.value == OWL + "sameAs" and isinstance(f.object, ox.NamedNode)),
        key=lambda f: f.object.value,
    )
    see_also = [t.value for t in description.values(RDFS + "seeAlso") if isinstance(t, ox.NamedNode)]
    if not links and not see_also:
        return ""
    items = "".join(f"<li>{_term(f.object, names, site)} <code>{esc(f.object.value)}</code> {_sources(f)}</li>" for f in links)
    external = [site.href(f.object.value) for f in links] + [site.href(iri) for iri in see_also]
    pages = [href for href in dict.fromkeys(external) if href and href.startswith(("http://", "https://"))]
    also = " · ".join(f'<a class="see-also external" rel="external" href="{esc(href)}">{esc(title)} on {esc(_site_name(href))}</a>' for href in pages)
    return (
        '<section id="elsewhere"><h2>Elsewhere</h2>'
        + (f'<p>The same {esc(title)} in other datasets (<code>owl:sameAs</code>):</p><ul class="links">{items}</ul>' if links else "")
        + (f'<p class="see-also">See also: {also}</p>' if also else "")
        + "</section>"
    )


def render_entity(description: Description, site: Site) -> str:
    """The page of one entity: names, types, links elsewhere, statements and facts."""
    names: Names = description.label
    iri = description.iri
    title = description.label(iri) or compact(iri)
    body = [f"<h1>{esc(title)}</h1>", f'<p class="iri"><code>{esc(iri)}</code></p>']

    types = [f for f in description.outgoing if f.predicate.value == RDF + "type"]
    if types:
        shown = sorted(types, key=lambda f: (f.inferred, _sort_text(f.object, names)))
        items = [_term(f.object, names, site) + (' <span class="inferred">inferred</span>' if f.inferred else "") for f in shown]
        body.append('<p class="types">A ' + ", ".join(items) + "</p>")
    aliases = [t for t in description.values(SKOS + "altLabel") if isinstance(t, ox.Literal)]
    if aliases:
        body.append('<p class="aliases">Also called ' + ", ".join(_literal(a) for a in aliases) + "</p>")
    for prop in (str(PK.summary), SKOS + "definition"):
        body.extend(f'<p class="summary">{esc(t.value)}</p>' for t in description.values(prop) if isinstance(t, ox.Literal))

    body.append(_elsewhere(description, title, names, site))

    quotes = [t.value for t in description.values(str(PK.quote))]
    if quotes:
        sources = [t.value for t in description.values(PROV + "wasDerivedFrom") if isinstance(t, ox.NamedNode)]
        cited = "; ".join(_citation(a, description, site) for a in sources)
        body.append(f'<section id="quotes"><h2>Quotes</h2>{_quotes(sorted(quotes))}'
                    + (f'<p class="source">Source: {cited}</p>' if cited else "") + "</section>")

    if description.statements:
        items = "\n".join(_statement(s, description, names, site) for s in description.statements)
        body.append(f'<section id="statements"><h2>Statements by or about {esc(title)}</h2>\n<ol class="statements">\n{items}\n</ol></section>')

    if description.truncated:
        body.append('<p class="note">This entity has more facts than the page shows; ask the SPARQL endpoint for all of them.</p>')
    if description.outgoing:
        body.append('<section id="facts"><h2>Facts</h2>'
                    + _fact_table(description.outgoing, lambda f: f.object, "Value", names, site) + "</section>")
    if description.incoming:
        body.append(f'<section id="referenced-by"><h2>Referenced by</h2><p>Facts in which {esc(title)} is the value.</p>'
                    + _fact_table(description.incoming, lambda f: f.subject, "Subject", names, site) + "</section>")
    body.append(
        '<p class="legend"><span class="inferred">inferred</span> marks a fact no source states: '
        f"the OWL 2 RL reasoner derived it, and only the graph <code>{esc(INFERRED_GRAPH)}</code> holds it. "
        "The source graph of every other fact is named beside it.</p>"
    )
    return _layout(title, "\n".join(body), site)


# ------------------------------------------------------------------------ ontology


class _Terms:
    """The ontology's triples grouped by subject, with helpers to read them."""

    def __init__(self, triples: Iterable[ox.Triple]) -> None:
        self.by_subject: dict[object, dict[str, list[object]]] = {}
        for t in triples:
            self.by_subject.setdefault(t.subject, {}).setdefault(t.predicate.value, []).append(t.object)

    def get(self, node: object, prop: str) -> list[object]:
        return self.by_subject.get(node, {}).get(prop, [])

    def first(self, node: object, prop: str) -> str | None:
        found = [v for v in self.get(node, prop) if isinstance(v, ox.Literal)]
        english = [v for v in found if v.language in ("en", None)]
        return (english or found)[0].value if found else None

    def of_type(self, type_iri: str) -> list[ox.NamedNode]:
        kind = ox.NamedNode(type_iri)
        return [s for s, props in self.by_subject.items() if isinstance(s, ox.NamedNode) and kind in props.get(RDF + "type", [])]

    def items(self, head: object) -> list[object]:
        found = []
        while isinstance(head, ox.BlankNode) and len(found) < 1000:
            found.extend(self.get(head, RDF + "first"))
            head = (self.get(head, RDF + "rest") or [None])[0]
        return found


def render_ontology(triples: Sequence[ox.Triple], labels: dict[str, ox.Literal], site: Site) -> str:
    """The ontology page: its header, then every class, property and concept scheme
    under an anchor named after its local name (``#JointPatrol``)."""
    terms = _Terms(triples)
    own_labels = {s.value: terms.first(s, RDFS + "label") for s in terms.by_subject if isinstance(s, ox.NamedNode)}

    def names(iri: str) -> str | None:
        return own_labels.get(iri) or (labels[iri].value if iri in labels else None)

    def expression(node: object) -> str:
        for op, word in ((OWL + "unionOf", " or "), (OWL + "intersectionOf", " and ")):
            for head in terms.get(node, op):
                return "(" + word.join(expression(i) for i in terms.items(head)) + ")"
        return _term(node, names, site)

    ontology = next(iter(terms.of_type(OWL + "Ontology")), None)
    title = (terms.first(ontology, "http://purl.org/dc/terms/title") if ontology else None) or "patrolkg ontology"
    body = [f"<h1>{esc(title)}</h1>"]
    if ontology is not None:
        body.append(f'<p class="iri"><code>{esc(ontology.value)}</code></p>')
        description = terms.first(ontology, "http://purl.org/dc/terms/description")
        if description:
            body.append(f'<p class="summary">{esc(description)}</p>')
        facts = [("Version", [ox.Literal(v) for v in [terms.first(ontology, OWL + "versionInfo")] if v] + terms.get(ontology, OWL + "versionIRI")),
                 ("Licence", terms.get(ontology, "http://purl.org/dc/terms/license")),
                 ("Preferred prefix", terms.get(ontology, "http://purl.org/vocab/vann/preferredNamespacePrefix"))]
        body.append('<dl class="header">' + "".join(
            f"<dt>{name}</dt><dd>{', '.join(_term(v, names, site) for v in values)}</dd>" for name, values in facts if values
        ) + "</dl>")

    namespace = str(PK)
    sections = [
        ("classes", "Classes", OWL + "Class"),
        ("object-properties", "Object properties", OWL + "ObjectProperty"),
        ("datatype-properties", "Datatype properties", OWL + "DatatypeProperty"),
        ("annotation-properties", "Annotation properties", OWL + "AnnotationProperty"),
        ("concept-schemes", "Concept schemes", SKOS + "ConceptScheme"),
    ]
    details = [
        ("Subclass of", RDFS + "subClassOf"), ("Equivalent to", OWL + "equivalentClass"), ("Disjoint with", OWL + "disjointWith"),
        ("Subproperty of", RDFS + "subPropertyOf"), ("Inverse of", OWL + "inverseOf"),
        ("Domain", RDFS + "domain"), ("Range", RDFS + "range"), ("Comment", RDFS + "comment"),
    ]
    contents, blocks = [], []
    for anchor, heading, type_iri in sections:
        members = sorted((s for s in terms.of_type(type_iri) if s.value.startswith(namespace)), key=lambda s: s.value)
        if not members:
            continue
        contents.append(f'<li><a href="#{anchor}">{heading}</a> ({len(members)})</li>')
        entries = []
        for node in members:
            local = node.value[len(namespace):]
            label = names(node.value) or local
            kinds = [compact(t.value).removeprefix("owl:") for t in terms.get(node, RDF + "type")
                     if isinstance(t, ox.NamedNode) and t.value != type_iri and t.value.startswith(OWL)]
            rows = [(name, [expression(v) for v in terms.get(node, prop)]) for name, prop in details]
            rows.append(("Characteristics", [esc(k) for k in kinds]))
            if type_iri == SKOS + "ConceptScheme":
                concepts = [s for s, props in terms.by_subject.items() if node in props.get(SKOS + "inScheme", [])]
                rows.append(("Concepts", [_term(c, names, site) for c in sorted(concepts, key=lambda c: str(c))]))
            definition = terms.first(node, SKOS + "definition")
            entries.append(
                f'<section class="term" id="{esc(local)}"><h3>{esc(label)} <code>pk:{esc(local)}</code> '
                f'<a class="anchor" href="#{esc(local)}" aria-label="link to {esc(label)}">#</a></h3>'
                + (f"<p>{esc(definition)}</p>" if definition else "")
                + '<dl>' + "".join(f"<dt>{name}</dt><dd>{', '.join(values)}</dd>" for name, values in rows if values) + "</dl></section>"
            )
        blocks.append(f'<section id="{anchor}"><h2>{heading}</h2>\n' + "\n".join(entries) + "</section>")

    all_disjoint = ox.NamedNode(OWL + "AllDisjointClasses")
    disjoint = [terms.items(head) for props in terms.by_subject.values()
                if all_disjoint in props.get(RDF + "type", []) for head in props.get(OWL + "members", [])]
    if disjoint:
        items = "".join("<li>" + ", ".join(_term(m, names, site) for m in group) + "</li>" for group in disjoint)
        blocks.append(f'<section id="disjointness"><h2>Pairwise disjoint classes</h2><ul>{items}</ul></section>')
        contents.append('<li><a href="#disjointness">Disjointness</a></li>')
    body.append(f'<nav class="contents"><h2>Contents</h2><ul>{"".join(contents)}</ul></nav>')
    body.extend(blocks)
    return _layout(title, "\n".join(body), site)


def render_not_found(message: str, site: Site) -> str:
    """A small 404 page for browsers."""
    body = (
        f"<h1>Not found</h1><p>{esc(message)}.</p>"
        f'<p>Identifiers look like <a href="{esc(site.url("/id/state/japan"))}"><code>/id/state/japan</code></a>. '
        f'Browse the <a href="{esc(site.url("/ontology"))}">ontology</a> or ask the '
        f'<a href="{esc(site.url("/query"))}">query interface</a>.</p>'
    )
    return _layout("Not found", body, site, alternates=False)
