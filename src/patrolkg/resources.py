"""The files patrolkg ships: ontology, shapes, bundled data and example queries.

They live at the top of the repository and are installed inside the package; code
reaches them only through :mod:`importlib.resources`, never the working directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from rdflib import Graph, URIRef

from .namespaces import LINKS_GRAPH, ONTOLOGY_GRAPH, REFERENCE_GRAPH, article_graph

__all__ = [
    "BUNDLED",
    "ONTOLOGY_PATH",
    "SHAPES_PATH",
    "DATA_PATH",
    "QUERIES_PATH",
    "BundledGraph",
    "NamedQuery",
    "bundle",
    "ontology_graph",
    "shapes_graph",
    "named_queries",
]

BUNDLED: Traversable = files("patrolkg") / "bundled"
ONTOLOGY_PATH = BUNDLED / "ontology" / "patrolkg.ttl"
SHAPES_PATH = BUNDLED / "shapes" / "patrolkg-shapes.ttl"
DATA_PATH = BUNDLED / "data"
QUERIES_PATH = BUNDLED / "queries"


@dataclass(frozen=True)
class BundledGraph:
    """One bundled Turtle file and the named graph it is loaded into."""

    graph: URIRef
    resource: Traversable
    label: str  # how errors and progress name it, e.g. "data/reference.ttl"

    def read_bytes(self) -> bytes:
        return self.resource.read_bytes()


def bundle() -> list[BundledGraph]:
    """The graphs ``patrolkg load`` builds, in load order."""
    graphs = [
        BundledGraph(ONTOLOGY_GRAPH, ONTOLOGY_PATH, "ontology/patrolkg.ttl"),
        BundledGraph(REFERENCE_GRAPH, DATA_PATH / "reference.ttl", "data/reference.ttl"),
    ]
    articles = sorted(
        (entry for entry in (DATA_PATH / "articles").iterdir() if entry.name.endswith(".ttl")),
        key=lambda entry: entry.name,
    )
    for entry in articles:
        slug = entry.name.removesuffix(".ttl")
        graphs.append(BundledGraph(article_graph(slug), entry, f"data/articles/{entry.name}"))
    graphs.append(BundledGraph(LINKS_GRAPH, DATA_PATH / "links.ttl", "data/links.ttl"))
    return graphs


def _parse_turtle(resource: Traversable) -> Graph:
    graph = Graph()
    graph.parse(data=resource.read_bytes(), format="turtle")
    return graph


def ontology_graph() -> Graph:
    """A fresh rdflib graph of the ontology."""
    return _parse_turtle(ONTOLOGY_PATH)


def shapes_graph() -> Graph:
    """A fresh rdflib graph of the SHACL shapes."""
    return _parse_turtle(SHAPES_PATH)


@dataclass(frozen=True)
class NamedQuery:
    """A shipped example query: ``cq01-patrols.rq`` has id ``cq01-patrols``."""

    id: str
    title: str
    description: str
    text: str


_HEADER = re.compile(r"^#\s*(title|description):\s*(.*)$", re.MULTILINE)


def named_queries() -> list[NamedQuery]:
    """The example queries in ``queries/``, sorted by file name."""
    found = []
    for entry in sorted(QUERIES_PATH.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".rq"):
            continue
        text = entry.read_text(encoding="utf-8")
        header = dict(_HEADER.findall(text))
        found.append(
            NamedQuery(
                id=entry.name.removesuffix(".rq"),
                title=header.get("title", entry.name).strip(),
                description=header.get("description", "").strip(),
                text=text,
            )
        )
    return found
