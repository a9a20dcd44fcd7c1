"""patrolkg: a knowledge graph of the Russia–China joint strategic bomber patrols near
Japan and South Korea, with the ontology, shapes, sourced facts, reasoning and a
SPARQL endpoint."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
