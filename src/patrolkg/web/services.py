"""What every route needs, built once per app and reached through the request."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request

from ..compaction import IdleCompactor
from ..execution import Limits, QueryRequest, QueryResponse
from ..settings import Settings
from ..store import Store
from ..store_memo import StoreMemo
from ..submissions import Submissions
from ..tokens import WriteTokens
from ..writes import Writer
from .readers import Readers

__all__ = ["Executor", "Services", "services"]


class Executor(Protocol):
    """Runs queries (and stages updates) off the event loop, under the timeout:
    :class:`patrolkg.execution.ThreadExecutor` or :class:`patrolkg.workers.ProcessExecutor`."""

    def answer_now(self, request: QueryRequest, *, alone: bool = False) -> QueryResponse | None: ...

    async def run(self, request: QueryRequest, *, inline: bool = True) -> QueryResponse: ...

    def stage_update(self, update: str, **options: Any) -> Any: ...

    def notify_write(self) -> None: ...

    def problem(self) -> str | None: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    store: Store
    executor: Executor
    writer: Writer
    submissions: Submissions
    tokens: WriteTokens
    readers: Readers | None = None  # reader processes (patrolkg.web.readers), if any
    compactor: IdleCompactor | None = None  # for a store on disk
    #: The requests the server has begun and not yet answered (uvicorn's tasks, known
    #: from its first connection; None under a test client).
    in_progress: Sized | None = None
    #: What pages compute from the whole store (VoID, the timeline), kept until the
    #: next commit.
    memo: StoreMemo = field(default_factory=StoreMemo)
    #: The reconciliation index used last, kept until the next commit: one only (at a
    #: million triples it holds some 100,000 entities in 400 MiB).
    index_memo: StoreMemo = field(default_factory=lambda: StoreMemo(maxsize=1))

    def alone(self) -> bool:
        """Whether the request being answered is the only one in progress."""
        return self.in_progress is None or len(self.in_progress) <= 1
    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(timeout=s.query_timeout, max_rows=s.max_rows, service_allowlist=s.service_allowlist)


def services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services`."""
    return request.app.state.services
