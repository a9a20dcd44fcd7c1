"""The bundled data: conforms to the shapes, and every transcription is traceable.

The data files are parsed with rdflib straight from the package (not through the
store), so the checks see the terms exactly as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import PROV, RDF, RDFS, DCTERMS

from patrolkg.namespaces import GRAPH, LINKS_GRAPH, ONTOLOGY_GRAPH, PK, PKID
from patrolkg.resources import bundle
from patrolkg.validation import validate

#: The source article texts, where the shared workspace has them (not shipped).
ARTICLES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "articles"


def _data_files() -> list:
    return [item for item in bundle() if item.graph != ONTOLOGY_GRAPH]


@pytest.fixture(scope="module")
def graphs() -> dict[str, rdflib.Graph]:
    """Each bundled data file as its own graph, keyed by the named graph it loads into."""
    parsed = {}
    for item in _data_files():
        graph = rdflib.Graph()
        graph.parse(data=item.read_bytes(), format="turtle")
        parsed[str(item.graph)] = graph
    return parsed


@pytest.fixture(scope="module")
def data(graphs: dict[str, rdflib.Graph]) -> rdflib.Graph:
    union = rdflib.Graph()
    for graph in graphs.values():
        for triple in graph:
            union.add(triple)
    return union


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_bundled_data_conforms_to_the_shapes(data: rdflib.Graph) -> None:
    report = validate(data)
    assert report.conforms, report.text


def test_every_quote_occurs_verbatim_in_its_source_text(data: rdflib.Graph) -> None:
    quoted = set(data.subjects(PK.quote, None))
    assert quoted, "no pk:quote in the data"
    for statement in quoted:
        texts = [str(t) for t in data.objects(statement, PK.sourceText)]
        assert texts, f"{statement} has a pk:quote but no pk:sourceText"
        for quote in data.objects(statement, PK.quote):
            assert quote.language == "en", f"{statement}: quote {quote!r} is not @en"
            assert any(str(quote) in text for text in texts), f"{statement}: quote {str(quote)!r} is not in its pk:sourceText"


def test_every_statement_names_an_existing_source_article(data: rdflib.Graph) -> None:
    articles = set(data.subjects(RDF.type, PK.Article))
    statements = set(data.subjects(RDF.type, PK.Statement))
    assert statements
    for statement in statements:
        sources = set(data.objects(statement, PROV.wasDerivedFrom))
        assert sources, f"{statement} has no prov:wasDerivedFrom"
        assert sources <= articles, f"{statement} is derived from {sources - articles}, which are not pk:Article"
    for article in articles:
        assert data.value(article, DCTERMS.identifier) is not None, f"{article} has no dcterms:identifier"


def test_every_node_with_source_text_is_derived_from_an_article(data: rdflib.Graph) -> None:
    for node in set(data.subjects(PK.sourceText, None)):
        assert data.value(node, PROV.wasDerivedFrom) is not None, f"{node} has pk:sourceText but no prov:wasDerivedFrom"


def test_article_graphs_hold_only_their_own_article_transcriptions(graphs: dict[str, rdflib.Graph]) -> None:
    prefix = str(GRAPH["article/"])
    for name, graph in graphs.items():
        if not name.startswith(prefix):
            continue
        article = PKID["article/" + name[len(prefix):]]
        assert (article, RDF.type, PK.Article) in graph, f"{name} does not describe {article}"
        for node in set(graph.subjects(PK.sourceText, None)):
            assert set(graph.objects(node, PROV.wasDerivedFrom)) == {article}, f"{node} in {name} is not derived from {article}"


def test_every_resource_has_exactly_one_english_label(data: rdflib.Graph) -> None:
    """Every pkid: resource the data mentions, except the ontology's concepts, has one rdfs:label@en."""
    concepts = ("stance/", "role/", "rank/", "aircraft-category/")
    mentioned = {t for t in set(data.subjects()) | set(data.objects()) if isinstance(t, rdflib.URIRef) and str(t).startswith(str(PKID))}
    for node in sorted(mentioned):
        if str(node)[len(str(PKID)):].startswith(concepts):
            continue
        labels = list(data.objects(node, RDFS.label))
        assert len(labels) == 1 and labels[0].language == "en", f"{node} has labels {labels}"


def test_links_are_only_wikidata_same_as(graphs: dict[str, rdflib.Graph]) -> None:
    links = graphs[str(LINKS_GRAPH)]
    assert len(links) > 0
    for _, predicate, item in links:
        assert predicate == rdflib.OWL.sameAs
        assert re.fullmatch(r"http://www\.wikidata\.org/entity/Q[1-9][0-9]*", str(item)), item


def test_every_source_text_occurs_verbatim_in_its_article(data: rdflib.Graph) -> None:
    if not ARTICLES_DIR.is_dir():
        pytest.skip(f"the article texts are not at {ARTICLES_DIR}")
    texts = {}
    for article in data.subjects(RDF.type, PK.Article):
        file_name = str(data.value(article, DCTERMS.identifier))
        texts[article] = _normalize((ARTICLES_DIR / file_name).read_text(encoding="utf-8"))
    checked = 0
    for node, source_text in data.subject_objects(PK.sourceText):
        articles = list(data.objects(node, PROV.wasDerivedFrom))
        assert articles, f"{node} has no prov:wasDerivedFrom"
        wanted = _normalize(str(source_text))
        assert any(wanted in texts[a] for a in articles), f"{node}: pk:sourceText not found verbatim in its article: {wanted!r}"
        checked += 1
    assert checked > 0
