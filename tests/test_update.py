"""SPARQL 1.1 Update at /update, through the ASGI client over a fresh store per test:
auth, validation before commit, the refusals, and writes that /sparql sees at once.

Each test's store holds what ``create_app(seed=True)`` loads; it is copied from the
session's bundle store rather than loaded again, which takes seconds. One test seeds a
store on disk for real, and serves it with the process executor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient
from SPARQLWrapper import JSON, POST, POSTDIRECTLY, URLENCODED, SPARQLWrapper

from conftest import LiveServer
from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app
from patrolkg.writes import SKOLEM_PREFIX, is_protected_graph

TOKEN = "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPDATE = "application/sparql-update"
FORM = "application/x-www-form-urlencoded"

PK = "https://w3id.org/patrolkg/ontology#"
PKID = "https://w3id.org/patrolkg/id/"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
USER_GRAPH = "http://example.org/analyst"
PATROL_11 = f"{PKID}event/joint-patrol-11"
ARTICLE_GRAPH = "https://w3id.org/patrolkg/graph/article/cnsnews-2022-05"

VALID_PATROL = f"""INSERT DATA {{ GRAPH <{USER_GRAPH}> {{
  <{PATROL_11}> a <{PK}JointPatrol> ;
      <{RDFS_LABEL}> "Eleventh Russia–China joint strategic bomber patrol"@en ;
      <{PK}ordinal> 11 ;
      <{PK}participant> <{PKID}state/russia>, <{PKID}state/china> .
}} }}"""
PATROL_WITHOUT_ORDINAL = f"""INSERT DATA {{ GRAPH <{USER_GRAPH}> {{
  <{PATROL_11}> a <{PK}JointPatrol> ;
      <{RDFS_LABEL}> "Eleventh Russia–China joint strategic bomber patrol"@en ;
      <{PK}participant> <{PKID}state/russia>, <{PKID}state/china> .
}} }}"""


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


def protected_quads(store: Store) -> set[ox.Quad]:
    return {q for q in store.quads() if isinstance(q.graph_name, ox.NamedNode) and is_protected_graph(q.graph_name.value)}


def post_update(api: TestClient, update: str, *, params: list[tuple[str, str]] | None = None, headers: dict[str, str] | None = None) -> object:
    return api.post("/update", params=params, content=update.encode(), headers={"Content-Type": UPDATE, **AUTH, **(headers or {})})


def ask(api: TestClient, query: str) -> bool:
    response = api.post("/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def error(response: object) -> dict[str, object]:
    return response.json()["error"]  # type: ignore[attr-defined]


# --- auth ---------------------------------------------------------------------------------


def test_no_token_configured_refuses_every_update(store: Store) -> None:
    with TestClient(create_app(settings(token=None), store=store, seed=True)) as api:
        response = post_update(api, VALID_PATROL)
    assert response.status_code == 403
    assert error(response)["code"] == "writes_disabled"


def test_missing_token_is_401(api: TestClient) -> None:
    response = api.post("/update", content=VALID_PATROL.encode(), headers={"Content-Type": UPDATE})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_wrong_token_is_401(api: TestClient, store: Store) -> None:
    before = quads(store)
    response = post_update(api, VALID_PATROL, headers={"Authorization": "Bearer " + "y" * 24})
    assert response.status_code == 401
    assert quads(store) == before


def test_right_token_commits_and_reports_counts(api: TestClient) -> None:
    response = post_update(api, VALID_PATROL)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["added"] == 5 and summary["removed"] == 0
    assert summary["inferred_added"] >= 1  # e.g. the patrol is an event


# --- validation before commit --------------------------------------------------------------


def test_nonconforming_result_is_422_with_the_shape_and_writes_nothing(api: TestClient, store: Store) -> None:
    before = quads(store)
    response = post_update(api, PATROL_WITHOUT_ORDINAL)
    assert response.status_code == 422
    body = error(response)
    assert body["code"] == "validation_failed"
    violations = body["report"]["violations"]
    ordinal = [v for v in violations if v["path"] == f"{PK}ordinal"]
    assert ordinal and ordinal[0]["node_shape"] == "https://w3id.org/patrolkg/shapes#JointPatrolShape"
    assert ordinal[0]["focus_node"] == PATROL_11
    assert quads(store) == before


def test_a_removal_that_breaks_data_is_422(api: TestClient, store: Store) -> None:
    assert post_update(api, VALID_PATROL).status_code == 200
    before = quads(store)
    response = post_update(api, f"DELETE WHERE {{ GRAPH <{USER_GRAPH}> {{ <{PATROL_11}> <{PK}ordinal> ?ordinal }} }}")
    assert response.status_code == 422
    assert {v["node_shape"] for v in error(response)["report"]["violations"]} == {"https://w3id.org/patrolkg/shapes#JointPatrolShape"}
    assert quads(store) == before


def test_one_bad_operation_rolls_back_the_whole_update(api: TestClient, store: Store) -> None:
    before = quads(store)
    response = post_update(api, f"INSERT DATA {{ GRAPH <{USER_GRAPH}> {{ <http://example.org/a> <http://example.org/p> 1 }} }} ;\n{PATROL_WITHOUT_ORDINAL}")
    assert response.status_code == 422
    assert quads(store) == before


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        f'INSERT DATA {{ GRAPH <{ARTICLE_GRAPH}> {{ <http://example.org/a> <{RDFS_LABEL}> "x"@en }} }}',
        "DROP GRAPH <https://w3id.org/patrolkg/graph/ontology>",
        f"DELETE WHERE {{ GRAPH <{ARTICLE_GRAPH}> {{ ?s ?p ?o }} }}",
    ],
    ids=["insert-data", "drop", "delete-where"],
)
def test_writing_a_protected_graph_is_403_and_writes_nothing(api: TestClient, store: Store, update: str) -> None:
    before = quads(store)
    response = post_update(api, update)
    assert response.status_code == 403
    assert error(response)["code"] == "forbidden_operation"
    assert quads(store) == before


def test_a_variable_graph_that_reaches_patrolkgs_graphs_is_refused(api: TestClient, store: Store) -> None:
    assert post_update(api, VALID_PATROL).status_code == 200
    before = quads(store)
    response = post_update(api, "DELETE WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert response.status_code == 403
    assert "patrolkg's own graphs" in error(response)["message"]
    assert quads(store) == before


@pytest.mark.parametrize("update", ["CLEAR ALL", "DROP ALL", "DROP NAMED", "CLEAR SILENT NAMED"])
def test_all_graph_operations_leave_patrolkgs_graphs_alone(api: TestClient, store: Store, update: str) -> None:
    before = protected_quads(store)
    assert post_update(api, VALID_PATROL).status_code == 200
    assert protected_quads(store) != before  # the inferred graph grew
    response = post_update(api, update)
    assert response.status_code == 200, response.text
    assert not any(store.quads_in(USER_GRAPH))
    assert protected_quads(store) == before


def test_operations_after_clear_all_still_read_patrolkgs_graphs(api: TestClient, store: Store) -> None:
    update = f"CLEAR ALL ; INSERT {{ GRAPH <{USER_GRAPH}> {{ ?s <http://example.org/mentioned> true }} }} WHERE {{ GRAPH <{ARTICLE_GRAPH}> {{ ?s a <{PK}JointPatrol> }} }}"
    response = post_update(api, update)
    assert response.status_code == 200, response.text
    assert response.json()["added"] > 0


def test_graph_named_by_an_escaped_local_name(api: TestClient, store: Store) -> None:
    response = post_update(api, "PREFIX ex: <http://example.org/> INSERT DATA { GRAPH ex:g\\/1 { ex:a ex:p 1 } }")
    assert response.status_code == 200, response.text
    assert "http://example.org/g/1" in store.graph_names()


def test_load_is_refused_and_nothing_is_fetched(api: TestClient, store: Store) -> None:
    before = quads(store)
    response = post_update(api, f"LOAD <http://127.0.0.1:9/data.ttl> INTO GRAPH <{USER_GRAPH}>")
    assert response.status_code == 403
    assert "LOAD" in error(response)["message"]
    assert quads(store) == before


def test_syntax_error_is_400_with_line_and_column(api: TestClient) -> None:
    response = post_update(api, "INSERT DATA {\n  <http://example.org/a> <http://example.org/p> \n}")
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "query_syntax_error"
    assert (body["line"], body["column"]) == (3, 1)


def test_using_graph_uri_with_using_in_the_update_is_400(api: TestClient, store: Store) -> None:
    before = quads(store)
    update = f"INSERT {{ GRAPH <{USER_GRAPH}> {{ ?s <http://example.org/p> 1 }} }} USING <{ARTICLE_GRAPH}> WHERE {{ ?s ?p ?o }}"
    response = post_update(api, update, params=[("using-graph-uri", ARTICLE_GRAPH)])
    assert response.status_code == 400
    assert "USING" in error(response)["message"]
    assert quads(store) == before


def test_using_graph_uri_must_be_an_absolute_iri(api: TestClient) -> None:
    response = post_update(api, "INSERT { <http://example.org/a> <http://example.org/p> ?o } WHERE { ?s ?p ?o }", params=[("using-graph-uri", "relative> INSERT")])
    assert response.status_code == 400
    assert error(response)["code"] == "bad_graph_uri"


# --- the protocol's request forms ---------------------------------------------------------------


def test_get_is_405_with_allow_post(api: TestClient) -> None:
    response = api.get("/update", params={"update": "CLEAR ALL"}, headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_update_by_form_with_using_graph_uri_as_a_form_field(api: TestClient, store: Store) -> None:
    update = f"INSERT {{ GRAPH <{USER_GRAPH}> {{ ?s <http://example.org/mentioned> true }} }} WHERE {{ ?s a <{PK}JointPatrol> }}"
    body = urlencode([("update", update), ("using-graph-uri", ARTICLE_GRAPH)], quote_via=quote)
    response = api.post("/update", content=body.encode(), headers={"Content-Type": FORM, **AUTH})
    assert response.status_code == 200, response.text
    mentioned = {q.subject.value for q in store.quads_in(USER_GRAPH)}
    assert f"{PKID}event/joint-patrol-3" in mentioned
    assert f"{PKID}event/joint-patrol-10" not in mentioned  # in another article's graph


def test_where_reads_the_default_graph_without_using(api: TestClient, store: Store) -> None:
    # The store's default graph is empty (the data is in named graphs): nothing matches.
    update = f"INSERT {{ GRAPH <{USER_GRAPH}> {{ ?s <http://example.org/mentioned> true }} }} WHERE {{ ?s a <{PK}JointPatrol> }}"
    assert post_update(api, update).json()["added"] == 0


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"CLEAR ALL", 415),
        (None, b"update=CLEAR+ALL", 415),
        (UPDATE + "; charset=UTF-16", "CLEAR ALL".encode("utf-16"), 415),
        (UPDATE, b"CLEAR ALL \xff", 400),
        (FORM, b"update=CLEAR+NAMED&update=CLEAR+DEFAULT", 400),
        (FORM, b"using-graph-uri=http%3A%2F%2Fexample.org%2Fg", 400),
        (UPDATE, b"   ", 400),
    ],
    ids=["wrong-type", "no-type", "utf-16", "bad-utf-8", "two-updates", "no-update", "empty"],
)
def test_malformed_requests(api: TestClient, store: Store, content_type: str | None, body: bytes, status: int) -> None:
    before = quads(store)
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = api.post("/update", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert quads(store) == before


def test_update_in_the_url_is_refused(api: TestClient) -> None:
    response = api.post("/update", params={"update": "CLEAR ALL"}, content=b"", headers={"Content-Type": FORM, **AUTH})
    assert response.status_code == 400
    assert error(response)["code"] == "update_in_url"


def test_relative_iris_resolve_against_the_endpoint(api: TestClient, store: Store) -> None:
    assert post_update(api, f"INSERT DATA {{ GRAPH <{USER_GRAPH}> {{ <a> <http://example.org/p> 1 }} }}").status_code == 200
    assert [q.subject.value for q in store.quads_in(USER_GRAPH)] == ["http://testserver/a"]


def test_blank_nodes_are_stored_as_skolem_iris(api: TestClient, store: Store) -> None:
    assert post_update(api, f"INSERT DATA {{ GRAPH <{USER_GRAPH}> {{ _:b <http://example.org/p> 1 }} }}").status_code == 200
    [quad] = store.quads_in(USER_GRAPH)
    assert quad.subject.value.startswith(SKOLEM_PREFIX)


# --- reads see writes at once ---------------------------------------------------------------------

ASK_PATROL_11 = f"ASK {{ GRAPH <{USER_GRAPH}> {{ <{PATROL_11}> <{PK}ordinal> 11 }} }}"
ASK_PATROL_11_IS_AN_EVENT = f"ASK {{ <{PATROL_11}> a <{PK}Event> }}"  # inferred


def test_accepted_update_is_queryable_at_once(api: TestClient) -> None:
    assert not ask(api, ASK_PATROL_11)
    assert post_update(api, VALID_PATROL).status_code == 200
    assert ask(api, ASK_PATROL_11)
    assert ask(api, ASK_PATROL_11_IS_AN_EVENT)


def test_accepted_update_is_queryable_at_once_on_disk(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    try:
        with TestClient(create_app(settings(), store=store, seed=True)) as api:
            assert not ask(api, ASK_PATROL_11)
            assert post_update(api, VALID_PATROL).status_code == 200
            assert ask(api, ASK_PATROL_11)
            assert ask(api, ASK_PATROL_11_IS_AN_EVENT)
            assert post_update(api, f"DROP GRAPH <{USER_GRAPH}>").status_code == 200
            assert not ask(api, ASK_PATROL_11)
    finally:
        store.close()


# --- a real server and a real client -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("request_method", [URLENCODED, POSTDIRECTLY])
def test_sparqlwrapper_updates_a_live_server(tmp_path: Path, request_method: str) -> None:
    server = LiveServer(tmp_path / "store", env={"PATROLKG_WRITE_TOKEN": "tester:" + TOKEN}).start()
    try:
        client = SPARQLWrapper(server.url + "/sparql", updateEndpoint=server.url + "/update")
        client.addCustomHttpHeader("Authorization", f"Bearer {TOKEN}")
        client.setMethod(POST)
        client.setRequestMethod(request_method)
        client.setQuery(VALID_PATROL)
        result = client.query()
        assert json.loads(result.response.read())["added"] == 5

        reader = SPARQLWrapper(server.url + "/sparql")
        reader.setQuery(ASK_PATROL_11_IS_AN_EVENT)
        reader.setReturnFormat(JSON)
        assert reader.queryAndConvert()["boolean"] is True
    finally:
        server.stop()
