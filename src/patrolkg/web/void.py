"""The VoID description of patrolkg (https://www.w3.org/TR/void/), built from the store.

One ``void:Dataset`` for the query default graph with its size, endpoint, URI space,
vocabularies and class/property partitions; one subset per named graph (``sd:name``
and its triple count); and the ``void:Linkset`` of ``owl:sameAs`` links to Wikidata
(the bundled graph ``pkg:links`` and the links accepted since through submissions).
Counts are of distinct triples, as the SPARQL endpoint sees them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyoxigraph as ox

from ..namespaces import GRAPH, ONTOLOGY_GRAPH, PK, PREFIXES
from ..store import Store
from .pages import compact

__all__ = ["VOID", "SD", "VOID_PREFIXES", "WIKIDATA_URI_SPACE", "void_description"]

VOID = "http://rdfs.org/ns/void#"
SD = "http://www.w3.org/ns/sparql-service-description#"
DCTERMS = "http://purl.org/dc/terms/"
FORMATS = "http://www.w3.org/ns/formats/"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
OWL_SAME_AS = "http://www.w3.org/2002/07/owl#sameAs"
WIKIDATA_URI_SPACE = "http://www.wikidata.org/entity/"
#: Prefixes for writing the description.
VOID_PREFIXES = {**{k: v for k, v in PREFIXES.items() if k not in ("pkid", "pkg")}, "void": VOID, "sd": SD}
#: Used when the ontology names no licence of its own.
DEFAULT_LICENSE = "https://creativecommons.org/licenses/by/4.0/"

_SHAPES_GRAPH = str(GRAPH["shapes"])
_QUERY_GRAPHS = f"GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != <{_SHAPES_GRAPH}>)"
# Namespaces that name instances or datatypes, not vocabularies.
_NOT_VOCABULARIES = {"pkid", "pkg", "wd", "xsd"}


def _v(term: str) -> ox.NamedNode:
    return ox.NamedNode(VOID + term)


def _int(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))


def _count(store: Store, sparql: str) -> int:
    return int(next(iter(store.query(sparql)))["n"].value)


def _pairs(store: Store, sparql: str) -> list[tuple[str, int]]:
    return sorted((row["x"].value, int(row["n"].value)) for row in store.query(sparql))


def _license(store: Store) -> str:
    rows = list(store.query(
        f"SELECT ?l WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?o a <http://www.w3.org/2002/07/owl#Ontology> ; <{DCTERMS}license> ?l }} FILTER(isIRI(?l)) }} LIMIT 1"
    ))
    return rows[0]["l"].value if rows else DEFAULT_LICENSE


def _fragment(kind: str, name: str, index: int) -> str:
    """A readable fragment for a part of the description: ``graph/reference``,
    ``class/pk:JointPatrol``; numbered when the name has characters a fragment cannot hold.

    >>> _fragment("class", compact("https://w3id.org/patrolkg/ontology#JointPatrol"), 3)
    'class/pk:JointPatrol'
    >>> _fragment("graph", "http://example.org/g#1", 3)
    'graph-3'
    """
    ok = name and all(c.isascii() and (c.isalnum() or c in "-._~/:") for c in name) and "://" not in name
    return f"{kind}/{name}" if ok else f"{kind}-{index}"


def void_description(store: Store, *, base_iri: str, service_base: str) -> list[ox.Triple]:
    """The VoID triples describing what ``store`` serves.

    :param base_iri: the public base IRI of the data (``void:uriSpace`` is ``<base_iri>id/``).
    :param service_base: the URL the service answers at, without a trailing slash; the
        endpoint is ``<service_base>/sparql`` and this description ``<service_base>/.well-known/void``.
    :raises patrolkg.errors.StoreError: when the store cannot be read.
    """
    return list(_triples(store, base_iri=base_iri, service_base=service_base))


def _triples(store: Store, *, base_iri: str, service_base: str) -> Iterator[ox.Triple]:
    doc = f"{service_base}/.well-known/void"
    dataset = ox.NamedNode(f"{doc}#patrolkg")
    wikidata = ox.NamedNode(f"{doc}#wikidata")
    linkset = ox.NamedNode(f"{doc}#wikidata-links")
    T = ox.Triple

    distinct = f"SELECT DISTINCT ?s ?p ?o WHERE {{ {_QUERY_GRAPHS} }}"
    classes = _pairs(store, f"SELECT ?x (COUNT(DISTINCT ?s) AS ?n) WHERE {{ GRAPH ?g {{ ?s a ?x }} FILTER(?g != <{_SHAPES_GRAPH}>) }} GROUP BY ?x")
    properties = _pairs(store, f"SELECT ?x (COUNT(*) AS ?n) WHERE {{ {{ {distinct} }} BIND(?p AS ?x) }} GROUP BY ?x")

    yield T(dataset, RDF_TYPE, _v("Dataset"))
    yield T(dataset, ox.NamedNode(DCTERMS + "title"), ox.Literal("patrolkg", language="en"))
    yield T(dataset, ox.NamedNode(DCTERMS + "description"), ox.Literal(
        "A knowledge graph of the Russia–China joint strategic bomber patrols near Japan and South Korea: "
        "the patrols, the states, alliances and officials around them, and what each side said, "
        "every fact with its source article.",
        language="en",
    ))
    yield T(dataset, ox.NamedNode(DCTERMS + "license"), ox.NamedNode(_license(store)))
    yield T(dataset, _v("sparqlEndpoint"), ox.NamedNode(f"{service_base}/sparql"))
    yield T(dataset, _v("uriSpace"), ox.Literal(f"{base_iri}id/"))
    yield T(dataset, _v("triples"), _int(_count(store, f"SELECT (COUNT(*) AS ?n) WHERE {{ {distinct} }}")))
    yield T(dataset, _v("classes"), _int(len(classes)))
    yield T(dataset, _v("properties"), _int(len(properties)))
    for name in ("Turtle", "N-Triples", "JSON-LD", "RDF_XML"):
        yield T(dataset, _v("feature"), ox.NamedNode(FORMATS + name))

    for prefix, namespace in sorted(PREFIXES.items()):
        if prefix in _NOT_VOCABULARIES:
            continue
        if any(iri.startswith(namespace) for iri, _ in [*classes, *properties]):
            vocabulary = str(PK).rstrip("#") if prefix == "pk" else namespace
            yield T(dataset, _v("vocabulary"), ox.NamedNode(vocabulary))

    for index, graph in enumerate(store.graph_names()):
        short = graph[len(str(GRAPH)):] if graph.startswith(str(GRAPH)) else graph
        subset = ox.NamedNode(f"{doc}#{_fragment('graph', short, index)}")
        yield T(dataset, _v("subset"), subset)
        yield T(subset, RDF_TYPE, _v("Dataset"))
        yield T(subset, ox.NamedNode(SD + "name"), ox.NamedNode(graph))
        yield T(subset, _v("triples"), _int(store.triple_count(graph)))

    for index, (iri, entities) in enumerate(classes):
        partition = ox.NamedNode(f"{doc}#{_fragment('class', compact(iri), index)}")
        yield T(dataset, _v("classPartition"), partition)
        yield T(partition, _v("class"), ox.NamedNode(iri))
        yield T(partition, _v("entities"), _int(entities))
    for index, (iri, triples) in enumerate(properties):
        partition = ox.NamedNode(f"{doc}#{_fragment('property', compact(iri), index)}")
        yield T(dataset, _v("propertyPartition"), partition)
        yield T(partition, _v("property"), ox.NamedNode(iri))
        yield T(partition, _v("triples"), _int(triples))

    # The bundled links (pkg:links) and those accepted since through submissions.
    links = _count(
        store,
        f"SELECT (COUNT(*) AS ?n) WHERE {{ SELECT DISTINCT ?s ?o WHERE {{ GRAPH ?g {{ ?s <{OWL_SAME_AS}> ?o }} "
        f'FILTER(?g != <{_SHAPES_GRAPH}> && STRSTARTS(STR(?o), "{WIKIDATA_URI_SPACE}")) }} }}',
    )
    yield T(dataset, _v("subset"), linkset)
    yield T(linkset, RDF_TYPE, _v("Linkset"))
    yield T(linkset, ox.NamedNode(DCTERMS + "title"), ox.Literal("patrolkg links to Wikidata", language="en"))
    yield T(linkset, _v("subjectsTarget"), dataset)
    yield T(linkset, _v("objectsTarget"), wikidata)
    yield T(linkset, _v("linkPredicate"), ox.NamedNode(OWL_SAME_AS))
    yield T(linkset, _v("triples"), _int(links))
    yield T(wikidata, RDF_TYPE, _v("Dataset"))
    yield T(wikidata, ox.NamedNode(DCTERMS + "title"), ox.Literal("Wikidata", language="en"))
    yield T(wikidata, _v("uriSpace"), ox.Literal(WIKIDATA_URI_SPACE))
    yield T(wikidata, ox.NamedNode("http://xmlns.com/foaf/0.1/homepage"), ox.NamedNode("https://www.wikidata.org/"))
