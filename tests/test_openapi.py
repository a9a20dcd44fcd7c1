"""The app against its own OpenAPI description, with schemathesis: requests generated
from the description (valid ones and, for every operation, ones that break it), sent
in process to ``create_app`` over a fresh seeded in-memory store with writes enabled.

One exploration runs per module (a bounded number of examples per operation and
mode); the tests below each judge one property of what it saw: no 5xx ever, every
status and media type documented, every body matching its schema. Then the
description itself: valid OpenAPI 3, every route in it, request bodies, bearer
authentication and the one error shape declared, and every example it gives answered
as it says. Last, the bugs the exploration found, each pinned by a plain test.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import fastapi.routing
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from conftest import DERANDOMIZE, seeded
from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Bodies in these media types are text; without a serializer schemathesis never sends them.
schemathesis.serializer.alias(["application/sparql-query", "application/sparql-update", "application/n-triples", "application/n-quads", "application/trig"], "text/plain")

SECRET = "o9" * 16
EXAMPLES_PER_OPERATION = 25
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
WRITES = {("POST", "/submissions"), ("DELETE", "/submissions/{submission_id}"), ("POST", "/update"), ("PUT", "/store"), ("POST", "/store"), ("DELETE", "/store"), ("PUT", "/store/{path}"), ("POST", "/store/{path}"), ("DELETE", "/store/{path}")}


@dataclass
class Exploration:
    """What schemathesis saw: statuses per operation, and failures per check."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, dict[str, set[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))

    def failed(self, check: str) -> dict[str, set[str]]:
        return {label: found[check] for label, found in self.failures.items() if found.get(check)}


def _explore(app: object) -> Exploration:
    seen = Exploration()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, headers={"Authorization": "Bearer " + SECRET})

            @given(case=strategy)
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=DERANDOMIZE, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case: object) -> None:
                response = case.call()  # type: ignore[attr-defined]
                seen.statuses[operation.label][response.status_code] += 1
                for check in CHECKS:
                    try:
                        case.validate_response(response, checks=[check])  # type: ignore[attr-defined]
                    except BaseException as failure:  # schemathesis raises a FailureGroup
                        if isinstance(failure, KeyboardInterrupt):
                            raise
                        detail = f"{response.status_code} {response.headers.get('content-type', '')}".strip()
                        if response.status_code >= 500:
                            detail += f" for {case.method} {case.formatted_path} {case.query or ''}: {response.text[:200]}"  # type: ignore[attr-defined]
                        seen.failures[operation.label][check.__name__].add(detail)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # an operation without parameters cannot be sent wrong
    return seen


@pytest.fixture(scope="module")
def app(bundle_store: Store) -> Iterator[object]:
    store = seeded(bundle_store, open_store(None))
    app = create_app(Settings.from_env({}, write_token="olga:" + SECRET, query_timeout=5.0), store=store, seed=False)
    with TestClient(app, raise_server_exceptions=False):  # runs the lifespan: the services exist
        yield app


@pytest.fixture(scope="module")
def exploration(app: object) -> Exploration:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _explore(app)


@pytest.fixture(scope="module")
def description(app: object) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return app.openapi()  # type: ignore[attr-defined]


def test_every_operation_was_exercised(exploration: Exploration, description: dict[str, object]) -> None:
    documented = {f"{method.upper()} {path}" for path, item in description["paths"].items() for method in item}  # type: ignore[attr-defined]
    assert documented <= set(exploration.statuses), documented - set(exploration.statuses)


def test_no_generated_request_is_answered_5xx(exploration: Exploration) -> None:
    assert exploration.failed("not_a_server_error") == {}


def test_every_status_answered_is_documented(exploration: Exploration) -> None:
    assert exploration.failed("status_code_conformance") == {}


def test_every_media_type_answered_is_documented(exploration: Exploration) -> None:
    assert exploration.failed("content_type_conformance") == {}


def test_every_documented_body_matches_its_schema(exploration: Exploration) -> None:
    assert exploration.failed("response_schema_conformance") == {}


def test_every_route_that_reads_a_body_documents_it(description: dict[str, object]) -> None:
    missing = [f"POST {path}" for path in ("/submissions", "/validate", "/reconcile") if "requestBody" not in description["paths"][path]["post"]]  # type: ignore[index]
    assert missing == []


