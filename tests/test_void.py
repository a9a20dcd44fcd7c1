"""The VoID description at /.well-known/void, checked against the store it describes."""

from __future__ import annotations

import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, OWL, RDF

from patrolkg.namespaces import LINKS_GRAPH, PK
from patrolkg.query import select_rows
from patrolkg.store import Store

VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}


def fetch(client: TestClient, media_type: str = "text/turtle", **headers: str) -> rdflib.Graph:
    response = client.get("/.well-known/void", headers={"Accept": media_type, **headers})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert "Accept" in response.headers["vary"]
    return rdflib.Graph().parse(data=response.content, format=FORMATS[media_type])


def the_dataset(void: rdflib.Graph) -> rdflib.term.Node:
    (dataset,) = set(void.subjects(VOID.sparqlEndpoint, None))
    return dataset


def count(store: Store, sparql: str) -> int:
    return int(select_rows(store, sparql)[0]["n"])


@pytest.fixture
def void(client: TestClient) -> rdflib.Graph:
    return fetch(client)


def test_every_format_says_the_same(client: TestClient, void: rdflib.Graph) -> None:
    for media_type in FORMATS:
        assert isomorphic(fetch(client, media_type), void), media_type
    assert client.get("/.well-known/void", headers={"Accept": "text/html"}).status_code == 406


def test_dataset_header(void: rdflib.Graph) -> None:
    dataset = the_dataset(void)
    assert (dataset, RDF.type, VOID.Dataset) in void
    for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.license):
        assert void.value(dataset, prop) is not None, prop
    assert str(void.value(dataset, VOID.uriSpace)) == "https://w3id.org/patrolkg/id/"
    assert rdflib.URIRef("https://w3id.org/patrolkg/ontology") in set(void.objects(dataset, VOID.vocabulary))


def test_endpoint_is_on_the_requests_own_host(client: TestClient) -> None:
    void = fetch(client, host="kg.example.org")
    assert void.value(the_dataset(void), VOID.sparqlEndpoint) == rdflib.URIRef("http://kg.example.org/sparql")


def test_linkset_counts_the_sameas_links(void: rdflib.Graph, bundle_store: Store) -> None:
    (linkset,) = set(void.subjects(RDF.type, VOID.Linkset))
    dataset = the_dataset(void)
    assert void.value(linkset, VOID.subjectsTarget) == dataset
    assert void.value(linkset, VOID.linkPredicate) == OWL.sameAs
    wikidata = void.value(linkset, VOID.objectsTarget)
    assert str(void.value(wikidata, VOID.uriSpace)) == "http://www.wikidata.org/entity/"
    links = count(bundle_store, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{LINKS_GRAPH}> {{ ?s <{OWL.sameAs}> ?o }} }}")
    assert links > 0
    assert void.value(linkset, VOID.triples).toPython() == links


def test_every_named_graph_is_a_subset_with_its_size(void: rdflib.Graph, bundle_store: Store) -> None:
    dataset = the_dataset(void)
    subsets = set(void.objects(dataset, VOID.subset))
    by_name = {void.value(s, SD.name): s for s in subsets if void.value(s, SD.name) is not None}
    assert set(map(str, by_name)) == set(bundle_store.graph_names())
    for name, subset in by_name.items():
        assert (subset, RDF.type, VOID.Dataset) in void
        assert void.value(subset, VOID.triples).toPython() == bundle_store.triple_count(str(name)), name


def test_sizes_and_class_partitions_match_the_store(void: rdflib.Graph, bundle_store: Store) -> None:
    dataset = the_dataset(void)
    distinct = count(bundle_store, "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }")
    assert void.value(dataset, VOID.triples).toPython() == distinct
    partitions = {void.value(p, VOID["class"]): void.value(p, VOID.entities).toPython() for p in void.objects(dataset, VOID.classPartition)}
    patrols = count(bundle_store, f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a <{PK.JointPatrol}> }}")
    assert patrols > 0 and partitions[PK.JointPatrol] == patrols
    properties = {void.value(p, VOID.property): void.value(p, VOID.triples).toPython() for p in void.objects(dataset, VOID.propertyPartition)}
    same_as = count(bundle_store, f"SELECT (COUNT(*) AS ?n) WHERE {{ SELECT DISTINCT ?s ?o WHERE {{ ?s <{OWL.sameAs}> ?o }} }}")
    assert properties[OWL.sameAs] == same_as


def test_doctests() -> None:
    import doctest

    from patrolkg.web import void

    assert doctest.testmod(void).failed == 0
