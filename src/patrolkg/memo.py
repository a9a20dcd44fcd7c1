"""Remembering what a function says of short texts: clients (services, dashboards, the
benchmark) send the same query texts, query strings and Accept headers again and again,
and reading one again costs tens of µs; a long one is read each time, so that what is
kept stays small.

>>> calls = []
>>> @remembered_when_short(maxsize=8, max_length=5)
... def shout(text: str) -> str:
...     calls.append(text)
...     return text.upper()
>>> shout("abc"), shout("abc"), shout("abcdef"), shout("abcdef")
('ABC', 'ABC', 'ABCDEF', 'ABCDEF')
>>> calls
['abc', 'abcdef', 'abcdef']
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["remembered_when_short", "SHORT_TEXT_CHARS"]

#: Query texts up to this length are remembered once read (services and dashboards
#: send the same texts again and again); longer ones are read each time.
SHORT_TEXT_CHARS = 4096

F = TypeVar("F", bound=Callable[..., Any])


def remembered_when_short(*, maxsize: int, max_length: int) -> Callable[[F], F]:
    """Remember the last ``maxsize`` results of a function whose first argument (a text
    or bytes, or None) is at most ``max_length`` long; the other arguments must be
    hashable. What it raises is not remembered. ``cache_clear()`` forgets."""

    def wrap(function: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def call(first: Any, *rest: Any) -> Any:
            if first is None or len(first) <= max_length:
                return cached(first, *rest)
            return function(first, *rest)

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap
