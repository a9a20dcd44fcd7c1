"""Where each router is mounted: one line per feature."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

__all__ = ["include_all"]

# Modules that define ``router`` (an APIRouter); each is owned by one feature.
_ROUTERS = ("health", "sparql", "linked_data", "ui", "submissions", "update", "graph_store", "reconcile")


def include_all(app: FastAPI) -> None:
    for name in _ROUTERS:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue  # feature not written yet
            raise
        app.include_router(module.router)
