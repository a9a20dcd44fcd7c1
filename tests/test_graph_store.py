"""The SPARQL 1.1 Graph Store HTTP Protocol at /store, through the ASGI client over a
fresh store per test: round trips compared as graphs (blank nodes included), auth,
validation before commit, the refusals, and writes that /sparql sees at once.

Each test's store holds what ``create_app(seed=True)`` loads, copied from the session's
bundle store (see tests/test_update.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.compare import isomorphic

from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app
from patrolkg.writes import SKOLEM_PREFIX

TOKEN = "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TURTLE = "text/turtle"

PK = "https://w3id.org/patrolkg/ontology#"
PKID = "https://w3id.org/patrolkg/id/"
GRAPH = "http://example.org/analyst"
ARTICLE_GRAPH = "https://w3id.org/patrolkg/graph/article/cnsnews-2022-05"
PATROL_11 = f"{PKID}event/joint-patrol-11"

PERSON = b"""@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix v: <http://www.w3.org/2006/vcard/ns#> .
<http://example.org/person/1> a foaf:Person ;
    foaf:businessCard [ a v:VCard ; v:fn "John Doe" ] .
"""
ANONYMOUS_PERSON = b"""@prefix foaf: <http://xmlns.com/foaf/0.1/> .
[] a foaf:Person ; foaf:knows [ foaf:name "Alice" ], [ foaf:name "Bob" ] .
"""
PATROL = f"""@prefix pk: <{PK}> .
<{PATROL_11}> a pk:JointPatrol ;
    <http://www.w3.org/2000/01/rdf-schema#label> "Eleventh Russia–China joint strategic bomber patrol"@en ;
    pk:ordinal 11 ;
    pk:participant <{PKID}state/russia>, <{PKID}state/china> .
""".encode()
PATROL_WITHOUT_ORDINAL = f"""@prefix pk: <{PK}> .
<{PATROL_11}> a pk:JointPatrol ;
    <http://www.w3.org/2000/01/rdf-schema#label> "Eleventh Russia–China joint strategic bomber patrol"@en ;
    pk:participant <{PKID}state/russia>, <{PKID}state/china> .
