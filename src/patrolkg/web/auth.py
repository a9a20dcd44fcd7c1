"""Who may write: ``Authorization: Bearer <token>`` against the configured tokens.

With no token configured every write is refused (403), never open; a missing, wrong or
expired token is 401 with a challenge (RFC 6750). Tokens are compared in constant time,
every configured one each time (see :mod:`patrolkg.tokens`).
"""

from __future__ import annotations

from fastapi import Depends, Request

from ..errors import ConfigError
from .errors import HttpError
from .services import Services, services

__all__ = ["writer_name"]

_REALM = 'Bearer realm="patrolkg"'


def _challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    value = _REALM if error is None else f'{_REALM}, error="{error}", error_description="{description}"'
    return {"WWW-Authenticate": value}


def writer_name(request: Request, svc: Services = Depends(services)) -> str:
    """FastAPI dependency for write routes: the configured name of the token's holder."""
    tokens = svc.tokens
    if not tokens.configured:
        raise HttpError(403, "writes_disabled", "this server accepts no writes: no write token is configured", hint="start it with PATROLKG_WRITE_TOKENS_FILE or PATROLKG_WRITE_TOKEN set")
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise HttpError(401, "unauthorized", "writes need an Authorization: Bearer <token> header", headers=_challenge())
    try:
        verdict = tokens.check(presented.strip())
    except ConfigError as error:
        raise HttpError(503, "tokens_unavailable", "the server cannot read its write tokens; nothing was written", hint="the operator must fix PATROLKG_WRITE_TOKENS_FILE") from error
    if verdict.expired:
        raise HttpError(401, "token_expired", "the bearer token has expired", hint="ask for a new token", headers=_challenge("invalid_token", "the token expired"))
    if verdict.holder is None:
        raise HttpError(401, "unauthorized", "the bearer token is not valid for writes", headers=_challenge("invalid_token", "the token is not valid"))
    return verdict.holder
