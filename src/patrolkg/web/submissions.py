"""Submissions over HTTP: ``/submissions`` (submit, list, read, retract) and ``/validate``.

A submission is RDF in the request body (Turtle, N-Triples, JSON-LD or RDF/XML, named by
its Content-Type), with optional ``source`` and ``comment`` query parameters. It is
validated against the shapes and the ontology together with the facts it refers to;
it is stored, in its own named graph with a provenance record, only if it conforms.
"""

from __future__ import annotations

import pyoxigraph as ox
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import InputError, UnsupportedFormat, ValidationFailed
from ..namespaces import PREFIXES
from ..negotiation import choose
from ..rdfio import RDF_FORMATS, serialize_triples
from ..submissions import SUBMISSIONS_GRAPH, SubmissionRecord, parse_submission
from ..validation import Report
from ..writes import Change
from . import openapi
from .auth import writer_name
from .errors import HttpError
from .services import Services, services

__all__ = ["router", "report_response"]

router = APIRouter(tags=["submissions"])

_REPORT_TYPES = ("application/json", "text/turtle", "application/ld+json")
_DATA_TYPES = ("text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml")
_DATASET_TYPES = ("application/trig", "application/n-quads")
_ACCEPTED_INPUT = ("text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml")


async def _body(request: Request) -> tuple[bytes, str]:
    content_type = request.headers.get("content-type")
    if not content_type:
        raise HttpError(415, "unsupported_media_type", "a submission needs a Content-Type naming its RDF format", hint="send text/turtle, application/n-triples, application/ld+json or application/rdf+xml")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_INPUT:
        raise HttpError(415, "unsupported_media_type", f"submissions cannot be {media_type}", hint="send " + ", ".join(_ACCEPTED_INPUT))
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in content_type.split(";")[1:] if p.strip().lower().startswith("charset=")), "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise HttpError(415, "unsupported_charset", f"the body is declared as {charset}; only UTF-8 is accepted")
    return await request.body(), media_type


def report_response(report: Report, accept: str | None, *, status: int) -> Response:
    """A validation report as JSON (default), Turtle or JSON-LD (``sh:ValidationReport``)."""
    chosen = choose(accept, _REPORT_TYPES) or "application/json"
    if chosen == "application/json":
        body = report.as_dict()
        if status >= 400:
            body = {"error": {"status": status, "code": "validation_failed", "message": f"{len(report.results)} violation(s): nothing was stored", "hint": "correct the data as each violation says and submit again", "report": body}}
        return JSONResponse(body, status_code=status, headers={"Vary": "Accept"})
    data = report.rdf().serialize(format="turtle" if chosen == "text/turtle" else "json-ld")
    return Response(data, status_code=status, media_type=chosen, headers={"Vary": "Accept"})


# --- what the routes answer, for the OpenAPI description ---------------------------------

_EXAMPLE = """@prefix pk: <https://w3id.org/patrolkg/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
<https://w3id.org/patrolkg/id/statement/example-submission> a pk:Statement ;
    rdfs:label "An example submission"@en ;
    pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
    pk:onBehalfOf <https://w3id.org/patrolkg/id/state/japan> ;
    pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
    pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
    pk:summary "The example of the OpenAPI description."@en ;
    dcterms:source "https://example.org/article" .
"""
_EXAMPLES = {
    "conforms": {"summary": "A statement that conforms", "value": _EXAMPLE},
    "violates": {
        "summary": "A statement without its speaker",
        "value": _EXAMPLE.replace("example-submission", "example-without-speaker").replace("    pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;\n", ""),
    },
}
_RDF_BODY = {
    "required": True,
    "description": "The facts, as RDF named by the Content-Type.",
    "content": {**openapi.content(_ACCEPTED_INPUT), "text/turtle": {"schema": {"type": "string"}, "examples": _EXAMPLES}},
}


def _report(description: str, json_schema: str) -> dict[str, object]:
    """A validation report as :func:`report_response` answers it."""
    return openapi.response(description, _REPORT_TYPES, openapi.ref(json_schema))


_REPORTED = " The report (JSON in the error shape, or sh:ValidationReport as Turtle or JSON-LD) says why."
_NOT_FOUND = {404: "No submission has that id."}


def _record_json(record: SubmissionRecord, request: Request) -> dict[str, object]:
    return {**record.as_dict(), "url": str(request.url_for("get_submission", submission_id=record.id))}


@router.post(
    "/submissions",
    status_code=201,
    summary="Submit facts (validated; stored only if they conform)",
    responses={
        201: openapi.json_response("Stored: the submission's record, with the report.", "SubmissionAccepted", headers={"Location": "The submission, /submissions/{id}."}),
        200: _report("A dry run: the report, nothing stored.", "ValidationReport"),
        **openapi.errors(400, 401, 403, 413, 415, 503),
        422: _report("The facts do not conform; nothing was stored." + _REPORTED, "ValidationFailure"),
    },
    openapi_extra={"requestBody": _RDF_BODY},
)
async def submit(
    request: Request,
    source: str | None = Query(None, description="Where the facts come from: an article URL or a citation."),
    comment: str | None = Query(None, description="A note on the submission."),
    dry_run: bool = Query(False, description="Validate and report, but store nothing."),
    submitter: str = Depends(writer_name),
    svc: Services = Depends(services),
) -> Response:
    data, media_type = await _body(request)
    triples = parse_submission(data, media_type)

    def run() -> Response:
        try:
            record, outcome = svc.submissions.submit(triples, submitter=submitter, source=source, comment=comment, dry_run=dry_run)
        except ValidationFailed as failure:
            return report_response(failure.report, request.headers.get("accept"), status=422)
        if dry_run:
            return report_response(outcome.report, request.headers.get("accept"), status=200)
        body = {**_record_json(record, request), "inferred_triples_added": outcome.inferred_added, "report": outcome.report.as_dict()}
        return JSONResponse(body, status_code=201, headers={"Location": f"/submissions/{record.id}"})

    return await run_in_threadpool(run)


