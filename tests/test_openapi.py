"""The app against its own OpenAPI description, with schemathesis: requests generated
from the description (valid ones and, for every operation, ones that break it), sent
in process to ``create_app`` over a fresh seeded in-memory store with writes enabled.

One exploration runs per module (a bounded number of examples per operation and
mode); the tests below each judge one property of what it saw: no 5xx ever, every
status and media type documented, every body matching its schema. Where the
description lacks what the routes really answer, that is a finding, pinned here.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from conftest import seeded
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
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
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


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the OpenAPI description documents only the success status (and FastAPI's default 422) of each route, not the 400, 401, 403, 404, 405, 406, 409, 413, 415 and 503 every route really answers in the one error shape: declare them (responses= on each route, with an ErrorDocument model for {'error': {...}})")
def test_every_status_answered_is_documented(exploration: Exploration) -> None:
    assert exploration.failed("status_code_conformance") == {}


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the OpenAPI description says application/json for /sparql, /store, /ontology, /.well-known/void and /id/{path}, which answer SPARQL results (JSON, XML, CSV, TSV) and RDF (Turtle, N-Triples, JSON-LD, RDF/XML) by negotiation: list the real media types per route (responses={200: {'content': {...}}})")
def test_every_media_type_answered_is_documented(exploration: Exploration) -> None:
    assert exploration.failed("content_type_conformance") == {}


def test_every_documented_body_matches_its_schema(exploration: Exploration) -> None:
    assert exploration.failed("response_schema_conformance") == {}


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="POST /submissions and POST /validate read the RDF body with request.body() and declare no requestBody (POST /reconcile neither, for its form), so clients and schemathesis cannot know they take text/turtle, application/n-triples, application/ld+json or application/rdf+xml: add openapi_extra={'requestBody': ...} as /update and /store do")
def test_every_route_that_reads_a_body_documents_it(description: dict[str, object]) -> None:
    missing = [f"POST {path}" for path in ("/submissions", "/validate", "/reconcile") if "requestBody" not in description["paths"][path]["post"]]  # type: ignore[index]
    assert missing == []


def test_the_write_operations_declare_bearer_authentication(description: dict[str, object]) -> None:
    schemes = description.get("components", {}).get("securitySchemes", {})  # type: ignore[attr-defined]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())
    for method, path in WRITES:
        assert description["paths"][path][method.lower()].get("security"), f"{method} {path}"  # type: ignore[index]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="GET and HEAD of /id/{path}, /ontology and /.well-known/void are one api_route each, so both operations get the same operationId (FastAPI warns 'Duplicate Operation ID'); OpenAPI requires unique ids: give HEAD its own route (include_in_schema=False, as /sparql does) or an explicit operation_id")
def test_operation_ids_are_unique(description: dict[str, object]) -> None:
    ids = [operation.get("operationId") for item in description["paths"].values() for operation in item.values()]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the description's 422 responses use FastAPI's HTTPValidationError ({'detail': [...]}), but the app answers parameter errors with 400 in its own shape ({'error': {...}}) and uses 422 only for the SHACL report: replace the default 422 (responses={422: ...}, or an app-wide openapi override)")
def test_the_documented_422_is_the_validation_report(description: dict[str, object]) -> None:
    refs = {
        str(response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", ""))
        for item in description["paths"].values()  # type: ignore[attr-defined]
        for operation in item.values()
        for status, response in operation.get("responses", {}).items()
        if status == "422"
    }
    assert not any(ref.endswith("/HTTPValidationError") for ref in refs), refs


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
