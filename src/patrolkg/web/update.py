"""SPARQL 1.1 Update at ``/update`` (https://www.w3.org/TR/sparql11-protocol/#update-operation).

- An update arrives by POST only: as a form (``application/x-www-form-urlencoded``,
  exactly one ``update=``) or as the body (``application/sparql-update``), in UTF-8.
- ``using-graph-uri`` and ``using-named-graph-uri`` (repeatable) set the dataset of
  every ``WHERE``; they come from the query string, or for a form also from its fields.
  An update with its own ``USING`` or ``WITH`` cannot have them too (400).
- Relative IRIs in the update resolve against the endpoint's URL.
- Writes need ``Authorization: Bearer <token>`` (:func:`patrolkg.web.auth.writer_name`).
- The update runs on a staging copy; what it changes is validated and committed in
  one transaction through the write path, or nothing is written
  (:func:`patrolkg.updates.apply_update`).

Statuses: 200 with ``{"added", "removed", "inferred_added", "inferred_removed"}``
(triple counts) on success; 400 malformed request or update (with line and column),
or one nested too deep or too long to parse safely; 401/403 no or wrong token, no
token configured; 403 ``LOAD``, SERVICE to an endpoint off the allow-list, or a write
to one of patrolkg's own graphs; 405 any method but POST; 415 another Content-Type or
charset; 422 the result does not conform (the report names each focus node, path and
shape); 502 an allow-listed SERVICE endpoint failed.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import ForbiddenOperation
from ..updates import apply_update
from ..writes import WriteOutcome
from . import openapi
from .auth import writer_name
from .errors import HttpError
from .services import services
from .protocol import content_type, form_pairs, graph_iris, not_utf8, require_utf8

__all__ = ["router", "ALLOWED_METHODS"]

log = logging.getLogger("patrolkg.web")

router = APIRouter(tags=["update"])

#: The methods /update answers, as sent in ``Allow``.
ALLOWED_METHODS = "POST"

_FORM = "application/x-www-form-urlencoded"
_SPARQL_UPDATE = "application/sparql-update"


def _update_text(url_pairs: list[tuple[str, str]], form_pairs: list[tuple[str, str]], body_update: str | None) -> str:
    """The one update of a request.

    :raises HttpError: 400 for an update in the URL, none, an empty one or several.
    """
    if any(key == "update" for key, _ in url_pairs):
        raise HttpError(400, "update_in_url", "the update is in the URL; it belongs in the request body", hint=f"POST it as {_SPARQL_UPDATE}, or as {_FORM} with an update field")
    if any(key == "query" for key, _ in (*url_pairs, *form_pairs)):
        raise HttpError(400, "query_sent_to_update", "the request holds a query; /update runs updates only", hint="send queries to /sparql")
    updates = [value for key, value in form_pairs if key == "update"]
    if body_update is not None:
        updates.append(body_update)
    if len(updates) > 1:
        raise HttpError(400, "multiple_updates", f"the request holds {len(updates)} updates; send exactly one", hint="join operations with ';' in one update")
    if not updates or not updates[0].strip():
        raise HttpError(400, "missing_update", "the request holds no update", hint=f"POST it as {_SPARQL_UPDATE}, or as {_FORM} with an update field")
    return updates[0]


def _summary(outcome: WriteOutcome) -> dict[str, int]:
    return {"added": outcome.added, "removed": outcome.removed, "inferred_added": outcome.inferred_added, "inferred_removed": outcome.inferred_removed}


@router.post(
    "/update",
    name="update_post",
    summary="Run a SPARQL 1.1 Update through validation",
    responses={
        200: openapi.json_response("Committed; the numbers of triples added and removed.", "UpdateSummary"),
        **openapi.errors(400, 401, 403, 413, 415, 422, 503, described={403: "Refused: no write token is configured, a LOAD, or a write to one of patrolkg's own graphs."}),
    },
    openapi_extra={
        "parameters": [
            {"name": "using-graph-uri", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "description": "A graph of the WHERE clauses' default graph (repeatable)."},
            {"name": "using-named-graph-uri", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "description": "A named graph of the WHERE clauses (repeatable)."},
        ],
        "requestBody": {
            "required": True,
            "content": {
                _SPARQL_UPDATE: {"schema": {"type": "string"}, "example": 'INSERT DATA { GRAPH <https://example.org/notes> { <https://example.org/notes/1> <http://www.w3.org/2000/01/rdf-schema#comment> "a note" } }'},
                _FORM: {"schema": {"type": "object", "properties": {"update": {"type": "string"}}, "required": ["update"]}},
            },
        },
    },
)
async def _update_post(request: Request, writer: str = Depends(writer_name)) -> JSONResponse:
    media_type, params = content_type(request.headers.get("content-type"))
    if media_type not in (_FORM, _SPARQL_UPDATE):
        shown = media_type or "a body without Content-Type"
        raise HttpError(415, "unsupported_media_type", f"an update cannot be sent as {shown}", hint=f"POST the update as {_SPARQL_UPDATE}, or as {_FORM} with an update field")
    require_utf8(media_type, params)
    url_pairs = form_pairs(request.scope["query_string"], "the query string")
    body = await request.body()
    if media_type == _FORM:
        body_pairs = form_pairs(body, "the form")
        update = _update_text(url_pairs, body_pairs, None)
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise not_utf8("the update", error) from None
        body_pairs = []
        update = _update_text(url_pairs, body_pairs, text)
    pairs = url_pairs + body_pairs
    using = graph_iris(pairs, "using-graph-uri") or ()
    using_named = graph_iris(pairs, "using-named-graph-uri") or ()
    svc = services(request)
    try:
        outcome = await run_in_threadpool(
            apply_update, svc.store, svc.writer, update, using=using, using_named=using_named, base_iri=str(request.url_for("update_post")),
            service_allowlist=svc.settings.service_allowlist, stage=svc.executor.stage_update,
        )
    except ForbiddenOperation as error:
        # Here it is always a policy refusal of a well-formed update (LOAD, SERVICE off
        # the allow-list, a write to patrolkg's own graphs): understood and refused.
        raise HttpError(403, error.code, error.message, hint=error.hint) from None
    log.info("update by %s: %d triples removed, %d added", writer, outcome.removed, outcome.added)
    return JSONResponse(_summary(outcome))


@router.api_route("/update", methods=["GET", "HEAD", "PUT", "DELETE", "PATCH"], include_in_schema=False)
async def _update_other(request: Request) -> None:
    raise HttpError(405, "method_not_allowed", f"{request.method} is not allowed on /update", hint="POST the update", headers={"Allow": ALLOWED_METHODS})
