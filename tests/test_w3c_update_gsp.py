"""The W3C suites for writes, encoded here as data: every update test of the SPARQL 1.1
Protocol suite (w3c/rdf-tests, sparql/sparql11/protocol/: the ``update_*`` and
``bad_*update*`` tests) and every test of the SPARQL 1.1 Graph Store HTTP Protocol
suite (sparql/sparql11/graph-store-protocol/, direct and indirect). Each case keeps its
manifest id and name, its requests and what each response must be.

Paths are written as the suites write them and mapped onto ours: the protocol suite's
``/sparql/`` is ``/update`` for an update and ``/sparql`` for the query that checks
its result; the graph store suite's ``/gsp`` is ``/store`` (``/gsp/person/1.ttl`` is
direct identification of ``http://testserver/store/person/1.ttl``). Each case runs on
a fresh in-memory store holding the bundled data, with a write token; writes send it.

Graphs in responses are compared with the expected ones as graphs (blank nodes
included), read with rdflib's parsers; ASK results too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.compare import isomorphic
from rdflib.query import Result

from patrolkg.settings import Settings
from patrolkg.store import Store
from patrolkg.web.app import create_app

TOKEN = "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}

FORM = "application/x-www-form-urlencoded"
QUERY = "application/sparql-query"
UPDATE = "application/sparql-update"
TURTLE_UTF8 = "text/turtle; charset=utf-8"

# Expected statuses: exact codes, or classes as "2xx".
OK, CREATED, NO_CONTENT, NOT_FOUND = 200, 201, 204, 404
SUCCESS = ("2xx", "3xx")
CLIENT_ERROR = ("4xx",)

DATA = "http://kasei.us/2009/09/sparql/data/"
DATA1, DATA2, DATA3 = (f"{DATA}data{n}.rdf" for n in (1, 2, 3))


@dataclass(frozen=True)
class Step:
    """One request and what its response must be.

    ``path`` is the suite's; ``to`` says where a ``/sparql/`` request goes ("update" or
    "query"). ``graph`` is the Turtle the response must be isomorphic to; ``boolean`` the
    ASK answer; ``response_type`` the Content-Type the response must have; ``location``
    the variable that takes the response's Location in later requests.
    """

    method: str
    path: str
    content_type: str | None = None
    body: bytes | None = None
    status: tuple[int | str, ...] = SUCCESS
    to: str | None = None
    accept: str | None = None
    boolean: bool | None = None
    graph: str | None = None
    response_type: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    steps: tuple[Step, ...]
    xfail: str | None = None


def update(path: str, content_type: str | None, body: bytes | str, status: tuple[int | str, ...] = SUCCESS) -> Step:
    return Step("POST", path, content_type, body.encode() if isinstance(body, str) else body, status, to="update")


def ask(query: str, expected: bool = True) -> Step:
    return Step("POST", "/sparql/", QUERY, query.encode(), to="query", accept="application/sparql-results+json", boolean=expected)


# --- the SPARQL 1.1 Protocol suite: updates -------------------------------------------------------

PREFIXES = "PREFIX dc: <http://purl.org/dc/terms/>\nPREFIX foaf: <http://xmlns.com/foaf/0.1/>\n"
DROP_ALL_AND_FILL = f"""DROP ALL ;
INSERT DATA {{
    GRAPH <{DATA1}> {{ <{DATA1}> a foaf:Document }}
    GRAPH <{DATA2}> {{ <{DATA2}> a foaf:Document }}
    GRAPH <{DATA3}> {{ <{DATA3}> a foaf:Document }}
}} ;
"""


def in_graph_but_data3(graph: str, pattern: str) -> str:
    """ASK that ``graph`` has ``pattern`` (``{d}`` is the subject) for data1 and data2 only."""
    return (
        f"ASK {{\n    GRAPH <{graph}> {{\n        {pattern.format(d=DATA1)} .\n        {pattern.format(d=DATA2)} .\n    }}\n"
        f"    FILTER NOT EXISTS {{\n        GRAPH <{graph}> {{\n            {pattern.format(d=DATA3)} .\n        }}\n    }}\n}}"
    )


BIBLIOGRAPHIC = "<{d}> a <http://purl.org/dc/terms/BibliographicResource>"
USING_DATA1 = "using-graph-uri=http%3A%2F%2Fkasei.us%2F2009%2F09%2Fsparql%2Fdata%2Fdata1.rdf"
USING_DATA2 = "using-graph-uri=http%3A%2F%2Fkasei.us%2F2009%2F09%2Fsparql%2Fdata%2Fdata2.rdf"
USING_NAMED_DATA1 = "using-named-graph-uri=http%3A%2F%2Fkasei.us%2F2009%2F09%2Fsparql%2Fdata%2Fdata1.rdf"
USING_NAMED_DATA2 = "using-named-graph-uri=http%3A%2F%2Fkasei.us%2F2009%2F09%2Fsparql%2Fdata%2Fdata2.rdf"

UPDATE_CASES = [
    Case(
        "update_dataset_default_graph",
        "update with protocol-specified default graph",
        (
            update(
                f"/sparql/?{USING_DATA1}",
                UPDATE,
                PREFIXES
                + f"CLEAR ALL ;\nINSERT DATA {{\n    GRAPH <{DATA1}> {{\n        <{DATA1}> a foaf:Document\n    }}\n}} ;\n"
                "INSERT {\n    GRAPH <http://example.org/protocol-update-dataset-test/> {\n        ?s a dc:BibliographicResource\n    }\n}\n"
                "WHERE {\n    ?s a foaf:Document\n}",
            ),
            ask(f"ASK {{\n    GRAPH <http://example.org/protocol-update-dataset-test/> {{\n        {BIBLIOGRAPHIC.format(d=DATA1)}\n    }}\n}}"),
        ),
    ),
    Case(
        "update_dataset_default_graphs",
        "update with protocol-specified default graphs",
        (
            update(
                f"/sparql/?{USING_DATA1}&{USING_DATA2}",
                UPDATE,
                PREFIXES
                + DROP_ALL_AND_FILL
                + "INSERT {\n    GRAPH <http://example.org/protocol-update-dataset-graphs-test/> {\n        ?s a dc:BibliographicResource\n    }\n}\n"
                "WHERE {\n    ?s a foaf:Document\n}",
            ),
            ask(in_graph_but_data3("http://example.org/protocol-update-dataset-graphs-test/", BIBLIOGRAPHIC)),
        ),
    ),
    Case(
        "update_dataset_named_graphs",
        "update with protocol-specified named graphs",
        (
            update(
                f"/sparql/?{USING_NAMED_DATA1}&{USING_NAMED_DATA2}",
                UPDATE,
                PREFIXES
                + DROP_ALL_AND_FILL
                + "INSERT {\n    GRAPH <http://example.org/protocol-update-dataset-named-graphs-test/> {\n        ?s a dc:BibliographicResource\n    }\n}\n"
                "WHERE {\n    GRAPH ?g {\n        ?s a foaf:Document\n    }\n}",
            ),
            ask(in_graph_but_data3("http://example.org/protocol-update-dataset-named-graphs-test/", BIBLIOGRAPHIC)),
        ),
    ),
    Case(
        "update_dataset_full",
        "update with protocol-specified dataset (both named and default graphs)",
        (
            update(
                f"/sparql/?{USING_DATA1}&{USING_NAMED_DATA2}",
                UPDATE,
                PREFIXES
                + DROP_ALL_AND_FILL
                + "INSERT {\n    GRAPH <http://example.org/protocol-update-dataset-full-test/> {\n        ?s <http://example.org/in> ?in\n    }\n}\n"
                'WHERE {\n    {\n        GRAPH ?g { ?s a foaf:Document }\n        BIND(?g AS ?in)\n    }\n    UNION\n    {\n        ?s a foaf:Document .\n        BIND("default" AS ?in)\n    }\n}',
            ),
            ask(
                "ASK {\n    GRAPH <http://example.org/protocol-update-dataset-full-test/> {\n"
                f'        <{DATA1}> <http://example.org/in> "default" .\n'
                f"        <{DATA2}> <http://example.org/in> <{DATA2}> .\n    }}\n"
                f"    FILTER NOT EXISTS {{\n        GRAPH <http://example.org/protocol-update-dataset-full-test/> {{\n            <{DATA3}> ?p ?o\n        }}\n    }}\n}}"
            ),
        ),
    ),
    Case("update_post_form", "update via URL-encoded POST", (update("/sparql/", FORM, "update=CLEAR+ALL"),)),
    Case("update_post_direct", "update via POST directly", (update("/sparql/", UPDATE, "CLEAR ALL"),)),
    Case(
        "update_base_uri",
        'test for service-defined BASE URI ("which MAY be the service endpoint")',
        (
            update(
                "/sparql/",
                UPDATE,
                "CLEAR SILENT GRAPH <http://example.org/protocol-base-test/> ;\n"
                "INSERT DATA { GRAPH <http://example.org/protocol-base-test/> { <http://example.org/s> <http://example.org/p> <test> } }",
            ),
            ask(
                "ASK {\n    GRAPH <http://example.org/protocol-base-test/> {\n        <http://example.org/s> <http://example.org/p> ?o\n"
                '        FILTER (isIRI(?o) && STR(?o) != "test")\n    }\n}'
            ),
        ),
    ),
    Case("bad_update_get", "invoke update operation with GET", (Step("GET", "/sparql/?update=CLEAR%20ALL", status=CLIENT_ERROR, to="update"),)),
    Case(
        "bad_multiple_updates",
        "invoke update operation with more than one update string",
        (update("/sparql/", FORM, "update=CLEAR%20NAMED&update=CLEAR%20DEFAULT", CLIENT_ERROR),),
    ),
    Case(
        "bad_update_wrong_media_type",
        "invoke update operation with a POST with media type that's not url-encoded or application/sparql-update",
        (update("/sparql/", "text/plain", "CLEAR NAMED", CLIENT_ERROR),),
    ),
    Case(
        "bad_update_missing_form_type",
        "invoke update operation with url-encoded body, but without application/x-www-form-urlencoded media type",
        (update("/sparql/", None, "update=CLEAR%20NAMED", CLIENT_ERROR),),
    ),
    Case(
        "bad_update_non_utf8",
        "invoke update operation with direct POST, but with a non-UTF8 encoding",
        (update("/sparql/", UPDATE + "; charset=UTF-16", "CLEAR NAMED".encode("utf-16"), CLIENT_ERROR),),
    ),
    Case("bad_update_syntax", "invoke update operation with invalid update syntax", (update("/sparql/", FORM, "update=CLEAR%20XYZ", CLIENT_ERROR),)),
    Case(
        "bad_update_dataset_conflict",
        "invoke update with both using-graph-uri/using-named-graph-uri parameter and USING/WITH clause",
        (
            update(
                "/sparql/?using-named-graph-uri=http%3A%2F%2Fexample%2Fpeople",
                UPDATE,
                "PREFIX foaf:  <http://xmlns.com/foaf/0.1/>\nWITH <http://example/addresses>\n"
                "DELETE { ?person foaf:givenName 'Bill' }\nINSERT { ?person foaf:givenName 'William' }\n"
                "WHERE {\n    ?person foaf:givenName 'Bill'\n}",
                CLIENT_ERROR,
            ),
        ),
    ),
]

# --- the SPARQL 1.1 Graph Store HTTP Protocol suite ------------------------------------------------

GSP_PREFIXES = "@prefix foaf: <http://xmlns.com/foaf/0.1/> .\n@prefix v: <http://www.w3.org/2006/vcard/ns#> .\n"
JOHN_DOE = GSP_PREFIXES + '<http://www.example/gsp/person/1> a foaf:Person;\n    foaf:businessCard [ a v:VCard; v:fn "John Doe" ].\n'
JANE_DOE = GSP_PREFIXES + '<http://www.example/gsp/person/1> a foaf:Person;\n    foaf:businessCard [ a v:VCard; v:fn "Jane Doe" ].\n'
JANE_DOE_2 = GSP_PREFIXES + '<http://www.example/gsp/person/2> a foaf:Person;\n    foaf:businessCard [ a v:VCard; v:fn "Jane Doe" ].\n'
ALICE = GSP_PREFIXES + '[] a foaf:Person;\n    foaf:businessCard [ a v:VCard; v:given-name "Alice" ].\n'
JANE_DOE_NAMED = (
    GSP_PREFIXES
    + '<http://www.example/gsp/person/1> a foaf:Person;\n    foaf:givenName "Jane";\n    foaf:familyName "Doe";\n'
    '    foaf:businessCard [ a v:VCard; v:fn "Jane Doe" ].\n'
)
BOUNDARY = "a6fe4cd636164618814be9f8d3d1a0de"
JANE_DOE_NAME_PARTS = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="lastName.ttl"; filename="lastName.ttl"\r\n'
    "Content-Type: text/turtle; charset=utf-8\r\n\r\n"
    "@prefix foaf: <http://xmlns.com/foaf/0.1/> .\r\n"
    '<http://www.example/gsp/person/1> foaf:familyName "Doe" .\r\n\r\n'
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="firstName.ttl"; filename="firstName.ttl"\r\n'
    "Content-Type: text/turtle; charset=utf-8\r\n\r\n"
    "@prefix foaf: <http://xmlns.com/foaf/0.1/> .\r\n"
    '<http://www.example/gsp/person/1> foaf:givenName "Jane" .\r\n\r\n'
    f"--{BOUNDARY}--\r\n"
)

PERSON_1 = "/gsp?graph=http%3A%2F%2Fwww.example%2Fgsp%2Fperson%2F1.ttl"
PERSON_2 = "/gsp?graph=http%3A%2F%2Fwww.example%2Fgsp%2Fperson%2F2.ttl"


def put(path: str, turtle: str, status: tuple[int | str, ...]) -> Step:
    return Step("PUT", path, TURTLE_UTF8, turtle.encode(), status)


def post(path: str, turtle: str, status: tuple[int | str, ...], *, location: str | None = None) -> Step:
    return Step("POST", path, TURTLE_UTF8, turtle.encode(), status, location=location)


def get(path: str, turtle: str) -> Step:
    return Step("GET", path, status=(OK,), accept="text/turtle", graph=turtle, response_type=TURTLE_UTF8)


def head(path: str, status: tuple[int | str, ...] = (OK,)) -> Step:
    return Step("HEAD", path, status=status, accept=TURTLE_UTF8, response_type=TURTLE_UTF8 if status == (OK,) else None)


def post_name_parts(path: str) -> Step:
    return Step("POST", path, f"multipart/form-data; boundary={BOUNDARY}", JANE_DOE_NAME_PARTS.encode(), (NO_CONTENT, OK))


def put_delete_get_delete(path: str) -> tuple[Step, ...]:
    return (
        put(path, ALICE, (CREATED, NO_CONTENT, OK)),
        Step("DELETE", path, status=(NO_CONTENT, OK)),
        Step("GET", path, status=(NOT_FOUND,)),
        Step("DELETE", path, status=(NO_CONTENT, NOT_FOUND, OK)),
    )


GSP_CASES = [
    Case(
        "put_get_repeat_direct",
        "PUT/GET repetition on same graph using varying graph identification  (direct graph identification)",
        (put("/gsp/person/1.ttl", JOHN_DOE, (CREATED,)), get("/gsp/person/1.ttl", JOHN_DOE), put("/gsp/person/1.ttl", JANE_DOE, (NO_CONTENT, OK)), get("/gsp/person/1.ttl", JANE_DOE)),
    ),
    Case("put_delete_get_delete_direct", "PUT initialization, then DELETE/GET/DELETE (direct graph identification)", put_delete_get_delete("/gsp/person/2.ttl")),
    Case(
        "post_get_post_get_direct",
        "Two iterations os POST/GET, with the second using multipart/form-data (direct graph identification)",
        (
            post("/gsp/person/1.ttl", JANE_DOE, (CREATED, NO_CONTENT, OK)),
            get("/gsp/person/1.ttl", JANE_DOE),
            post_name_parts("/gsp/person/1.ttl"),
            get("/gsp/person/1.ttl", JANE_DOE_NAMED),
        ),
    ),
    Case(
        "head_existing_direct",
        "PUT initialization, then HEAD on existing graph (direct graph identification)",
        (put("/gsp/person/1.ttl", JOHN_DOE, (CREATED, NO_CONTENT, OK)), head("/gsp/person/1.ttl")),
    ),
    Case(
        "put_get_repeat_indirect",
        "PUT/GET repetition on same graph using varying graph identification (indirect graph identification)",
        (put(PERSON_1, JOHN_DOE, (CREATED,)), get(PERSON_1, JOHN_DOE), put(PERSON_1, JANE_DOE, (NO_CONTENT, OK)), get(PERSON_1, JANE_DOE)),
    ),
    Case("put_get_default", "PUT/GET on the default graph", (put("/gsp?default", ALICE, (CREATED, NO_CONTENT, OK)), get("/gsp?default", ALICE))),
    Case("put_delete_get_delete_indirect", "PUT initialization, then DELETE/GET/DELETE (indirect graph identification)", put_delete_get_delete(PERSON_2)),
    Case(
        "post_get_post_get_indirect",
        "Two iterations os POST/GET, with the second using multipart/form-data  (indirect graph identification)",
        (post(PERSON_1, JANE_DOE, (CREATED, NO_CONTENT, OK)), get(PERSON_1, JANE_DOE), post_name_parts(PERSON_1), get(PERSON_1, JANE_DOE_NAMED)),
    ),
    Case(
        "post_get_new_graph",
        "Graph creation via POST on the GSP endpoint, then GET of the resulting graph (direct graph identification)",
        (post("/gsp", ALICE, (CREATED,), location="$LOCATION$"), get("/gsp?graph=$LOCATION$", ALICE)),
    ),
    Case(
        "head_existing_indirect",
        "PUT initialization, then HEAD on existing graph (indirect graph identification)",
        (put(PERSON_1, JOHN_DOE, (CREATED, NO_CONTENT, OK)), head(PERSON_1)),
    ),
    Case(
        "head_non_existing_indirect",
        "HEAD on non-existing graph (indirect graph identification)",
        (head("/gsp?graph=http%3A%2F%2Fwww.example%2Fgsp%2Fperson%2F4.ttl", (NOT_FOUND,)),),
    ),
    Case(
        "put_get_uri_pct_encoded_indirect",
        "PUT/GET (indirect graph identification; using varying percent-encoding for the same graph IRI)",
        (put(PERSON_1, JOHN_DOE, (CREATED,)), get("/gsp?graph=http://www.example/gsp/person/1.ttl", JOHN_DOE)),
    ),
    Case(
        "put_get_uri_pct_encoded_twice",
        "PUT/PUT/GET/GET (indirect graph identification; checking that we decode percent-encoding only once  — for the request URL query — and not twice)",
        (
            put("/gsp?graph=http://www.example/gsp/person/%31.ttl", JOHN_DOE, (CREATED,)),
            put("/gsp?graph=http://www.example/gsp/person/%2531.ttl", JANE_DOE_2, (CREATED,)),
            get("/gsp?graph=http://www.example/gsp/person/%31.ttl", JOHN_DOE),
            get("/gsp?graph=http://www.example/gsp/person/%2531.ttl", JANE_DOE_2),
        ),
    ),
]

CASES = UPDATE_CASES + GSP_CASES


def test_every_manifest_test_is_encoded() -> None:
    # The protocol suite's 14 update tests (of its 34), and all 13 of the graph store
    # suite (its direct and indirect manifests).
    assert len(UPDATE_CASES) == len({case.id for case in UPDATE_CASES}) == 14
    assert len(GSP_CASES) == len({case.id for case in GSP_CASES}) == 13


def _params() -> Iterator[object]:
    for case in CASES:
        marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
        yield pytest.param(case, id=case.id, marks=marks)


# --- running a case ---------------------------------------------------------------------------


@pytest.fixture
def store(seeded_store: Store) -> Store:
    return seeded_store


def our_path(step: Step) -> str:
    if step.path.startswith("/gsp"):
        return "/store" + step.path[len("/gsp") :]
    assert step.path.startswith("/sparql/") and step.to in ("update", "query"), step
    query = step.path[len("/sparql/") :]
    return ("/update" if step.to == "update" else "/sparql") + query


def is_write(step: Step) -> bool:
    return step.to == "update" or (step.path.startswith("/gsp") and step.method in ("PUT", "POST", "DELETE"))


def status_matches(status: int, expected: tuple[int | str, ...]) -> bool:
    return status in expected or f"{status // 100}xx" in expected


def normalized(content_type: str) -> str:
    return ";".join(part.strip().lower() for part in content_type.split(";"))


RDFLIB_FORMATS = {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}


def check(step: Step, response: object, where: str) -> None:
    status, headers, body = response.status_code, response.headers, response.content  # type: ignore[attr-defined]
    assert status_matches(status, step.status), where
    if step.response_type:
        assert normalized(headers["content-type"]) == normalized(step.response_type), where
    if step.method == "HEAD":
        assert body == b"", where
    if step.graph is not None:
        media_type = headers["content-type"].split(";")[0].strip()
        answer = rdflib.Graph().parse(data=body, format=RDFLIB_FORMATS[media_type])
        assert isomorphic(answer, rdflib.Graph().parse(data=step.graph, format="turtle")), where
    if step.boolean is not None:
        assert Result.parse(io.BytesIO(body), format="json").askAnswer is step.boolean, where


@pytest.mark.parametrize("case", list(_params()))
def test_w3c(case: Case, store: Store) -> None:
    settings = Settings.from_env({}, write_token="tester:" + TOKEN)
    variables: dict[str, str] = {}
    with TestClient(create_app(settings, store=store, seed=True)) as client:
        for index, step in enumerate(case.steps, 1):
            path = our_path(step)
            for name, value in variables.items():
                path = path.replace(name, value)
            headers = {
                **({"Content-Type": step.content_type} if step.content_type else {}),
                **({"Accept": step.accept} if step.accept else {}),
                **(AUTH if is_write(step) else {}),
            }
            response = client.request(step.method, path, content=step.body, headers=headers, follow_redirects=False)
            where = f"{case.id} ({case.name}), request {index} {step.method} {path}: {response.status_code} {response.text[:300]}"
            check(step, response, where)
            if step.location:
                variables[step.location] = response.headers["location"]
