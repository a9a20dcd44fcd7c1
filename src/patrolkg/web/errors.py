"""One JSON error shape for every error, and the status each error class maps to.

Every error response body is::

    {"error": {"status": 400, "code": "query_syntax_error", "message": "...",
               "hint": "...", ...details}}

No stack trace ever reaches a client; an unexpected exception is logged and gets 500.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the reader processes use this module without the web framework
    from fastapi import FastAPI, Request
    from starlette.responses import JSONResponse

from ..errors import (
    BodyTooLarge,
    ForbiddenOperation,
    InputError,
    LimitExceeded,
    NotAcceptable,
    NotFound,
    PatrolkgError,
    QueryTimeout,
    ServiceFailed,
    StoreError,
    StoreUnavailable,
    UnsupportedFormat,
    ValidationFailed,
    WriteConflict,
)

__all__ = ["ClientLeft", "HttpError", "RETRY_AFTER_SECONDS", "error_response", "library_error", "unexpected_error", "status_for", "install_error_handlers"]

log = logging.getLogger("patrolkg.web")


class HttpError(PatrolkgError):
    """An HTTP-level refusal with an explicit status (405, 406, 415, 401, 403...)."""

    def __init__(self, status: int, code: str, message: str, *, hint: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status, self.code, self.headers = status, code, headers or {}


def status_for(error: PatrolkgError) -> int:
    """The HTTP status of a library error."""
    if isinstance(error, HttpError):
        return error.status
    if isinstance(error, BodyTooLarge):
        return 413
    if isinstance(error, QueryTimeout):
        return 503
    if isinstance(error, ValidationFailed):
        return 422
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, NotAcceptable):
        return 406
    if isinstance(error, UnsupportedFormat):
        return 415
    if isinstance(error, ForbiddenOperation):
        return 400
    if isinstance(error, (InputError, LimitExceeded)):
        return 400
    if isinstance(error, ServiceFailed):
        return 502  # the SERVICE endpoint, not patrolkg, failed
    if isinstance(error, (StoreUnavailable, WriteConflict)):
        return 503  # the engine is down, or other servers kept writing: retry later
    if isinstance(error, StoreError):
        return 503
    return 500


#: Seconds a client should wait before retrying after a 503 from the store.
RETRY_AFTER_SECONDS = 5


def error_response(status: int, code: str, message: str, *, hint: str | None = None, headers: dict[str, str] | None = None, **details: object) -> JSONResponse:
    """Build the one error shape."""
    body: dict[str, object] = {"status": status, "code": code, "message": message}
    if hint:
        body["hint"] = hint
    body.update({k: v for k, v in details.items() if v is not None})
    from starlette.responses import JSONResponse

    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _from_library(error: PatrolkgError) -> JSONResponse:
    status = status_for(error)
    details = dict(error.details())
    if isinstance(error, ValidationFailed):
        details["report"] = error.report.as_dict()
    headers = getattr(error, "headers", None)
    if isinstance(error, (StoreUnavailable, WriteConflict)):
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_SECONDS)}
    return error_response(status, error.code, error.message, hint=error.hint, headers=headers, **details)


def library_error(error: PatrolkgError, method: str, path: str) -> JSONResponse:
    """The answer to a library error raised while answering ``method path`` (a 5xx that
    is not the store's or a timeout is logged)."""
    if status_for(error) >= 500 and not isinstance(error, (QueryTimeout, StoreError)):
        log.error("unexpected library error on %s %s: %r", method, path, error)
    return _from_library(error)


def unexpected_error(method: str, path: str) -> JSONResponse:
    """The answer to an unexpected exception, logged with its traceback (call it from
    the ``except`` block)."""
    log.exception("unexpected error on %s %s", method, path)
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


class ClientLeft(Exception):
    """The client closed the connection before its answer was ready: the work for it
    was stopped, and the answer (499, as proxies log it) reaches nobody."""


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the one error shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(ClientLeft)
    async def _client_left(request: Request, error: ClientLeft) -> JSONResponse:
        return error_response(499, "client_closed_request", "the client closed the connection before the answer was ready")

    @app.exception_handler(PatrolkgError)
    async def _library_error(request: Request, error: PatrolkgError) -> JSONResponse:
        return library_error(error, request.method, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail) if error.detail else code.replace("_", " ")
        if error.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        if error.status_code == 405 and message == "Method Not Allowed":
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(error.status_code, code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in error.errors()
        ]
        return error_response(400, "bad_request", "the request's parameters are not valid", problems=problems)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        return unexpected_error(request.method, request.url.path)
