"""Hostile input, generated: property-based tests (hypothesis) of every parser and
negotiator patrolkg owns — Accept headers, form bodies and Content-Type headers, the
``format`` parameter, query parameters, submission metadata, submitted RDF, graph IRIs,
paging, Linked Data paths, settings and reconciliation batches.

Each parser is held to its contract: it returns what it documents or raises one of
patrolkg's own errors, never anything else; through HTTP, no input is answered 5xx.
Inputs that crash the process (deeply nested documents) are in test_security.py,
where they are sent to a server in a subprocess.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import DERANDOMIZE
from patrolkg.errors import ConfigError, InputError, NotAcceptable, PatrolkgError
from patrolkg.execution import Limits, check_query
from patrolkg.negotiation import choose, parse_accept
from patrolkg.settings import SETTINGS, Settings
from patrolkg.store import Store
from patrolkg.submissions import MAX_METADATA_CHARS, _check_metadata, parse_submission
from patrolkg.web.app import create_app
from patrolkg.web.errors import HttpError
from patrolkg.web.linked_data import is_safe_id_path
from patrolkg.web.protocol import content_type, form_pairs, graph_iris
from patrolkg.web.reconcile import parse_batch
from patrolkg.web.query_request import media_types as _media_types

SECRET = "h0" * 16
AUTH = {"Authorization": "Bearer " + SECRET}
ID_SPACE = "https://w3id.org/patrolkg/id/"

#: Pure functions: many examples are cheap.
FAST = settings(max_examples=300, deadline=None, database=None, derandomize=DERANDOMIZE)
#: Requests through the app: fewer, each runs the real route.
HTTP = settings(max_examples=60, deadline=None, database=None, derandomize=DERANDOMIZE, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

OFFERED = ("application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/turtle", "text/html")

# --- strategies ---------------------------------------------------------------------------

_TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
media_tokens = st.text(_TOKEN_CHARS, min_size=1, max_size=12)
q_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:g}"),
    st.sampled_from(["0", "1", "0.5", "1.000", "0.001", "-1", "2", "nan", "NaN", "inf", "-inf", "1e3", "", "abc"]),
)


@st.composite
def media_ranges(draw: st.DrawFn) -> str:
    kind = draw(st.one_of(st.sampled_from(["*/*", "text/*", "application/*", *OFFERED]), st.builds(lambda a, b: f"{a}/{b}", media_tokens, media_tokens)))
    params = draw(st.lists(st.one_of(st.builds(lambda q: f"q={q}", q_values), st.builds(lambda a, b: f"{a}={b}", media_tokens, media_tokens)), max_size=3))
    return ";".join([kind, *params])


accept_headers = st.one_of(
    st.text(max_size=200),
    st.lists(media_ranges(), max_size=6).map(", ".join),
)

#: Text with what breaks naive parsers: separators, quotes, controls, non-ASCII (no lone
#: surrogates: no client can send them).
nasty_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80) | st.text(
    alphabet=list("=&;,%+\"'<>\\/:#?@{}[] \t\r\n\x00\x7f\u00e9\u2028\ufeff"), max_size=40
)


# --- content negotiation (patrolkg.negotiation) -----------------------------------------


@FAST
@given(accept_headers)
def test_parse_accept_never_raises_and_keeps_q_in_range(header: str) -> None:
    for media_range in parse_accept(header):
        assert media_range.type and media_range.subtype
        assert media_range.type == media_range.type.lower()
        if media_range.q != media_range.q:
            continue  # q=nan: pinned by test_a_nan_q_value_is_not_a_preference
        assert 0.0 <= media_range.q <= 1.0, f"q={media_range.q} from {header!r}"


@FAST
@given(accept_headers, st.lists(st.sampled_from(OFFERED), min_size=1, max_size=5, unique=True))
def test_choose_returns_an_offered_type_that_the_header_accepts(header: str, offered: list[str]) -> None:
    chosen = choose(header, offered)
    assert chosen is None or chosen in offered


@FAST
@given(st.lists(st.sampled_from(OFFERED), min_size=1, max_size=5, unique=True), st.data())
def test_choose_honours_exact_types_and_exclusions(offered: list[str], data: st.DataObject) -> None:
    wanted = data.draw(st.sampled_from(offered))
    assert choose(wanted, offered) == wanted
    assert choose(f"{wanted};q=0, */*;q=0.1", offered) != wanted
    assert choose("*/*", offered) == offered[0]
    assert choose(None, offered) == offered[0]


def test_a_nan_q_value_is_not_a_preference() -> None:
    (media_range,) = parse_accept("text/turtle;q=nan")
    assert 0.0 <= media_range.q <= 1.0


# --- protocol helpers (patrolkg.web.protocol, the format parameter) ----------------------


@FAST
@given(st.binary(max_size=200))
def test_form_pairs_decode_or_refuse_with_400(raw: bytes) -> None:
    try:
        pairs = form_pairs(raw, "the form")
    except HttpError as error:
        assert error.status == 400 and error.code == "not_utf8"
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)


@FAST
@given(st.lists(st.tuples(nasty_text, nasty_text), max_size=5))
def test_form_pairs_round_trip_what_a_client_encodes(pairs: list[tuple[str, str]]) -> None:
    assert form_pairs(urlencode(pairs).encode(), "the form") == pairs


@FAST
@given(st.one_of(st.none(), nasty_text, st.builds(lambda m, p: f"{m}; {p}", media_tokens, nasty_text)))
def test_content_type_never_raises(header: str | None) -> None:
    media_type, params = content_type(header)
    assert media_type == media_type.lower() and media_type == media_type.strip()
    assert all(name == name.lower() for name in params)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["default-graph-uri", "named-graph-uri", "other"]), st.one_of(nasty_text, st.just("http://example.org/g"))), max_size=4))
def test_graph_iris_are_absolute_iris_or_a_400(pairs: list[tuple[str, str]]) -> None:
    try:
        found = graph_iris(pairs, "default-graph-uri")
    except HttpError as error:
        assert error.status == 400 and error.code == "bad_graph_uri"
        return
    for value in found or ():
        ox.NamedNode(value)


@FAST
@given(st.lists(st.one_of(nasty_text, st.sampled_from(["json", "xml", "csv", "turtle", "text/turtle", "application/ld+json; q=1"])), max_size=4))
def test_format_values_name_media_types_or_are_not_acceptable(values: list[str]) -> None:
    try:
        wanted = _media_types(values)
    except NotAcceptable:
        return
    assert all("/" in media_type for media_type in wanted)
    assert len(wanted) == len(set(wanted))


# --- submission metadata and submitted RDF (patrolkg.submissions) -------------------------


@FAST
@given(st.one_of(st.none(), nasty_text, st.text(min_size=MAX_METADATA_CHARS - 2, max_size=MAX_METADATA_CHARS + 2)))
def test_metadata_is_plain_bounded_text_or_an_input_error(value: str | None) -> None:
    try:
        checked = _check_metadata("comment", value)
    except InputError:
        return
    if checked is not None:
        assert checked == checked.strip() and 0 < len(checked) <= MAX_METADATA_CHARS
        assert not any(ord(c) < 32 and c not in "\t\n" for c in checked)


_TURTLE_PIECES = [
    "@prefix pk: <https://w3id.org/patrolkg/ontology#> .", "<https://w3id.org/patrolkg/id/state/x>", "<http://e/p>",
    "pk:label", "a", "pk:State", '"x"@en', '"1"^^<http://www.w3.org/2001/XMLSchema#integer>', "[", "]", "(", ")",
    ";", ",", ".", "_:b", "<https://w3id.org/patrolkg/graph/ontology>", "{", "}", "GRAPH", '"""', "#", "\n",
]
turtle_like = st.lists(st.sampled_from(_TURTLE_PIECES), max_size=25).map(" ".join).map(str.encode)
json_ld_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), st.sampled_from(["@id", "@type", "@graph", "@context", "@value", "@list", "http://e/p", "_:b"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["@id", "@type", "@graph", "@value", "@language", "@list", "@reverse", "http://e/p", "name"]), inner, max_size=4),
    max_leaves=20,
).map(lambda value: json.dumps(value).encode())
rdf_bodies = st.one_of(st.binary(max_size=300), turtle_like, json_ld_like)


