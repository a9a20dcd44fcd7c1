"""Where each router is mounted: one module per feature, each defining ``router``."""

from __future__ import annotations

from fastapi import FastAPI

from . import graph_store, health, linked_data, reconcile, sparql, submissions, ui, update

__all__ = ["include_all"]

_FEATURES = (health, sparql, linked_data, ui, submissions, update, graph_store, reconcile)


def include_all(app: FastAPI) -> None:
    """Mount every feature's router on ``app``."""
    for feature in _FEATURES:
        app.include_router(feature.router)