def test_the_write_operations_declare_bearer_authentication(description: dict[str, object]) -> None:
    schemes = description.get("components", {}).get("securitySchemes", {})  # type: ignore[attr-defined]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())
    for method, path in WRITES:
        assert description["paths"][path][method.lower()].get("security"), f"{method} {path}"  # type: ignore[index]


def test_operation_ids_are_unique(description: dict[str, object]) -> None:
    ids = [operation.get("operationId") for item in description["paths"].values() for operation in item.values()]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]


def test_the_documented_422_is_the_validation_report(description: dict[str, object]) -> None:
    refs = {
        str(response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", ""))
        for item in description["paths"].values()  # type: ignore[attr-defined]
        for operation in item.values()
        for status, response in operation.get("responses", {}).items()
        if status == "422"
    }
    assert not any(ref.endswith("/HTTPValidationError") for ref in refs), refs


# --- the description itself ----------------------------------------------------------

#: Routes the description leaves out, and why.
STATIC_FILES = {("GET", "/static/{name}"), ("GET", "/favicon.ico"), ("GET", "/assets/ld.css")}  # the pages' own files
#: Methods a path refuses with 405 and its Allow header; OpenAPI describes what a path takes.
REFUSED_METHODS = {
    *(("PUT", "/sparql"), ("DELETE", "/sparql"), ("PATCH", "/sparql")),
    *((method, "/update") for method in ("GET", "HEAD", "PUT", "DELETE", "PATCH")),
    *(("PATCH", "/store"), ("PATCH", "/store/{path}")),
}


def _operations(description: dict[str, object]) -> Iterator[tuple[str, str, dict[str, object]]]:
    for path, item in description["paths"].items():  # type: ignore[attr-defined]
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_the_description_is_valid_openapi_3(description: dict[str, object]) -> None:
    assert str(description["openapi"]).startswith("3.")
    schemathesis.openapi.from_dict(copy.deepcopy(description)).validate()  # raises on the first violation of the OpenAPI schema


def _served(app: object) -> set[tuple[str, str]]:
    """(method, path) of every route of the app's own routers (not FastAPI's /docs...)."""
    # FastAPI 0.16x keeps included routers whole, and iter_route_contexts walks them;
    # earlier versions copy their routes into app.routes.
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = walk(app.routes) if walk else app.routes  # type: ignore[attr-defined]
    return {(method, route.path_format) for route in routes if isinstance(getattr(route, "original_route", route), APIRoute) for method in route.methods}


def test_every_route_of_the_app_is_described(app: object, description: dict[str, object]) -> None:
    served = _served(app)
    described = {(method, path) for method, path, _ in _operations(description)}
    assert served - described == STATIC_FILES | REFUSED_METHODS
    assert described <= served


def test_the_methods_left_out_are_refused_with_405(app: object) -> None:
    client = TestClient(app)  # type: ignore[arg-type]  # the app's lifespan already runs (the fixture)
    for method, path in sorted(REFUSED_METHODS):
        response = client.request(method, path.replace("{path}", "notes"))
        assert response.status_code == 405, (method, path)
        assert method not in response.headers["allow"], (method, path)


def test_only_the_write_operations_need_the_token_and_they_document_its_refusals(description: dict[str, object]) -> None:
    secured = {(method, path): operation for method, path, operation in _operations(description) if operation.get("security")}  # type: ignore[attr-defined]
    assert set(secured) == WRITES
    for operation in secured.values():
        assert operation["security"] == [{"bearer": []}]
        assert {"401", "403"} <= set(operation["responses"])


def test_every_error_is_documented_in_the_one_error_shape(description: dict[str, object]) -> None:
    schemas = description["components"]["schemas"]  # type: ignore[index]
    assert {"Error", "ValidationFailure", "ValidationReport", "SubmissionRecord"} <= set(schemas)
    for method, path, operation in _operations(description):
        for status, response in operation["responses"].items():  # type: ignore[attr-defined]
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if int(status) >= 400 and schema is not None:
                expected = "ValidationFailure" if status == "422" else "Error"
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, status)


#: What an example of the description is answered when it is not a success.
EXAMPLE_STATUSES = {("POST", "/submissions", "violates"): 422}
#: The order examples are sent in: a graph is written before it is read, and deleted last.
METHOD_ORDER = ("PUT", "POST", "GET", "HEAD", "DELETE")


