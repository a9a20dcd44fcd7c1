"""A query text read before with other IRIs (patrolkg.query_templates): its tokens and
what the checks of a query find in it are those of a reading of the whole text, and a
text where an IRI could change how the rest is read, or that calls a SERVICE, is read
whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patrolkg import query_templates
from patrolkg.errors import ForbiddenOperation, QuerySyntaxError
from patrolkg.execution import CheckedQuery, Limits, _inspect
from patrolkg.sparql_lexer import tokenize

P = "https://w3id.org/patrolkg/ontology#"
LOOKUP = "PREFIX pk: <" + P + ">\nSELECT ?s ?stance WHERE {{ ?s pk:about <{event}> ; pk:stance ?stance . FILTER (?s != <{other}>) }} # see <https://e/notes>"


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    query_templates.forget()
    yield
    query_templates.forget()


def _uncached(text: str, limits: Limits) -> CheckedQuery:
    """What the checks of a query find in ``text``, past the memo of texts read."""
    return _inspect.__wrapped__(text, limits.service_allowlist)  # type: ignore[attr-defined,no-any-return]


def _whole(text: str) -> CheckedQuery:
    """The same, reading the whole text (no template)."""
    kept = dict(query_templates._templates)
    query_templates.forget()
    try:
        return _uncached(text, Limits())
    finally:
        query_templates._templates.update(kept)


def test_a_text_with_other_iris_has_the_tokens_a_whole_reading_gives() -> None:
    first = LOOKUP.format(event="https://w3id.org/patrolkg/id/event/a", other="urn:x")
    _uncached(first, Limits())
    again = LOOKUP.format(event="https://w3id.org/patrolkg/id/event/a-much-longer-name", other="urn:y:z")
    tokens = query_templates.same_but_iris(again)
    assert tokens is not None and tokens == list(tokenize(again))
    assert [t.text for t in tokens if t.kind == "IRI"][1:] == ["<https://w3id.org/patrolkg/id/event/a-much-longer-name>", "<urn:y:z>"]
    # and what the checks find, the entry of the bounded query included
    checked = _uncached(again, Limits())
    assert checked == _whole(again) and checked.bounded
    assert [e.term for e in checked.entries] == ["https://w3id.org/patrolkg/id/event/a-much-longer-name"]


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("?stance .", "?other ."),  # not an IRI
        lambda t: t.replace("# see <https://e/notes>", "# see <https://e/other>"),  # in a comment
        lambda t: t.replace("?s != <urn:x>", "?s != 'a <urn:x> b'"),  # a string where an IRI was
    ],
)
def test_a_text_that_differs_elsewhere_is_read_whole(change) -> None:  # type: ignore[no-untyped-def]
    first = LOOKUP.format(event="https://w3id.org/patrolkg/id/event/a", other="urn:x")
    _uncached(first, Limits())
    assert query_templates.same_but_iris(change(first)) is None


def test_an_iri_that_would_make_a_less_than_unreadable_is_read_whole() -> None:
    # After a word run together with FILTER, "(" cannot be told to open an expression:
    # "<" after an operand there opens an IRI only if no reading of it as "less than"
    # would read the rest otherwise; with "#" it would.
    first = "SELECT * WHERE { ?s ?p ?a . FILTERx(?a<http://e/b>) }"
    _uncached(first, Limits())
    second = first.replace("<http://e/b>", "<http://e/#b>")
    assert query_templates.same_but_iris(second) is None
    with pytest.raises(QuerySyntaxError):
        _uncached(second, Limits())


def test_an_iri_holding_filter_before_a_bracket_is_read_whole() -> None:
    # "(" after an IRI naming FILTER cannot be told to open terms, and the "<http://e/#b>"
    # inside is then refused.
    first = "SELECT * WHERE { ?s ?p <http://e/x> (?a<http://e/#b>) }"
    assert _uncached(first, Limits()) == _whole(first)
    second = first.replace("<http://e/x>", "<http://e/FILTER>")
    assert query_templates.same_but_iris(second) is None
    with pytest.raises(QuerySyntaxError):
        _uncached(second, Limits())


def test_a_query_that_calls_a_service_is_checked_against_the_allow_list_every_time() -> None:
    allowed = Limits(service_allowlist=("http://127.0.0.1:9/sparql",))
    first = "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }"
    assert _uncached(first, allowed).endpoints == ("http://127.0.0.1:9/sparql",)
    second = first.replace("127.0.0.1:9", "127.0.0.1:10")
    assert query_templates.same_but_iris(second) is None
    with pytest.raises(ForbiddenOperation):
        _uncached(second, allowed)


def test_an_update_is_refused_whatever_its_iris() -> None:
    text = "INSERT DATA { <http://e/a> <http://e/p> <http://e/o> }"
    with pytest.raises(ForbiddenOperation):
        _uncached(text, Limits())
    with pytest.raises(ForbiddenOperation):
        _uncached(text.replace("/a>", "/b>"), Limits())


def test_texts_too_long_or_holding_nul_make_no_template_and_templates_are_bounded() -> None:
    long = "SELECT * WHERE { <http://e/a> ?p ?o } #" + "x" * query_templates.MAX_TEXT_CHARS
    query_templates.remember(long, list(tokenize(long)))
    nul = "SELECT * WHERE { <http://e/a> ?p '\0' }"
    query_templates.remember(nul, list(tokenize(nul)))
    assert not query_templates._templates
    for index in range(query_templates.MAX_TEMPLATES + 10):
        text = f"SELECT ?v{index} WHERE {{ <http://e/a> ?p ?v{index} }}"
        query_templates.remember(text, list(tokenize(text)))
    assert len(query_templates._templates) == query_templates.MAX_TEMPLATES
    newest = f"SELECT ?v{query_templates.MAX_TEMPLATES + 9} WHERE {{ <http://e/b> ?p ?v{query_templates.MAX_TEMPLATES + 9} }}"
    assert query_templates.same_but_iris(newest) is not None
    assert query_templates.same_but_iris("SELECT ?v0 WHERE { <http://e/b> ?p ?v0 }") is None, "the oldest was forgotten"
