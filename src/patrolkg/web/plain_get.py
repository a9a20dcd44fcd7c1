"""A plain ``GET /sparql?query=...`` read and answered outside the ASGI app, straight on
its connection. The server's connections (:mod:`patrolkg.web.server`) and its readers'
(:mod:`patrolkg.web.readers`) are answered so when the answer can be made at once (a
bounded query, or one known to take 2 ms at most while the server is not busy, or
one known to take a few ms while its connection is the server's only one): what the
app costs a request (uvicorn's request cycle, a task, the ASGI messages, about 0.1 ms)
is about what a lookup costs the engine.

Only a head read whole here is taken: ``GET`` of ``/sparql?...`` in HTTP/1.1, with a
``Host``, no body, no ``Origin`` (CORS is the app's), no ``Expect`` or ``Upgrade``, no
header folded or oddly named. Anything else is the app's, which answers it, errors
included.

>>> read_head(b"GET /sparql?query=ASK%7B%7D HTTP/1.1\\r\\nHost: x\\r\\nAccept: text/csv\\r\\n\\r\\n")
Head(target=b'/sparql?query=ASK%7B%7D', accept='text/csv', close=False)
>>> read_head(b"GET /sparql?query=ASK%7B%7D HTTP/1.1\\r\\nHost: x\\r\\nOrigin: https://e\\r\\n\\r\\n") is None
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..execution import QueryResponse
from .query_request import answer_headers

__all__ = ["HEAD_BYTES", "SPARQL_TARGET", "Head", "read_head", "response"]

#: A request head longer than this is not read here.
HEAD_BYTES = 64 * 1024
#: What the target of a plain GET of a query starts with.
SPARQL_TARGET = b"/sparql?"

_STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
_NOT_OURS = frozenset({b"origin", b"content-length", b"transfer-encoding", b"expect", b"upgrade"})
#: A header name as RFC 9110 allows it (a token).
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Head:
    """What a plain GET asks: its target, its Accept header, whether it closes."""

    target: bytes
    accept: str | None
    close: bool


def read_head(head: bytes) -> Head | None:
    """The request ``head`` (up to and with its blank line) if it is a plain GET of a
    query; None for any other."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1" or not parts[1].startswith(SPARQL_TARGET) or b"#" in parts[1]:
        return None
    accept, close, host = None, False, False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name) or b"\0" in value:
            return None  # malformed, or a folded line: the app answers (400)
        name, value = name.lower(), value.strip()
        if name in _NOT_OURS:
            return None
        if name == b"accept" and accept is None:
            accept = value.decode("latin-1")
        elif name == b"connection":
            close = b"close" in value.lower()
        elif name == b"host":
            host = True
    return Head(parts[1], accept, close) if host else None


def response(answer: QueryResponse, head: Head, *, max_rows: int, vary_origin: bool, server_headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The whole HTTP response of ``answer`` (held in memory) to ``head``, with
    ``server_headers`` (Date, Server) first, as uvicorn writes them."""
    lines = [_STATUS_LINE]
    lines += [name + b": " + value + b"\r\n" for name, value in server_headers]
    lines.append(b"content-length: %d\r\n" % len(answer.body))
    lines += [f"{name.lower()}: {value}\r\n".encode("latin-1") for name, value in answer_headers(answer, max_rows=max_rows, vary_origin=vary_origin).items()]
    if head.close:
        lines.append(b"connection: close\r\n")
    lines += [b"\r\n", answer.body]
    return b"".join(lines)
