"""Which queries the server answers itself (patrolkg.bounded): those whose work is
bounded by the neighbourhood of the terms they name; everything else goes to a worker
that can be killed at the timeout."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from patrolkg.bounded import FEW, Entry, bounded, bounded_by
from patrolkg.execution import Limits, inspect_query
from patrolkg.store import OxigraphStore

PK = "PREFIX pk: <https://w3id.org/patrolkg/ontology#>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
JAPAN = "<https://w3id.org/patrolkg/id/state/japan>"

BOUNDED = {
    "an empty ASK": "ASK {}",
    "an entity lookup": f"SELECT ?p ?o WHERE {{ {JAPAN} ?p ?o }}",
    "DESCRIBE of an IRI": f"DESCRIBE {JAPAN}",
    "DESCRIBE with a pattern": f"DESCRIBE ?capital WHERE {{ {JAPAN} pk:capital ?capital }}".replace("DESCRIBE", PK + "DESCRIBE", 1),
    "a walk out of a named term": PK + f"SELECT * WHERE {{ {JAPAN} pk:hasPost ?post . ?post rdfs:label ?l ; pk:heldBy ?who . ?who rdfs:label ?name }}",
    "an OPTIONAL joined on a variable": PK + f"SELECT * WHERE {{ {JAPAN} pk:hasPost ?post OPTIONAL {{ ?post pk:heldBy ?who . ?who rdfs:label ?name }} }}",
    "alternatives": PK + f"SELECT * WHERE {{ {JAPAN} pk:memberOf|pk:partyTo ?group . ?group rdfs:label ?l }}",
    "a backward step into a named term": PK + f"SELECT * WHERE {{ ?post ^pk:hasPost {JAPAN} . ?post rdfs:label ?l }}",
    "a UNION of anchored groups": PK + f"SELECT * WHERE {{ {{ {JAPAN} ?p ?o }} UNION {{ {JAPAN} pk:hasPost ?o }} }}",
    "a FILTER without a group": PK + f'SELECT * WHERE {{ {JAPAN} rdfs:label ?l FILTER(LANG(?l) = "en" && CONTAINS(?l, "Jap")) }}',
    "GRAPH, FROM, LIMIT and OFFSET": f"SELECT DISTINCT ?o FROM <http://e/g> WHERE {{ GRAPH ?g {{ {JAPAN} ?p ?o }} }} LIMIT 5 OFFSET 1",
    "literals, lists and a dangling semicolon": PK + f'SELECT * WHERE {{ {JAPAN} rdfs:label "Japan"@en , "日本"@ja ; pk:x true ; pk:y 3 ; pk:z "4"^^<http://www.w3.org/2001/XMLSchema#int> ; }}',
    "$ variables": f"SELECT $o WHERE {{ {JAPAN} ?p $o . $o <http://www.w3.org/2000/01/rdf-schema#label> ?r }}",
}

UNBOUNDED = {
    "a scan of everything": "SELECT * WHERE { ?s ?p ?o }",
    "a scan of one predicate": PK + "SELECT * WHERE { ?s rdfs:label ?l }",
    "a walk from a named object": PK + f"SELECT * WHERE {{ ?s pk:speaker {JAPAN} ; pk:about ?e . ?e rdfs:label ?l }}",
    "a backward step from a named term": PK + f"SELECT * WHERE {{ {JAPAN} ^pk:ofState ?post }}",
    "the members of a class": PK + "SELECT * WHERE { ?s a pk:Statement ; pk:about ?e }",
    "every triple pointing at a term": f"SELECT * WHERE {{ ?s ?p {JAPAN} }}",
    "a walk into a reached node": PK + f"SELECT * WHERE {{ ?st pk:speaker {JAPAN} ; pk:about ?e . ?other pk:about ?e }}",
    "any predicate out of a reached node": PK + f"SELECT * WHERE {{ {JAPAN} ?p ?o . ?o ?q ?r }}",
    "alternatives in both directions": PK + f"SELECT * WHERE {{ ?s pk:respondsTo|^pk:about {JAPAN} }}",
    "a sequence path": PK + f"SELECT * WHERE {{ {JAPAN} pk:x/pk:y ?o }}",
    "a cartesian product": f"SELECT * WHERE {{ {JAPAN} ?p ?o . <http://e/x> ?q ?r }}",
    "a product inside an OPTIONAL": f"SELECT * WHERE {{ {JAPAN} ?p ?o OPTIONAL {{ ?x ?q ?r }} }}",
    "a UNION branch that scans": f"SELECT * WHERE {{ {{ {JAPAN} ?p ?o }} UNION {{ ?s ?p ?o }} }}",
    "ORDER BY": f"SELECT * WHERE {{ {JAPAN} ?p ?o }} ORDER BY ?o",
    "an aggregate": f"SELECT (COUNT(*) AS ?n) WHERE {{ {JAPAN} ?p ?o }}",
    "GROUP BY": f"SELECT ?p WHERE {{ {JAPAN} ?p ?o }} GROUP BY ?p",
    "a path of any length": f"SELECT * WHERE {{ {JAPAN} <http://e/p>* ?o }}",
    "a path of one or more": f"SELECT * WHERE {{ {JAPAN} <http://e/p>+ ?o }}",
    "an optional step": f"SELECT * WHERE {{ {JAPAN} <http://e/p>? ?o }}",
    "a negated property set": f"SELECT * WHERE {{ {JAPAN} !<http://e/p> ?o }}",
    "FILTER EXISTS": f"SELECT * WHERE {{ {JAPAN} ?p ?o FILTER EXISTS {{ ?o ?q ?r }} }}",
    "FILTER NOT EXISTS": f"SELECT * WHERE {{ {JAPAN} ?p ?o FILTER NOT EXISTS {{ ?o ?q ?r }} }}",
    "a sub-query": f"SELECT * WHERE {{ {JAPAN} ?p ?o {{ SELECT ?x WHERE {{ ?x ?y ?z }} }} }}",
    "SERVICE": f"SELECT * WHERE {{ {JAPAN} ?p ?o SERVICE <http://e/sparql> {{ ?o ?q ?r }} }}",
    "VALUES": f"SELECT * WHERE {{ VALUES ?s {{ {JAPAN} }} ?s ?p ?o }}",
    "BIND": f"SELECT * WHERE {{ {JAPAN} ?p ?o BIND(STR(?o) AS ?t) }}",
    "MINUS": f"SELECT * WHERE {{ {JAPAN} ?p ?o MINUS {{ ?o ?q ?r }} }}",
    "an expression in SELECT": f"SELECT (STR(?o) AS ?t) WHERE {{ {JAPAN} ?p ?o }}",
    "a blank node property list": f"SELECT * WHERE {{ {JAPAN} ?p [ ?q ?r ] }}",
    "CONSTRUCT": f"CONSTRUCT WHERE {{ {JAPAN} ?p ?o }}",
    "an update": f"INSERT DATA {{ {JAPAN} <http://e/p> 1 }}",
    "text that does not tokenize": 'SELECT * WHERE { <http://e/a> ?p "unterminated }',
    "text that is not a query": "hello",
}


ONTOLOGY = "https://w3id.org/patrolkg/ontology#"
ABOUT, SPEAKER = Entry((ONTOLOGY + "about",), JAPAN[1:-1]), Entry((ONTOLOGY + "speaker",), JAPAN[1:-1])

#: Walks into a named term: bounded while the store holds few triples that match them.
ENTRIES = {
    "a walk from a named object": (PK + f"SELECT * WHERE {{ ?s pk:speaker {JAPAN} ; pk:about ?e . ?e rdfs:label ?l }}", [SPEAKER]),
    "a backward step from a named term": (PK + f"SELECT * WHERE {{ {JAPAN} ^pk:ofState ?post }}", [Entry((ONTOLOGY + "ofState",), JAPAN[1:-1])]),
    "the members of a class": (PK + "SELECT * WHERE { ?s a pk:Statement ; pk:about ?e }", [Entry(("http://www.w3.org/1999/02/22-rdf-syntax-ns#type",), ONTOLOGY + "Statement")]),
    "alternatives, and a join of two walks": (PK + f"SELECT * WHERE {{ ?s pk:respondsTo|pk:about {JAPAN} . ?s pk:speaker {JAPAN} }}", [Entry((ONTOLOGY + "respondsTo", ONTOLOGY + "about"), JAPAN[1:-1])]),
    "a walk in an OPTIONAL": (PK + f"SELECT * WHERE {{ {JAPAN} rdfs:label ?l OPTIONAL {{ ?s pk:about {JAPAN} ; rdfs:label ?l }} }}", [ABOUT]),
    "no walk needed once the subject is reached": (PK + f"SELECT * WHERE {{ {JAPAN} pk:x ?s . ?s pk:about {JAPAN} }}", []),
}

#: Walks into a term the reader cannot name for certain, or along no named predicate.
NO_ENTRY = {
    "a relative IRI": PK + "SELECT * WHERE { ?s pk:about <id/state/japan> }",
    "an undeclared prefix": "SELECT * WHERE { ?s pk:about <https://e/x> }",
    "a prefix declared twice": PK + "PREFIX pk: <https://e/other#> SELECT * WHERE { ?s pk:about <https://e/x> }",
    "a prefix with an escape": "PREFIX pk: <https://e/\\u0023> SELECT * WHERE { ?s pk:about <https://e/x> }",
    "an escape in a name": PK + "SELECT * WHERE { ?s pk:ab\\.out <https://e/x> }",
    "a literal": PK + 'SELECT * WHERE { ?s rdfs:label "Japan" }',
    "any predicate": f"SELECT * WHERE {{ ?s ?p {JAPAN} }}",
    "a walk into a reached node": PK + f"SELECT * WHERE {{ ?st pk:speaker {JAPAN} ; pk:about ?e . ?other pk:about ?e }}",
}


@pytest.mark.parametrize(("query", "entries"), list(ENTRIES.values()), ids=list(ENTRIES))
def test_a_walk_into_a_named_term_is_bounded_by_what_the_store_holds(query: str, entries: list[Entry]) -> None:
    ox.Store().query(query)
    assert bounded_by(query) == tuple(entries)
    assert bounded(query, count=lambda entry, limit: FEW // 2 // max(len(entries), 1))
    assert bounded(query, count=lambda entry, limit: FEW + 1) is (not entries)
    assert bounded(query) is (not entries), "without a store to count in, a walk into a term is not bounded"


@pytest.mark.parametrize("query", list(NO_ENTRY.values()), ids=list(NO_ENTRY))
def test_a_walk_into_a_term_that_cannot_be_named_for_certain_is_not_bounded(query: str) -> None:
    assert bounded_by(query) is None
    assert not bounded(query, count=lambda entry, limit: 0)


def test_the_entries_of_a_query_share_one_budget_each_time_it_walks_them() -> None:
    """A UNION that repeats a walk does its work each time: the query's entries together
    may match FEW triples, however the work is split between them."""
    branch = f"{{ ?s pk:about {JAPAN} ; rdfs:label ?l }}"
    once, thrice = PK + f"SELECT * WHERE {branch}", PK + f"SELECT * WHERE {{ {branch} UNION {branch} UNION {branch} }}"
    assert bounded_by(thrice) == (ABOUT,) * 3
    counted: list[int] = []

    def count(entry: Entry, limit: int) -> int:
        counted.append(limit)
        return FEW // 2

    assert bounded(once, count=count)
    assert not bounded(thrice, count=count)
    assert counted == [FEW, FEW], "each entry is counted once, stopping past the budget"
    two = PK + f"SELECT * WHERE {{ {{ ?s pk:about {JAPAN} }} UNION {{ ?s pk:speaker {JAPAN} }} }}"
    assert bounded_by(two) == (ABOUT, SPEAKER)
    assert bounded(two, count=lambda entry, limit: FEW // 2)
    assert not bounded(two, count=lambda entry, limit: FEW // 2 + 1)


def test_the_store_counts_an_entry_in_every_graph_and_stops_past_the_limit() -> None:
    store = OxigraphStore(None)
    about, japan = ox.NamedNode(ABOUT.predicates[0]), ox.NamedNode(ABOUT.term)
    graphs = [ox.NamedNode("http://e/g1"), ox.NamedNode("http://e/g2")]
    store.raw.extend(ox.Quad(ox.NamedNode(f"http://e/s{i}"), about, japan, graphs[i % 2]) for i in range(FEW))
    query = inspect_query(PK + f"SELECT * WHERE {{ ?s pk:about {JAPAN} }}", Limits())
    assert query.bounded and query.entries == (ABOUT,)

    def count(entry: Entry, limit: int) -> int:
        return store.count_matches(entry.predicates, entry.term, limit)

    assert store.count_matches(ABOUT.predicates, ABOUT.term, FEW) == FEW
    assert store.count_matches(ABOUT.predicates, ABOUT.term, 10) == 11, "it stops past the limit"
    assert query.bounded_in(count)
    store.raw.add(ox.Quad(ox.NamedNode("http://e/more"), about, japan, ox.DefaultGraph()))
    assert store.count_matches(ABOUT.predicates, ABOUT.term, FEW) == FEW + 1
    assert not query.bounded_in(count)
    assert store.count_matches((*ABOUT.predicates, "http://e/other"), "http://e/nothing", 0) == 0
    assert store.count_matches(ABOUT.predicates, "not an iri>", FEW) == FEW + 1, "a text that is not an IRI is never few"


@pytest.mark.parametrize("query", list(BOUNDED.values()), ids=list(BOUNDED))
def test_queries_that_walk_from_a_named_term_are_bounded(query: str) -> None:
    ox.Store().query(query)  # a real query, which the engine reads
    assert bounded(query)


@pytest.mark.parametrize("query", list(UNBOUNDED.values()), ids=list(UNBOUNDED))
def test_queries_that_could_run_away_are_not(query: str) -> None:
    assert not bounded(query)


def test_a_query_calling_a_service_is_never_bounded_even_when_allowed() -> None:
    query = f"SELECT * WHERE {{ SERVICE <http://e/sparql> {{ {JAPAN} ?p ?o }} }}"
    checked = inspect_query(query, Limits(service_allowlist=("http://e/sparql",)))
    assert checked.endpoints == ("http://e/sparql",)
    assert not checked.bounded


def test_the_check_remembers_a_text_but_not_a_refusal() -> None:
    limits = Limits()
    lookup = f"SELECT ?p ?o WHERE {{ {JAPAN} ?p ?o }}"
    assert inspect_query(lookup, limits) is inspect_query(lookup, limits)
    for _ in range(2):
        with pytest.raises(Exception, match="not an allowed endpoint"):
            inspect_query("SELECT * WHERE { SERVICE <http://e/sparql> { ?s ?p ?o } }", limits)


@pytest.mark.parametrize(
    ("query", "whole"),
    [
        ("SELECT * WHERE { ?s ?p ?o } ORDER BY ?s", True),
        ("SELECT ?p (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?p", True),
        ("SELECT * WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 20000", True),
        ("SELECT * WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 10 OFFSET 5", False),
        ("SELECT * WHERE { ?s ?p ?o } LIMIT 20000", False),
        ("SELECT * WHERE { { SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 3 } ?s ?q ?r }", False),
        ('SELECT * WHERE { ?s ?p "ORDER BY" }', False),
    ],
)
def test_a_sorted_result_is_known_before_it_runs(query: str, whole: bool) -> None:
    """A query whose whole result is computed before its first row, and may be large,
    is written row by row at once rather than first by the engine's writer, which
    would give up on a large one only after all the work (and it would run twice)."""
    assert inspect_query(query, Limits(max_rows=10_000)).whole_before_first_row(10_000) is whole
