"""What the OpenAPI description (``/openapi.json``) says beyond what FastAPI infers.

The routes read their requests themselves and answer by content negotiation, so
FastAPI alone would document ``application/json`` for everything and no error at all.
Each route therefore declares its answers with the helpers below, and
:func:`install_openapi` completes the description once for the whole app:

- the component schemas the declarations refer to (:data:`SCHEMAS`): ``Error``, the
  one error shape of :mod:`patrolkg.web.errors`; ``ValidationFailure``, the 422 with
  the SHACL report; the submission record; SPARQL JSON results; ...
- FastAPI's default 422 ``HTTPValidationError`` is dropped: the app answers a
  parameter it cannot read with a 400 in the error shape, and uses 422 only for a
  validation report.

The bearer security scheme comes from :func:`patrolkg.web.auth.writer_name`, which
reads the token through ``fastapi.security.HTTPBearer``: every write route that
depends on it is documented as needing it.

>>> errors(404)[404]["content"]["application/json"]["schema"]
{'$ref': '#/components/schemas/Error'}
>>> sorted(content(("text/turtle", "application/ld+json")).items())[1]
('text/turtle', {'schema': {'type': 'string'}})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI

__all__ = ["JSON", "SCHEMAS", "ref", "content", "response", "json_response", "errors", "without_bodies", "complete", "install_openapi"]

JSON = "application/json"
_STRING: dict[str, Any] = {"type": "string"}


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name`` (one of :data:`SCHEMAS`)."""
    assert name in SCHEMAS, name
    return {"$ref": f"#/components/schemas/{name}"}


_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}