@FAST
@given(st.sampled_from(["text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml", "application/trig", "application/n-quads"]), rdf_bodies)
def test_a_submission_parses_or_is_refused_as_input(media_type: str, body: bytes) -> None:
    try:
        triples = parse_submission(body, media_type)
    except InputError:
        return
    assert triples
    for triple in triples:
        assert not isinstance(triple.subject, ox.BlankNode) and not isinstance(triple.object, ox.BlankNode)
        for term in (triple.subject, triple.predicate, triple.object):
            assert not (isinstance(term, ox.NamedNode) and term.value.startswith("https://w3id.org/patrolkg/graph/"))


# --- the query guard, settings, Linked Data paths, reconciliation batches ----------------

_QUERY_PIECES = ["SELECT", "*", "ASK", "CONSTRUCT", "WHERE", "{", "}", "?s", "?p", "?o", "SERVICE", "SILENT", "<http://127.0.0.1:1/s>", "PREFIX", "e:", "<http://e/>", "e:x", "#", "'", '"', "\n", "INSERT", "DATA", "BASE", "<>", "FILTER", "(", ")"]


@FAST
@given(st.one_of(nasty_text, st.lists(st.sampled_from(_QUERY_PIECES), max_size=20).map(" ".join)))
def test_the_query_guard_passes_or_refuses_and_never_breaks(text: str) -> None:
    try:
        check_query(text, Limits())
    except PatrolkgError as error:
        # refused by policy, or unreadable (with line and column), or too deep to parse safely
        assert error.code in ("forbidden_operation", "query_syntax_error", "too_complex"), error


