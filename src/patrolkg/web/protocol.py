"""Reading SPARQL protocol requests, shared by the query, update and graph store routes:
form bodies decoded strictly as UTF-8, Content-Type headers, graph IRI parameters."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pyoxigraph as ox

from .errors import HttpError

__all__ = ["Pairs", "not_utf8", "form_pairs", "content_type", "require_utf8", "graph_iris"]

Pairs = list[tuple[str, str]]

_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii"})


def not_utf8(where: str, error: UnicodeDecodeError) -> HttpError:
    return HttpError(
        400,
        "not_utf8",
        f"{where} is not valid UTF-8 (byte {error.start})",
        hint="encode the request and its parameters in UTF-8",
    )


def form_pairs(raw: bytes, where: str) -> Pairs:
    """Decode ``name=value&...`` strictly: percent-escapes must spell UTF-8."""
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise not_utf8(where, error) from None


def content_type(header: str | None) -> tuple[str, dict[str, str]]:
    """The media type of a Content-Type header (lower case) and its parameters."""
    if not header:
        return "", {}
    media_type, *rest = header.split(";")
    params = {}
    for piece in rest:
        name, _, value = piece.partition("=")
        params[name.strip().lower()] = value.strip().strip('"').lower()
    return media_type.strip().lower(), params


def require_utf8(media_type: str, params: dict[str, str]) -> None:
    charset = params.get("charset")
    if charset is not None and charset not in _UTF8_NAMES:
        raise HttpError(
            415,
            "unsupported_charset",
            f"{media_type} with charset={charset} is not accepted: requests must be UTF-8",
            hint="send the request in UTF-8 (charset=utf-8, or no charset)",
        )


def graph_iris(pairs: Pairs, name: str) -> tuple[str, ...] | None:
    values = tuple(value for key, value in pairs if key == name)
    for value in values:
        try:
            ox.NamedNode(value)
        except ValueError:
            raise HttpError(400, "bad_graph_uri", f"{name}={value!r} is not an absolute IRI", hint="give each graph as an absolute IRI") from None
    return values or None