#: The component schemas, by name.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "title": "Error",
        "description": "The one error shape of every route (`patrolkg.web.errors.error_response`).",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "code", "message"],
                "properties": {
                    "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status, again."},
                    "code": {"type": "string", "description": "A stable machine-readable name, e.g. `query_syntax_error`."},
                    "message": {"type": "string", "description": "What went wrong, and where."},
                    "hint": {"type": "string", "description": "What to do about it."},
                    "source": {"type": "string", "description": "The input that holds a syntax error."},
                    "line": {"type": ["integer", "null"], "description": "Where a syntax error is (1-based)."},
                    "column": {"type": ["integer", "null"]},
                    "setting": {"type": "string", "description": "The setting that raises a limit."},
                    "limit": {"type": "number", "description": "The limit's current value."},
                    "problems": {
                        "type": "array",
                        "description": "Each parameter that could not be read.",
                        "items": {"type": "object", "required": ["where", "message"], "properties": {"where": _STRING, "message": _STRING}},
                    },
                    "report": {"$ref": "#/components/schemas/ValidationReport"},
                },
            }
        },
    },
    "ValidationFailure": {
        "title": "ValidationFailure",
        "description": "A 422: the data does not conform, nothing was written; the report says why.",
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {"properties": {"error": {"required": ["report"], "properties": {"code": {"const": "validation_failed"}}}}},
        ],
    },
    "ValidationReport": {
        "title": "ValidationReport",
        "type": "object",
        "required": ["conforms", "violations"],
        "properties": {"conforms": {"type": "boolean"}, "violations": {"type": "array", "items": {"$ref": "#/components/schemas/Violation"}}},
    },
    "Violation": {
        "title": "Violation",
        "description": "One reason the data does not conform: focus node, path, value, message, severity and shape.",
        "type": "object",
        "required": ["focus_node", "message", "severity"],
        "properties": {
            "focus_node": _STRING,
            "message": _STRING,
            "severity": {"type": "string", "enum": ["Violation", "Warning", "Info"]},
            **{name: _NULLABLE_STRING for name in ("path", "value", "source_shape", "node_shape", "constraint")},
        },
    },
    "SubmissionRecord": {
        "title": "SubmissionRecord",
        "description": "The provenance record of a submission.",
        "type": "object",
        "required": ["id", "iri", "graph", "submitter", "submitted_at", "status", "triples", "url"],
        "properties": {
            "id": _STRING,
            "iri": {"type": "string", "description": "The record's IRI."},
            "graph": {"type": "string", "description": "The named graph that holds the submitted data."},
            "submitter": {"type": "string", "description": "The name of the write token's holder."},
            "submitted_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["accepted", "retracted"]},
            "triples": {"type": "integer", "minimum": 0},
            "source": _NULLABLE_STRING,
            "comment": _NULLABLE_STRING,
            "retracted_by": _NULLABLE_STRING,
            "retracted_at": {"type": ["string", "null"], "format": "date-time"},
            "url": {"type": "string", "description": "Where this record is served."},
        },
    },
    "SubmissionAccepted": {
        "title": "SubmissionAccepted",
        "allOf": [
            {"$ref": "#/components/schemas/SubmissionRecord"},
            {
                "type": "object",
                "required": ["inferred_triples_added", "report"],
                "properties": {"inferred_triples_added": {"type": "integer", "minimum": 0}, "report": {"$ref": "#/components/schemas/ValidationReport"}},
            },
        ],
    },
    "SubmissionPage": {
        "title": "SubmissionPage",
        "type": "object",
        "required": ["total", "offset", "limit", "items"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/SubmissionRecord"}},
            "next": {"type": "string", "description": "The next page, when there is one."},
        },
    },
    "UpdateSummary": {
        "title": "UpdateSummary",
        "description": "Triples added and removed by a committed update, and by the reasoning that followed.",
        "type": "object",
        "required": ["added", "removed", "inferred_added", "inferred_removed"],
        "properties": {name: {"type": "integer", "minimum": 0} for name in ("added", "removed", "inferred_added", "inferred_removed")},
    },
    "Health": {
        "title": "Health",
        "type": "object",
        "required": ["status", "version", "graphs"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "version": _STRING,
            "graphs": {"type": "integer", "minimum": 0},
            "problem": {**_STRING, "description": "Why the service is degraded."},
            "readers": {
                "type": "object",
                "description": "Reader processes (PATROLKG_READERS): how many run, their process ids, the connections handed to them and those handed back.",
                "properties": {
                    "running": {"type": "integer", "minimum": 0},
                    "pids": {"type": "array", "items": {"type": "integer"}},
                    "connections": {"type": "integer", "minimum": 0},
                    "handed_back": {"type": "integer", "minimum": 0},
                },
            },
            "queries": {
                "type": "object",
                "description": "Queries on a store on disk since the server started: answered by the server itself (bounded ones, and those a worker answered quickly on the same data), by its query workers, queries run again because a query of another worker of the same process killed it (timed out, failed, or its client left), and worker processes replaced for their memory (PATROLKG_WORKER_MEMORY). What reader processes answer is not counted here.",
                "properties": {
                    "answered_in_server": {"type": "integer", "minimum": 0},
                    "answered_by_workers": {"type": "integer", "minimum": 0},
                    "run_again": {"type": "integer", "minimum": 0},
                    "workers_replaced": {"type": "integer", "minimum": 0},
                },
            },
            "compaction": {
                "type": "object",
                "description": "A store on disk is compacted once writes pause (PATROLKG_COMPACT_AFTER): compactions since the server started, commits not compacted yet, whether one runs now, the last one's seconds, and why the last one failed (until one succeeds).",
                "properties": {
                    "compactions": {"type": "integer", "minimum": 0},
                    "pending_commits": {"type": "integer", "minimum": 0},
                    "running": {"type": "boolean"},
                    "last_seconds": {"type": "number", "minimum": 0},
                    "problem": _STRING,
                },
            },
        },
    },
    "SparqlResults": {
        "title": "SparqlResults",
        "description": "SPARQL 1.1 Query Results JSON: the bindings of a SELECT, or the boolean of an ASK.",
        "type": "object",
        "required": ["head"],
        "properties": {
            "head": {"type": "object", "properties": {"vars": {"type": "array", "items": _STRING}, "link": {"type": "array", "items": _STRING}}},
            "results": {
                "type": "object",
                "required": ["bindings"],
                "properties": {
                    "bindings": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["type", "value"],
                                "properties": {"type": {"enum": ["uri", "literal", "bnode", "triple"]}, "xml:lang": _STRING, "datatype": _STRING},
                            },
                        },
                    }
                },
            },
            "boolean": {"type": "boolean"},
        },
        "oneOf": [{"required": ["results"]}, {"required": ["boolean"]}],
    },
    "ReconciliationManifest": {
        "title": "ReconciliationManifest",
        "description": "The service manifest of the Reconciliation API 0.2.",
        "type": "object",
        "required": ["versions", "name", "identifierSpace", "schemaSpace"],
        "properties": {"versions": {"type": "array", "items": _STRING}, "name": _STRING, "identifierSpace": _STRING, "schemaSpace": _STRING, "batchSize": {"type": "integer"}},
    },
    "ReconciliationResults": {
        "title": "ReconciliationResults",
        "description": "The candidates for each query of a batch, by the query's id.",
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["result"],
            "properties": {
                "result": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "score", "match"],
                        "properties": {"id": _STRING, "name": _STRING, "score": {"type": "number"}, "match": {"type": "boolean"}, "type": {"type": "array"}, "description": _STRING},
                    },
                }
            },
        },
    },
    "Suggestions": {
        "title": "Suggestions",
        "description": "Auto-completion of the Reconciliation API's suggest services.",
        "type": "object",
        "required": ["result"],
        "properties": {"result": {"type": "array", "items": {"type": "object", "required": ["id", "name"], "properties": {"id": _STRING, "name": _STRING, "description": _STRING}}}},
    },
}

