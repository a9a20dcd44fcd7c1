"""Namespaces and the IRIs of patrolkg's named graphs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

if TYPE_CHECKING:
    PK: Namespace
    PKID: Namespace
    GRAPH: Namespace
    PKSH: Namespace
    ONTOLOGY_IRI: URIRef
    ONTOLOGY_GRAPH: URIRef
    REFERENCE_GRAPH: URIRef
    LINKS_GRAPH: URIRef
    INFERRED_GRAPH: URIRef
    #: Graphs that only patrolkg itself writes.
    SYSTEM_GRAPHS: frozenset[URIRef]


def _terms() -> dict[str, object]:
    from rdflib import Namespace, URIRef

    graph = Namespace(BASE + "graph/")
    terms: dict[str, object] = {
        "PK": Namespace(BASE + "ontology#"),
        "PKID": Namespace(BASE + "id/"),
        "GRAPH": graph,
        "PKSH": Namespace(BASE + "shapes#"),
        "ONTOLOGY_IRI": URIRef(BASE + "ontology"),
        "ONTOLOGY_GRAPH": graph["ontology"],
        "REFERENCE_GRAPH": graph["reference"],
        "LINKS_GRAPH": graph["links"],
        "INFERRED_GRAPH": graph["inferred"],
    }
    terms["SYSTEM_GRAPHS"] = frozenset({terms["ONTOLOGY_GRAPH"], terms["INFERRED_GRAPH"]})
    return terms


def __getattr__(name: str) -> object:
    # The rdflib terms are made when first named: processes that only query the store
    # (the query workers and readers of a server) never load rdflib.
    if name in _TERM_NAMES:
        if "PK" not in globals():
            globals().update(_terms())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_TERM_NAMES = frozenset({"PK", "PKID", "GRAPH", "PKSH", "ONTOLOGY_IRI", "ONTOLOGY_GRAPH", "REFERENCE_GRAPH", "LINKS_GRAPH", "INFERRED_GRAPH", "SYSTEM_GRAPHS"})


def article_graph(slug: str) -> URIRef:
    """The named graph holding the facts of one source article.

    >>> str(article_graph("cnsnews-2022-05"))
    'https://w3id.org/patrolkg/graph/article/cnsnews-2022-05'
    """
    graph: Namespace = __getattr__("GRAPH")  # type: ignore[assignment]
    return graph[f"article/{slug}"]


#: Prefixes offered to every query and used when serializing.
PREFIXES: dict[str, str] = {
    "pk": BASE + "ontology#",
    "pkid": BASE + "id/",
    "pkg": BASE + "graph/",
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
