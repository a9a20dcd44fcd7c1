"""Who may write: ``Authorization: Bearer <token>`` against the configured tokens.

With no token configured every write is refused (403), never open; a missing or wrong
token is 401. Tokens are compared in constant time, every configured one each time.
The header is read by ``fastapi.security.HTTPBearer``, so that every route depending
on :func:`writer_name` is described as needing the token (``bearer`` in OpenAPI).
"""

from __future__ import annotations

import hmac

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import HttpError
from .services import Services, services

__all__ = ["writer_name"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="patrolkg"'}
# auto_error=False: the refusals are ours (403 before 401, in the one error shape).
_BEARER = HTTPBearer(scheme_name="bearer", description="A write token of PATROLKG_WRITE_TOKEN.", auto_error=False)


def writer_name(credentials: HTTPAuthorizationCredentials | None = Security(_BEARER), svc: Services = Depends(services)) -> str:
    """FastAPI dependency for write routes: the configured name of the token's holder."""
    tokens = svc.settings.write_token
    if not tokens:
        raise HttpError(403, "writes_disabled", "this server accepts no writes: no write token is configured", hint="start it with PATROLKG_WRITE_TOKEN set")
    if credentials is None:  # no header, another scheme, or no token after "Bearer"
        raise HttpError(401, "unauthorized", "writes need an Authorization: Bearer <token> header", headers=_CHALLENGE)
    presented_bytes = credentials.credentials.encode()
    holder = None
    for name, token in tokens:
        if hmac.compare_digest(presented_bytes, token.encode()) and holder is None:
            holder = name
    if holder is None:
        raise HttpError(401, "unauthorized", "the bearer token is not valid for writes", headers=_CHALLENGE)
    return holder
