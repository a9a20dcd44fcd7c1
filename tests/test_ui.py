"""The query UI, the timeline, the home page and their static files, through the ASGI app.

The same pages in a real browser are in ``test_browser.py``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from patrolkg.namespaces import PKID, PREFIXES
from patrolkg.query import select_rows
from patrolkg.resources import named_queries
from patrolkg.settings import Settings
from patrolkg.store import Store
from patrolkg.web.app import create_app
from patrolkg.web.timeline import load_timeline

PATROLS = """
PREFIX pk: <https://w3id.org/patrolkg/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?patrol ?label ?ordinal ?date WHERE {
  ?patrol a pk:JointPatrol ; rdfs:label ?label ; pk:ordinal ?ordinal ; pk:date ?date
}"""


def _config(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="ui-config">(.*?)</script>', page, re.DOTALL)
    assert found, "the query page embeds its configuration"
    return json.loads(found.group(1))


def _textarea(page: str) -> str:
    found = re.search(r'<textarea id="query"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert found
    return html.unescape(found.group(1))


def _assert_self_contained(page: str) -> None:
    """Every stylesheet and script comes from this server (the UI works offline)."""
    for tag in re.findall(r"<(?:script|link)\b[^>]*>", page):
        for url in re.findall(r'(?:src|href)="([^"]*)"', tag):
            assert url.startswith("/") or url.startswith("data:"), tag


# ------------------------------------------------------------------ /query


def test_query_page_offers_every_competency_question(client: TestClient) -> None:
    response = client.get("/query")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    queries = named_queries()
    assert len(queries) >= 12
    for query in queries:
        assert html.escape(query.title) in page, query.id
        assert f'data-example="{query.id}"' in page
    examples = _config(page)["examples"]
    assert [(e["id"], e["title"], e["text"]) for e in examples] == [(q.id, q.title, q.text) for q in queries]


def test_query_page_configuration(client: TestClient) -> None:
    config = _config(client.get("/query").text)
    assert config["endpoint"] == "/sparql"
    assert config["prefixes"] == PREFIXES
    assert [str(PKID), "/id/"] in config["links"]


def test_query_page_is_self_contained_and_locked_down(client: TestClient) -> None:
    response = client.get("/query")
    _assert_self_contained(response.text)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert '<link rel="stylesheet" href="/static/ui.css' in response.text
    assert '<script src="/static/ui.js' in response.text


def test_query_page_opens_an_example_or_a_given_query(client: TestClient) -> None:
    quad = next(q for q in named_queries() if q.id == "cq05-quad-members")
    assert _textarea(client.get("/query", params={"example": quad.id}).text) == quad.text
    assert _textarea(client.get("/query").text) == named_queries()[0].text
    hostile = "SELECT * WHERE { ?s ?p ?o } # </textarea><script>alert(1)</script>"
    page = client.get("/query", params={"query": hostile}).text
    assert _textarea(page) == hostile
    assert "<script>alert(1)" not in page


def test_embedded_configuration_cannot_close_its_script_element(client: TestClient) -> None:
    page = client.get("/query").text
    body = re.search(r'id="ui-config">(.*?)</script>', page, re.DOTALL)
    assert body and "<" not in body.group(1)


def test_links_follow_the_root_path(bundle_store: Store, settings: Settings) -> None:
    app = create_app(settings, store=bundle_store, seed=False)
    with TestClient(app, root_path="/kg") as client:
        page = client.get("/query").text
        assert _config(page)["endpoint"] == "/kg/sparql"
        assert 'href="/kg/static/ui.css' in page
        assert 'href="/kg/id/event/joint-patrol-4"' in client.get("/timeline").text


# ------------------------------------------------------------------ /timeline


def test_timeline_shows_every_patrol_in_order(client: TestClient, bundle_store: Store) -> None:
    response = client.get("/timeline")
    assert response.status_code == 200
    page = response.text
    _assert_self_contained(page)
    patrols = sorted(select_rows(bundle_store, PATROLS), key=lambda row: int(row["ordinal"]))
    assert [int(row["ordinal"]) for row in patrols] == [1, 2, 3, 4, 10]
    positions = []
    for row in patrols:
        path = row["patrol"].removeprefix(str(PKID))
        assert f'href="/id/{path}"' in page
        assert html.escape(row["label"]) in page
        assert f'<time datetime="{row["date"]}">' in page  # gYearMonth: 2019-07, no invented day
        positions.append(page.index(f'data-ordinal="{row["ordinal"]}"'))
    assert positions == sorted(positions)
    assert "July 2019" in page and "December 2025" in page
    assert "Patrols 5–9" in page


def test_timeline_shows_participants_and_reactions(client: TestClient) -> None:
    page = client.get("/timeline").text
    tenth = page[page.index('data-ordinal="10"'):]
    assert 'href="/id/state/russia"' in tenth and 'href="/id/state/china"' in tenth
    # a statement: speaker, stances, linked to its page
    assert 'href="/id/statement/tokyo-protest-2025-12"' in tenth
    assert "Tokyo protests the tenth patrol" in tenth
    assert 'href="/id/stance/protest"' in tenth
    # a military response
    assert 'href="/id/event/south-korea-tracking-2025-12"' in tenth
    fourth = page[page.index('data-ordinal="4"'):page.index('data-ordinal="10"')]
    assert 'href="/id/person/hirokazu-matsuno"' in fourth
    assert "“elevated the level of provocation,”" in fourth  # the quote, verbatim


def test_load_timeline_reads_reactions(bundle_store: Store) -> None:
    patrols = load_timeline(bundle_store)
    assert [p.ordinal for p in patrols] == [1, 2, 3, 4, 10]
    assert [(p.date, p.date_type) for p in patrols][0] == ("2019-07", "gYearMonth")
    tenth = {r.iri.removeprefix(str(PKID)): r for r in patrols[-1].reactions}
    tracking = tenth["event/south-korea-tracking-2025-12"]
    assert tracking.kind == "military response" and tracking.responds
    assert [s.label for s in tracking.stances] == ["restraint"]
    assert tracking.side is not None and tracking.side.label == "South Korea"
    fourth = {r.iri.removeprefix(str(PKID)): r for r in patrols[3].reactions}
    linkage = fourth["statement/zakharova-absurd-linkage-2022-05"]
    assert linkage.quotes == ["absurd linkage", "with Russia’s special military operation in Ukraine."]  # as printed
    assert not linkage.responds  # it responds to Japan's statements, and is about the patrol
    # a statement about patrols 1-4 appears under each
    for patrol in patrols[:4]:
        assert any(r.iri.endswith("matsuno-fourth-patrol-2022-05") for r in patrol.reactions)


def test_timeline_of_an_empty_store(empty_store: Store, settings: Settings) -> None:
    with TestClient(create_app(settings, store=empty_store, seed=False)) as client:
        response = client.get("/timeline")
        assert response.status_code == 200
        assert "The store holds no joint patrols." in response.text


# ------------------------------------------------------------------ home


def test_home_page_links_everywhere(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.text
    _assert_self_contained(page)
    for path in ("/query", "/timeline", "/sparql", "/.well-known/void", "/id/event/joint-patrol-4", "/id/state/japan"):
        assert f'href="{path}' in page, path
    assert '<span class="stat-n">5</span> joint patrols' in page


# ------------------------------------------------------------------ /static


@pytest.mark.parametrize(
    ("name", "media_type", "marker"),
    [("ui.css", "text/css", ".timeline"), ("ui.js", "text/javascript", "ui-config")],
)
def test_static_files(client: TestClient, name: str, media_type: str, marker: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert marker in response.text
    assert response.headers["cache-control"] == "no-cache"  # unversioned: revalidate
    again = client.get(f"/static/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.css",
        "/static/ui.py",
        "/static/..%2Fui.py",
        "/static/%2e%2e%2fapp.py",
        "/static/../ui.py",
        "/static/static/ui.css",
        "/static/UI.CSS",
        "/static/",
    ],
)
def test_unknown_static_files_are_not_found(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_pages_reference_versioned_assets_that_exist(client: TestClient) -> None:
    page = client.get("/timeline").text
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        response = client.get(html.unescape(url))
        assert response.status_code == 200, url
        assert "max-age" in response.headers["cache-control"]


@pytest.fixture
def pages(client: TestClient) -> Iterator[dict[str, str]]:
    yield {path: client.get(path).text for path in ("/", "/query", "/timeline")}


def test_every_page_has_the_navigation(pages: dict[str, str]) -> None:
    for path, page in pages.items():
        assert page.startswith("<!doctype html>"), path
        for target in ('href="/query"', 'href="/timeline"', 'href="/ontology"'):
            assert target in page, (path, target)


def test_favicon(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")