""".encode()

RDFLIB_FORMATS = {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}


def settings(token: str | None = TOKEN) -> Settings:
    return Settings.from_env({}, write_token=None if token is None else "tester:" + token)


@pytest.fixture
def store(seeded_store: Store) -> Store:
    return seeded_store


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(settings(), store=store, seed=True)) as client:
        yield client


def quads(store: Store) -> set[ox.Quad]:
    return set(store.quads())


def graph_of(data: bytes, media_type: str = TURTLE) -> rdflib.Graph:
    return rdflib.Graph().parse(data=data, format=RDFLIB_FORMATS[media_type.split(";")[0].strip()])


def put(api: TestClient, data: bytes, *, graph: str = GRAPH, content_type: str = TURTLE) -> object:
    return api.put("/store", params={"graph": graph}, content=data, headers={"Content-Type": content_type, **AUTH})


def fetch(api: TestClient, graph: str = GRAPH, accept: str = TURTLE) -> rdflib.Graph:
    response = api.get("/store", params={"graph": graph}, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    return graph_of(response.content, response.headers["content-type"])


def ask(api: TestClient, query: str) -> bool:
    response = api.post("/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def error(response: object) -> dict[str, object]:
    return response.json()["error"]  # type: ignore[attr-defined]


# --- round trips ------------------------------------------------------------------------------


def test_put_then_get_is_isomorphic_with_blank_nodes(api: TestClient, store: Store) -> None:
    assert put(api, ANONYMOUS_PERSON).status_code == 201
    assert isomorphic(fetch(api), graph_of(ANONYMOUS_PERSON))
    stored = [q.triple for q in store.quads_in(GRAPH)]
    assert not any(isinstance(term, ox.BlankNode) for t in stored for term in (t.subject, t.object))
    assert any(t.subject.value.startswith(SKOLEM_PREFIX) for t in stored)


@pytest.mark.parametrize("accept", list(RDFLIB_FORMATS))
def test_get_in_each_format(api: TestClient, accept: str) -> None:
    put(api, PERSON)
    response = api.get("/store", params={"graph": GRAPH}, headers={"Accept": accept})
    assert response.headers["content-type"].split(";")[0] == accept
    assert isomorphic(graph_of(response.content, accept), graph_of(PERSON))


def test_turtle_is_the_default(api: TestClient) -> None:
    put(api, PERSON)
    response = api.get("/store", params={"graph": GRAPH})
    assert response.headers["content-type"] == "text/turtle; charset=utf-8"
    assert response.headers["vary"].startswith("Accept")


@pytest.mark.parametrize("content_type", ["application/n-triples", "application/ld+json", "application/rdf+xml"])
def test_put_in_each_format(api: TestClient, content_type: str) -> None:
    data = graph_of(ANONYMOUS_PERSON).serialize(format=RDFLIB_FORMATS[content_type]).encode()
    assert put(api, data, content_type=content_type).status_code == 201
    assert isomorphic(fetch(api), graph_of(ANONYMOUS_PERSON))


def test_second_put_replaces_and_is_204(api: TestClient) -> None:
    assert put(api, PERSON).status_code == 201
    assert put(api, ANONYMOUS_PERSON).status_code == 204
    assert isomorphic(fetch(api), graph_of(ANONYMOUS_PERSON))


def test_post_merges(api: TestClient) -> None:
    assert api.post("/store", params={"graph": GRAPH}, content=PERSON, headers={"Content-Type": TURTLE, **AUTH}).status_code == 201
    extra = b'<http://example.org/person/1> <http://xmlns.com/foaf/0.1/givenName> "John" .'
    assert api.post("/store", params={"graph": GRAPH}, content=extra, headers={"Content-Type": TURTLE, **AUTH}).status_code == 204
    assert isomorphic(fetch(api), graph_of(PERSON + extra))


def test_post_multipart_merges_every_part(api: TestClient) -> None:
    files = [
        ("first", ("first.ttl", b'<http://example.org/person/1> <http://xmlns.com/foaf/0.1/givenName> "John" .', TURTLE)),
        ("last", ("last.nt", b'<http://example.org/person/1> <http://xmlns.com/foaf/0.1/familyName> "Doe" .\n', "application/n-triples")),
    ]
    response = api.post("/store", params={"graph": GRAPH}, files=files, headers=AUTH)
    assert response.status_code == 201, response.text
    assert len(fetch(api)) == 2


def test_post_without_a_graph_creates_one(api: TestClient) -> None:
    response = api.post("/store", content=ANONYMOUS_PERSON, headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 201
    location = response.headers["location"]
    assert location.startswith("https://w3id.org/patrolkg/user-graph/")
    assert isomorphic(fetch(api, location), graph_of(ANONYMOUS_PERSON))


def test_direct_identification_is_the_request_url(api: TestClient, store: Store) -> None:
    response = api.put("/store/person/1.ttl", content=PERSON, headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 201
    assert store.graph_names().count("http://testserver/store/person/1.ttl") == 1
    direct = api.get("/store/person/1.ttl")
    assert isomorphic(graph_of(direct.content), graph_of(PERSON))
    assert isomorphic(fetch(api, "http://testserver/store/person/1.ttl"), graph_of(PERSON))


def test_default_graph(api: TestClient, store: Store) -> None:
    response = api.put("/store?default", content=PERSON, headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 201
    assert len(list(store.quads_in(None))) == 4
    assert isomorphic(graph_of(api.get("/store?default").content), graph_of(PERSON))


def test_relative_iris_resolve_against_the_graph(api: TestClient, store: Store) -> None:
    put(api, b"<#me> <http://xmlns.com/foaf/0.1/name> 'me' .")
    assert [q.subject.value for q in store.quads_in(GRAPH)] == [GRAPH + "#me"]


def test_delete_then_get_is_404(api: TestClient) -> None:
    put(api, PERSON)
    assert api.delete("/store", params={"graph": GRAPH}, headers=AUTH).status_code == 204
    assert api.get("/store", params={"graph": GRAPH}).status_code == 404
    assert api.delete("/store", params={"graph": GRAPH}, headers=AUTH).status_code == 404


def test_head_has_the_headers_and_no_body(api: TestClient) -> None:
    put(api, PERSON)
    get = api.get("/store", params={"graph": GRAPH})
    head = api.head("/store", params={"graph": GRAPH})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))
    assert api.get("/store", params={"graph": GRAPH}).content == get.content  # blank node labels are stable
    missing = api.head("/store", params={"graph": "http://example.org/nothing"})
    assert (missing.status_code, missing.content) == (404, b"")


# --- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_no_token_configured_refuses_writes(store: Store, method: str) -> None:
    with TestClient(create_app(settings(token=None), store=store, seed=True)) as api:
        response = api.request(method, "/store", params={"graph": GRAPH}, content=PERSON, headers={"Content-Type": TURTLE})
    assert response.status_code == 403
    assert error(response)["code"] == "writes_disabled"


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
@pytest.mark.parametrize("authorization", [None, "Bearer " + "y" * 24, "Basic " + TOKEN])
def test_missing_or_wrong_token_is_401(api: TestClient, store: Store, method: str, authorization: str | None) -> None:
    before = quads(store)
    headers = {"Content-Type": TURTLE, **({"Authorization": authorization} if authorization else {})}
    response = api.request(method, "/store", params={"graph": GRAPH}, content=PERSON, headers=headers)
    assert response.status_code == 401
    assert quads(store) == before


def test_reads_need_no_token(api: TestClient) -> None:
    response = api.get("/store", params={"graph": ARTICLE_GRAPH})
    assert response.status_code == 200
    assert len(graph_of(response.content)) > 10


# --- validation and refusals -------------------------------------------------------------------


def test_nonconforming_put_is_422_with_the_shape_and_writes_nothing(api: TestClient, store: Store) -> None:
    before = quads(store)
    response = put(api, PATROL_WITHOUT_ORDINAL)
    assert response.status_code == 422
    violations = error(response)["report"]["violations"]
    assert [v["node_shape"] for v in violations if v["path"] == f"{PK}ordinal"] == ["https://w3id.org/patrolkg/shapes#JointPatrolShape"]
    assert quads(store) == before


def test_a_put_that_breaks_data_is_422(api: TestClient, store: Store) -> None:
    assert put(api, PATROL).status_code == 201
    before = quads(store)
    assert put(api, PATROL_WITHOUT_ORDINAL).status_code == 422
    assert quads(store) == before


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
@pytest.mark.parametrize("graph", [ARTICLE_GRAPH, "https://w3id.org/patrolkg/graph/ontology", "https://w3id.org/patrolkg/graph/new"])
def test_writing_a_protected_graph_is_403_and_writes_nothing(api: TestClient, store: Store, method: str, graph: str) -> None:
    before = quads(store)
    response = api.request(method, "/store", params={"graph": graph}, content=PERSON, headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 403
    assert error(response)["code"] == "forbidden_operation"
    assert quads(store) == before


def test_put_of_a_protected_graphs_own_content_is_403(api: TestClient) -> None:
    current = api.get("/store", params={"graph": ARTICLE_GRAPH}, headers={"Accept": "application/n-triples"}).content
    assert put(api, current, graph=ARTICLE_GRAPH, content_type="application/n-triples").status_code == 403


def test_malformed_body_is_400_with_line_and_column(api: TestClient, store: Store) -> None:
    before = quads(store)
    response = put(api, b'<http://example.org/a> <http://example.org/p> "x" .\n<http://example.org/a> <http://example.org/p> .\n')
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "rdf_syntax_error"
    assert body["line"] == 2 and body["column"] is not None
    assert quads(store) == before


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/ld+json", b'{"@context": "http://127.0.0.1:9/context.jsonld", "@id": "http://example.org/a", "name": "x"}'),
        ("application/rdf+xml", b'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'),
    ],
    ids=["jsonld-remote-context", "rdfxml-doctype"],
)
def test_unsafe_bodies_are_400(api: TestClient, content_type: str, data: bytes) -> None:
    response = put(api, data, content_type=content_type)
    assert response.status_code == 400
    assert error(response)["code"] == "unsafe_input"


def test_named_graphs_in_the_body_are_400(api: TestClient) -> None:
    response = put(api, b"<http://example.org/g> { <http://example.org/a> <http://example.org/p> 1 }", content_type="application/trig")
    assert response.status_code == 400


@pytest.mark.parametrize("data", [b"", b"  \n", b"@prefix ex: <http://example.org/> ."], ids=["empty", "blank", "no-triples"])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_empty_body_is_400(api: TestClient, method: str, data: bytes) -> None:
    response = api.request(method, "/store", params={"graph": GRAPH}, content=data, headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("content_type", "status"),
    [(None, 415), ("text/plain", 415), ("application/octet-stream", 415), ("text/turtle; charset=latin-1", 415)],
)
def test_unsupported_content_type_is_415(api: TestClient, content_type: str | None, status: int) -> None:
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    assert api.put("/store", params={"graph": GRAPH}, content=PERSON, headers=headers).status_code == status


def test_unacceptable_accept_is_406(api: TestClient) -> None:
    put(api, PERSON)
    response = api.get("/store", params={"graph": GRAPH}, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 406


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("query", ["", f"graph={GRAPH}&default", f"graph={GRAPH}&graph=http://example.org/other", "graph=relative"])
def test_bad_graph_parameters_are_400(api: TestClient, method: str, query: str) -> None:
    response = api.request(method, "/store?" + query, content=PERSON, headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 400


def test_direct_identification_takes_no_graph_parameter(api: TestClient) -> None:
    assert api.get("/store/person/1.ttl", params={"graph": GRAPH}).status_code == 400


def test_other_methods_are_405(api: TestClient) -> None:
    response = api.patch("/store", params={"graph": GRAPH}, content=PERSON, headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT, POST, DELETE"


# --- reads see writes at once -------------------------------------------------------------------

ASK_PATROL_11 = f"ASK {{ GRAPH <{GRAPH}> {{ <{PATROL_11}> <{PK}ordinal> 11 }} }}"
ASK_PATROL_11_IS_AN_EVENT = f"ASK {{ <{PATROL_11}> a <{PK}Event> }}"


def test_accepted_put_is_queryable_at_once(api: TestClient) -> None:
    assert put(api, PATROL).status_code == 201
    assert ask(api, ASK_PATROL_11) and ask(api, ASK_PATROL_11_IS_AN_EVENT)
    assert api.delete("/store", params={"graph": GRAPH}, headers=AUTH).status_code == 204
    assert not ask(api, ASK_PATROL_11) and not ask(api, ASK_PATROL_11_IS_AN_EVENT)


def test_accepted_put_is_queryable_at_once_on_disk(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    try:
        with TestClient(create_app(settings(), store=store, seed=True)) as api:
            assert put(api, PATROL).status_code == 201
            assert ask(api, ASK_PATROL_11) and ask(api, ASK_PATROL_11_IS_AN_EVENT)
            assert api.delete("/store", params={"graph": GRAPH}, headers=AUTH).status_code == 204
            assert not ask(api, ASK_PATROL_11)
    finally:
        store.close()
