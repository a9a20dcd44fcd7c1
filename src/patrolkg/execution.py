"""Executing SPARQL queries as a service does: one query per request, checked before it
runs (no updates, SERVICE only to allow-listed endpoints), cut at the row limit, and
stopped at the timeout without blocking anything else.

:func:`execute` does the work for one query on one store. The executors run it off the
event loop: :class:`ThreadExecutor` in threads (for in-memory stores), and
:class:`patrolkg.workers.ProcessExecutor` in worker processes that are killed when a
query runs past the timeout (for stores on disk).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyoxigraph as ox

from . import query_templates
from .bounded import Entry, bounded_tokens, within
from .errors import ForbiddenOperation, NotAcceptable, QueryTimeout, ServiceFailed, StoreError
from .memo import SHORT_TEXT_CHARS, remembered_when_short
from .namespaces import PREFIXES
from .negotiation import choose
from .query import RESULTS_FORMATS
from .rdfio import RDF_FORMATS, serialize_triples
from .results import NATIVE_MEDIA_TYPES, write_natively, write_solutions
from .sparql_guard import UPDATE_KEYWORDS, check_services, refuse_endpoint, scan_sparql
from .sparql_lexer import NUMBER, WORD
from .store import Store
from .store.base import QueryResult

__all__ = [
    "QueryRequest",
    "QueryResponse",
    "Limits",
    "RESULT_MEDIA_TYPES",
    "GRAPH_MEDIA_TYPES",
    "BOOLEAN_MEDIA_TYPES",
    "check_query",
    "CheckedQuery",
    "inspect_query",
    "check_endpoint",
    "execute",
    "service_errors",
    "service_failed",
    "ThreadExecutor",
]

#: What each kind of result can be written as, the default first.
RESULT_MEDIA_TYPES: tuple[str, ...] = tuple(RESULTS_FORMATS)
BOOLEAN_MEDIA_TYPES: tuple[str, ...] = ("application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/tab-separated-values")
GRAPH_MEDIA_TYPES: tuple[str, ...] = ("text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml")


@dataclass(frozen=True)
class QueryRequest:
    """One query and how its result is wanted.

    ``choose`` picks a media type from the offered ones (the HTTP layer passes its
    content negotiation); it is called once the kind of result is known.
    """

    text: str
    default_graphs: tuple[str, ...] | None = None
    named_graphs: tuple[str, ...] | None = None
    base_iri: str | None = None  # resolves relative IRIs in the query (its BASE wins)
    accept: str | None = None  # an Accept header value
    format: str | None = None  # an explicit media type, overriding ``accept``


@dataclass(frozen=True)
class QueryResponse:
    """A query's answer, written: ``body``, or, for a large result written with a spool
    directory, the file ``body_file`` holding it (which the receiver owns and deletes)."""

    body: bytes
    media_type: str
    kind: str  # "select", "ask" or "graph"
    rows: int
    truncated: bool
    seconds: float = 0.0
    body_file: str | None = None
    #: The engine's writer gave up on this result (too large, or past the row limit)
    #: and it was written again row by row: ask for that at once next time
    #: (``execute(..., row_by_row=True)``).
    row_by_row: bool = False
    #: The engine's writer wrote it (a SELECT result; ASK results always are).
    native: bool = False


@dataclass(frozen=True)
class Limits:
    """The limits a query runs under (from :class:`patrolkg.settings.Settings`)."""

    timeout: float = 10.0
    max_rows: int = 10_000
    service_allowlist: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckedQuery:
    """What :func:`inspect_query` found: the SERVICE endpoints a query calls (all
    allow-listed), whether it is bounded (:mod:`patrolkg.bounded`) provided its
    ``entries`` match few triples in the store (:meth:`bounded_in`), and whether the
    engine computes its whole result before the first row (a top-level ORDER BY or
    GROUP BY) with no LIMIT to bound it (``limit``: the top-level LIMIT, if any)."""

    endpoints: tuple[str, ...]
    bounded: bool
    sorted: bool = False
    limit: int | None = None
    entries: tuple[Entry, ...] = ()

    def bounded_in(self, count: Callable[[Entry, int], int]) -> bool:
        """Whether the query is bounded on the data ``count`` counts in (see
        :func:`patrolkg.bounded.within`)."""
        return self.bounded and (not self.entries or within(self.entries, count))

    def whole_before_first_row(self, max_rows: int) -> bool:
        """Whether a result too large for the engine's writer would only be found out
        once all of it is computed: the query sorts or groups, and no LIMIT keeps its
        result within ``max_rows``."""
        return self.sorted and (self.limit is None or self.limit > max_rows)


#: Queries up to this length are remembered once checked.
CACHED_TEXT_CHARS = SHORT_TEXT_CHARS


def inspect_query(text: str, limits: Limits) -> CheckedQuery:
    """:func:`check_query`, and whether the query is bounded; the outcome for a short
    text is remembered.

    :raises ForbiddenOperation: see :func:`check_query`, as its other errors.
    """
    return _inspect(text, limits.service_allowlist)


@remembered_when_short(maxsize=1024, max_length=CACHED_TEXT_CHARS)
def _inspect(text: str, allowlist: tuple[str, ...]) -> CheckedQuery:
    tokens = query_templates.same_but_iris(text)
    if tokens is not None:  # read before with other IRIs: no SERVICE, no update
        endpoints: tuple[str, ...] = ()
    else:
        scan = scan_sparql(text, what="query")
        if scan.first_keyword.startswith(UPDATE_KEYWORDS):
            raise ForbiddenOperation("SPARQL Update is not accepted by the query service (send updates to /update)")
        endpoints = check_services(scan, allowlist)
        tokens = scan.tokens
        if not (scan.service_targets or scan.run_together or scan.loads):
            query_templates.remember(text, tokens)
    top = [token for token in tokens if token.depth == 0]
    words = [token.text.upper() if token.kind == WORD else "" for token in top]
    limit = None
    for index, word in enumerate(words[:-1]):
        if word == "LIMIT" and top[index + 1].kind == NUMBER and top[index + 1].text.isdigit():
            limit = int(top[index + 1].text)
    entries = None if endpoints else bounded_tokens(tokens)
    return CheckedQuery(endpoints, entries is not None, "ORDER" in words or "GROUP" in words, limit, entries or ())


def check_query(text: str, limits: Limits) -> tuple[str, ...]:
    """Refuse what a read-only query endpoint must not run, before anything runs; the
    SERVICE endpoints the query calls (all allow-listed) are returned.

    The query is read by :mod:`patrolkg.sparql_lexer`, as the engine reads it; text it
    cannot tokenize is refused rather than passed on, since unread text could hide a
    SERVICE.

    >>> check_query("SELECT * WHERE { ?s ?p ?o }", Limits())
    ()
    >>> check_query("INSERT DATA { <http://e/a> <http://e/b> 1 }", Limits())
    Traceback (most recent call last):
    ...
    patrolkg.errors.ForbiddenOperation: SPARQL Update is not accepted by the query service (send updates to /update)

    :raises ForbiddenOperation: for an update, or a SERVICE call to an endpoint that is
        not allow-listed (or named by a variable).
    :raises patrolkg.errors.QuerySyntaxError: for text that is no SPARQL, with line and column.
    :raises patrolkg.errors.TooComplex: for a query nested too deep or too long to parse safely.
    """
    return inspect_query(text, limits).endpoints


def check_endpoint(iri: str, limits: Limits, *, what: str = "") -> None:
    """Refuse a remote SPARQL endpoint that is not on the allow-list, before any connection.

    Federated queries (SERVICE) and link discovery from an endpoint both pass here.
    Endpoints are compared exactly, as listed in ``PATROLKG_SERVICE_ALLOWLIST``.

    >>> check_endpoint("https://query.wikidata.org/sparql", Limits(service_allowlist=("https://query.wikidata.org/sparql",)))
    >>> check_endpoint("http://127.0.0.1:1/sparql", Limits())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    patrolkg.errors.ForbiddenOperation: <http://127.0.0.1:1/sparql> is not an allowed endpoint; no connection was made (...)

    :raises ForbiddenOperation: for an endpoint that is not allow-listed.
    """
    refuse_endpoint(iri, limits.service_allowlist, what=what)


def _pick(request: QueryRequest, offered: Sequence[str]) -> str:
    if request.format:
        wanted = request.format.split(";", 1)[0].strip().lower()
        if wanted in offered:
            return wanted
        raise NotAcceptable(
            f"this result cannot be written as {request.format}",
            hint="choose one of " + ", ".join(offered),
        )
    chosen = choose(request.accept, offered)
    if chosen is None:
        raise NotAcceptable(
            f"none of the accepted types ({request.accept}) can represent this result",
            hint="accept one of " + ", ".join(offered),
        )
    return chosen


def execute(
    store: Store,
    request: QueryRequest,
    limits: Limits,
    *,
    check: Callable[[], None] | None = None,
    spool_dir: str | None = None,
    checked: CheckedQuery | None = None,
    row_by_row: bool | None = None,
) -> QueryResponse:
    """Check, run and serialize one query (with ``spool_dir``, a large SELECT result is
    written to a file there: :attr:`QueryResponse.body_file`). ``checked`` is what
    :func:`inspect_query` said of it, when the caller has asked already. With
    ``row_by_row`` true, a SELECT result is written row by row without asking the
    engine's writer first (see :attr:`QueryResponse.row_by_row`); false, the engine's
    writer is asked first; None (by default), it is asked unless the query sorts or
    groups a result no LIMIT keeps within the row limit (were its writer to give up on
    a large one, the whole query would run twice): pass False for such a query when
    its last answer was small.

    :raises ForbiddenOperation: see :func:`check_query`.
    :raises patrolkg.errors.QuerySyntaxError: with line and column.
    :raises NotAcceptable: when no accepted format suits the result.
    :raises QueryTimeout: when ``check`` says time is up.
    :raises ServiceFailed: when an allow-listed SERVICE endpoint fails or cannot be reached.
    :raises StoreError: when a remote engine breaks its answer off.
    """
    checked = checked or inspect_query(request.text, limits)
    if row_by_row is None:
        row_by_row = checked.whole_before_first_row(limits.max_rows)
    try:
        with service_errors(checked.endpoints):
            return _execute(store, request, limits, check=check, spool_dir=spool_dir, row_by_row=row_by_row)
    except SyntaxError as error:
        # Only a remote engine's answer, parsed as it arrives, can turn malformed while
        # it is read: the engine stopped mid-way (its own timeout, most often).
        raise StoreError(
            f"the SPARQL engine broke its answer off: {error}",
            hint="the engine may have stopped the query at its own timeout; ask for less, or raise that timeout",
        ) from None


def _execute(
    store: Store,
    request: QueryRequest,
    limits: Limits,
    *,
    check: Callable[[], None] | None = None,
    spool_dir: str | None = None,
    row_by_row: bool = False,
) -> QueryResponse:
    started = time.perf_counter()
    check = check or (lambda: None)
    result = _query(store, request)
    if isinstance(result, ox.QueryBoolean):
        media_type = _pick(request, BOOLEAN_MEDIA_TYPES)
        body = result.serialize(format=ox.QueryResultsFormat.from_media_type(media_type))
        return QueryResponse(body, media_type, "ask", 1, False, time.perf_counter() - started)
    if isinstance(result, ox.QuerySolutions):
        media_type = _pick(request, RESULT_MEDIA_TYPES)
        written, gave_up = None, False
        if not row_by_row and media_type in NATIVE_MEDIA_TYPES:
            written = write_natively(result, media_type, limit=limits.max_rows, check=check)
            if written is None:  # too large or too long for the engine's writer: run it again
                result, gave_up = _query(store, request), True
                assert isinstance(result, ox.QuerySolutions)
        native = written is not None
        if written is None:
            written = write_solutions(result, media_type, limit=limits.max_rows, check=check, spool_dir=spool_dir)
        return QueryResponse(written.body, media_type, "select", written.rows, written.truncated, time.perf_counter() - started, written.file, gave_up, native)
    media_type = _pick(request, GRAPH_MEDIA_TYPES)
    triples = []
    truncated = False
    for index, triple in enumerate(result):
        if index >= limits.max_rows:
            truncated = True
            break
        if index % 256 == 0:
            check()
        triples.append(triple)
    body = serialize_triples(triples, RDF_FORMATS[media_type], PREFIXES)
    return QueryResponse(body, media_type, "graph", len(triples), truncated, time.perf_counter() - started)


def _query(store: Store, request: QueryRequest) -> QueryResult:
    return store.query(
        request.text,
        default_graphs=request.default_graphs,
        named_graphs=request.named_graphs,
        base_iri=request.base_iri,
    )


@contextmanager
def service_errors(endpoints: Sequence[str]) -> Iterator[None]:
    """Report what fails while a query runs as :class:`ServiceFailed` when the query
    calls ``endpoints``: pyoxigraph calls them lazily, as the rows are read (an
    ``OSError``), or for an ASK inside the store's ``query`` (a plain ``StoreError``).

    :raises ServiceFailed: for those, when ``endpoints`` is not empty.
    :raises StoreError: for an ``OSError`` of a query without SERVICE.
    """
    try:
        yield
    except OSError as error:
        raise (service_failed(endpoints, error) if endpoints else StoreError(f"cannot read the store: {error}")) from None
    except StoreError as error:
        if endpoints and type(error) is StoreError:
            raise service_failed(endpoints, error) from None
        raise


def service_failed(endpoints: Sequence[str], error: Exception) -> ServiceFailed:
    """The error for a query or update whose SERVICE call to ``endpoints`` failed.

    >>> str(service_failed(["http://127.0.0.1:1/sparql"], ConnectionRefusedError("Connection refused")))  # doctest: +ELLIPSIS
    'a SERVICE endpoint failed while the query ran (<http://127.0.0.1:1/sparql>): Connection refused (...)'
    """
    named = ", ".join(f"<{endpoint}>" for endpoint in endpoints)
    return ServiceFailed(
        f"a SERVICE endpoint failed while the query ran ({named}): {error}",
        hint="the endpoint may be down or refusing; retry later, or write SERVICE SILENT to go on without its answers",
    )


def _without_frames(error: BaseException) -> BaseException:
    """``error``, its traceback and those of the errors it was raised from dropped."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return error


