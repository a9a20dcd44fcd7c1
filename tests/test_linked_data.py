"""Linked Data: /id/... pages and RDF by content negotiation, /ontology, 404s and path guards."""

from __future__ import annotations

import asyncio
import doctest
from html.parser import HTMLParser
from urllib.parse import unquote

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.compare import isomorphic
from rdflib.namespace import OWL, RDF, RDFS

from patrolkg import resources
from patrolkg.namespaces import INFERRED_GRAPH, PK, PKID
from patrolkg.query import select_rows
from patrolkg.settings import Settings
from patrolkg.store import Store
from patrolkg.web import linked_data, pages
from patrolkg.web.app import create_app

JAPAN = PKID["state/japan"]
MATSUNO = PKID["person/hirokazu-matsuno"]
WD_JAPAN = rdflib.URIRef("http://www.wikidata.org/entity/Q17")
ORG = rdflib.Namespace("http://www.w3.org/ns/org#")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
RDF_TYPES = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
}


def parse(response, media_type: str) -> rdflib.Graph:
    return rdflib.Graph().parse(data=response.content, format=RDF_TYPES[media_type])


class PageText(HTMLParser):
    """The text of each table row, blockquote and list item, and every link, of a page."""

    BLOCKS = {"tr", "blockquote", "li", "h1", "p"}

    def __init__(self, page: str) -> None:
        super().__init__()
        self.blocks: dict[str, list[str]] = {tag: [] for tag in self.BLOCKS}
        self.links: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self._open: list[tuple[str, list[str]]] = []
        self._href: str | None = None
        self._anchor: list[str] = []
        self.tags: set[str] = set()
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in self.BLOCKS:
            self._open.append((tag, []))
        if tag == "a":
            self._href, self._anchor = attrs.get("href"), []

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._anchor).strip()))
            self._href = None
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                opened, parts = self._open.pop(index)
                self.blocks[opened].append(" ".join("".join(parts).split()))
                break

    def handle_data(self, data):
        for _, parts in self._open:
            parts.append(data)
        if self._href is not None:
            self._anchor.append(data)

    def rows_with(self, *needles: str) -> list[str]:
        return [row for row in self.blocks["tr"] if all(n in row for n in needles)]


def raw_status(app, raw_path: bytes, accept: str = "text/turtle") -> int:
    """GET a raw, unnormalized path (an HTTP client would remove the dot segments)."""

    async def run() -> int:
        sent: list[dict] = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path,
            "root_path": "", "query_string": b"", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
            "headers": [(b"host", b"testserver"), (b"accept", accept.encode())],
        }

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"]

    return asyncio.run(run())


# ------------------------------------------------------------------ negotiation


@pytest.mark.parametrize("media_type", list(RDF_TYPES))
def test_each_rdf_format_describes_japan(client: TestClient, media_type: str) -> None:
    response = client.get("/id/state/japan", headers={"Accept": media_type})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert "Accept" in response.headers["vary"]
    graph = parse(response, media_type)
    assert (JAPAN, OWL.sameAs, WD_JAPAN) in graph
    assert (JAPAN, RDF.type, PK.State) in graph


def test_every_format_carries_the_same_graph(client: TestClient) -> None:
    graphs = [parse(client.get("/id/state/japan", headers={"Accept": t}), t) for t in RDF_TYPES]
    assert all(isomorphic(graphs[0], other) for other in graphs[1:])


def test_turtle_round_trip_has_the_wikidata_link(client: TestClient) -> None:
    response = client.get("/id/state/japan", headers={"Accept": "text/turtle"})
    graph = rdflib.Graph().parse(data=response.text, format="turtle")
    assert (rdflib.URIRef("https://w3id.org/patrolkg/id/state/japan"), OWL.sameAs, WD_JAPAN) in graph


def test_browsers_get_html_and_bare_clients_get_turtle(client: TestClient) -> None:
    assert client.get("/id/state/japan", headers={"Accept": BROWSER}).headers["content-type"].startswith("text/html")
    assert client.get("/id/state/japan", headers={"Accept": "*/*"}).headers["content-type"].startswith("text/turtle")


