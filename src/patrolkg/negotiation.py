"""HTTP content negotiation: Accept headers with q-values and wildcards (RFC 9110 §12.5.1).

>>> choose("text/turtle;q=0.5, application/ld+json", ["text/turtle", "application/ld+json"])
'application/ld+json'
>>> choose("*/*", ["application/sparql-results+json", "text/csv"])
'application/sparql-results+json'
>>> choose("image/png", ["text/turtle"]) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .memo import remembered_when_short

__all__ = ["MediaRange", "parse_accept", "choose"]


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    params: tuple[tuple[str, str], ...] = ()

    def matches(self, media_type: str) -> int:
        """How specifically this range matches ``media_type``: 0 none, 1 */*, 2 type/*, 3 exact."""
        kind, _, sub = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return 1
        if self.type == kind and self.subtype == "*":
            return 2
        if self.type == kind and self.subtype == sub:
            return 3
        return 0


def parse_accept(header: str | None) -> list[MediaRange]:
    """Parse an Accept header; malformed parts are skipped, a missing header is ``*/*``."""
    if not header or not header.strip():
        return [MediaRange("*", "*", 1.0)]
    ranges = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        kind, _, sub = pieces[0].lower().partition("/")
        if not kind or not sub:
            continue
        q, params = 1.0, []
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name = name.strip().lower()
            if name == "q":
                try:
                    q = float(value)
                    q = min(max(q, 0.0), 1.0) if math.isfinite(q) else 0.0
                except ValueError:
                    q = 0.0
            elif name:
                params.append((name, value.strip().strip('"')))
        ranges.append(MediaRange(kind, sub, q, tuple(params)))
    return ranges


def choose(header: str | None, offered: Sequence[str]) -> str | None:
    """The offered media type the client prefers most, or None if it accepts none.

    Ties go to the server's order in ``offered``. A type is excluded by its most
    specific matching range having q=0.
    """
    return _choose(header, tuple(offered))


#: Accept headers up to this length are remembered with their choice (clients send
#: the same few again and again).
_REMEMBERED_HEADER_CHARS = 512


@remembered_when_short(maxsize=256, max_length=_REMEMBERED_HEADER_CHARS)
def _choose(header: str | None, offered: Sequence[str]) -> str | None:
    ranges = parse_accept(header)
    best: tuple[float, int] | None = None
    chosen = None
    for index, media_type in enumerate(offered):
        specificity, q = 0, 0.0
        for media_range in ranges:
            level = media_range.matches(media_type)
            if level > specificity:
                specificity, q = level, media_range.q
            elif level == specificity and level > 0:
                q = max(q, media_range.q)
        if specificity == 0 or q <= 0:
            continue
        key = (q, -index)
        if best is None or key > best:
            best, chosen = key, media_type
    return chosen
