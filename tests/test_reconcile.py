"""The Reconciliation Service API 0.2 at /reconcile, with the spec's own request and
response shapes (https://www.w3.org/community/reports/reconciliation/CG-FINAL-specs-0.2-20230410/).

The shape checks below restate what the spec's JSON schemas require of a manifest,
a reconciliation result batch and suggest responses."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from patrolkg.web.reconcile import MAX_BATCH

# ------------------------------------------------------------- the spec's shapes


def assert_manifest(manifest: dict[str, Any]) -> None:
    for field in ("versions", "name", "identifierSpace", "schemaSpace"):
        assert field in manifest, field
    assert "0.2" in manifest["versions"] and all(isinstance(v, str) for v in manifest["versions"])
    assert all(isinstance(manifest[f], str) for f in ("name", "identifierSpace", "schemaSpace"))
    assert "{{id}}" in manifest["view"]["url"]
    preview = manifest["preview"]
    assert "{{id}}" in preview["url"] and isinstance(preview["width"], int) and isinstance(preview["height"], int)
    for kind in ("entity", "type", "property"):
        service = manifest["suggest"][kind]
        assert all(isinstance(service[k], str) for k in service)
        assert "flyout_service_path" not in service or "${id}" in service["flyout_service_path"]
    types = manifest["defaultTypes"]
    assert all(isinstance(t["id"], str) and isinstance(t["name"], str) for t in types)
    assert len({t["id"] for t in types}) == len(types)


def assert_result_batch(batch: dict[str, Any], keys: set[str]) -> None:
    assert set(batch) == keys
    for answer in batch.values():
        assert set(answer) >= {"result"}
        scores = []
        for candidate in answer["result"]:
            assert isinstance(candidate["id"], str) and isinstance(candidate["name"], str)
            assert isinstance(candidate["score"], (int, float)) and not isinstance(candidate["score"], bool)
            assert isinstance(candidate.get("match", False), bool)
            for kind in candidate.get("type", []):
                assert isinstance(kind, str) or isinstance(kind["id"], str)
            for feature in candidate.get("features", []):
                assert isinstance(feature["id"], str) and isinstance(feature["value"], (bool, int, float))
            assert len({f["id"] for f in candidate.get("features", [])}) == len(candidate.get("features", []))
            assert "description" not in candidate or isinstance(candidate["description"], str)
            scores.append(candidate["score"])
        assert scores == sorted(scores, reverse=True), "candidates are sorted by decreasing score"
        assert sum(c.get("match", False) for c in answer["result"]) <= 1


def assert_suggest(response: dict[str, Any], *, entities: bool = False) -> None:
    assert isinstance(response["result"], list)
    for item in response["result"]:
        assert isinstance(item["id"], str) and isinstance(item["name"], str)
        assert "description" not in item or isinstance(item["description"], str)
        if entities:
            for kind in item.get("notable", []):
                assert isinstance(kind, str) or (isinstance(kind["id"], str))


def reconcile(client: TestClient, queries: dict[str, Any], *, method: str = "POST") -> dict[str, Any]:
    if method == "POST":
        response = client.post("/reconcile", data={"queries": json.dumps(queries)})
    else:
        response = client.get("/reconcile", params={"queries": json.dumps(queries)})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    batch = response.json()
    assert_result_batch(batch, set(queries))
    return batch


def top(batch: dict[str, Any], key: str) -> dict[str, Any]:
    return batch[key]["result"][0]


# ------------------------------------------------------------------- manifest


def test_the_manifest(client: TestClient) -> None:
    response = client.get("/reconcile")
    assert response.status_code == 200
    manifest = response.json()
    assert_manifest(manifest)
    assert manifest["identifierSpace"] == "https://w3id.org/patrolkg/id/"
    assert manifest["schemaSpace"] == "https://w3id.org/patrolkg/ontology#"
    assert {"id": "pk:State", "name": "State"} in manifest["defaultTypes"]
    assert manifest["view"]["url"] == "http://testserver/id/{{id}}"
    assert manifest["batchSize"] == MAX_BATCH


def test_the_manifest_is_open_to_other_origins(client: TestClient) -> None:
    response = client.get("/reconcile", headers={"Origin": "https://openrefine.example"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_jsonp(client: TestClient) -> None:
    response = client.get("/reconcile", params={"callback": "jQuery123_456"})
    assert response.headers["content-type"].startswith("application/javascript")
    body = re.fullmatch(r"/\*\*/jQuery123_456\((.*)\);", response.text, re.DOTALL)
    assert body is not None
    assert_manifest(json.loads(body.group(1)))
    assert client.get("/reconcile", params={"callback": "alert(1)//"}).status_code == 400


# --------------------------------------------------------------------- queries


def test_the_spec_minimal_query_batch(client: TestClient) -> None:
    # The shape of the spec's minimal example: a batch of one query by name.
    batch = reconcile(client, {"q0": {"query": "Japan"}}, method="GET")
    japan = top(batch, "q0")
    assert japan["id"] == "state/japan" and japan["name"] == "Japan"
    assert japan["score"] == 100 and japan["match"] is True
    assert {"id": "pk:State", "name": "State"} in japan["type"]


def test_the_spec_full_query_batch(client: TestClient) -> None:
    # Every field of a query: query, type, limit, properties, type_strict.
    queries = {
        "q0": {"query": "Tokyo", "type": "pk:State", "limit": 5, "properties": [{"pid": "pk:memberOf", "v": "Quad"}], "type_strict": "should"},
        "q1": {"query": "Tokyo", "type": ["pk:Place"], "limit": 1},
    }
    batch = reconcile(client, queries)
    japan = top(batch, "q0")
    assert japan["id"] == "state/japan"  # Tokyo is an alias of Japan, the state
    assert {"id": "properties", "value": 5.0} in japan["features"]
    assert [c["id"] for c in batch["q1"]["result"]] == ["place/tokyo"]


def test_a_property_may_have_several_values_of_several_kinds(client: TestClient) -> None:
    # The spec's multi-values example: a string and a reconciled value for one property.
    queries = {"q0": {"query": "India", "properties": [{"pid": "pk:memberOf", "v": ["Quad", {"id": "org/quad", "name": "Quad"}]}]}}
    assert top(reconcile(client, queries), "q0")["id"] == "state/india"


def test_type_restricts_the_candidates(client: TestClient) -> None:
    untyped = reconcile(client, {"q": {"query": "Tokyo"}})["q"]["result"]
    assert [c["id"] for c in untyped[:2]] == ["place/tokyo", "state/japan"]
    assert not any(c["match"] for c in untyped)  # the city, or the state it stands for?
    typed = reconcile(client, {"q": {"query": "Tokyo", "type": "https://w3id.org/patrolkg/ontology#Place"}})["q"]["result"]
    assert [c["id"] for c in typed] == ["place/tokyo"] and typed[0]["match"] is True


def test_a_contradicting_property_lowers_the_score_and_the_match(client: TestClient) -> None:
    batch = reconcile(client, {"q": {"query": "South Korea", "properties": [{"pid": "pk:memberOf", "v": "Quad"}]}})
    korea = top(batch, "q")
    assert korea["id"] == "state/south-korea" and korea["score"] == 80 and korea["match"] is False
    assert {"id": "properties", "value": -20.0} in korea["features"]


def test_a_family_name_alone_is_not_a_match(client: TestClient) -> None:
    kishida = top(reconcile(client, {"q": {"query": "Kishida", "type": "pk:Person"}}), "q")
    assert kishida["id"] == "person/fumio-kishida" and kishida["match"] is False and kishida["score"] < 85


@pytest.mark.parametrize("query", ["state/japan", "https://w3id.org/patrolkg/id/state/japan", "wd:Q17", "http://www.wikidata.org/entity/Q17"])
def test_an_identifier_as_query_returns_its_entity(client: TestClient, query: str) -> None:
    japan = top(reconcile(client, {"q": {"query": query}}), "q")
    assert japan["id"] == "state/japan" and japan["score"] == 100 and japan["match"] is True


def test_a_wikidata_id_in_a_column_reconciles_through_the_link_set(client: TestClient) -> None:
    queries = {"q": {"properties": [{"pid": "owl:sameAs", "v": "Q148"}]}, "r": {"query": "PRC", "properties": [{"pid": "owl:sameAs", "v": "wd:Q159"}]}}
    batch = reconcile(client, queries)
    assert top(batch, "q")["id"] == "state/china" and top(batch, "q")["match"] is True
    assert top(batch, "r")["id"] == "state/russia"


def test_limit_and_unknown_names(client: TestClient) -> None:
    batch = reconcile(client, {"a": {"query": "Japan", "limit": 1}, "b": {"query": "Atlantis"}})
    assert len(batch["a"]["result"]) == 1
    assert batch["b"]["result"] == []


def test_every_result_can_be_viewed_and_previewed(client: TestClient) -> None:
    manifest = client.get("/reconcile").json()
    japan = top(reconcile(client, {"q": {"query": "Japan"}}), "q")
    view = manifest["view"]["url"].replace("{{id}}", japan["id"]).removeprefix("http://testserver")
    assert client.get(view, headers={"Accept": "text/html"}).status_code == 200
    preview = client.get(manifest["preview"]["url"].replace("{{id}}", "state%2Fjapan").removeprefix("http://testserver"))
    assert preview.status_code == 200 and preview.headers["content-type"].startswith("text/html")
    assert ">Japan</a></h1>" in preview.text and "https://www.wikidata.org/wiki/Q17" in preview.text
    assert client.get("/reconcile/preview", params={"id": "state/atlantis"}).status_code == 404


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "queries, status",
    [
        ("not json", 400),
        ("[1, 2]", 400),
        (json.dumps({"q": {}}), 400),
        (json.dumps({"q": {"query": ""}}), 400),
        (json.dumps({"q": {"query": "Japan", "limit": 0}}), 400),
        (json.dumps({"q": {"query": "Japan", "colour": "red"}}), 400),
        (json.dumps({"q": {"query": "Japan", "properties": [{"pid": "pk:memberOf"}]}}), 400),
        (json.dumps({f"q{i}": {"query": "Japan"} for i in range(MAX_BATCH + 1)}), 413),
    ],
)
def test_malformed_batches_are_refused_with_the_one_error_shape(client: TestClient, queries: str, status: int) -> None:
    response = client.post("/reconcile", data={"queries": queries})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and error["message"]


def test_a_post_without_a_form_is_refused(client: TestClient) -> None:
    assert client.post("/reconcile", content=b'{"q0": {"query": "Japan"}}', headers={"Content-Type": "application/json"}).status_code == 415
    assert client.post("/reconcile", data={"other": "x"}).status_code == 400


# --------------------------------------------------------------------- suggest


def test_suggest_entities_by_prefix_with_a_cursor(client: TestClient) -> None:
    first = client.get("/reconcile/suggest/entity", params={"prefix": "Jap"}).json()
    assert_suggest(first, entities=True)
    assert first["result"][0] == {"id": "state/japan", "name": "Japan", "notable": [{"id": "pk:State", "name": "State"}]}
    second = client.get("/reconcile/suggest/entity", params={"prefix": "Jap", "cursor": "1"}).json()
    assert second["result"][0] == first["result"][1]
    by_id = client.get("/reconcile/suggest/entity", params={"prefix": "state/japan"}).json()
    assert by_id["result"][0]["id"] == "state/japan"


def test_suggest_types_and_properties(client: TestClient) -> None:
    types = client.get("/reconcile/suggest/type", params={"prefix": "sta"}).json()
    assert_suggest(types)
    assert {"id": "pk:State", "name": "State"}.items() <= next(t for t in types["result"] if t["id"] == "pk:State").items()
    properties = client.get("/reconcile/suggest/property", params={"prefix": "member"}).json()
    assert_suggest(properties)
    assert "pk:memberOf" in [p["id"] for p in properties["result"]]
    same_as = client.get("/reconcile/suggest/property", params={"prefix": "same"}).json()
    assert [p["id"] for p in same_as["result"]] == ["owl:sameAs"]
    assert client.get("/reconcile/suggest/entity", params={"prefix": "x", "cursor": "-1"}).status_code == 400


# ----------------------------------------------------------------- a real client


@pytest.mark.slow
def test_a_real_server_answers_as_openrefine_asks(live_server: Any) -> None:
    # OpenRefine reads the manifest, then POSTs the batch as a urlencoded form.
    manifest = httpx.get(live_server.url + "/reconcile", timeout=30).json()
    assert_manifest(manifest)
    queries = {"q0": {"query": "Vladimir Putin", "type": "pk:Person", "limit": 3}, "q1": {"query": "Tu-95", "type": "pk:AircraftType"}}
    response = httpx.post(live_server.url + "/reconcile", data={"queries": json.dumps(queries)}, timeout=30)
    batch = response.json()
    assert_result_batch(batch, {"q0", "q1"})
    assert top(batch, "q0")["id"] == "person/vladimir-putin" and top(batch, "q0")["match"] is True
    assert top(batch, "q1")["id"] == "aircraft-type/tu-95"
