"""What a SPARQL text must not do before the engine sees it, read from its tokens
(:mod:`patrolkg.sparql_lexer`): call a SERVICE endpoint off the allow-list, LOAD
anything, or be so deep or so long that the engine's parser overflows its stack.

>>> scan = scan_sparql("PREFIX w: <https://query.wikidata.org/> SELECT * { SERVICE w:sparql { ?s ?p ?o } }")
>>> check_services(scan, ["https://query.wikidata.org/sparql"])
('https://query.wikidata.org/sparql',)

The limits (measured with pyoxigraph 0.5.13 on an 8 MiB thread stack, in a subprocess):

- :data:`MAX_NESTING` brackets (``{ ( [ << {|``). The parser recurses per level: a
  group nested 2500 deep, parentheses 8000 deep, ``!(`` 4000 deep, ``EXISTS`` 1000 deep
  kill the process; nested collections also cost cubic time (128 levels 1.4 s, 256
  levels 14 s), so the bound is 64 (0.2 s).
- :data:`MAX_PATTERN_TOKENS` tokens in patterns and expressions. Long flat chains become
  deep trees the engine walks recursively: 8000 ``1+1+…``, 3000 BINDs, 10000 FILTERs,
  UNIONs or triple patterns in one group each overflow the stack. Data blocks (INSERT
  DATA, DELETE DATA, CONSTRUCT/INSERT/DELETE templates, VALUES) stay flat and do not
  count: 40000 triples in INSERT DATA parse in 0.2 s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import ForbiddenOperation, TooComplex
from .sparql_lexer import IRI, PNAME, STRING, VAR, WORD, Token, name_part, position, tokenize, unescape_iri

__all__ = ["MAX_NESTING", "MAX_PATTERN_TOKENS", "Scan", "scan_sparql", "check_services", "refuse_endpoint", "UPDATE_KEYWORDS"]

#: Deepest bracket nesting accepted in a query or update.
MAX_NESTING = 64
#: Most tokens accepted in the patterns and expressions of a query or update.
MAX_PATTERN_TOKENS = 4000
#: The words an update operation starts with.
UPDATE_KEYWORDS = ("INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH")

# The engine reads keywords without a word boundary, and after ``true``/``false`` with
# none either (``trueSERVICE``): any part of a word or a prefix between dots that
# starts like this can be the SERVICE keyword.
_SERVICE_START = re.compile(r"(?:true|false)*service", re.IGNORECASE)
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_PROLOGUE = frozenset({"BASE", "PREFIX", "VERSION"})


@dataclass
class Scan:
    """What the guards need from one SPARQL text, gathered in one pass over its tokens."""

    text: str
    #: The first word after the prologue, upper case ("" when it is no word).
    first_keyword: str = ""
    #: Each prefix with every IRI it is declared as, anywhere in the text.
    prefixes: dict[str, list[str]] = field(default_factory=dict)
    #: The token after each SERVICE (and SILENT): what the engine would call.
    service_targets: list[Token] = field(default_factory=list)
    #: Words or prefixes the engine could read as SERVICE (or SILENT) run together with more.
    run_together: list[Token] = field(default_factory=list)
    #: Top-level words or prefixes the engine could read as LOAD.
    loads: list[Token] = field(default_factory=list)
    pattern_tokens: int = 0
    #: Every token, in order (for :mod:`patrolkg.bounded`).
    tokens: list[Token] = field(default_factory=list)

    def where(self, token: Token) -> str:
        line, column = position(self.text, token.start)
        return f"line {line}, column {column}"


def scan_sparql(text: str, *, what: str = "query") -> Scan:
    """Tokenize ``text`` and gather what :func:`check_services` and the update checks need.

    >>> scan_sparql("SELECT * WHERE { " + "{" * 70 + "}" * 70 + " }")
    Traceback (most recent call last):
    ...
    patrolkg.errors.TooComplex: line 1, column 81: brackets nest more than 64 deep here (...)

    :raises patrolkg.errors.QuerySyntaxError: for text that cannot be tokenized.
    :raises TooComplex: past :data:`MAX_NESTING` or :data:`MAX_PATTERN_TOKENS`.
    """
    scan = Scan(text)
    prev: Token | None = None
    prev2: Token | None = None
    in_prologue = True
    expecting_target = False
    tokens = scan.tokens
    pattern_tokens = 0
    for token in tokenize(text, max_depth=MAX_NESTING):
        tokens.append(token)
        kind, token_text, _, depth, data = token
        if not data:
            pattern_tokens += 1
        if in_prologue and not _in_prologue(token):
            in_prologue = False
            scan.first_keyword = token_text.upper() if kind == WORD else ""
        if expecting_target:
            if kind == WORD and token_text.upper() == "SILENT":
                pass
            elif kind in (WORD, PNAME) and name_part(token).upper().startswith("SILENT"):
                scan.run_together.append(token)
                expecting_target = False
            else:
                scan.service_targets.append(token)
                expecting_target = False
        elif kind == WORD:
            if token_text.upper() == "SERVICE":
                expecting_target = True
            else:
                _keywords_within(scan, token, token_text, depth)
        elif kind == PNAME:
            declaring = token_text.endswith(":") and prev is not None and prev.text.upper() == "PREFIX"
            if not declaring:
                _keywords_within(scan, token, token_text.partition(":")[0], depth)
        elif kind == IRI and prev is not None:
            _declaration(scan, prev, prev2, token)
        prev2, prev = prev, token
    scan.pattern_tokens = pattern_tokens
    if scan.pattern_tokens > MAX_PATTERN_TOKENS:
        raise TooComplex(
            f"the {what} holds {scan.pattern_tokens} tokens in its patterns and expressions; at most {MAX_PATTERN_TOKENS} are accepted",
            limit=MAX_PATTERN_TOKENS,
            hint="split it into smaller parts (data blocks, such as INSERT DATA and VALUES, do not count)",
        )
    return scan


def _keywords_within(scan: Scan, token: Token, name: str, depth: int) -> None:
    """Record a word or a prefix (``name``) the engine could read as SERVICE run
    together with more, or at the top level as LOAD, in any of its parts between dots."""
    # An ASCII name that holds neither word, whatever the case, holds no such part:
    # most names are let through without a regex.
    if name.isascii():
        lowered = name.lower()
        if "service" not in lowered and (depth != 0 or "load" not in lowered):
            return
    parts = name.split(".")
    if any(_SERVICE_START.match(part) for part in parts):
        scan.run_together.append(token)
    if depth == 0 and any(part.upper().startswith("LOAD") for part in parts):
        scan.loads.append(token)


def _in_prologue(token: Token) -> bool:
    if token.kind == WORD:
        return token.text.upper() in _PROLOGUE
    return token.kind in (IRI, STRING) or (token.kind == PNAME and token.text.endswith(":"))


def _declaration(scan: Scan, prev: Token, prev2: Token | None, iri: Token) -> None:
    """Record ``PREFIX p: <iri>``, and ``PREFIXp: <iri>`` too (the engine reads it as one)."""
    if prev.kind != PNAME or not prev.text.endswith(":"):
        return
    prefix = prev.text[:-1]
    value = unescape_iri(iri.text[1:-1])
    if prev2 is not None and prev2.kind == WORD and prev2.text.upper() == "PREFIX":
        scan.prefixes.setdefault(prefix, []).append(value)
    if prefix.upper().startswith("PREFIX"):
        scan.prefixes.setdefault(prefix[6:], []).append(value)


def check_services(scan: Scan, allowlist: Sequence[str]) -> tuple[str, ...]:
    """The endpoints the text's SERVICE calls name, once each, all on ``allowlist``.

    A prefixed name is expanded with every declaration of its prefix, and each must be
    allowed; a relative IRI is refused (whatever BASE it would resolve against).

    >>> check_services(scan_sparql("SELECT * { SERVICE ?e { ?s ?p ?o } }"), [])
    Traceback (most recent call last):
    ...
    patrolkg.errors.ForbiddenOperation: SERVICE ?e: a SERVICE endpoint given by a variable is refused (name an allow-listed endpoint IRI)

    :raises ForbiddenOperation: for an endpoint off the allow-list, a variable, a
        relative IRI, an undeclared prefix, or SERVICE run together with other words.
    """
    for token in scan.run_together:
        raise ForbiddenOperation(
            f"{scan.where(token)}: {token.text!r} can be read as the keyword SERVICE (or SILENT) run together with more",
            hint="write SERVICE and SILENT as words of their own, and give no prefix a name that starts with 'service'",
        )
    endpoints: list[str] = []
    for target in scan.service_targets:
        if target.kind == VAR:
            raise ForbiddenOperation(f"SERVICE {target.text}: a SERVICE endpoint given by a variable is refused", hint="name an allow-listed endpoint IRI")
        if target.kind == IRI:
            candidates = [unescape_iri(target.text[1:-1])]
        elif target.kind == PNAME:
            prefix, _, local = target.text.partition(":")
            if prefix not in scan.prefixes:
                raise ForbiddenOperation(f"SERVICE {target.text}: the prefix {prefix}: is not declared", hint="declare it with PREFIX, or write the endpoint's full IRI")
            candidates = [base + local.replace("\\", "") for base in scan.prefixes[prefix]]
        else:
            raise ForbiddenOperation(f"{scan.where(target)}: SERVICE must name its endpoint with an IRI", hint="write SERVICE <https://…/sparql> { … }")
        for iri in candidates:
            if not _ABSOLUTE.match(iri):
                raise ForbiddenOperation(f"SERVICE <{iri}>: a relative SERVICE IRI is refused; no connection was made", hint="write the endpoint's full IRI")
            refuse_endpoint(iri, allowlist, what="SERVICE ")
            endpoints.append(iri)
    return tuple(dict.fromkeys(endpoints))


def refuse_endpoint(iri: str, allowlist: Sequence[str], *, what: str = "") -> None:
    """Refuse an endpoint that is not exactly one of ``allowlist``, before any connection.

    :raises ForbiddenOperation: naming the setting that would allow it.
    """
    if iri not in allowlist:
        raise ForbiddenOperation(
            f"{what}<{iri}> is not an allowed endpoint; no connection was made",
            hint="add it to PATROLKG_SERVICE_ALLOWLIST (or --service-allowlist) to allow queries to it",
        )
