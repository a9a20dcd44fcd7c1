"""Who may write: ``Authorization: Bearer <token>`` against the configured tokens.

With no token configured every write is refused (403), never open; a missing, wrong or
expired token is 401 with a challenge (RFC 6750). Tokens are compared in constant time,
every configured one each time (see :mod:`patrolkg.tokens`). The header is read by
``fastapi.security.HTTPBearer``, so that every route depending on :func:`writer_name`
is described as needing the token (``bearer`` in OpenAPI).
"""

from __future__ import annotations

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import ConfigError
from .errors import HttpError
from .services import Services, services

__all__ = ["writer_name"]

_REALM = 'Bearer realm="patrolkg"'
# auto_error=False: the refusals are ours (403 before 401, in the one error shape).
_BEARER = HTTPBearer(scheme_name="bearer", description="A write token (PATROLKG_WRITE_TOKENS_FILE or PATROLKG_WRITE_TOKEN).", auto_error=False)


def _challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    value = _REALM if error is None else f'{_REALM}, error="{error}", error_description="{description}"'
    return {"WWW-Authenticate": value}


def writer_name(credentials: HTTPAuthorizationCredentials | None = Security(_BEARER), svc: Services = Depends(services)) -> str:
    """FastAPI dependency for write routes: the configured name of the token's holder."""
    tokens = svc.tokens
    if not tokens.configured:
        raise HttpError(403, "writes_disabled", "this server accepts no writes: no write token is configured", hint="start it with PATROLKG_WRITE_TOKENS_FILE or PATROLKG_WRITE_TOKEN set")
    if credentials is None or not credentials.credentials.strip():  # no header, another scheme, or no token
        raise HttpError(401, "unauthorized", "writes need an Authorization: Bearer <token> header", headers=_challenge())
    try:
        verdict = tokens.check(credentials.credentials.strip())
    except ConfigError as error:
        raise HttpError(503, "tokens_unavailable", "the server cannot read its write tokens; nothing was written", hint="the operator must fix PATROLKG_WRITE_TOKENS_FILE") from error
    if verdict.expired:
        raise HttpError(401, "token_expired", "the bearer token has expired", hint="ask for a new token", headers=_challenge("invalid_token", "the token expired"))
    if verdict.holder is None:
        raise HttpError(401, "unauthorized", "the bearer token is not valid for writes", headers=_challenge("invalid_token", "the token is not valid"))
    return verdict.holder