@router.post(
    "/validate",
    summary="Validate facts against the shapes and the ontology, in the context of the store; store nothing",
    responses={200: _report("The report, whether the facts conform or not.", "ValidationReport"), **openapi.errors(400, 413, 415, 503)},
    openapi_extra={"requestBody": _RDF_BODY},
)
async def validate_only(request: Request, svc: Services = Depends(services)) -> Response:
    data, media_type = await _body(request)
    triples = parse_submission(data, media_type)

    def run() -> Response:
        try:
            outcome = svc.writer.write(Change().adding(None, triples), dry_run=True)
        except ValidationFailed as failure:
            return report_response(failure.report, request.headers.get("accept"), status=200)
        return report_response(outcome.report, request.headers.get("accept"), status=200)

    return await run_in_threadpool(run)


@router.get(
    "/submissions",
    summary="List submissions, newest first, a page at a time",
    responses={200: openapi.json_response("A page of records.", "SubmissionPage"), **openapi.errors(400, 503)},
)
def list_submissions(
    request: Request,
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=500),
    svc: Services = Depends(services),
) -> JSONResponse:
    records, total = svc.submissions.list(offset=offset, limit=limit)
    body: dict[str, object] = {"total": total, "offset": offset, "limit": limit, "items": [_record_json(r, request) for r in records]}
    if offset + limit < total:
        body["next"] = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    return JSONResponse(body)


@router.get(
    "/submissions/{submission_id}",
    name="get_submission",
    summary="A submission: its record (JSON) or its data (RDF)",
    responses={
        200: openapi.response("The record (JSON), the data (Turtle, N-Triples, JSON-LD, RDF/XML), or both in their graphs (TriG, N-Quads).", ("application/json", *_DATA_TYPES, *_DATASET_TYPES), openapi.ref("SubmissionRecord")),
        **openapi.errors(404, 406, 415, 503, described={**_NOT_FOUND, 415: "format= names no format a submission is available in."}),
    },
)
def get_submission(submission_id: str, request: Request, format: str | None = Query(None, description="json, turtle, ntriples, jsonld, rdfxml, trig or nquads"), svc: Services = Depends(services)) -> Response:
    record = svc.submissions.get(submission_id)
    offered = ("application/json", *_DATA_TYPES, *_DATASET_TYPES)
    chosen = _format_param(format) if format else choose(request.headers.get("accept"), offered)
    if chosen is None:
        raise HttpError(406, "not_acceptable", "a submission is available as " + ", ".join(offered))
    if chosen == "application/json":
        return JSONResponse(_record_json(record, request), headers={"Vary": "Accept"})
    triples = svc.submissions.data(submission_id)
    if chosen in _DATASET_TYPES:
        record_graph = ox.NamedNode(SUBMISSIONS_GRAPH)
        data_graph = ox.NamedNode(record.graph)
        quads = [q for q in svc.store.quads_with_subjects([record.iri]) if q.graph_name == record_graph]
        quads += [ox.Quad(t.subject, t.predicate, t.object, data_graph) for t in triples]
        body = ox.serialize(quads, format=RDF_FORMATS[chosen])
    else:
        body = serialize_triples(triples, RDF_FORMATS[chosen], PREFIXES)
    return Response(body, media_type=chosen, headers={"Vary": "Accept"})


_FORMAT_NAMES = {
    "json": "application/json",
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
    "jsonld": "application/ld+json",
    "rdfxml": "application/rdf+xml",
    "trig": "application/trig",
    "nquads": "application/n-quads",
}


def _format_param(name: str) -> str:
    try:
        return _FORMAT_NAMES[name.lower()]
    except KeyError:
        raise UnsupportedFormat(f"unknown format {name!r}", hint="use one of " + ", ".join(_FORMAT_NAMES)) from None


@router.delete(
    "/submissions/{submission_id}",
    summary="Retract a submission: its facts leave the graph; record and data are kept",
    responses={
        200: openapi.json_response("Retracted: the record, with who retracted it and when.", "SubmissionRecord"),
        **openapi.errors(401, 403, 404, 409, 503, described={**_NOT_FOUND, 409: "The submission was already retracted."}),
        422: _report("Other data would no longer conform without these facts; nothing was retracted." + _REPORTED, "ValidationFailure"),
    },
)
def retract_submission(submission_id: str, request: Request, who: str = Depends(writer_name), svc: Services = Depends(services)) -> Response:
    try:
        record = svc.submissions.retract(submission_id, by=who)
    except ValidationFailed as failure:
        return report_response(failure.report, request.headers.get("accept"), status=422)
    except InputError as error:
        raise HttpError(409, "already_retracted", error.message) from None
    return JSONResponse(_record_json(record, request))

