"""Liveness and readiness: ``GET /health``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from .. import __version__
from . import openapi
from .services import Services, services

__all__ = ["router"]

router = APIRouter()


@router.get(
    "/health",
    tags=["service"],
    summary="Is the service up, and how big is the store?",
    response_model=None,
    responses={200: openapi.json_response("Up: the version and the number of graphs.", "Health"), **openapi.errors(503)},
)
def health(svc: Services = Depends(services)) -> dict[str, object]:
    """``status`` is ``ok``, or ``degraded`` with the ``problem`` (the service answers,
    but not as designed: queries read the store from the server process because no
    snapshot can be made for the query workers, usually a full or read-only disk).
    With reader processes, ``readers`` says how many run and how many connections
    went to them and came back; ``queries`` counts those the server answered itself and
    those its query workers answered; for a store on disk, ``compaction`` says how often the
    store was compacted since the server started, and how many commits wait for it."""
    problem = svc.executor.problem()
    answer: dict[str, object] = {"status": "degraded" if problem else "ok", "version": __version__, "graphs": len(svc.store.graph_names())}
    if problem:
        answer["problem"] = problem
    if svc.readers is not None:
        answer["readers"] = svc.readers.stats()
    queries = svc.executor.stats()
    if queries:
        answer["queries"] = queries
    if svc.compactor is not None:
        answer["compaction"] = svc.compactor.stats()
    return answer
