"""How deep a JSON or XML document nests, measured before any parser sees it.

pyoxigraph's JSON-LD parser recurses per nested object (a 20000-deep document kills
the process from its main thread, a few thousand from a thread) and takes quadratic
time on the way (2000 levels: 2.4 s); its RDF/XML parser takes time quadratic in the
element depth (20000 levels: 18 s). Python's ``json`` raises RecursionError at about
1000. A document nested deeper than :data:`MAX_DOCUMENT_DEPTH` is refused instead.

Both scans are one pass of a regular expression that cannot backtrack (a string, a
comment or a tag that never ends runs to the end of the input), so they take time
linear in the size of the input and use no recursion.

>>> json_depth(b'{"a": [1, {"b": "]]]"}]}')
3
>>> xml_depth(b'<a x="<b>"><!-- <c> --><b/><c><![CDATA[<d>]]></c></a>')
2
"""

from __future__ import annotations

import codecs
import re

from .errors import TooComplex

__all__ = ["MAX_DOCUMENT_DEPTH", "json_depth", "xml_depth", "check_json_depth", "check_xml_depth"]

#: Deepest nesting accepted in a JSON (JSON-LD, reconciliation batch) or XML document.
MAX_DOCUMENT_DEPTH = 256

_JSON_BYTES = re.compile(rb'"(?:[^"\\]+|\\.|\\\Z)*(?:"|\Z)|[\[\]{}]', re.DOTALL)
_JSON_TEXT = re.compile(r'"(?:[^"\\]+|\\.|\\\Z)*(?:"|\Z)|[\[\]{}]', re.DOTALL)
_QUOTED = "\"[^\"]*(?:\"|\\Z)|'[^']*(?:'|\\Z)"
_XML_PATTERN = (
    r"(<!--.*?(?:-->|\Z)|<!\[CDATA\[.*?(?:\]\]>|\Z)|<\?.*?(?:\?>|\Z)|<!(?:[^>\"']|" + _QUOTED + r")*(?:>|\Z))"
    r"|(</[^>]*(?:>|\Z))"
    r"|<(?:[^>\"']|" + _QUOTED + r")*(?:>|\Z)"
)
_XML_TEXT = re.compile(_XML_PATTERN, re.DOTALL)
_XML_BYTES = re.compile(_XML_PATTERN.encode(), re.DOTALL)


def json_depth(data: bytes | str, *, stop_after: int | None = None) -> int:
    """The deepest nesting of arrays and objects in ``data`` (strings skipped).

    Malformed JSON gets a number too; the parser reports what is wrong with it.
    Counting stops once the depth passes ``stop_after``.
    """
    pattern = _JSON_BYTES if isinstance(data, bytes) else _JSON_TEXT
    opening = (ord("["), ord("{")) if isinstance(data, bytes) else ("[", "{")
    closing = (ord("]"), ord("}")) if isinstance(data, bytes) else ("]", "}")
    depth = deepest = 0
    for match in pattern.finditer(data):
        first = data[match.start()]
        if first in opening:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    break
        elif first in closing:
            depth = max(depth - 1, 0)
    return deepest


def xml_depth(data: bytes | str, *, stop_after: int | None = None) -> int:
    """The deepest element nesting in ``data``: comments, CDATA sections, processing
    instructions, declarations and quoted attribute values are skipped; a UTF-16
    document (with its byte order mark) is decoded first."""
    if isinstance(data, bytes) and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = data.decode("utf-16", errors="replace")
    pattern = _XML_BYTES if isinstance(data, bytes) else _XML_TEXT
    self_closing = b"/>" if isinstance(data, bytes) else "/>"
    depth = deepest = 0
    for match in pattern.finditer(data):
        if match.group(1) is not None:
            continue
        if match.group(2) is not None:
            depth = max(depth - 1, 0)
        elif data[match.end() - 2 : match.end()] != self_closing:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    break
    return deepest


def check_json_depth(data: bytes | str, *, source: str, limit: int = MAX_DOCUMENT_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit``.

    >>> check_json_depth("[" * 300 + "]" * 300, source="queries")
    Traceback (most recent call last):
    ...
    patrolkg.errors.TooComplex: queries: the JSON nests deeper than 256 levels; at most 256 are accepted (...)

    :raises TooComplex: naming the limit.
    """
    if json_depth(data, stop_after=limit) > limit:
        raise TooComplex(
            f"{source}: the JSON nests deeper than {limit} levels; at most {limit} are accepted",
            limit=limit,
            hint="flatten it (in JSON-LD, write nested nodes as separate nodes referenced by @id)",
        )


def check_xml_depth(data: bytes | str, *, source: str, limit: int = MAX_DOCUMENT_DEPTH) -> None:
    """Refuse XML whose elements nest deeper than ``limit``.

    :raises TooComplex: naming the limit.
    """
    if xml_depth(data, stop_after=limit) > limit:
        raise TooComplex(
            f"{source}: the XML nests elements deeper than {limit} levels; at most {limit} are accepted",
            limit=limit,
            hint="flatten it (in RDF/XML, describe nested resources apart and refer to them with rdf:resource or rdf:nodeID)",
        )
