"""Namespaces and the IRIs of patrolkg's named graphs."""

from __future__ import annotations

from rdflib import Namespace, URIRef

__all__ = [
    "PK",
    "PKID",
    "GRAPH",
    "PKSH",
    "ONTOLOGY_IRI",
    "ONTOLOGY_GRAPH",
    "REFERENCE_GRAPH",
    "LINKS_GRAPH",
    "INFERRED_GRAPH",
    "SYSTEM_GRAPHS",
    "article_graph",
    "PREFIXES",
]

BASE = "https://w3id.org/patrolkg/"
PK = Namespace(BASE + "ontology#")
PKID = Namespace(BASE + "id/")
GRAPH = Namespace(BASE + "graph/")
PKSH = Namespace(BASE + "shapes#")

ONTOLOGY_IRI = URIRef(BASE + "ontology")
ONTOLOGY_GRAPH = GRAPH["ontology"]
REFERENCE_GRAPH = GRAPH["reference"]
LINKS_GRAPH = GRAPH["links"]
INFERRED_GRAPH = GRAPH["inferred"]

#: Graphs that only patrolkg itself writes.
SYSTEM_GRAPHS = frozenset({ONTOLOGY_GRAPH, INFERRED_GRAPH})


def article_graph(slug: str) -> URIRef:
    """The named graph holding the facts of one source article.

    >>> str(article_graph("cnsnews-2022-05"))
    'https://w3id.org/patrolkg/graph/article/cnsnews-2022-05'
    """
    return GRAPH[f"article/{slug}"]


#: Prefixes offered to every query and used when serializing.
PREFIXES: dict[str, str] = {
    "pk": str(PK),
    "pkid": str(PKID),
    "pkg": str(GRAPH),
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "org": "http://www.w3.org/ns/org#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "wd": "http://www.wikidata.org/entity/",
}
