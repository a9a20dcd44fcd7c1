"""The HTTP side of the remote store: SPARQL 1.1 Query, Update and the Graph Store
Protocol spoken to one engine with httpx, each failure mapped onto patrolkg's errors.

Nothing here knows patrolkg's graphs (that is :mod:`patrolkg.store.remote`). Results are
parsed as they arrive: a large result is never held whole in memory, and a caller that
stops reading (a result cut at the row limit) closes the connection.

How the engine's failures surface::

    cannot connect, connection lost, 502/503/504 ... StoreUnavailable (503)
    a query past its timeout ....................... QueryTimeout (503)
    400 on a query ................................. QuerySyntaxError with line and column,
                                                     or InputError with the engine's words
    401/403 ........................................ StoreError naming the credential settings
    any other failure .............................. StoreError with the status

Credentials are sent to the engine and never appear in a message, a log or a ``repr``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
import pyoxigraph as ox

from ..errors import InputError, PatrolkgError, QueryTimeout, StoreError, StoreUnavailable
from .base import QueryResult, TripleStream, syntax_error

__all__ = ["Endpoints", "Credentials", "SparqlClient", "shown_url"]

#: What a query asks the engine for, best first: streaming parsers exist for all of them.
_ACCEPT = (
    "application/sparql-results+json, application/sparql-results+xml;q=0.9, "
    "text/tab-separated-values;q=0.8, application/n-triples;q=0.9, text/turtle;q=0.8"
)
_RESULTS = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
_GRAPHS = {
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "text/plain": ox.RdfFormat.N_TRIPLES,
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
}
#: Updates (a whole bundle load) may take much longer than a query.
_UPDATE_TIMEOUT = 600.0
_CONNECT_TIMEOUT = 5.0
_CREDENTIAL_SETTINGS = "PATROLKG_STORE_USER and PATROLKG_STORE_PASSWORD, or PATROLKG_STORE_TOKEN"


def shown_url(url: str) -> str:
    """The URL without any user name or password in it, for messages and logs.

    >>> shown_url("https://alice:secret@db.example.org/ds/query")
    'https://db.example.org/ds/query'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Endpoints:
    """The engine's three URLs. ``gsp`` is optional: without it whole graphs are read
    with SPARQL queries.

    >>> Endpoints.from_urls("http://localhost:7878/query").update
    'http://localhost:7878/update'
    >>> Endpoints.from_urls("http://localhost:3030/ds").update
    'http://localhost:3030/ds'
    """

    query: str
    update: str
    gsp: str | None = None

    @classmethod
    def from_urls(cls, query: str, update: str | None = None, gsp: str | None = None) -> Endpoints:
        """The update URL defaults to the query URL with a final ``/query`` replaced by
        ``/update`` (Oxigraph, Fuseki's ``/ds/query``), else to the query URL itself
        (Fuseki's ``/ds``, QLever, Virtuoso's ``/sparql``)."""
        if update is None:
            update = query[: -len("/query")] + "/update" if query.endswith("/query") else query
        return cls(query, update, gsp)


@dataclass(frozen=True)
class Credentials:
    """HTTP basic (user and password) or bearer (token) authentication to the engine.

    >>> Credentials(user="alice", password="secret")
    Credentials(user='alice', password=***, token=None)
    """

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password={'***' if self.password else None}, token={'***' if self.token else None})"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def auth(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(self.user, self.password or "") if self.user and not self.token else None


class _ResponseReader(io.RawIOBase):
    """A streamed HTTP response as a binary file for pyoxigraph's parsers; it closes
    the response at the end, when dropped, and on a failure, which it raises as
    patrolkg's error so that it reaches whoever iterates the result."""

    def __init__(self, response: httpx.Response, client: SparqlClient, *, is_query: bool) -> None:
        self._response = response
        self._chunks = response.iter_bytes()
        self._pending = b""
        self._client = client
        self._is_query = is_query

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                self._response.close()
                return 0
            except httpx.HTTPError as exc:
                self._response.close()
                raise self._client.failure(exc, is_query=self._is_query) from None
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._response.close()
        super().close()