#: Schemas of media types that mean one thing wherever they are answered.
_SCHEMA_OF: dict[str, dict[str, Any]] = {
    "application/sparql-results+json": ref("SparqlResults"),
    "application/ld+json": {"type": ["object", "array"], "description": "JSON-LD"},
}

#: What each error status means, unless the route says better.
_MEANING: dict[int, str] = {
    400: "The request cannot be read: a malformed parameter, query or body (with line and column).",
    401: "No bearer token, or not a valid one (`WWW-Authenticate: Bearer`).",
    403: "Refused: no write token is configured, or the write would change one of patrolkg's own graphs.",
    404: "Nothing here.",
    406: "None of the accepted media types (Accept, or format=) can be answered.",
    409: "The request conflicts with the current state.",
    413: "The body is larger than PATROLKG_MAX_BODY_BYTES.",
    415: "The body's Content-Type (or its charset: only UTF-8) is not accepted.",
    422: "The result would not conform to the shapes or the ontology; nothing was written. The report says why.",
    503: "The store is unavailable or busy, or the query ran past PATROLKG_QUERY_TIMEOUT; retry later.",
}


def content(media_types: Iterable[str], json_schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``content`` of a response or request body that can be any of ``media_types``:
    ``json_schema`` for ``application/json``, the one schema of SPARQL JSON results
    and JSON-LD, a string for everything else."""
    return {
        media_type: {"schema": dict(json_schema) if media_type == JSON and json_schema is not None else _SCHEMA_OF.get(media_type, _STRING)}
        for media_type in media_types
    }


def response(description: str, media_types: Iterable[str] = (), json_schema: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A response object; ``headers`` maps each header it carries to its meaning."""
    found: dict[str, Any] = {"description": description}
    media_types = tuple(media_types)
    if media_types:
        found["content"] = content(media_types, json_schema)
    if headers:
        found["headers"] = {name: {"description": meaning, "schema": _STRING} for name, meaning in headers.items()}
    return found


def json_response(description: str, schema: str, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A response object in JSON, of the component schema named ``schema``."""
    return response(description, (JSON,), ref(schema), headers=headers)


def errors(*statuses: int, described: Mapping[int, str] | None = None) -> dict[int, dict[str, Any]]:
    """The error responses of a route, in the one error shape (a 422 with its report).

    :param described: what a status means on this route, where it says more than the default.
    """
    described = described or {}
    found = {}
    for status in statuses:
        headers = {"Retry-After": "Seconds to wait, when the store is down or busy."} if status == 503 else None
        found[status] = json_response(described.get(status, _MEANING[status]), "ValidationFailure" if status == 422 else "Error", headers=headers)
    return found


def without_bodies(responses: Mapping[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """``responses`` as a HEAD answers them when it sends no Content-Type at all."""
    return {status: {k: v for k, v in declared.items() if k != "content"} for status, declared in responses.items()}


# --- completing the description ----------------------------------------------------------

_FASTAPI_VALIDATION_ERRORS = ("HTTPValidationError", "ValidationError")


def _operations(description: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for item in description.get("paths", {}).values():
        yield from item.values()


def _drop_fastapi_422(operation: dict[str, Any]) -> None:
    """FastAPI documents a 422 ``HTTPValidationError`` on every route with parameters;
    the app answers a parameter it cannot read with 400 in the error shape
    (``web/errors._request_error``), which the routes that have such parameters declare."""
    responses = operation.get("responses", {})
    schema = responses.get("422", {}).get("content", {}).get(JSON, {}).get("schema", {})
    if str(schema.get("$ref", "")).endswith("/HTTPValidationError"):
        del responses["422"]


def complete(description: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's description of the app in place (see the module docstring)."""
    for operation in _operations(description):
        _drop_fastapi_422(operation)
    schemas = description.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_ERRORS:
        schemas.pop(name, None)
    schemas.update(SCHEMAS)
    return description


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) answer the completed description."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
