"""What every route needs, built once per app and reached through the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from ..execution import Limits, QueryRequest, QueryResponse
from ..settings import Settings
from ..store import Store
from ..submissions import Submissions
from ..writes import Writer

__all__ = ["Executor", "Services", "services"]


class Executor(Protocol):
    async def run(self, request: QueryRequest) -> QueryResponse: ...

    def notify_write(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    store: Store
    executor: Executor
    writer: Writer
    submissions: Submissions

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(timeout=s.query_timeout, max_rows=s.max_rows, service_allowlist=s.service_allowlist)


def services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services`."""
    return request.app.state.services