class SparqlClient:
    """One engine's SPARQL endpoints over a pool of HTTP connections (thread-safe).

    :param timeout: seconds a query may wait for the engine between two chunks of its
        answer (patrolkg's query timeout); updates wait longer.
    :param transport: an httpx transport, for tests that need one.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.timeout = timeout
        credentials = credentials or Credentials()
        self._http = httpx.Client(
            auth=credentials.auth(),
            headers={"User-Agent": "patrolkg", **credentials.headers()},
            timeout=httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT)),
            # A refused connection is retried once: nothing was sent, so it is safe.
            transport=transport or httpx.HTTPTransport(retries=1),
        )

    def __repr__(self) -> str:
        return f"SparqlClient({shown_url(self.endpoints.query)!r})"

    # -- queries ---------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base_iri: str | None = None,
    ) -> QueryResult:
        """Send one query (POST, form-encoded, so that long datasets fit); the result
        streams as it is iterated.

        :raises QuerySyntaxError: with the position, for a query the engine refuses as malformed.
        :raises StoreUnavailable, QueryTimeout, StoreError: see the module docstring.
        """
        text = f"BASE <{base_iri}>\n{sparql}" if base_iri else sparql
        form: dict[str, str | list[str]] = {"query": text}
        if default_graphs:
            form["default-graph-uri"] = list(default_graphs)
        if named_graphs:
            form["named-graph-uri"] = list(named_graphs)
        request = self._http.build_request("POST", self.endpoints.query, data=form, headers={"Accept": _ACCEPT})
        response = self._send(request, is_query=True, refused=lambda message: _refused_query(sparql, base_iri, message))
        media_type = _media_type(response)
        reader = io.BufferedReader(_ResponseReader(response, self, is_query=True))
        if media_type in _RESULTS:
            try:
                return ox.parse_query_results(reader, _RESULTS[media_type])
            except SyntaxError as exc:
                reader.close()
                raise StoreError(f"the SPARQL engine sent a malformed result: {exc}") from None
        if media_type in _GRAPHS:
            quads = ox.parse(reader, _GRAPHS[media_type])
            return TripleStream(q.triple for q in quads)
        reader.close()
        raise StoreError(f"the SPARQL engine answered a query with {media_type or 'no Content-Type'}, which patrolkg cannot read")

    def graph(self, graph: str | None) -> Iterator[ox.Triple] | None:
        """The triples of one graph (None: the engine's default graph) through the Graph
        Store Protocol, streamed; None when no Graph Store URL is configured."""
        if self.endpoints.gsp is None:
            return None
        params = {"graph": graph} if graph is not None else {"default": ""}
        request = self._http.build_request("GET", self.endpoints.gsp, params=params, headers={"Accept": "application/n-triples"})
        response = self._send(request, is_query=True, missing_ok=True)
        if response.status_code == 404:
            response.close()
            return iter(())
        media_type = _media_type(response)
        reader = io.BufferedReader(_ResponseReader(response, self, is_query=True))
        return (q.triple for q in ox.parse(reader, _GRAPHS.get(media_type, ox.RdfFormat.N_TRIPLES)))

    # -- updates ---------------------------------------------------------------------

    def update(self, parts: Iterable[str]) -> None:
        """Send one update request, its text streamed from ``parts``; one request is
        one transaction on the engine.

        :raises StoreUnavailable: when the engine cannot be reached or the connection
            is lost (then the update may or may not have been applied).
        :raises StoreError: when the engine refuses it.
        """
        body = _chunked(parts)
        request = self._http.build_request(
            "POST",
            self.endpoints.update,
            content=body,
            headers={"Content-Type": "application/sparql-update; charset=utf-8"},
            timeout=httpx.Timeout(_UPDATE_TIMEOUT, connect=_CONNECT_TIMEOUT),
        )
        self._send(request, is_query=False).close()

    # -- failures --------------------------------------------------------------------

    def _send(
        self,
        request: httpx.Request,
        *,
        is_query: bool,
        missing_ok: bool = False,
        refused: Callable[[str], PatrolkgError] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.failure(exc, is_query=is_query) from None
        if response.is_success or (missing_ok and response.status_code == 404):
            return response
        try:
            message = _first_line(response.read().decode("utf-8", "replace"))
        except httpx.HTTPError:
            message = ""
        finally:
            response.close()
        status = response.status_code
        where = shown_url(str(request.url.copy_with(query=None)))
        if status == 400 and refused is not None:
            raise refused(message)
        if status in (401, 403):
            raise StoreError(
                f"the SPARQL engine at {where} refused patrolkg's credentials ({status})",
                hint=f"check {_CREDENTIAL_SETTINGS}, and that this account may {'query' if is_query else 'update'}",
            )
        if is_query and status >= 500 and re.search(r"time ?out|timed out", message, re.IGNORECASE):
            raise _timeout(self.timeout)  # the engine's own timeout
        if status in (502, 503, 504):
            raise StoreUnavailable(
                f"the SPARQL engine at {where} is not available ({status} {message})".rstrip(),
                hint="retry in a moment; patrolkg reconnects by itself",
            )
        raise StoreError(
            f"the SPARQL engine at {where} answered {status}" + (f": {message}" if message else ""),
            hint="check PATROLKG_STORE_URL, PATROLKG_STORE_UPDATE_URL and PATROLKG_STORE_GSP_URL" if status in (404, 405) else None,
        )

    def failure(self, exc: httpx.HTTPError, *, is_query: bool) -> StoreError | QueryTimeout:
        """The patrolkg error for an HTTP failure (no credentials in its message)."""
        if is_query and isinstance(exc, httpx.TimeoutException) and not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return _timeout(self.timeout)
        where = shown_url(self.endpoints.query if is_query else self.endpoints.update)
        reason = type(exc).__name__
        if isinstance(exc, (httpx.TransportError, httpx.StreamError)):
            hint = "retry in a moment; patrolkg reconnects by itself" + ("" if is_query else "; the last write may or may not have been applied")
            return StoreUnavailable(f"the SPARQL engine at {where} cannot be reached ({reason})", hint=hint)
        return StoreError(f"the request to the SPARQL engine at {where} failed ({reason})")

    def close(self) -> None:
        self._http.close()


def _chunked(parts: Iterable[str], size: int = 256 * 1024) -> Iterator[bytes]:
    """Small text parts gathered into chunks of about ``size`` bytes: one line per
    chunk would cost one write to the socket each.

    >>> [len(c) for c in _chunked(["ab"] * 5, size=4)]
    [4, 4, 2]
    """
    pending: list[bytes] = []
    length = 0
    for part in parts:
        data = part.encode()
        pending.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(pending)
            pending, length = [], 0
    if pending:
        yield b"".join(pending)


def _timeout(seconds: float) -> QueryTimeout:
    return QueryTimeout(f"the query ran longer than {seconds:g}s and was stopped", setting="PATROLKG_QUERY_TIMEOUT", limit=seconds)


def _refused_query(sparql: str, base_iri: str | None, message: str) -> InputError:
    """A 400 from the engine: a syntax error with its position when the query is
    malformed, else the engine's own reason (a feature it lacks)."""
    try:
        ox.Store().query(sparql, base_iri=base_iri)  # parses; nothing to evaluate in an empty store
    except SyntaxError as exc:
        return syntax_error(exc)
    except OSError:
        pass
    return InputError(f"the SPARQL engine refused the query: {message or 'no reason given'}", hint="the query is valid SPARQL 1.1; the engine may not support a feature it uses")


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = re.sub(r"<[^>]*>", "", line).strip()  # an HTML error page's tags
    return line[:297] + "…" if len(line) > 300 else line
