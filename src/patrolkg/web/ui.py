"""The pages people use: a home page, the query editor at ``/query``, the timeline of
patrols at ``/timeline``, and the few static files they need at ``/static/...``.

Everything is served by the app itself and works offline: plain HTML written here,
one stylesheet and one script, no CDN and no build step. The query page talks to the
SPARQL endpoint (``/sparql``) like any other client; the timeline is rendered on the
server from the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from html import escape
from importlib.resources import files
from urllib.parse import quote

import pyoxigraph as ox
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from .. import __version__
from ..errors import NotFound
from ..namespaces import PREFIXES
from ..resources import NamedQuery, named_queries
from . import openapi
from .services import Services, services
from .timeline import load_timeline, render_timeline

__all__ = ["router", "STATIC_FILES", "entity_href", "local_links"]

router = APIRouter()

#: The files under ``web/static`` that are served, with their media types. Nothing
#: else is: a name not listed here is a 404, whatever exists on disk.
STATIC_FILES: dict[str, str] = {
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
}

#: The site icon (the brand's diamond), served at ``/favicon.ico`` where browsers look
#: for it on every page, entity pages included; SVG, which browsers accept there.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#141b2b"/>'
    '<path d="M16 5 27 16 16 27 5 16Z" fill="#e0a030"/></svg>'
)

# The pages load nothing from elsewhere; the policy makes that a guarantee.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_NAV = (("/query", "Query"), ("/timeline", "Timeline"), ("/ontology", "Ontology"))


# ------------------------------------------------------------------ helpers


def local_links(base_iri: str, root: str = "") -> list[tuple[str, str]]:
    """The IRI prefixes this server has pages for, each with the path that serves it."""
    return [(base_iri + "id/", root + "/id/"), (base_iri + "ontology", root + "/ontology")]


def entity_href(base_iri: str, root: str = "") -> Callable[[str], str]:
    """Map an IRI to a link: ``<base>id/...`` to the local page ``/id/...`` (the ontology
    to ``/ontology``), any other IRI to itself.

    >>> href = entity_href("https://w3id.org/patrolkg/")
    >>> href("https://w3id.org/patrolkg/id/state/japan")
    '/id/state/japan'
    >>> href("https://w3id.org/patrolkg/ontology#JointPatrol")
    '/ontology#JointPatrol'
    >>> href("http://www.wikidata.org/entity/Q17")
    'http://www.wikidata.org/entity/Q17'
    """
    links = local_links(base_iri, root)

    def href(iri: str) -> str:
        for prefix, path in links:
            rest = iri[len(prefix):]
            under = bool(rest) if prefix.endswith("/") else rest == "" or rest.startswith("#")
            if iri.startswith(prefix) and under:
                return path + quote(rest, safe="/:@!$&'()*+,;=-._~%#")
        return iri

    return href


def _root(request: Request) -> str:
    """Where the app is mounted (``root_path``), for links that survive a proxy prefix."""
    return quote(str(request.scope.get("root_path", "")).rstrip("/"), safe="/%")


def _script_json(value: object) -> str:
    """JSON safe to embed in a ``<script type="application/json">`` element."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


@lru_cache(maxsize=None)
def _static(name: str) -> tuple[bytes, str] | None:
    """The bytes of a known static file and their ETag, or None if it is not there."""
    resource = files("patrolkg.web") / "static" / name
    if not resource.is_file():
        return None
    body = resource.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _asset(name: str, root: str) -> str:
    """The URL of a static file, versioned by its content so that browsers may cache it."""
    found = _static(name)
    if found is None:
        return f"{root}/static/{name}"
    version = found[1].strip('"')[:10]
    return f"{root}/static/{name}?v={version}"


def _page(request: Request, title: str, main: str, *, current: str = "", description: str = "") -> HTMLResponse:
    root = _root(request)
    nav = "".join(
        f'<a href="{root}{path}"{" aria-current=page" if path == current else ""}>{label}</a>' for path, label in _NAV
    )
    meta = f'<meta name="description" content="{escape(description)}">' if description else ""
    body = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · patrolkg</title>{meta}"
        f'<link rel="stylesheet" href="{_asset("ui.css", root)}"><link rel="icon" href="{root}/favicon.ico" type="image/svg+xml">'
        f'<script src="{_asset("ui.js", root)}" defer></script></head>'
        f'<body><header class="site"><a class="brand" href="{root}/"><span class="brand-mark" aria-hidden="true">◆</span>patrolkg</a>'
        f'<nav aria-label="main">{nav}</nav></header>'
        f"<main>{main}</main>"
        f'<footer class="site"><p>patrolkg {escape(__version__)} · a knowledge graph of the Russia–China joint bomber patrols · '
        f'SPARQL endpoint <code>{root}/sparql</code> (<a href="{root}/sparql?format=turtle">service description</a>) · '
        f'<a href="{root}/.well-known/void">VoID</a></p></footer>'
        "</body></html>\n"
    )
    return HTMLResponse(body, headers=_SECURITY_HEADERS)


