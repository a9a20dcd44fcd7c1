"""The W3C SPARQL 1.1 Protocol test suite (w3c/rdf-tests, sparql/sparql11/protocol/),
encoded here as data: each case keeps its manifest id and name, its requests and what
each response must be. The suite's ``/sparql/`` is our ``/sparql``.

The dataset tests load the three one-triple files data1.nt–data3.nt into the named
graphs ``http://kasei.us/2009/09/sparql/data/dataN.rdf``; their triples are written out
below. The update tests, sent to ``/update``, are in test_w3c_update_gsp.py.

Results are read with rdflib's parsers, not ours, so a response must be what another
implementation understands.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.query import Result

from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.web.app import create_app

DATA = "http://kasei.us/2009/09/sparql/data/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
FOAF_DOCUMENT = "http://xmlns.com/foaf/0.1/Document"


def data_file(n: int) -> str:
    """The one triple of dataN.nt."""
    return f"<{DATA}data{n}.rdf> <{RDF_TYPE}> <{FOAF_DOCUMENT}> .\n"


def data_graph(n: int) -> str:
    """The graph dataN.nt is loaded into."""
    return f"{DATA}data{n}.rdf"


DATA0 = data_graph(0)  # named by some requests, holds nothing
DATA1, DATA2, DATA3 = data_graph(1), data_graph(2), data_graph(3)

FORM = "application/x-www-form-urlencoded"
QUERY = "application/sparql-query"
UPDATE = "application/sparql-update"
SUCCESS = ("2xx", "3xx")
CLIENT_ERROR = ("4xx",)

RESULTS_TYPES = {
    "application/sparql-results+json": "json",
    "application/sparql-results+xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
RDF_TYPES = {"application/rdf+xml": "xml", "text/turtle": "turtle", "application/n-triples": "nt"}


def form(*pairs: tuple[str, str]) -> bytes:
    return urlencode(pairs, quote_via=quote).encode()


@dataclass(frozen=True)
class Step:
    """One request and what its response must be.

    ``result`` is the manifest's expected format: "boolean" (a SPARQL XML or JSON
    boolean, equal to ``boolean`` when given), "tabular" (SELECT results in XML, JSON,
    CSV or TSV) or "RDF" (RDF/XML, Turtle or N-Triples).
    """

    method: str
    params: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: bytes | None = None
    status: tuple[str, ...] = SUCCESS
    result: str | None = None
    boolean: bool | None = None


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    steps: tuple[Step, ...]
    graphs: tuple[int, ...] = ()  # N: dataN.nt into the graph dataN.rdf
    update: bool = False


ASK_DATA1_DATA2 = f"ASK {{ <{DATA1}> a ?type . <{DATA2}> a ?type . }}"
ASK_NAMED_DATA1_DATA2 = f"ASK {{ GRAPH ?g1 {{ <{DATA1}> a ?type }} GRAPH ?g2 {{ <{DATA2}> a ?type }} }}"

QUERY_CASES = [
    Case(
        "query_post_form",
        "query via URL-encoded POST",
        (Step("POST", (("default-graph-uri", DATA0),), FORM, form(("query", "ASK {}")), result="boolean", boolean=True),),
    ),
    Case(
        "query_dataset_default_graphs_get",
        "GET query with protocol-specified default graph",
        (Step("GET", (("query", ASK_DATA1_DATA2), ("default-graph-uri", DATA1), ("default-graph-uri", DATA2)), result="boolean", boolean=True),),
        graphs=(1, 2),
    ),
    Case(
        "query_dataset_default_graphs_post",
        "POST query with protocol-specified default graphs",
        (Step("POST", (("default-graph-uri", DATA1), ("default-graph-uri", DATA2)), QUERY, ASK_DATA1_DATA2.encode(), result="boolean", boolean=True),),
        graphs=(1, 2),
    ),
    Case(
        "query_dataset_named_graphs_post",
        "POST query with protocol-specified named graphs",
        (Step("POST", (("named-graph-uri", DATA1), ("named-graph-uri", DATA2)), QUERY, ASK_NAMED_DATA1_DATA2.encode(), result="boolean", boolean=True),),
        graphs=(1, 2),
    ),
    Case(
        "query_dataset_named_graphs_get",
        "GET query with protocol-specified named graphs",
        (Step("GET", (("query", ASK_NAMED_DATA1_DATA2), ("named-graph-uri", DATA1), ("named-graph-uri", DATA2)), result="boolean", boolean=True),),
        graphs=(1, 2),
    ),
    Case(
        "query_dataset_full",
        "query with protocol-specified dataset (both named and default graphs)",
        (
            Step(
                "POST",
                (("default-graph-uri", DATA3), ("named-graph-uri", DATA1), ("named-graph-uri", DATA2)),
                QUERY,
                f"ASK {{\n  <{DATA3}> a ?type\n  GRAPH ?g1 {{ <{DATA1}> a ?type }}\n  GRAPH ?g2 {{ <{DATA2}> a ?type }}\n}}".encode(),
                result="boolean",
                boolean=True,
            ),
        ),
        graphs=(1, 2, 3),
    ),
    Case(
        "query_multiple_dataset",
        "query specifying dataset in both query string and protocol; test for use of protocol-specified dataset",
        (
            Step(
                "POST",
                (("named-graph-uri", DATA1), ("named-graph-uri", DATA2)),
                QUERY,
                f"ASK FROM <{DATA3}> {{ GRAPH ?g1 {{ <{DATA1}> a ?type }} GRAPH ?g2 {{ <{DATA2}> a ?type }} }}".encode(),
                result="boolean",
                boolean=True,
            ),
        ),
        graphs=(1, 2, 3),
    ),
    Case(
        "query_get",
        "query via GET",
        (Step("GET", (("query", "ASK {}"), ("default-graph-uri", DATA0)), result="boolean", boolean=True),),
    ),
    Case(
        "query_content_type_select",
        "query appropriate content type (expect one of: XML, JSON, CSV, TSV)",
        (Step("POST", (("default-graph-uri", DATA0),), QUERY, b"SELECT (1 AS ?value) {}", result="tabular"),),
    ),
    Case(
        "query_content_type_ask",
        "query appropriate content type (expect one of: XML, JSON)",
        (Step("POST", (("default-graph-uri", DATA0),), QUERY, b"ASK {}", result="boolean"),),
    ),
    Case(
        "query_content_type_describe",
        "query appropriate content type (expect one of: RDF/XML, Turtle, N-Triples, RDFa)",
        (Step("POST", (("default-graph-uri", DATA0),), QUERY, b"DESCRIBE <http://example.org/>", result="RDF"),),
    ),
    Case(
        "query_content_type_construct",
        "query appropriate content type (expect one of: RDF/XML, Turtle, N-Triples, RDFa)",
        (Step("POST", (("default-graph-uri", DATA0),), QUERY, b"CONSTRUCT { <s> <p> 1 } WHERE {}", result="RDF"),),
    ),
    Case(
        "query_post_direct",
        "query via POST directly",
        (Step("POST", (), QUERY, b"ASK {}", result="boolean", boolean=True),),
    ),
    Case(
        "bad_query_method",
        "invoke query operation with a method other than GET or POST",
        (Step("PUT", (("query", "ASK {}"), ("default-graph-uri", DATA0)), FORM, status=CLIENT_ERROR),),
    ),
    Case(
        "bad_multiple_queries",
        "invoke query operation with more than one query string",
        (Step("GET", (("query", "ASK {}"), ("query", "SELECT * {}")), status=CLIENT_ERROR),),
    ),
    Case(
        "bad_query_wrong_media_type",
        "invoke query operation with a POST with media type that's not url-encoded or application/sparql-query",
        (Step("POST", (), "text/plain", b"ASK {}", status=CLIENT_ERROR),),
    ),
    Case(
        "bad_query_missing_form_type",
        "invoke query operation with url-encoded body, but without application/x-www-form-urlencoded media type",
        (Step("POST", (), None, form(("query", "ASK {}")), status=CLIENT_ERROR),),
    ),
    Case(
        "bad_query_missing_direct_type",
        "invoke query operation with SPARQL body, but without application/sparql-query media type",
        (Step("POST", (), None, b"ASK {}", status=CLIENT_ERROR),),
    ),
    Case(
        "bad_query_non_utf8",
        "invoke query operation with direct POST, but with a non-UTF8 encoding (UTF-16)",
        (Step("POST", (), QUERY + "; charset=UTF-16", "ASK {}".encode("utf-16"), status=CLIENT_ERROR),),
    ),
    Case(
        "bad_query_syntax",
        "invoke query operation with invalid query syntax (4XX result)",
        (Step("GET", (("query", "ASK {"),), status=CLIENT_ERROR),),
    ),
]

CLEAR_THEN_FILL = """PREFIX dc: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
DROP ALL ;
INSERT DATA {
    GRAPH <%(d1)s> { <%(d1)s> a foaf:Document }
    GRAPH <%(d2)s> { <%(d2)s> a foaf:Document }
    GRAPH <%(d3)s> { <%(d3)s> a foaf:Document }
} ;
""" % {"d1": DATA1, "d2": DATA2, "d3": DATA3}


def _bibliographic_in(graph: str, *, absent: str | None = None) -> bytes:
    present = "\n".join(f"        <{d}> a <http://purl.org/dc/terms/BibliographicResource> ." for d in (DATA1, DATA2))
    text = f"ASK {{\n    GRAPH <{graph}> {{\n{present}\n    }}\n"
    if absent:
        text += f"    FILTER NOT EXISTS {{\n        GRAPH <{graph}> {{\n            <{absent}> a <http://purl.org/dc/terms/BibliographicResource> .\n        }}\n    }}\n"
    return (text + "}").encode()


CASES = QUERY_CASES


def test_every_manifest_query_test_is_encoded() -> None:
    # 34 tests in the manifest: these 20 query tests, and 14 update tests in
    # test_w3c_update_gsp.py.
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) == 20
    assert not any(case.update for case in CASES)


def _params() -> Iterator[object]:
    for case in CASES:
        yield pytest.param(case, id=case.id)


@pytest.fixture
def store() -> Store:
    return open_store(None)


def load(store: Store, graphs: tuple[int, ...]) -> None:
    store.replace_graphs({data_graph(n): [q.triple for q in ox.parse(data_file(n).encode(), format=ox.RdfFormat.N_TRIPLES)] for n in graphs})


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def check_result(step: Step, content_type: str, body: bytes, where: str) -> None:
    media_type = content_type.split(";")[0].strip()
    if step.result == "boolean":
        assert media_type in ("application/sparql-results+json", "application/sparql-results+xml"), where
        answer = Result.parse(io.BytesIO(body), format=RESULTS_TYPES[media_type]).askAnswer
        if step.boolean is not None:
            assert answer is step.boolean, where
    elif step.result == "tabular":
        assert media_type in RESULTS_TYPES, where
        result = Result.parse(io.BytesIO(body), format=RESULTS_TYPES[media_type])
        assert [str(v) for v in result.vars or []] == ["value"], where
    elif step.result == "RDF":
        assert media_type in RDF_TYPES, where
        rdflib.Graph().parse(data=body, format=RDF_TYPES[media_type])


@pytest.mark.parametrize("case", list(_params()))
def test_w3c_protocol(case: Case, store: Store) -> None:
    load(store, case.graphs)
    with TestClient(create_app(Settings.from_env({}), store=store, seed=False)) as client:
        for index, step in enumerate(case.steps, 1):
            headers = {"Content-Type": step.content_type} if step.content_type else {}
            response = client.request(step.method, "/sparql", params=list(step.params), content=step.body, headers=headers, follow_redirects=False)
            where = f"{case.id} ({case.name}), request {index}: {response.status_code} {response.text[:300]}"
            assert status_class(response.status_code) in step.status, where
            if step.result:
                check_result(step, response.headers["content-type"], response.content, where)