def test_format_parameter_overrides_accept(client: TestClient) -> None:
    response = client.get("/id/state/japan?format=jsonld", headers={"Accept": BROWSER})
    assert response.headers["content-type"].startswith("application/ld+json")
    assert (JAPAN, OWL.sameAs, WD_JAPAN) in parse(response, "application/ld+json")
    assert client.get("/id/state/japan?format=html").headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("url, accept", [("/id/state/japan", "image/png"), ("/id/state/japan?format=pdf", "*/*"), ("/ontology", "application/json")])
def test_nothing_acceptable_is_406_in_the_error_shape(client: TestClient, url: str, accept: str) -> None:
    response = client.get(url, headers={"Accept": accept})
    assert response.status_code == 406
    assert "Accept" in response.headers["vary"]
    error = response.json()["error"]
    assert error["status"] == 406 and error["code"] == "not_acceptable"
    assert "text/turtle" in error["message"] and error["hint"]


def test_head_answers_like_get(client: TestClient) -> None:
    response = client.head("/id/state/japan", headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/turtle")


# ----------------------------------------------------------------- descriptions


def test_rdf_description_holds_both_directions_inferred_facts_and_neighbour_labels(client: TestClient) -> None:
    graph = parse(client.get("/id/state/japan", headers={"Accept": "text/turtle"}), "text/turtle")
    assert (PKID["event/joint-patrol-4"], PK.flewNear, JAPAN) in graph
    assert (JAPAN, RDF.type, ORG.Organization) in graph  # only in the inferred graph
    assert (PKID["org/quad"], RDFS.label, rdflib.Literal("Quad", lang="en")) in graph
    # Nothing else: each triple has Japan at one end or names a neighbour.
    neighbours = {o for o in graph.objects(JAPAN, None)} | {s for s in graph.subjects(None, JAPAN)}
    for s, p, o in graph:
        assert JAPAN in (s, o) or (p == RDFS.label and s in neighbours), (s, p, o)


def test_rdf_description_matches_the_store(client: TestClient, bundle_store: Store) -> None:
    graph = parse(client.get("/id/person/hirokazu-matsuno", headers={"Accept": "application/n-triples"}), "application/n-triples")
    outgoing = select_rows(bundle_store, f"SELECT DISTINCT ?p ?o WHERE {{ <{MATSUNO}> ?p ?o }}")
    incoming = select_rows(bundle_store, f"SELECT DISTINCT ?s ?p WHERE {{ ?s ?p <{MATSUNO}> }}")
    assert len(list(graph.triples((MATSUNO, None, None)))) == len(outgoing)
    assert len(list(graph.triples((None, None, MATSUNO)))) == len(incoming)


def test_every_identifier_in_the_graph_is_dereferenceable(client: TestClient, bundle_store: Store) -> None:
    iris = select_rows(
        bundle_store,
        f"SELECT DISTINCT ?x WHERE {{ {{ ?x ?p ?o }} UNION {{ ?s ?p ?x }} FILTER(isIRI(?x) && STRSTARTS(STR(?x), '{PKID}')) }}",
    )
    assert len(iris) > 50
    for row in iris:
        path = "/id/" + row["x"][len(str(PKID)):]
        for accept in ("text/html", "text/turtle"):
            assert client.get(path, headers={"Accept": accept}).status_code == 200, (path, accept)


# ------------------------------------------------------------------------ pages


def test_japan_page_shows_names_links_statements_sources_and_inferred_marks(client: TestClient, bundle_store: Store) -> None:
    response = client.get("/id/state/japan", headers={"Accept": BROWSER})
    assert response.status_code == 200 and "Accept" in response.headers["vary"]
    page = PageText(response.text)
    assert page.blocks["h1"] == ["Japan"]
    assert ("https://www.wikidata.org/wiki/Q17", "Wikidata Q17") in page.links
    assert "violating international law." in " ".join(page.blocks["blockquote"])
    statement = next(li for li in page.blocks["li"] if "Japan criticizes China" in li)
    assert "said by Japan" in statement
    assert "Japan Accuses Russia and China of Provocation" in statement  # the source article's headline
    # Neighbours are linked to their own pages, by label.
    assert ("/id/org/quad", "Quad") in page.links
    assert ("/query", "Query") in page.links and ("/timeline", "Timeline") in page.links

    only_inferred = select_rows(
        bundle_store,
        f"SELECT ?t WHERE {{ GRAPH <{INFERRED_GRAPH}> {{ <{JAPAN}> a ?t }} "
        f"FILTER NOT EXISTS {{ GRAPH ?g {{ <{JAPAN}> a ?t }} FILTER(?g != <{INFERRED_GRAPH}>) }} }}",
    )
    assert {r["t"] for r in only_inferred} >= {str(ORG.Organization)}
    assert page.rows_with("org:Organization", "inferred")
    asserted = page.rows_with("rdf:type", "State")
    assert asserted and "inferred" not in asserted[0] and "reference" in asserted[0]
    assert page.rows_with("Wikidata Q17", "links")  # the named graph each fact comes from
    assert page.rows_with("Fourth Russia–China joint strategic bomber patrol", "article/cnsnews-2022-05")


def test_person_page_shows_quotes_and_sources(client: TestClient) -> None:
    page = PageText(client.get("/id/person/hirokazu-matsuno", headers={"Accept": "text/html"}).text)
    assert page.blocks["h1"] == ["Hirokazu Matsuno"]
    quotes = " ".join(page.blocks["blockquote"])
    assert "warning." in quotes and "elevated the level of provocation," in quotes
    warning = next(li for li in page.blocks["li"] if "intended as a warning" in li)
    assert "said by Hirokazu Matsuno" in warning
    assert "Japan Accuses Russia and China of Provocation" in warning
    assert any(href == "/id/statement/matsuno-warning-2022-05" for href, _ in page.links)
    assert any(href == "/id/article/cnsnews-2022-05" for href, _ in page.links)


def test_statement_page_shows_its_own_quote_and_source(client: TestClient) -> None:
    page = PageText(client.get("/id/statement/matsuno-warning-2022-05?format=html").text)
    assert "warning." in " ".join(page.blocks["blockquote"])
    source = next(p for p in page.blocks["p"] if p.startswith("Source:"))
    assert "Japan Accuses Russia and China of Provocation" in source


def test_pages_need_no_script_and_use_our_own_style_sheet(client: TestClient) -> None:
    for url in ("/id/state/japan", "/ontology", "/id/state/atlantis"):
        text = client.get(url, headers={"Accept": "text/html"}).text
        assert "<script" not in text.lower()
        assert '<link rel="stylesheet" href="/assets/ld.css">' in text
    css = client.get("/assets/ld.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_everything_in_a_page_is_escaped(empty_store: Store, settings: Settings) -> None:
    subject = ox.NamedNode("https://w3id.org/patrolkg/id/thing/x")
    evil = [
        ox.Triple(subject, ox.NamedNode(str(RDFS.label)), ox.Literal('<script>alert("x")</script>', language="en")),
        ox.Triple(subject, ox.NamedNode(str(RDFS.seeAlso)), ox.NamedNode("javascript:alert(1)")),
        ox.Triple(subject, ox.NamedNode(str(RDFS.comment)), ox.Literal('"><img src=x onerror=alert(1)>')),
    ]
    empty_store.replace_graphs({"https://w3id.org/patrolkg/graph/reference": evil})
    with TestClient(create_app(settings, store=empty_store, seed=False)) as client:
        text = client.get("/id/thing/x", headers={"Accept": "text/html"}).text
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;" in text
    assert 'href="javascript:' not in text


def test_base_iri_setting_decides_what_a_page_describes(empty_store: Store) -> None:
    base = "http://kg.example.org/"
    thing, other = ox.NamedNode(base + "id/thing/a"), ox.NamedNode(base + "id/thing/b")
    label = ox.NamedNode(str(RDFS.label))
    empty_store.replace_graphs({"http://kg.example.org/graph/g": [
        ox.Triple(thing, ox.NamedNode(str(RDFS.seeAlso)), other),
        ox.Triple(other, label, ox.Literal("Thing B", language="en")),
    ]})
    with TestClient(create_app(Settings.from_env({}, base_iri=base), store=empty_store, seed=False)) as client:
        graph = parse(client.get("/id/thing/a", headers={"Accept": "text/turtle"}), "text/turtle")
        page = PageText(client.get("/id/thing/a", headers={"Accept": "text/html"}).text)
    assert (rdflib.URIRef(thing.value), RDFS.seeAlso, rdflib.URIRef(other.value)) in graph
    assert ("/id/thing/b", "Thing B") in page.links


# --------------------------------------------------------------------- ontology


def test_ontology_is_served_whole(client: TestClient) -> None:
    for media_type in RDF_TYPES:
        response = client.get("/ontology", headers={"Accept": media_type})
        assert response.status_code == 200 and "Accept" in response.headers["vary"]
        assert isomorphic(parse(response, media_type), resources.ontology_graph())


def test_ontology_page_anchors_every_term(client: TestClient) -> None:
    page = PageText(client.get("/ontology", headers={"Accept": BROWSER}).text)
    terms = resources.ontology_graph()
    defined = {
        str(s).split("#", 1)[1]
        for kind in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty)
        for s in terms.subjects(RDF.type, kind)
        if str(s).startswith(str(PK))
    }
    assert {"JointPatrol", "participant", "date"} <= defined <= page.ids
    # Entity pages link types and properties to their anchors.
    japan = PageText(client.get("/id/state/japan", headers={"Accept": "text/html"}).text)
    assert ("/ontology#State", "State") in japan.links


# ------------------------------------------------------------- not found, guards


def test_unknown_entity_is_404_as_json_for_machines_and_html_for_browsers(client: TestClient) -> None:
    machine = client.get("/id/state/atlantis", headers={"Accept": "text/turtle"})
    assert machine.status_code == 404 and "Accept" in machine.headers["vary"]
    error = machine.json()["error"]
    assert error["status"] == 404 and error["code"] == "not_found"
    assert "https://w3id.org/patrolkg/id/state/atlantis" in error["message"]
    browser = client.get("/id/state/atlantis", headers={"Accept": BROWSER})
    assert browser.status_code == 404 and browser.headers["content-type"].startswith("text/html")
    assert PageText(browser.text).blocks["h1"] == ["Not found"]
    # Missing beats unacceptable.
    assert client.get("/id/state/atlantis", headers={"Accept": "image/png"}).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/id/../../etc/passwd",
        "/id/state/%2e%2e",
        "/id/%2e%2e/%2e%2e/etc/passwd",
        "/id/state/..%2f..%2fetc%2fpasswd",
        "/id/state/japan%00",
        "/id/state/ja%20pan",
        "/id/state/%3Cscript%3E",
        "/id/state/%E6%97%A5%E6%9C%AC",
        "/id/state//japan",
        "/id/state/japan/",
        "/id/",
        "/id/state/" + "a" * 5000,
    ],
)
def test_odd_paths_are_404_never_500(client: TestClient, url: str) -> None:
    for accept in ("text/turtle", "text/html"):
        response = client.get(url, headers={"Accept": accept})
        assert response.status_code == 404, url
        status = raw_status(client.app, url.encode(), accept)
        assert status == 404, url


@pytest.mark.parametrize("path", ["state/japan", "statement/matsuno-warning-2022-05", "a.b/c~d_e-f"])
def test_safe_paths(path: str) -> None:
    assert linked_data.is_safe_id_path(path)


@pytest.mark.parametrize("path", ["", "..", "state/..", "./x", "state/", "state/ja pan", "state/日本", "state/%2e", "a" * 300])
def test_unsafe_paths(path: str) -> None:
    assert not linked_data.is_safe_id_path(path)


@pytest.mark.parametrize("module", [linked_data, pages])
def test_doctests_and_exports(module) -> None:
    assert doctest.testmod(module).failed == 0
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.slow
def test_rdflib_dereferences_a_live_server(live_server) -> None:
    """rdflib fetching the page URL as a Linked Data client does: its own Accept header."""
    graph = rdflib.Graph().parse(live_server.url + "/id/state/japan")
    assert (JAPAN, OWL.sameAs, WD_JAPAN) in graph
    void = rdflib.Graph().parse(live_server.url + "/.well-known/void")
    endpoint = next(void.objects(None, rdflib.URIRef("http://rdfs.org/ns/void#sparqlEndpoint")))
    assert str(endpoint) == live_server.url + "/sparql"
