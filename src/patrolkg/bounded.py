"""Which queries cannot run away: those the server may answer itself, on its event
loop, without the hop to a worker process that can be killed at the timeout.

A query is *bounded* when the engine's work is bounded by the triples of the terms it
names: it starts at a named subject and walks out along named predicates. Each triple
pattern must be one of

- an *anchor*: a named subject (``<s> ?p ?o``, ``<s> pk:about ?e``: the subject's own
  triples);
- a *step*: a named predicate out of a subject the walk has reached (``?e rdfs:label
  ?l`` once ``?e`` is reached: each has few).

Walking into a node (``?x pk:about ?e``: every statement about an event) or along any
predicate out of a reached node could cover a large part of the graph; and the engine
may do such work without writing a row (a FILTER, or a step that matches nothing, can
drop every row), so the budget the server gives a query, checked as its answer is
written, would not stop it. Measured at a million triples: a walk from the 7,020
statements with one stance, four steps each, whose FILTER drops every row, takes
180 ms. So none of these is bounded: starting from a named object, a scan of a
predicate or a class, a cartesian product of unrelated parts, paths of any length,
aggregates, sorts, sub-queries, ``VALUES``, ``BIND``, ``MINUS``, ``EXISTS`` and
``SERVICE``. What is left: entity lookups, DESCRIBE, and walks out of named entities.

It is read from the tokens (:mod:`patrolkg.sparql_lexer`), conservatively: whatever is
not listed here makes a query unbounded, and an unbounded query is simply answered by
a worker.

- Forms: ``SELECT`` (variables or ``*``, ``DISTINCT``, ``REDUCED``), ``ASK``,
  ``DESCRIBE``; ``FROM`` and ``FROM NAMED``; ``LIMIT`` and ``OFFSET``.
- Groups of triple patterns (IRIs, prefixed names, variables, literals, ``a``, ``;``
  and ``,``; a predicate may be alternatives ``p|q``, and ``^p`` walks backwards),
  ``FILTER`` expressions without a group inside, and ``OPTIONAL``, ``UNION`` and
  ``GRAPH`` groups of the same kind, whose anchors and steps may start from what the
  group around them has reached.

>>> bounded("SELECT ?p ?o WHERE { <https://w3id.org/patrolkg/id/state/japan> ?p ?o }")
True
>>> bounded("SELECT ?s WHERE { ?s ?p ?o }")
False
>>> bounded("SELECT ?s WHERE { ?s a <http://e/C> }")
False
>>> bounded("SELECT ?s WHERE { ?s <http://e/speaker> <http://e/someone> }")
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .sparql_lexer import BNODE, IRI, LANGTAG, NUMBER, PNAME, PUNCT, STRING, VAR, WORD, Token, tokenize

__all__ = ["bounded", "bounded_tokens"]


def bounded(text: str) -> bool:
    """Whether the query ``text`` is bounded (see the module); False for text that does
    not tokenize."""
    try:
        return bounded_tokens(list(tokenize(text)))
    except Exception:  # noqa: BLE001 - not tokenizable: the worker's engine reports it
        return False


def bounded_tokens(tokens: Sequence[Token]) -> bool:
    """:func:`bounded`, for tokens already read."""
    try:
        group = _Reader(tokens).query()
    except _Unbounded:
        return False
    return group is None or _anchored(group, frozenset())


class _Unbounded(Exception):
    """Raised as soon as the reader meets what it does not accept."""


@dataclass(frozen=True)
class _Pattern:
    """A triple pattern as the walk sees it: its subject, object and predicate (a
    variable's name, or None for a named term)."""

    subject: str | None
    object: str | None
    predicate_variable: str | None = None

    @property
    def named_predicate(self) -> bool:
        return self.predicate_variable is None

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(v for v in (self.subject, self.object, self.predicate_variable) if v is not None)


@dataclass
class _Group:
    patterns: list[_Pattern] = field(default_factory=list)
    #: Groups inside: each entry holds the alternatives of a UNION, or one group
    #: (OPTIONAL, GRAPH, or a plain nested group).
    inner: list[list[_Group]] = field(default_factory=list)


_SUBJECT_OR_OBJECT = frozenset({IRI, PNAME, VAR, BNODE, STRING, NUMBER})
_BOOLEANS = frozenset({"TRUE", "FALSE"})
_FILTER_OPENERS = frozenset({IRI, PNAME, WORD})


class _Reader:
    """A recursive-descent reader of the bounded subset of SPARQL's grammar."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens, self.at = tokens, 0

    # -- tokens ----------------------------------------------------------------------

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _Unbounded()
        self.at += 1
        return token

    def word(self, *words: str) -> str | None:
        """The next token's keyword if it is one of ``words`` (it is then taken)."""
        token = self.peek()
        if token is not None and token.kind == WORD and token.text.upper() in words:
            self.at += 1
            return token.text.upper()
        return None

    def punct(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == PUNCT and token.text == text:
            self.at += 1
            return True
        return False

    def expect(self, *kinds: str) -> Token:
        token = self.take()
        if token.kind not in kinds:
            raise _Unbounded()
        return token

    # -- the query -------------------------------------------------------------------

    def query(self) -> _Group | None:
        while keyword := self.word("BASE", "PREFIX"):
            if keyword == "PREFIX" and not self.expect(PNAME).text.endswith(":"):
                raise _Unbounded()
            self.expect(IRI)
        form = self.word("SELECT", "ASK", "DESCRIBE")
        if form == "SELECT":
            self.word("DISTINCT", "REDUCED")
            if not self.punct("*"):
                self.expect(VAR)
                while self._next_is(VAR):
                    self.take()
        elif form == "DESCRIBE":
            if not self.punct("*"):
                self.expect(VAR, IRI, PNAME)
                while self._next_is(VAR, IRI, PNAME):
                    self.take()
        elif form is None:
            raise _Unbounded()
        while self.word("FROM"):
            self.word("NAMED")
            self.expect(IRI, PNAME)
        group = None
        if self.word("WHERE") or self._next_is_punct("{"):
            group = self.group()
        elif form != "DESCRIBE":
            raise _Unbounded()
        while self.word("LIMIT", "OFFSET"):
            self.expect(NUMBER)
        if self.peek() is not None:
            raise _Unbounded()
        return group

    def _next_is(self, *kinds: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in kinds

    def _next_is_punct(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == PUNCT and token.text == text

    def group(self) -> _Group:
        if not self.punct("{"):
            raise _Unbounded()
        group = _Group()
        while not self.punct("}"):
            if self.punct("."):
                continue
            if self.word("OPTIONAL"):
                group.inner.append([self.group()])
            elif self.word("GRAPH"):
                self.expect(VAR, IRI, PNAME)
                group.inner.append([self.group()])
            elif self.word("FILTER"):
                self.constraint()
            elif self._next_is_punct("{"):
                alternatives = [self.group()]
                while self.word("UNION"):
                    alternatives.append(self.group())
                group.inner.append(alternatives)
            else:
                self.triples(group)
        return group

    def constraint(self) -> None:
        """Skip a FILTER's expression: a bracketed one or a call; nothing inside may
        open a group (EXISTS, NOT EXISTS)."""
        token = self.take()
        if token.kind in _FILTER_OPENERS and not (token.kind == WORD and token.text.upper() in ("EXISTS", "NOT")):
            token = self.take()
        if token.kind != PUNCT or token.text != "(":
            raise _Unbounded()
        depth = 1
        while depth:
            token = self.take()
            if token.kind == PUNCT:
                if token.text == "(":
                    depth += 1
                elif token.text == ")":
                    depth -= 1
                elif token.text in ("{", "}"):
                    raise _Unbounded()
            elif token.kind == WORD and token.text.upper() in ("EXISTS", "NOT", "SERVICE", "SELECT"):
                raise _Unbounded()

    def triples(self, group: _Group) -> None:
        """A subject and its predicate-object list, as patterns of ``group``."""
        subject = self.term()
        while True:
            predicate_variable, inverse = None, False
            if self._next_is(VAR):
                predicate_variable = "?" + self.take().text[1:]
            else:
                inverse = self.path()
            while True:
                obj = self.term()
                ends = [_variable(subject), _variable(obj)]
                if inverse:
                    ends.reverse()
                group.patterns.append(_Pattern(ends[0], ends[1], predicate_variable))
                if not self.punct(","):
                    break
            if not self.punct(";"):
                return
            while self.punct(";"):
                pass
            if self._next_is_punct(".") or self._next_is_punct("}"):
                return

    def path(self) -> bool:
        """A named predicate: an IRI, ``a``, or alternatives ``p|q``, all forwards or
        all backwards (``^p``). Whether it walks backwards. Sequences, paths of any
        length, ``?``, ``!`` and brackets are not taken."""
        directions = set()
        while True:
            directions.add(self.punct("^"))
            step = self.take()
            if not (step.kind in (IRI, PNAME) or (step.kind == WORD and step.text == "a")):
                raise _Unbounded()
            if not self.punct("|"):
                break
        if len(directions) > 1:
            raise _Unbounded()
        return directions.pop()

    def term(self) -> Token:
        """A subject or object: an IRI, a variable, a blank node label or a literal (a
        variable's token keeps its ``?``/``$``; the literal's whole form is taken)."""
        token = self.take()
        if token.kind == WORD and token.text.upper() in _BOOLEANS:
            return token._replace(kind=NUMBER)
        if token.kind not in _SUBJECT_OR_OBJECT:
            raise _Unbounded()
        if token.kind == VAR:
            return token._replace(text="?" + token.text[1:])
        if token.kind == STRING:
            if self._next_is(LANGTAG):
                self.take()
            elif self.punct("^^"):
                self.expect(IRI, PNAME)
        return token


def _variable(token: Token) -> str | None:
    return token.text if token.kind in (VAR, BNODE) else None


def _walk(patterns: list[_Pattern], reached: set[str]) -> bool:
    """Whether every pattern is an anchor or a step from what is ``reached`` (which
    grows with the walk)."""
    left = list(patterns)
    while left:
        walked = [p for p in left if _anchor(p) or (p.named_predicate and p.subject in reached)]
        if not walked:
            return False
        for pattern in walked:
            reached |= pattern.variables
            left.remove(pattern)
    return True


def _anchor(pattern: _Pattern) -> bool:
    return pattern.subject is None  # a named subject's own triples


def _components(patterns: list[_Pattern]) -> list[frozenset[str]]:
    """The variables of the patterns, joined into components by shared variables."""
    components: list[frozenset[str]] = []
    for pattern in patterns:
        variables = pattern.variables
        if not variables:
            continue  # a fixed triple: a single lookup
        joined = [c for c in components if c & variables]
        components = [c for c in components if not c & variables]
        components.append(variables.union(*joined))
    return components


def _anchored(group: _Group, around: frozenset[str]) -> bool:
    """Whether ``group`` is bounded, given the variables reached ``around`` it."""
    reached = set(around)
    if not _walk(group.patterns, reached):
        return False
    loose = [c for c in _components(group.patterns) if not c & around]
    if len(loose) > (0 if around else 1):
        return False  # unrelated parts: their product
    known = frozenset(reached)
    return all(_anchored(inner, known) for alternatives in group.inner for inner in alternatives)