@FAST
@given(st.sampled_from(SETTINGS), nasty_text)
def test_every_setting_parses_or_is_a_config_error_naming_its_variable(setting: object, raw: str) -> None:
    try:
        Settings.from_env({setting.env: raw})  # type: ignore[attr-defined]
    except ConfigError as error:
        assert setting.env in error.message  # type: ignore[attr-defined]


def test_a_path_under_the_home_of_nobody_is_a_config_error() -> None:
    # Found by the test above: Path.expanduser raised RuntimeError for "~0".
    for raw in ("~0", "~no-such-user-of-patrolkg/tokens"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({"PATROLKG_WRITE_TOKENS_FILE": raw})
        assert "PATROLKG_WRITE_TOKENS_FILE" in caught.value.message and "home" in caught.value.message


@FAST
@given(st.one_of(nasty_text, st.lists(st.sampled_from(["state", "japan", "..", ".", "", "a b", "%2e", "x" * 201, "-", "~"]), max_size=5).map("/".join)))
def test_safe_id_paths_are_plain_segments(path: str) -> None:
    if is_safe_id_path(path):
        assert ".." not in path.split("/") and "" not in path.split("/")
        assert all(c in string.ascii_letters + string.digits + "._~-/" for c in path)


@FAST
@given(st.one_of(nasty_text, json_ld_like.map(bytes.decode), st.dictionaries(st.text(max_size=5), st.fixed_dictionaries({"query": st.text(max_size=10)}, optional={"type": st.text(max_size=10) | st.lists(st.text(max_size=5), max_size=2), "limit": st.integers() | st.floats(allow_nan=False, allow_infinity=False), "properties": st.lists(st.fixed_dictionaries({"pid": st.text(max_size=5), "v": json_ld_like.map(json.loads)}), max_size=2)}), max_size=3).map(json.dumps)))
def test_a_reconciliation_batch_parses_or_is_a_4xx(text: str) -> None:
    try:
        queries, limits = parse_batch(text, id_space=ID_SPACE)
    except HttpError as error:
        assert error.status in (400, 413)
        return
    assert set(queries) == set(limits)
    assert all(1 <= limit <= 100 for limit in limits.values())


@pytest.mark.parametrize("limit", ["Infinity", "NaN", "1e999"])
def test_a_non_finite_reconciliation_limit_is_a_400(limit: str) -> None:
    with pytest.raises(HttpError) as refused:
        parse_batch(f'{{"q0": {{"query": "Japan", "limit": {limit}}}}}', id_space=ID_SPACE)
    assert refused.value.status == 400


# --- the same inputs through the app: never a 5xx ----------------------------------------


@pytest.fixture(scope="module")
def app_client(bundle_store: Store) -> Iterator[TestClient]:
    """The app with writes enabled, over a store of its own (dry runs write nothing,
    but the store is not the session's shared one all the same)."""
    from conftest import seeded
    from patrolkg.store import open_store

    store = seeded(bundle_store, open_store(None))
    app = create_app(Settings.from_env({}, write_token="hypo:" + SECRET, query_timeout=5.0), store=store, seed=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _no_server_error(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, f"{status}: {response.text[:300]}"  # type: ignore[attr-defined]
    if status >= 400 and response.headers.get("content-type", "").startswith("application/json"):  # type: ignore[attr-defined]
        body = response.json()  # type: ignore[attr-defined]
        assert body["error"]["status"] == status and body["error"]["code"]


_SMALL_QUERIES = ["ASK {}", "SELECT ?s WHERE { ?s a <https://w3id.org/patrolkg/ontology#State> } LIMIT 3", "CONSTRUCT WHERE { <https://w3id.org/patrolkg/id/state/japan> ?p ?o }", "DESCRIBE <https://w3id.org/patrolkg/id/state/japan>", "SELECT * WHERE { ?s ?p ?o } LIMIT 1"]


@HTTP
@given(
    query=st.one_of(st.sampled_from(_SMALL_QUERIES), nasty_text, st.none()),
    fmt=st.one_of(st.none(), st.sampled_from(["json", "xml", "csv", "tsv", "turtle", "jsonld", "rdfxml", "ntriples", "n3", "text/html"]), nasty_text),
    graphs=st.lists(st.one_of(nasty_text, st.just("https://w3id.org/patrolkg/graph/reference")), max_size=2),
    accept=st.one_of(st.none(), accept_headers),
    method=st.sampled_from(["get", "form", "body"]),
)
def test_the_sparql_endpoint_answers_every_request_below_500(app_client: TestClient, query: str | None, fmt: str | None, graphs: list[str], accept: str | None, method: str) -> None:
    params: list[tuple[str, str]] = [("default-graph-uri", g) for g in graphs]
    if fmt is not None:
        params.append(("format", fmt))
    headers = {"Accept": accept} if accept is not None and accept.isprintable() and accept.isascii() else {}
    if method == "get":
        response = app_client.get("/sparql?" + urlencode(params + ([("query", query)] if query is not None else [])), headers=headers)
    elif method == "form":
        response = app_client.post("/sparql?" + urlencode(params), content=urlencode([("query", query or "")]), headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    else:
        response = app_client.post("/sparql?" + urlencode(params), content=(query or "").encode(), headers={**headers, "Content-Type": "application/sparql-query"})
    _no_server_error(response)


_METADATA_BODY = b'<https://w3id.org/patrolkg/id/state/japan> <http://www.w3.org/2000/01/rdf-schema#comment> "hypothesis"@en .'


def _dry_run(client: TestClient, **metadata: str) -> object:
    params = {"dry_run": "true", **metadata}
    return client.post("/submissions?" + urlencode(params), content=_METADATA_BODY, headers={"Content-Type": "text/turtle", **AUTH})


@HTTP
@given(source=st.one_of(st.none(), nasty_text), comment=st.one_of(st.none(), nasty_text))
def test_submission_metadata_is_stored_or_refused_below_500(app_client: TestClient, source: str | None, comment: str | None) -> None:
    metadata = {**({"source": source} if source is not None else {}), **({"comment": comment} if comment is not None else {})}
    assume(not (source or "").strip().startswith(("http://", "https://")))  # pinned below
    _no_server_error(_dry_run(app_client, **metadata))


@HTTP
@given(source=st.builds(lambda t: "https://example.org/" + t, st.text(alphabet='{}<>"|^`\\', min_size=1, max_size=5)))
def test_a_source_that_looks_like_a_url_but_is_no_iri_is_not_a_500(app_client: TestClient, source: str) -> None:
    _no_server_error(_dry_run(app_client, source=source))


@HTTP
@given(graph=st.one_of(nasty_text, st.builds(lambda t: "http://example.org/" + t, nasty_text)), accept=st.one_of(st.none(), st.sampled_from(["text/turtle", "application/ld+json", "image/png", "*/*"])))
def test_graph_iris_of_the_graph_store_are_answered_below_500(app_client: TestClient, graph: str, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    _no_server_error(app_client.get("/store?" + urlencode({"graph": graph}), headers=headers))
    _no_server_error(app_client.get("/store/" + quote(graph, safe="/"), headers=headers))
    _no_server_error(app_client.get("/sparql?" + urlencode({"query": "ASK {}", "named-graph-uri": graph})))


@HTTP
@given(offset=st.one_of(st.integers(-5, 10**12).map(str), nasty_text), limit=st.one_of(st.integers(-5, 10**4).map(str), nasty_text))
def test_paging_is_a_page_or_a_400(app_client: TestClient, offset: str, limit: str) -> None:
    response = app_client.get("/submissions?" + urlencode({"offset": offset, "limit": limit}))
    _no_server_error(response)
    if response.status_code == 200:
        page = response.json()
        assert len(page["items"]) <= page["limit"]
        assert ("next" in page) == (page["offset"] + page["limit"] < page["total"])


@HTTP
@given(path=st.one_of(nasty_text, st.lists(st.sampled_from(["state", "japan", "..", "%2e%2e", "%00", "x" * 300, "event", "joint-patrol-4"]), max_size=4).map("/".join)), fmt=st.one_of(st.none(), nasty_text, st.sampled_from(["html", "turtle", "jsonld"])))
def test_linked_data_paths_are_answered_below_500(app_client: TestClient, path: str, fmt: str | None) -> None:
    query = "?" + urlencode({"format": fmt}) if fmt is not None else ""
    _no_server_error(app_client.get("/id/" + quote(path, safe="/%") + query))
    _no_server_error(app_client.get("/static/" + quote(path, safe="%")))
    _no_server_error(app_client.get("/submissions/" + quote(path, safe="%") + query))