def _count(svc: Services, sparql: str) -> int:
    result = svc.store.query(sparql)
    assert isinstance(result, ox.QuerySolutions)
    for row in result:
        term = row[0]
        return int(term.value) if term is not None else 0
    return 0


_PROLOGUE = "".join(f"PREFIX {name}: <{iri}>\n" for name, iri in PREFIXES.items())
_STATS = (
    ("joint patrols", "pk:JointPatrol"),
    ("reactions", "pk:Reaction"),
    ("people", "pk:Person"),
    ("source articles", "pk:Article"),
)
_FEATURED = (
    "event/joint-patrol-4",
    "event/joint-patrol-10",
    "state/japan",
    "org/quad",
    "person/maria-zakharova",
    "statement/matsuno-provocation-2022-05",
)


# ------------------------------------------------------------------ pages


@router.get("/", name="home", response_class=HTMLResponse, tags=["ui"], responses=openapi.errors(503), summary="Home page")
def _home(request: Request, svc: Services = Depends(services)) -> HTMLResponse:
    root = _root(request)
    stats = []
    for label, cls in _STATS:
        n = _count(svc, _PROLOGUE + f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a/rdfs:subClassOf* {cls} }}")
        stats.append(f'<li><span class="stat-n">{n}</span> {label}</li>')

    base = svc.settings.base_iri + "id/"
    href = entity_href(svc.settings.base_iri, root)
    values = " ".join(str(ox.NamedNode(base + slug)) for slug in _FEATURED)
    result = svc.store.query(
        _PROLOGUE + f"SELECT ?x (SAMPLE(?l) AS ?label) WHERE {{ VALUES ?x {{ {values} }} ?x rdfs:label ?l }} GROUP BY ?x"
    )
    assert isinstance(result, ox.QuerySolutions)
    labels = {row["x"].value: row["label"].value for row in result}
    featured = "".join(
        f'<li><a href="{escape(href(base + slug))}">{escape(labels[base + slug])}</a> <code>{escape(slug)}</code></li>'
        for slug in _FEATURED
        if base + slug in labels
    )
    featured_block = (
        f'<section class="card"><h2>Start from an entity</h2><ul class="featured">{featured}</ul></section>' if featured else ""
    )
    main = f"""
<section class="hero">
  <h1>The Russia–China joint bomber patrols, as linked data</h1>
  <p class="lede">Who flew, when, near whom, and how Tokyo, Seoul, Moscow and Beijing reacted:
  every fact traced to its source article, queryable with SPARQL.</p>
  <ul class="stats">{''.join(stats)}</ul>
</section>
<div class="cards">
  <a class="card card-link" href="{root}/query"><h2>Query</h2><p>Write SPARQL or run one of the competency questions, and download the result in any format.</p></a>
  <a class="card card-link" href="{root}/timeline"><h2>Timeline</h2><p>The joint patrols in order, with who took part and every reaction: who spoke, their stances, their words.</p></a>
  <a class="card card-link" href="{root}/sparql?format=turtle"><h2>SPARQL service</h2><p>The SPARQL 1.1 endpoint at <code>{root}/sparql</code>, for programs; this opens its service description.</p></a>
  <a class="card card-link" href="{root}/.well-known/void"><h2>Dataset description</h2><p>The VoID description of the dataset: its graphs, their sizes, the links to Wikidata.</p></a>
</div>
{featured_block}
"""
    return _page(request, "Home", main, current="/", description="A knowledge graph of the Russia–China joint bomber patrols.")


# cqNN: a competency question (tag CQ1); exNN: an example of linking (tag EX1).
_CQ_NUMBER = re.compile(r"^(cq|ex)0*(\d+)")


def _example_button(query: NamedQuery) -> str:
    number = _CQ_NUMBER.match(query.id)
    tag = f"{number.group(1).upper()}{number.group(2)}" if number else query.id
    tip = f' title="{escape(query.description)}"' if query.description else ""
    return (
        f'<li><button type="button" class="example" data-example="{escape(query.id)}" aria-pressed="false"{tip}>'
        f'<span class="example-tag">{escape(tag)}</span><span class="example-title">{escape(query.title)}</span></button></li>'
    )


