"""Reading a query text that differs from one read before only in its IRIs.

Clients send the same query again and again with another entity in it (a lookup, the
statements of one speaker...). Reading a text, as :mod:`patrolkg.sparql_guard` does
before anything runs, costs about 2.5 µs a token; a text that is the same as one read
before but for some IRIs has the same tokens but for those IRIs, which this module
gives at the cost of one pass of a regex.

Why that holds: the lexer reads left to right, and what it decides at a character
depends only on the text before it, plus a look at the next character or two, which
at an IRI is its ``<``. An IRI ends at its ``>`` whatever follows. So two texts equal
but for the bodies of IRIs read as IRIs are read alike, except where the lexer looks
into an IRI it has read: whether a ``<`` opens an IRI or compares, where that cannot
be told, depends on whether the IRI holds one of ``#'()[]``, and whether a ``(``
after an IRI opens an expression depends on whether the IRI holds ``FILTER``. An IRI
that would change either answer is not taken (the text is read whole).

Only texts whose reading found no SERVICE, no word that could be read as SERVICE or
LOAD, and no update are remembered as templates: what the guards find in the rest
does not depend on IRIs. What does (whether a query is bounded, on which entries) is
worked out again from the tokens given.

>>> from patrolkg.sparql_lexer import tokenize
>>> text = "SELECT * { <http://e/a> ?p ?o }"
>>> remember(text, list(tokenize(text)))
>>> [t.text for t in same_but_iris("SELECT * { <http://e/bb> ?p ?o }")]
['SELECT', '*', '{', '<http://e/bb>', '?p', '?o', '}']
>>> same_but_iris("SELECT * { <http://e/a> ?p ?x }") is None  # not an IRI apart
True
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .memo import SHORT_TEXT_CHARS
from .sparql_lexer import IRI, IRIREF, Token

__all__ = ["remember", "same_but_iris", "forget", "MAX_TEMPLATES", "MAX_TEXT_CHARS"]

#: Templates kept (the oldest is forgotten first).
MAX_TEMPLATES = 256
#: Longer texts are not made templates of (nor looked up).
MAX_TEXT_CHARS = SHORT_TEXT_CHARS

_TELLS_COMPARISON = re.compile(r"[#'()\[\]]")
_new_token = tuple.__new__


@dataclass(frozen=True)
class _Template:
    tokens: tuple[Token, ...]
    #: For each IRI-like span of the text (``<...>``), in order: the index of the IRI
    #: token it is, or -1 where it is something else (inside a string or a comment, a
    #: comparison...), which another text must then hold the same.
    roles: tuple[int, ...]
    spans: tuple[str, ...]


_templates: dict[str, _Template] = {}
_lock = threading.Lock()
_Split = tuple[str, list[re.Match[str]]]
#: The text split last, and its split: a text that is no template's is split to be
#: looked up, then again to be remembered once read.
_last_split: tuple[str | None, _Split | None] = (None, None)


def _split(text: str) -> _Split | None:
    """The text with each IRI-like span replaced by a NUL (the key of its template),
    and the spans; None for a text that holds a NUL (the key would be ambiguous)."""
    global _last_split
    last, split = _last_split  # (one read: another thread may replace it meanwhile)
    if last is text:
        return split
    if "\0" in text:
        return None
    spans = list(IRIREF.finditer(text))
    pieces, end = [], 0
    for span in spans:
        pieces.append(text[end : span.start()])
        end = span.end()
    pieces.append(text[end:])
    split = "\0".join(pieces), spans
    _last_split = (text, split)
    return split


def remember(text: str, tokens: Sequence[Token]) -> None:
    """Keep ``text``, read as ``tokens``, as a template for texts that differ from it in
    their IRIs alone. The caller vouches that the guards found nothing in it that
    depends on an IRI (see the module)."""
    if len(text) > MAX_TEXT_CHARS:
        return
    split = _split(text)
    if split is None:
        return
    key, spans = split
    at = {token.start: index for index, token in enumerate(tokens) if token.kind == IRI}
    roles = []
    for span in spans:
        index = at.get(span.start(), -1)
        roles.append(index if index >= 0 and tokens[index].text == span.group(0) else -1)
    template = _Template(tuple(tokens), tuple(roles), tuple(span.group(0) for span in spans))
    with _lock:
        if key not in _templates and len(_templates) >= MAX_TEMPLATES:
            _templates.pop(next(iter(_templates)))
        _templates[key] = template


def same_but_iris(text: str) -> list[Token] | None:
    """The tokens of ``text`` if it differs from a remembered template only in IRIs
    that are read alike (see the module), else None."""
    if len(text) > MAX_TEXT_CHARS:
        return None
    split = _split(text)
    if split is None:
        return None
    key, spans = split
    template = _templates.get(key)
    if template is None or len(spans) != len(template.roles):
        return None
    replaced: dict[int, str] = {}
    for span, role, before in zip(spans, template.roles, template.spans):
        now = span.group(0)
        if now == before:
            continue
        if role < 0 or not _read_alike(before, now):
            return None
        replaced[role] = now
    tokens = template.tokens
    if not replaced:
        return list(tokens)
    out: list[Token] = []
    shift = 0
    for index, token in enumerate(tokens):
        now = replaced.get(index)
        if now is not None:
            out.append(_new_token(Token, (IRI, now, token.start + shift, token.depth, token.data)))
            shift += len(now) - len(token.text)
        elif shift:
            out.append(_new_token(Token, (token.kind, token.text, token.start + shift, token.depth, token.data)))
        else:
            out.append(token)
    return out


def _read_alike(before: str, now: str) -> bool:
    """Whether IRI ``now``, where ``before`` was read as an IRI, is read as one too and
    leaves the lexer as ``before`` did (see the module)."""
    if _TELLS_COMPARISON.search(now) and not _TELLS_COMPARISON.search(before):
        return False  # read as an IRI only where a "<" is known to open one
    return ("FILTER" in now.upper()) == ("FILTER" in before.upper())


def forget() -> None:
    """Forget every template (for tests)."""
    global _last_split
    with _lock:
        _templates.clear()
        _last_split = (None, None)
