"""Which queries cannot run away: those the server may answer itself, on its event
loop, without the hop to a worker process that can be killed at the timeout.

A query is *bounded* when the engine's work is bounded by the triples of the terms it
names: it starts at a named subject and walks out along named predicates. Each triple
pattern must be one of

- an *anchor*: a named subject (``<s> ?p ?o``, ``<s> pk:about ?e``: the subject's own
  triples);
- a *step*: a named predicate out of a subject the walk has reached (``?e rdfs:label
  ?l`` once ``?e`` is reached: each has few).

- an *entry*, where no anchor or step is left: a walk into a named term along named
  predicates (``?st pk:about <event>``, ``?x a pk:Alliance``). How many subjects it
  reaches depends on the data, so it is bounded only while the store holds at most
  :data:`FEW` triples that match the query's entries together (each as often as the
  query walks it: a UNION of the same walk repeated costs each time): :func:`bounded_by`
  lists the entries a query needs, and whoever runs it counts them in the store first
  (:func:`within`; a count stops past what is left: 60-120 µs at a million triples).

Walking into a reached node (``?x pk:about ?e``: every statement about each event
reached) or along any predicate out of a reached node could cover a large part of the
graph; and the engine may do such work without writing a row (a FILTER, or a step that
matches nothing, can drop every row), so the budget the server gives a query, checked
as its answer is written, would not stop it. Measured at a million triples: a walk
from the 7,020 statements with one stance, four steps each, whose FILTER drops every
row, takes 180 ms; from the 256 statements in one post, 4.9 ms. So none of
these is bounded: entries into terms with more than :data:`FEW` subjects (a class
with many members, a state every statement is made for), a scan of a predicate or a
class, a cartesian product of unrelated parts, paths of any length, aggregates, sorts,
sub-queries, ``VALUES``, ``BIND``, ``MINUS``, ``EXISTS`` and ``SERVICE``. What is left:
entity lookups, DESCRIBE, walks out of named entities, and walks into entities with
few neighbours on the way in.

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
- An entry's predicates and term must be absolute IRIs, or prefixed names the query
  declares, without escapes: a term the reader cannot name for certain makes no entry.

>>> bounded("SELECT ?p ?o WHERE { <https://w3id.org/patrolkg/id/state/japan> ?p ?o }")
True
>>> bounded("SELECT ?s WHERE { ?s ?p ?o }")
False
>>> bounded("SELECT ?s WHERE { ?s a <http://e/C> }")
False
>>> bounded("SELECT ?s WHERE { ?s <http://e/speaker> <http://e/someone> }")
False
>>> bounded_by("SELECT ?s WHERE { ?s <http://e/speaker> <http://e/someone> }")
(Entry(predicates=('http://e/speaker',), term='http://e/someone'),)
>>> bounded("SELECT ?s WHERE { ?s <http://e/speaker> <http://e/someone> }", count=lambda entry, limit: 3)
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .sparql_lexer import BNODE, IRI, LANGTAG, NUMBER, PNAME, PUNCT, STRING, VAR, WORD, Token, tokenize

__all__ = ["FEW", "Entry", "bounded", "bounded_by", "bounded_tokens", "within"]

#: The most triples the entries of one query may match in the store together for it
#: to be bounded.
FEW = 256

_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Entry:
    """A walk into a named term: the subjects of triples with one of ``predicates`` and
    the object ``term`` (IRIs, all)."""

    predicates: tuple[str, ...]
    term: str


def bounded(text: str, count: Callable[[Entry, int], int] | None = None) -> bool:
    """Whether the query ``text`` is bounded (see the module) on the data ``count``
    counts in (see :func:`within`; without it, as for a store not at hand, a query that
    needs an entry is not); False for text that does not tokenize."""
    entries = bounded_by(text)
    return entries is not None and (not entries or (count is not None and within(entries, count)))


def within(entries: Sequence[Entry], count: Callable[[Entry, int], int], budget: int = FEW) -> bool:
    """Whether ``entries`` (each as often as the query walks it) match at most
    ``budget`` triples together. ``count(entry, limit)`` counts an entry's matches in
    the store, and may stop counting past ``limit``."""
    left, counted = budget, {}
    for entry in entries:
        if entry not in counted:
            counted[entry] = count(entry, left)
        left -= counted[entry]
        if left < 0:
            return False
    return True


def bounded_by(text: str) -> tuple[Entry, ...] | None:
    """The entries the query ``text`` is bounded by, once for each time it walks one
    (none, for a walk out of named terms), or None if it is not bounded whatever the
    store holds."""
    try:
        return bounded_tokens(list(tokenize(text)))
    except Exception:  # noqa: BLE001 - not tokenizable: the worker's engine reports it
        return None


def bounded_tokens(tokens: Sequence[Token]) -> tuple[Entry, ...] | None:
    """:func:`bounded_by`, for tokens already read."""
    try:
        group = _Reader(tokens).query()
    except _Unbounded:
        return None
    entries: list[Entry] = []
    if group is None or _anchored(group, frozenset(), entries):
        return tuple(entries)
    return None


#: What the reader sees past the last token.
_END = Token("END", "", -1, 0, False)


class _Unbounded(Exception):
    """Raised as soon as the reader meets what it does not accept."""


class _Pattern:
    """A triple pattern as the walk sees it: its subject, object and predicate (a
    variable's name, or None for a named term), the variables among them, and the walk
    into the named object (``entry``), when the subject is a variable and the
    predicates and the object can be named."""

    __slots__ = ("subject", "object", "named_predicate", "variables", "entry")

    def __init__(self, subject: str | None, object: str | None, predicate_variable: str | None = None, entry: Entry | None = None) -> None:
        self.subject, self.object, self.entry = subject, object, entry
        self.named_predicate = predicate_variable is None
        self.variables = frozenset(v for v in (subject, object, predicate_variable) if v is not None)


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
        # The tokens end with one that no rule takes, so that looking ahead needs no
        # test for the end (it is read as the reader reads what it does not accept).
        self.tokens, self.at = [*tokens, _END], 0
        self.prefixes: dict[str, str] = {}  # "" for one that cannot be named for certain

    # -- tokens ----------------------------------------------------------------------

    def peek(self) -> Token | None:
        token = self.tokens[self.at]
        return None if token is _END else token

    def take(self) -> Token:
        token = self.tokens[self.at]
        if token is _END:
            raise _Unbounded()
        self.at += 1
        return token

    def word(self, *words: str) -> str | None:
        """The next token's keyword if it is one of ``words`` (it is then taken)."""
        token = self.tokens[self.at]
        if token.kind == WORD and (word := token.text.upper()) in words:
            self.at += 1
            return word
        return None

    def punct(self, text: str) -> bool:
        token = self.tokens[self.at]
        if token.text == text and token.kind == PUNCT:
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
            prefix = self.expect(PNAME).text if keyword == "PREFIX" else None
            if prefix is not None and not prefix.endswith(":"):
                raise _Unbounded()
            iri = self.expect(IRI).text[1:-1]
            if prefix is not None:
                # Declared twice, or with an escape: no entry names it (see iri()).
                self.prefixes[prefix] = "" if prefix in self.prefixes or "\\" in iri else iri
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
        return self.tokens[self.at].kind in kinds

    def _next_is_punct(self, text: str) -> bool:
        token = self.tokens[self.at]
        return token.text == text and token.kind == PUNCT

    def group(self) -> _Group:
        if not self.punct("{"):
            raise _Unbounded()
        group = _Group()
        tokens = self.tokens
        while True:
            kind, text = tokens[self.at][:2]  # (read once; the end is no token a rule takes)
            if kind == PUNCT and text in ("}", "."):
                self.at += 1
                if text == "}":
                    return group
                continue
            keyword = text.upper() if kind == WORD else ""
            if keyword == "OPTIONAL":
                self.at += 1
                group.inner.append([self.group()])
            elif keyword == "GRAPH":
                self.at += 1
                self.expect(VAR, IRI, PNAME)
                group.inner.append([self.group()])
            elif keyword == "FILTER":
                self.at += 1
                self.constraint()
            elif kind == PUNCT and text == "{":
                alternatives = [self.group()]
                while self.word("UNION"):
                    alternatives.append(self.group())
                group.inner.append(alternatives)
            else:
                self.triples(group)

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
            predicate_variable, inverse, predicates = None, False, ()
            if self._next_is(VAR):
                predicate_variable = "?" + self.take().text[1:]
            else:
                inverse, predicates = self.path()
            while True:
                obj = self.term()
                start, end = (obj, subject) if inverse else (subject, obj)
                start_variable, end_variable = _variable(start), _variable(end)
                entry = None
                if predicate_variable is None and start_variable is not None and end_variable is None:
                    entry = self.entry(predicates, end)
                group.patterns.append(_Pattern(start_variable, end_variable, predicate_variable, entry))
                if not self.punct(","):
                    break
            if not self.punct(";"):
                return
            while self.punct(";"):
                pass
            if self._next_is_punct(".") or self._next_is_punct("}"):
                return

    def path(self) -> tuple[bool, tuple[Token, ...]]:
        """A named predicate: an IRI, ``a``, or alternatives ``p|q``, all forwards or
        all backwards (``^p``). Whether it walks backwards, and its predicates.
        Sequences, paths of any length, ``?``, ``!`` and brackets are not taken."""
        directions, steps = set(), []
        while True:
            directions.add(self.punct("^"))
            step = self.take()
            if not (step.kind in (IRI, PNAME) or (step.kind == WORD and step.text == "a")):
                raise _Unbounded()
            steps.append(step)
            if not self.punct("|"):
                break
        if len(directions) > 1:
            raise _Unbounded()
        return directions.pop(), tuple(steps)

    def entry(self, predicates: Sequence[Token], term: Token) -> Entry | None:
        """The entry into ``term`` along ``predicates``, or None if one of them cannot
        be named for certain (a literal, a relative IRI, an escape)."""
        iris = tuple(self.iri(token) for token in predicates)
        target = self.iri(term)
        if target is None or None in iris:
            return None
        return Entry(iris, target)  # type: ignore[arg-type]

    def iri(self, token: Token) -> str | None:
        if token.kind == WORD and token.text == "a":
            return _RDF_TYPE
        if "\\" in token.text:
            return None
        if token.kind == IRI:
            iri = token.text[1:-1]
            return iri if _ABSOLUTE.match(iri) else None
        if token.kind == PNAME:
            prefix, _, local = token.text.partition(":")
            namespace = self.prefixes.get(prefix + ":", "")
            return namespace + local if _ABSOLUTE.match(namespace) else None
        return None

    def term(self) -> Token:
        """A subject or object: an IRI, a variable, a blank node label or a literal (the
        literal's whole form is taken; ``true`` and ``false`` are literals)."""
        token = self.take()
        if token.kind not in _SUBJECT_OR_OBJECT and not (token.kind == WORD and token.text.upper() in _BOOLEANS):
            raise _Unbounded()
        if token.kind == STRING:
            if self._next_is(LANGTAG):
                self.take()
            elif self.punct("^^"):
                self.expect(IRI, PNAME)
        return token


def _variable(token: Token) -> str | None:
    """A variable's name (``?x`` for ``$x`` too) or a blank node's label; None for a term."""
    if token.kind == VAR:
        return "?" + token.text[1:]
    return token.text if token.kind == BNODE else None


def _walk(patterns: list[_Pattern], reached: set[str], entries: list[Entry]) -> bool:
    """Whether every pattern is an anchor or a step from what is ``reached`` (which
    grows with the walk), or, where neither is left, an entry (added to ``entries``)."""
    left = list(patterns)
    while left:
        walked = [p for p in left if _anchor(p) or (p.named_predicate and p.subject in reached)]
        if not walked:
            entry = next((p for p in left if p.entry is not None), None)
            if entry is None:
                return False
            entries.append(entry.entry)  # type: ignore[arg-type]
            walked = [entry]
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


def _anchored(group: _Group, around: frozenset[str], entries: list[Entry]) -> bool:
    """Whether ``group`` is bounded, given the variables reached ``around`` it and the
    ``entries`` it adds to."""
    reached = set(around)
    if not _walk(group.patterns, reached, entries):
        return False
    loose = [c for c in _components(group.patterns) if not c & around]
    if len(loose) > (0 if around else 1):
        return False  # unrelated parts: their product
    known = frozenset(reached)
    return all(_anchored(inner, known, entries) for alternatives in group.inner for inner in alternatives)
