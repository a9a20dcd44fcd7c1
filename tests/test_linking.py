"""Link discovery (``patrolkg link``, :mod:`patrolkg.linking`) on fixtures with traps, and
accepted links going in through the validated write path."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from conftest import SilentEndpoint
from rdflib.compare import isomorphic
from rdflib.namespace import OWL

from patrolkg.errors import ForbiddenOperation, ValidationFailed
from patrolkg.execution import Limits
from patrolkg.linking import (
    KINDS,
    Proposal,
    fetch_source,
    link_set_turtle,
    local_records,
    proposals_json,
    propose_links,
    read_source_file,
)
from patrolkg.loading import load_bundle
from patrolkg.namespaces import LINKS_GRAPH, PKSH
from patrolkg.reconcile import EntityIndex, Query, Record, normalize
from patrolkg.records import read_records
from patrolkg.store import Store, open_store
from patrolkg.submissions import Submissions, parse_submission
from patrolkg.web.void import void_description
from patrolkg.writes import Writer

ROOT = Path(__file__).resolve().parents[1]
TRAPS = Path(__file__).parent / "fixtures" / "link-traps.ttl"
WIKIDATA = ROOT / "data" / "fixtures" / "wikidata-excerpt.ttl"
ID = "https://w3id.org/patrolkg/id/"
TRAP = "http://example.org/traps/"
WD = "http://www.wikidata.org/entity/"


def proposals(store: Store, kind: str, source: Path = TRAPS) -> dict[str, Proposal]:
    chosen = KINDS[kind]
    found = propose_links(local_records(store, chosen, id_space=ID), read_source_file(source), chosen)
    return {p.entity.iri: p for p in found}


def candidates(proposal: Proposal) -> list[str]:
    return [c.record.iri for c in proposal.candidates]


# ------------------------------------------------------------------------ traps


def test_two_people_with_the_same_family_name(bundle_store: Store) -> None:
    found = proposals(bundle_store, "person")
    koizumi = found[ID + "person/shinjiro-koizumi"]
    assert koizumi.accepted is not None and koizumi.accepted.record.iri == TRAP + "shinjiro-koizumi"
    assert TRAP + "junichiro-koizumi" not in candidates(koizumi)
    # The right Kishida is not in the source: his namesake is neither matched nor offered.
    kishida = found[ID + "person/fumio-kishida"]
    assert kishida.accepted is None and TRAP + "yuko-kishida" not in candidates(kishida)


def test_a_transliterated_alias(bundle_store: Store) -> None:
    zakharova = proposals(bundle_store, "person")[ID + "person/maria-zakharova"]
    assert zakharova.accepted is not None
    assert zakharova.accepted.record.iri == TRAP + "mariya-zakharova"
    assert zakharova.accepted.record.name == "Mariya Zakharova"
    (name,) = [e for e in zakharova.accepted.evidence if e.kind == "alias"]
    assert '"Maria Zakharova"' in name.detail and name.points == 90


def test_a_country_and_its_broader_namesake(bundle_store: Store) -> None:
    found = proposals(bundle_store, "state")
    china = found[ID + "state/china"]
    assert china.accepted is not None and china.accepted.record.iri == TRAP + "prc"
    assert TRAP + "china-region" not in candidates(china)
    korea = found[ID + "state/south-korea"]
    assert korea.accepted is not None and korea.accepted.record.iri == TRAP + "south-korea"
    assert TRAP + "korea-region" not in candidates(korea)


def test_without_the_type_the_namesake_is_not_matched() -> None:
    # Matching by name alone finds the region first, but does not dare call it a
    # match: the state has the same name as an alias.
    records, names = read_records(read_source_file(TRAPS))
    found = EntityIndex(records, names=names).search(Query(names=("China",)))
    assert [c.record.iri for c in found[:2]] == [TRAP + "china-region", TRAP + "prc"]
    assert not any(c.match for c in found)


def test_aircraft_alias_matches_and_the_family_is_only_offered(bundle_store: Store) -> None:
    found = proposals(bundle_store, "aircraft-type")
    tu95 = found[ID + "aircraft-type/tu-95"]
    assert tu95.accepted is not None and tu95.accepted.record.iri == TRAP + "tu-95"
    h6k = found[ID + "aircraft-type/h-6k"]
    assert h6k.accepted is None
    assert candidates(h6k) == [TRAP + "h-6"] and h6k.candidates[0].score < 85


def test_every_candidate_says_why(bundle_store: Store) -> None:
    for kind in ("person", "state", "aircraft-type"):
        for proposal in proposals(bundle_store, kind).values():
            for candidate in proposal.candidates:
                kinds = {e.kind for e in candidate.evidence}
                assert "type" in kinds, candidate
                assert kinds & {"label", "alias", "word-order", "part-of-name", "similar-name"}, candidate
                assert 0 <= candidate.score <= 100


def test_neighbours_already_linked_are_evidence(bundle_store: Store) -> None:
    # Putin's post is in Russia, which patrolkg links to wd:Q159: the item's
    # citizenship is the same item.
    putin = proposals(bundle_store, "person", WIKIDATA)[ID + "person/vladimir-putin"]
    assert putin.accepted is not None
    related = [e for e in putin.accepted.evidence if e.kind == "related"]
    assert related and "wd:Q159" in related[0].detail


# ------------------------------------------------------------------ the link set


def test_the_link_set_holds_exactly_the_matches_and_comments_the_rest(bundle_store: Store) -> None:
    found = list(proposals(bundle_store, "aircraft-type").values())
    text = link_set_turtle(found, source=str(TRAPS), kind=KINDS["aircraft-type"])
    graph = rdflib.Graph().parse(data=text, format="turtle")
    expected = rdflib.Graph()
    expected.add((rdflib.URIRef(ID + "aircraft-type/tu-95"), OWL.sameAs, rdflib.URIRef(TRAP + "tu-95")))
    assert isomorphic(graph, expected)
    assert f"#? <{ID}aircraft-type/h-6k> owl:sameAs <{TRAP}h-6> ." in text
    assert "score 90 (match)" in text and '"Tu-95" equals the alias "Tu-95" (+90)' in text
    assert text.rstrip().endswith("2 entities: 1 matched, 1 to review, 0 without a candidate, 0 already linked.")


def test_json_lists_candidates_with_evidence(bundle_store: Store) -> None:
    data = proposals_json(list(proposals(bundle_store, "aircraft-type").values()))
    by_entity = {item["entity"]: item for item in data}
    (h6,) = by_entity[ID + "aircraft-type/h-6k"]["candidates"]
    assert h6["id"] == TRAP + "h-6" and h6["match"] is False
    assert {e["kind"] for e in h6["evidence"]} == {"type", "similar-name"}
    json.dumps(data)


# ----------------------------------------------------- accepted links: the write path


@pytest.fixture
def unlinked_store() -> Iterator[Store]:
    """The bundled data without its link set, as if no link had been made yet."""
    store = open_store(None)
    load_bundle(store)
    store.replace_graphs({}, drop=[str(LINKS_GRAPH)])
    yield store
    store.close()


def _linkset_size(store: Store) -> int:
    triples = void_description(store, base_iri="https://w3id.org/patrolkg/", service_base="http://localhost")
    (count,) = [t.object.value for t in triples if t.subject.value.endswith("#wikidata-links") and t.predicate.value.endswith("#triples")]
    return int(count)


def test_accepted_links_go_in_as_a_submission_and_count_in_void(unlinked_store: Store) -> None:
    kind = KINDS["state"]
    found = propose_links(local_records(unlinked_store, kind, id_space=ID), read_source_file(WIKIDATA), kind)
    text = link_set_turtle(found, source=str(WIKIDATA), kind=kind)
    assert _linkset_size(unlinked_store) == 0
    record, outcome = Submissions(unlinked_store, Writer(unlinked_store)).submit(
        parse_submission(text.encode(), "text/turtle"), submitter="test", source="patrolkg link"
    )
    assert outcome.committed and record.triples == 8
    assert _linkset_size(unlinked_store) == 8
    # Asked again, every state is already linked: nothing left to propose.
    again = propose_links(local_records(unlinked_store, kind, id_space=ID), read_source_file(WIKIDATA), kind)
    assert all(p.already_linked for p in again)
    assert "# 8 entities: 0 matched, 0 to review, 0 without a candidate, 8 already linked." in link_set_turtle(again, source="x", kind=kind)


def test_links_outside_wikidata_are_refused_by_the_link_shape(unlinked_store: Store) -> None:
    kind = KINDS["person"]
    text = link_set_turtle(propose_links(local_records(unlinked_store, kind, id_space=ID), read_source_file(TRAPS), kind), source="traps", kind=kind)
    with pytest.raises(ValidationFailed) as failure:
        Submissions(unlinked_store, Writer(unlinked_store)).submit(parse_submission(text.encode(), "text/turtle"), submitter="test")
    shapes = {str(r.source_shape) for r in failure.value.report.results}
    assert shapes == {str(PKSH["ExternalLinkShape-sameAs"])}
    assert _linkset_size(unlinked_store) == 0


# ------------------------------------------------------------------ the matcher


def test_names_are_compared_without_case_accents_or_punctuation() -> None:
    assert normalize("Ｔｕ-95") == normalize("tu 95") == "tu 95"
    assert normalize("São Tomé") == "sao tome"
    record = Record("http://e/x", labels=("People's Republic of China",))
    (found,) = EntityIndex([record]).search(Query(names=("peoples republic of CHINA",)))
    assert found.score == 100 and found.match


def test_a_query_by_identifier_finds_the_linked_entity() -> None:
    record = Record("http://e/japan", labels=("Japan",), same_as=frozenset({WD + "Q17"}))
    (found,) = EntityIndex([record]).search(Query(identifiers=frozenset({WD + "Q17"})))
    assert found.match and found.evidence[0].kind == "identifier"


def test_two_exact_namesakes_are_never_a_match() -> None:
    twins = [Record(f"http://e/{n}", labels=("Kim",)) for n in (1, 2)]
    found = EntityIndex(twins).search(Query(names=("Kim",)))
    assert [c.score for c in found] == [100, 100] and not any(c.match for c in found)


def test_a_contradicting_property_prevents_a_match() -> None:
    record = Record("http://e/a", labels=("Seoul",), values={"http://e/country": frozenset({"South Korea"})})
    (agrees,) = EntityIndex([record]).search(Query(names=("Seoul",), properties={"http://e/country": ("south korea",)}))
    (differs,) = EntityIndex([record]).search(Query(names=("Seoul",), properties={"http://e/country": ("Japan",)}))
    assert agrees.match and agrees.score == 100
    assert not differs.match and differs.score == 80


# ---------------------------------------------------------------- sources and CLI


@pytest.fixture
def listener() -> Iterator[SilentEndpoint]:
    server = SilentEndpoint()
    yield server
    server.close()


def test_an_endpoint_off_the_allow_list_is_refused_without_a_connection(listener: SilentEndpoint) -> None:
    with pytest.raises(ForbiddenOperation, match="no connection was made"):
        fetch_source(listener.url, [ox.Literal("Japan", language="en")], KINDS["state"], Limits())
    assert listener.accepted == 0


def patrolkg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrolkg", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("link") / "store"
    assert patrolkg("load", "--store", str(path)).returncode == 0
    return path


def test_cli_link_then_load_goes_through_validation(store_dir: Path, tmp_path: Path) -> None:
    traps = tmp_path / "traps-links.ttl"
    result = patrolkg("link", "--store", str(store_dir), "--kind", "person", str(TRAPS), "--out", str(traps))
    assert result.returncode == 0, result.stderr
    assert "9 entities: 2 matched" in result.stderr
    refused = patrolkg("load", "--store", str(store_dir), str(traps))
    assert refused.returncode == 1
    assert "ExternalLinkShape" in refused.stderr

    wikidata = tmp_path / "wikidata-links.ttl"
    result = patrolkg("link", "--store", str(store_dir), "--kind", "state", str(WIKIDATA), "--include-linked", "--out", str(wikidata))
    assert result.returncode == 0, result.stderr
    assert len(rdflib.Graph().parse(wikidata, format="turtle")) == 8
    loaded = patrolkg("load", "--store", str(store_dir), str(wikidata))
    assert loaded.returncode == 0, loaded.stderr


def test_cli_link_refuses_an_endpoint_off_the_allow_list(store_dir: Path, listener: SilentEndpoint) -> None:
    result = patrolkg("link", "--store", str(store_dir), "--kind", "state", listener.url)
    assert result.returncode == 2
    assert "not an allowed endpoint; no connection was made" in result.stderr
    assert listener.accepted == 0


def test_cli_link_json(store_dir: Path) -> None:
    result = patrolkg("link", "--store", str(store_dir), "--kind", "aircraft-type", "--format", "json", str(TRAPS))
    assert result.returncode == 0, result.stderr
    entities = {item["entity"] for item in json.loads(result.stdout)}
    assert entities == {ID + "aircraft-type/tu-95", ID + "aircraft-type/h-6k"}