def _examples(description: dict[str, object]) -> Iterator[tuple[str, str, str, dict[str, object]]]:
    """(method, path, example name, Case arguments) for each example the description gives."""
    for method, path, operation in sorted(_operations(description), key=lambda o: (METHOD_ORDER.index(o[0]), o[1])):
        given: dict[str, dict[str, object]] = {"query": {}, "path_parameters": {}}
        for parameter in operation.get("parameters", []):  # type: ignore[attr-defined]
            named = [example["value"] for example in parameter.get("examples", {}).values()]
            if "example" in parameter or named:
                where = "path_parameters" if parameter["in"] == "path" else "query"
                given[where][parameter["name"]] = parameter.get("example", named[0] if named else None)
        bodies = [
            (name, {"media_type": media_type, "body": value})
            for media_type, declared in operation.get("requestBody", {}).get("content", {}).items()  # type: ignore[attr-defined]
            for name, value in ([("example", declared["example"])] if "example" in declared else [(name, example["value"]) for name, example in declared.get("examples", {}).items()])
        ]
        if bodies:
            for name, body in bodies:
                yield method, path, name, {**given, **body}
        elif given["query"] or given["path_parameters"]:
            yield method, path, "parameters", given


def test_every_example_of_the_description_is_answered_as_it_says(bundle_store: Store) -> None:
    app = create_app(Settings.from_env({}, write_token="olga:" + SECRET), store=seeded(bundle_store, open_store(None)), seed=False)
    with TestClient(app), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        answered = {}
        for method, path, name, arguments in _examples(app.openapi()):
            case = schema[path][method].Case(headers={"Authorization": "Bearer " + SECRET}, **arguments)
            response = case.call()
            case.validate_response(response, checks=list(CHECKS))  # raises when the answer is not as described
            answered[(method, path, name)] = response.status_code
    assert len(answered) >= 15, answered
    assert {key: status for key, status in answered.items() if not 200 <= status < 300} == EXAMPLE_STATUSES


# --- what the exploration found ------------------------------------------------------------


@pytest.fixture
def writable(bundle_store: Store) -> Iterator[TestClient]:
    app = create_app(Settings.from_env({}, write_token="olga:" + SECRET), store=seeded(bundle_store, open_store(None)), seed=False)
    with TestClient(app, headers={"Authorization": "Bearer " + SECRET}) as client:
        yield client


def test_a_reconciliation_batch_can_be_posted_as_multipart_form_data(writable: TestClient) -> None:
    # It was a 500: request.form() needs python-multipart, which was not a dependency.
    response = writable.post("/reconcile", files={"queries": (None, '{"q0": {"query": "Japan", "type": "pk:State"}}')})
    assert response.status_code == 200, response.text
    assert response.json()["q0"]["result"][0]["id"] == "state/japan"


def test_a_suggest_cursor_of_other_digits_is_a_400(writable: TestClient) -> None:
    # It was a 500: "¹".isdigit() is true, and int("¹") fails.
    response = writable.get("/reconcile/suggest/type", params={"prefix": "Sta", "cursor": "¹"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_cursor"


def test_a_preview_of_an_id_with_a_line_break_says_there_is_no_such_entity(writable: TestClient) -> None:
    # It was a 400 with a SPARQL syntax error: the id went into a string literal unescaped.
    response = writable.get("/reconcile/preview", params={"id": "state/japan\r\n"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_a_graph_whose_url_holds_a_line_break_is_written_and_read_like_any_other(writable: TestClient) -> None:
    # It was a 404 to the PUT: Starlette's path parameters do not match across a line break.
    note = b'<https://example.org/notes/1> <http://www.w3.org/2000/01/rdf-schema#comment> "a note" .\n'
    assert writable.put("/store/notes%0Aone", content=note, headers={"Content-Type": "application/n-triples"}).status_code == 201
    read = writable.get("/store/notes%0Aone", headers={"Accept": "application/n-triples"})
    assert read.status_code == 200 and read.content == note
    graphs = writable.get("/sparql", params={"query": "SELECT ?g WHERE { GRAPH ?g { <https://example.org/notes/1> ?p ?o } }", "format": "json"}).json()
    assert [b["g"]["value"] for b in graphs["results"]["bindings"]] == ["http://testserver/store/notes%0Aone"]
    assert writable.delete("/store/notes%0Aone").status_code == 204
