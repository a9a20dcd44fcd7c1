"""The query UI and the timeline in a real headless Chromium against a real server.

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` package (its
wheel bundles the driver; no browser download is ever made). Without either the tests
are skipped, saying which is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; the tests never download a browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")
expect = playwright_api.expect

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def console_errors(page: object) -> list[str]:
    """What the page logs as an error (a failed load, a script error, a CSP violation)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _status(page: object) -> object:
    return page.locator("#status")


def test_example_query_shows_rows_that_link_to_entity_pages(page: object, live_server: LiveServer, console_errors: list[str]) -> None:
    page.goto(live_server.url + "/query")
    page.get_by_role("button", name=re.compile("Who are the members of the Quad")).click()
    expect(_status(page)).to_contain_text("4 rows")
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("table.results thead")).to_contain_text("?member")
    japan = page.locator("table.results a.iri", has_text="pkid:state/japan")
    expect(japan).to_have_attribute("href", "/id/state/japan")
    expect(japan).to_have_attribute("title", "https://w3id.org/patrolkg/id/state/japan")
    assert "example=cq05-quad-members" in page.url  # the page can be shared as it is

    formats = page.locator("#downloads a.download")
    expect(formats).to_have_count(4)
    for anchor in formats.all():
        href = anchor.get_attribute("href")
        assert href.startswith("/sparql?query=")
        response = page.request.get(live_server.url + href)
        assert response.ok, href
    assert [a.get_attribute("data-format") for a in formats.all()] == ["json", "xml", "csv", "tsv"]

    japan.click()
    page.wait_for_url(live_server.url + "/id/state/japan")
    expect(page.locator("body")).to_contain_text("Japan")
    assert console_errors == []


def test_patrols_example_and_ctrl_enter(page: object, live_server: LiveServer, console_errors: list[str]) -> None:
    page.goto(live_server.url + "/query")
    page.locator("button[data-example=cq01-patrols]").click()
    expect(_status(page)).to_contain_text("5 rows")
    expect(page.locator("table.results tbody")).to_contain_text("2019-07")
    expect(page.locator("table.results tbody")).to_contain_text("^^xsd:gYearMonth")

    editor = page.locator("#query")
    editor.fill("PREFIX pk: <https://w3id.org/patrolkg/ontology#>\nASK { ?p pk:ordinal 10 }")
    editor.press("Control+Enter")
    expect(page.locator(".boolean")).to_have_text("yes (true)")
    assert console_errors == []


def test_construct_result_as_a_triple_table(page: object, live_server: LiveServer, console_errors: list[str]) -> None:
    page.goto(live_server.url + "/query")
    page.locator("#query").fill(
        "PREFIX pk: <https://w3id.org/patrolkg/ontology#>\n"
        "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
        "CONSTRUCT { ?p rdfs:label ?l ; pk:ordinal ?o } WHERE { ?p a pk:JointPatrol ; rdfs:label ?l ; pk:ordinal ?o }"
    )
    page.locator("#run").click()
    expect(_status(page)).to_contain_text("10 triples")
    expect(page.locator("table.results thead")).to_contain_text("subject")
    expect(page.locator("table.results tbody")).to_contain_text("Fourth Russia–China joint strategic bomber patrol")
    expect(page.locator("table.results tbody .lang").first).to_have_text("@en")
    formats = page.locator("#downloads a.download")
    assert [a.get_attribute("data-format") for a in formats.all()] == ["turtle", "ntriples", "jsonld", "rdfxml"]
    turtle = page.request.get(live_server.url + formats.first.get_attribute("href"))
    assert turtle.ok and turtle.headers["content-type"].startswith("text/turtle")
    assert console_errors == []


def test_syntax_error_is_shown_with_line_column_and_context(page: object, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/query")
    page.locator("#query").fill("SELECT * WHERE {\n  ?s ?p ?o .\n  FILTR(?s) }")
    page.locator("#run").click()
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Query syntax error")
    expect(error.locator(".error-where")).to_contain_text("Line 3, column")
    expect(error.locator(".error-context")).to_contain_text("FILTR(?s)")
    expect(page.locator("#downloads")).to_be_hidden()
    expect(_status(page)).to_contain_text("Failed (400)")
    error.get_by_role("button", name="Show in editor").click()
    expect(page.locator("#query")).to_be_focused()


def test_timeline_lists_patrols_and_reactions(page: object, live_server: LiveServer, console_errors: list[str]) -> None:
    page.goto(live_server.url + "/timeline")
    items = page.locator("ol.timeline > li.tl-item")
    expect(items).to_have_count(5)
    assert [item.get_attribute("data-ordinal") for item in items.all()] == ["1", "2", "3", "4", "10"]
    expect(items.first.locator("time")).to_have_attribute("datetime", "2019-07")
    tenth = page.locator("#patrol-10")
    expect(tenth.locator(".facts")).to_contain_text("China")
    expect(tenth.locator(".facts")).to_contain_text("Russia")
    reaction = tenth.locator("li.reaction", has_text="Tokyo protests the tenth patrol")
    expect(reaction.locator(".stances")).to_contain_text("protest")
    expect(reaction.locator(".speaker")).to_have_text("Japan")
    reaction.get_by_role("link", name="Tokyo protests the tenth patrol").click()
    page.wait_for_url(live_server.url + "/id/statement/tokyo-protest-2025-12")
    expect(page.locator("body")).to_contain_text("Tokyo protests the tenth patrol")
    assert console_errors == []


def test_home_page_leads_to_the_tools(page: object, live_server: LiveServer, console_errors: list[str]) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name=re.compile("^Timeline")).first.click()
    page.wait_for_url(live_server.url + "/timeline")
    page.get_by_role("navigation", name="main").get_by_role("link", name="Query").click()
    page.wait_for_url(live_server.url + "/query")
    expect(page.locator("button.example")).not_to_have_count(0)
    assert console_errors == []


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("small") / "store", "--max-rows", "3").start()
    yield server
    server.stop()


def test_truncated_results_are_flagged(page: object, small_server: LiveServer) -> None:
    page.goto(small_server.url + "/query?example=cq01-patrols")
    expect(page.locator("#truncated")).to_be_visible()
    expect(page.locator("#truncated")).to_contain_text("Truncated")
    expect(page.locator("table.results tbody tr")).to_have_count(3)
    expect(_status(page)).to_contain_text("(truncated)")