@dataclass
class ThreadExecutor:
    """Runs queries in a thread pool so the event loop is never blocked.

    A query past the timeout is answered with :class:`QueryTimeout` at once and told
    to stop at its next row; a single long step inside the engine (a big aggregate)
    cannot be interrupted in a thread, which is why stores on disk use the process
    executor instead.
    """

    store: Store
    limits: Limits
    workers: int = 4
    _pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="patrolkg-query")

    def answer_now(self, request: QueryRequest, *, alone: bool = False) -> QueryResponse | None:
        """Threads answer nothing on the event loop: None (:meth:`run` it)."""
        return None

    async def run(self, request: QueryRequest, checked: CheckedQuery | None = None, *, inline: bool = True) -> QueryResponse:
        """The answer to ``request``, from a thread (``inline`` is the executors'
        common signature: threads have no other way)."""
        stop = threading.Event()
        timeout = self.limits.timeout

        def check() -> None:
            if stop.is_set():
                raise QueryTimeout(f"the query ran longer than {timeout:g}s and was stopped", setting="PATROLKG_QUERY_TIMEOUT", limit=timeout)

        def work() -> QueryResponse:
            try:
                return execute(self.store, request, self.limits, check=check, checked=checked)
            except BaseException as error:
                # The tracebacks' frames, this error's and those it was raised from,
                # hold the engine's result object, which may only be freed on this
                # thread: drop them here.
                raise _without_frames(error)  # noqa: B904

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, work)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            stop.set()
            raise QueryTimeout(
                f"the query ran longer than {timeout:g}s and was stopped",
                setting="PATROLKG_QUERY_TIMEOUT",
                limit=timeout,
            ) from None

    def stage_update(self, update: str, **options: object) -> object:
        """:func:`patrolkg.updates.stage_update` here, in the caller's thread (an
        in-memory or remote store: no worker process to stop at the timeout)."""
        from .updates import stage_update

        return stage_update(self.store, update, **options)  # type: ignore[arg-type]

    def notify_write(self) -> None:
        """Called after every commit; threads share the store and need nothing."""

    def problem(self) -> str | None:
        """Nothing keeps threads from working."""
        return None

    def stats(self) -> dict[str, int]:
        """Nothing to say of threads in ``/health``."""
        return {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