@router.get(
    "/query",
    name="query_page",
    response_class=HTMLResponse,
    tags=["ui"],
    summary="The SPARQL query editor",
    openapi_extra={
        "parameters": [
            {"name": "example", "in": "query", "schema": {"type": "string"}, "description": "The id of a competency question to open and run (cq01-patrols)."},
            {"name": "query", "in": "query", "schema": {"type": "string"}, "description": "A query of one's own to open."},
        ]
    },
)
def _query_page(request: Request, svc: Services = Depends(services)) -> HTMLResponse:
    """``?example=<id>`` opens and runs a competency question; ``?query=`` a query of one's own."""
    root = _root(request)
    examples = named_queries()
    initial = request.query_params.get("query")
    if initial is None:
        by_id = {q.id: q for q in examples}
        pick = by_id.get(request.query_params.get("example") or "") or (examples[0] if examples else None)
        initial = pick.text if pick else "SELECT * WHERE { ?s ?p ?o } LIMIT 10\n"
    config = {
        "endpoint": root + "/sparql",
        "links": local_links(svc.settings.base_iri, root),
        "prefixes": PREFIXES,
        "examples": [{"id": q.id, "title": q.title, "description": q.description, "text": q.text} for q in examples],
    }
    buttons = "".join(_example_button(q) for q in examples)
    main = f"""
<div class="query-layout">
  <aside class="examples" aria-labelledby="examples-heading">
    <h2 id="examples-heading">Competency questions</h2>
    <p class="muted">The questions this graph was built to answer. Click one to load and run it.</p>
    <ol class="example-list">{buttons}</ol>
  </aside>
  <section class="workbench" aria-label="query editor and results">
    <form id="query-form" action="{root}/sparql" method="post" target="_blank">
      <label for="query" class="editor-label">SPARQL query</label>
      <div class="editor"><pre class="gutter" id="gutter" aria-hidden="true">1</pre><textarea id="query" name="query" spellcheck="false" autocomplete="off" autocapitalize="off" wrap="off" rows="16">{escape(initial)}</textarea></div>
      <div class="actions">
        <button type="submit" id="run" class="primary">Run query</button>
        <span class="kbd-hint"><kbd>Ctrl</kbd> + <kbd>Enter</kbd></span>
        <span id="status" class="status" role="status" aria-live="polite"></span>
      </div>
    </form>
    <section id="result" class="result" aria-label="result">
      <div id="error" class="error" role="alert" hidden></div>
      <div id="truncated" class="notice" hidden></div>
      <nav id="downloads" class="downloads" aria-label="download this result" hidden></nav>
      <div id="result-body"><p class="muted placeholder">Run a query to see its result here.</p></div>
    </section>
  </section>
</div>
<script type="application/json" id="ui-config">{_script_json(config)}</script>
"""
    return _page(request, "Query", main, current="/query", description="Query the patrolkg knowledge graph with SPARQL.")


@router.get("/timeline", name="timeline", response_class=HTMLResponse, tags=["ui"], responses=openapi.errors(503), summary="The joint patrols on a timeline")
def _timeline_page(request: Request, svc: Services = Depends(services)) -> HTMLResponse:
    patrols = svc.memo.get(svc.store, "timeline", lambda: load_timeline(svc.store))
    jump = "".join(f'<li><a href="#patrol-{p.ordinal}">{p.ordinal}</a></li>' for p in patrols if p.ordinal is not None)
    main = f"""
<section class="page-head">
  <h1>Timeline of the joint patrols</h1>
  <p class="lede">The Russia–China joint bomber patrols the graph knows, in the order of the series, dated at the
  precision the sources give. Under each: who took part, and every reaction that responds to it or is about it,
  grouped by the state it speaks for.</p>
  <nav class="jump" aria-label="jump to a patrol"><span>Patrol</span><ol>{jump}</ol></nav>
</section>
{render_timeline(patrols, entity_href(svc.settings.base_iri, _root(request)))}
"""
    return _page(request, "Timeline", main, current="/timeline", description="The Russia–China joint bomber patrols and the reactions to each.")


# ------------------------------------------------------------------ static files


@router.get("/static/{name}", name="static", include_in_schema=False)
def _static_file(name: str, request: Request) -> Response:
    """One of :data:`STATIC_FILES`; any other name is a 404 (so no path reaches the disk)."""
    media_type = STATIC_FILES.get(name)
    found = _static(name) if media_type else None
    if found is None:
        raise NotFound(f"no static file named {name!r}", hint="the static files are " + ", ".join(sorted(STATIC_FILES)))
    body, etag = found
    # A URL carrying the current version never changes meaning; any other is revalidated.
    current = request.query_params.get("v") == etag.strip('"')[:10]
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get("/favicon.ico", name="favicon", include_in_schema=False)
def _favicon() -> Response:
    return Response(FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
