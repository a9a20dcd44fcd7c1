"""The SPARQL 1.1 Service Description of the endpoint (https://www.w3.org/TR/sparql11-service-description/).

What a client can learn before its first query: the endpoint, the language, every
result format (by its W3C formats IRI), the features (the default graph is the union
of the named graphs; federation only when SERVICE endpoints are allow-listed) and the
dataset with the size of each graph. On a remote store, each thing it does differently
from the embedded one is an ``rdfs:comment`` of the service.

>>> from patrolkg.store import open_store
>>> triples = describe(open_store(None), "http://localhost:8000/sparql", service_allowlist=())
>>> any(t.object == SD.SPARQL11Query for t in triples)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from ..execution import GRAPH_MEDIA_TYPES, RESULT_MEDIA_TYPES
from ..namespaces import PREFIXES
from ..rdfio import RDF_FORMATS
from ..store import Store, store_limitations

__all__ = ["SD", "FORMAT_IRIS", "describe", "serialize_description"]


class SD:
    """The terms of the SPARQL Service Description vocabulary used here."""

    _BASE = "http://www.w3.org/ns/sparql-service-description#"
    Service = ox.NamedNode(_BASE + "Service")
    endpoint = ox.NamedNode(_BASE + "endpoint")
    supportedLanguage = ox.NamedNode(_BASE + "supportedLanguage")
    SPARQL11Query = ox.NamedNode(_BASE + "SPARQL11Query")
    resultFormat = ox.NamedNode(_BASE + "resultFormat")
    feature = ox.NamedNode(_BASE + "feature")
    UnionDefaultGraph = ox.NamedNode(_BASE + "UnionDefaultGraph")
    BasicFederatedQuery = ox.NamedNode(_BASE + "BasicFederatedQuery")
    defaultDataset = ox.NamedNode(_BASE + "defaultDataset")
    Dataset = ox.NamedNode(_BASE + "Dataset")
    defaultGraph = ox.NamedNode(_BASE + "defaultGraph")
    namedGraph = ox.NamedNode(_BASE + "namedGraph")
    NamedGraph = ox.NamedNode(_BASE + "NamedGraph")
    Graph = ox.NamedNode(_BASE + "Graph")
    name = ox.NamedNode(_BASE + "name")
    graph = ox.NamedNode(_BASE + "graph")


_FORMATS = "http://www.w3.org/ns/formats/"
_VOID_TRIPLES = ox.NamedNode("http://rdfs.org/ns/void#triples")
_RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_RDFS_COMMENT = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#comment")

#: The W3C formats IRI (https://www.w3.org/ns/formats/) of every media type the endpoint writes.
FORMAT_IRIS: dict[str, str] = {
    "application/sparql-results+json": _FORMATS + "SPARQL_Results_JSON",
    "application/sparql-results+xml": _FORMATS + "SPARQL_Results_XML",
    "text/csv": _FORMATS + "SPARQL_Results_CSV",
    "text/tab-separated-values": _FORMATS + "SPARQL_Results_TSV",
    "text/turtle": _FORMATS + "Turtle",
    "application/n-triples": _FORMATS + "N-Triples",
    "application/ld+json": _FORMATS + "JSON-LD",
    "application/rdf+xml": _FORMATS + "RDF_XML",
}

# The default graph is the union of the named graphs, and a triple held by two graphs
# is one triple of the union (an RDF merge), hence DISTINCT.
_UNION_SIZE = "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }"


def _sized_graph(size: int) -> tuple[ox.BlankNode, list[ox.Triple]]:
    node = ox.BlankNode()
    return node, [ox.Triple(node, _RDF_TYPE, SD.Graph), ox.Triple(node, _VOID_TRIPLES, ox.Literal(size))]


def _union_size(store: Store) -> int:
    solutions = store.query(_UNION_SIZE)
    assert isinstance(solutions, ox.QuerySolutions)
    count = next(iter(solutions))["n"]
    return int(count.value) if count is not None else 0


def describe(store: Store, endpoint: str, *, service_allowlist: Sequence[str]) -> list[ox.Triple]:
    """The service description of the endpoint at ``endpoint`` serving ``store``.

    It runs a few counting queries: call it off the event loop.

    :raises patrolkg.errors.StoreError: when the store cannot be read.
    """
    service, dataset = ox.BlankNode(), ox.BlankNode()
    triples = [
        ox.Triple(service, _RDF_TYPE, SD.Service),
        ox.Triple(service, SD.endpoint, ox.NamedNode(endpoint)),
        ox.Triple(service, SD.supportedLanguage, SD.SPARQL11Query),
        ox.Triple(service, SD.feature, SD.UnionDefaultGraph),
    ]
    if service_allowlist:
        triples.append(ox.Triple(service, SD.feature, SD.BasicFederatedQuery))
    for note in store_limitations(store):
        triples.append(ox.Triple(service, _RDFS_COMMENT, ox.Literal(note, language="en")))
    for media_type in (*RESULT_MEDIA_TYPES, *GRAPH_MEDIA_TYPES):
        triples.append(ox.Triple(service, SD.resultFormat, ox.NamedNode(FORMAT_IRIS[media_type])))

    triples += [ox.Triple(service, SD.defaultDataset, dataset), ox.Triple(dataset, _RDF_TYPE, SD.Dataset)]
    default_graph, sized = _sized_graph(_union_size(store))
    triples += [ox.Triple(dataset, SD.defaultGraph, default_graph), *sized]
    for name in store.graph_names():
        named = ox.BlankNode()
        graph, sized = _sized_graph(store.triple_count(name))
        triples += [
            ox.Triple(dataset, SD.namedGraph, named),
            ox.Triple(named, _RDF_TYPE, SD.NamedGraph),
            ox.Triple(named, SD.name, ox.NamedNode(name)),
            ox.Triple(named, SD.graph, graph),
            *sized,
        ]
    return triples


_SD_PREFIXES = {
    **PREFIXES,
    "sd": "http://www.w3.org/ns/sparql-service-description#",
    "formats": _FORMATS,
    "void": "http://rdfs.org/ns/void#",
}


def serialize_description(triples: Sequence[ox.Triple], media_type: str) -> bytes:
    """Write the description in one of the graph media types (``text/turtle``...)."""
    fmt = RDF_FORMATS[media_type]
    kwargs = {"prefixes": _SD_PREFIXES} if fmt == ox.RdfFormat.TURTLE else {}
    return ox.serialize(triples, format=fmt, **kwargs)
