"""A lexer for SPARQL 1.1 Query and Update (the terminals of §19.8), with the SPARQL 1.2
terms pyoxigraph 0.5 reads (``<<( )>>``, ``<< >>``, ``{| |}``, ``~``, ``@en--ltr``), built
to see the tokens the engine sees wherever the engine could accept the text.

>>> [t.text for t in tokenize('SELECT * WHERE { ?s <http://e/p> "a#b" } # SERVICE')]
['SELECT', '*', 'WHERE', '{', '?s', '<http://e/p>', '"a#b"', '}']

pyoxigraph's parser is a PEG with no tokenizer of its own, which a lexer has to follow
in two places:

- Keywords need no word boundary: ``SERVICEr:x`` is SERVICE then ``r:x``, and
  ``trueSERVICE`` is ``true`` then SERVICE. Such runs come out as one ``WORD`` (or a
  ``PNAME`` whose prefix holds the keyword); :mod:`patrolkg.sparql_guard` looks inside.
- Whether ``<`` opens an IRI depends on where it stands. After an operand in an
  expression it is "less than" (``FILTER(?a<?b)``: ``<?b)SERVICE#>`` is then no IRI);
  everywhere else it opens an IRIREF. So the lexer keeps a stack of the open
  brackets, each known to open an expression, a group, a list of terms..., and decides
  by it. Only after run-together keywords can a ``(`` not be told; there, a ``<`` that
  could be read either way is refused if the two readings would tokenize the rest
  differently (an IRI holding ``#``, ``'`` or a bracket).

Whatever cannot be tokenized is a :class:`QuerySyntaxError` with line and column: the
engine could not parse it either, and passing it on unread could hide a SERVICE.
Nesting deeper than ``max_depth`` is a :class:`TooComplex`, raised as soon as it is
reached, so that the stack stays small.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from .errors import QuerySyntaxError, TooComplex

__all__ = ["Token", "tokenize", "position", "name_part", "unescape_iri", "IRIREF"]

#: Token kinds.
IRI, PNAME, BNODE, VAR, STRING, LANGTAG, NUMBER, WORD, PUNCT = "IRI", "PNAME", "BNODE", "VAR", "STRING", "LANGTAG", "NUMBER", "WORD", "PUNCT"

_BASE = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
_U = _BASE + "_"
_CHARS = _U + "\\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"

_SKIP = re.compile(r"(?:[ \t\r\n]+|#[^\r\n]*)+")
# Each of these reads runs of plain characters between escapes (X*(?:EX*)*) rather than
# one alternation per character: the same tokens, up to four times faster.
_IRIREF = re.compile(r'<([^\x00-\x20<>"{}|^`\\]*(?:(?:\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})[^\x00-\x20<>"{}|^`\\]*)*)>')
#: An IRIREF where ``<`` opens one (whether it does is the lexer's to tell).
IRIREF = _IRIREF
_NAME_RUN = re.compile(f"[{_BASE}][{_CHARS}.]*")
_WORD = re.compile(f"[{_BASE}][{_U}0-9]*")
_LOCAL = re.compile(f"(?:[{_U}:0-9]|{_PLX})[{_CHARS}.:]*(?:(?:{_PLX})[{_CHARS}.:]*)*")
_BNODE = re.compile(f"_:[{_U}0-9][{_CHARS}.]*")
_VAR = re.compile(f"[?$][{_U}0-9][{_U}0-9\u00b7\u0300-\u036f\u203f-\u2040]*")
_LANGTAG = re.compile(r"@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*(?:--[a-zA-Z]+)?")
_NUMBER = re.compile(r"[0-9]+\.[0-9]*[eE][+-]?[0-9]+|\.[0-9]+[eE][+-]?[0-9]+|[0-9]+[eE][+-]?[0-9]+|[0-9]*\.[0-9]+|[0-9]+")
_STRING = re.compile(
    r"'''(?:[^'\\]|\\.|'(?!')|''(?!'))*'''"  # alternatives that exclude each other: no backtracking blow-up
    r'|"""(?:[^"\\]|\\.|"(?!")|""(?!"))*"""'
    r"|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'"
    r'|"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*"',
    re.DOTALL,
)
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_DIGITS = frozenset("0123456789")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: What may follow a word's letters and digits within a name run (or make it a prefix).
_NAME_GOES_ON = frozenset("-.:\u00b7\u203f\u2040")
_PUNCT2 = ("||", "&&", "!=", "^^", ">=", "<=")
_PUNCT1 = frozenset("{}()[].,;=!*/+-|^?~><")
#: Punctuation that starts no longer token and opens or closes nothing.
_LONE_PUNCT = frozenset(",;*/+-=~")
_OPERANDS = frozenset({VAR, STRING, LANGTAG, NUMBER, IRI, PNAME, BNODE})
_CLOSERS = frozenset({")", "]", ")>>", ">>"})
_DATA_OPENERS = ("DATA", "INSERT", "DELETE", "CONSTRUCT")
#: Words that open an expression with "(" inside a group (after FILTER, in the engine).
_BUILTINS = frozenset(
    "FILTER BIND STR LANG LANGMATCHES LANGDIR DATATYPE BOUND IRI URI BNODE RAND ABS CEIL FLOOR ROUND CONCAT "
    "STRLEN UCASE LCASE ENCODE_FOR_URI CONTAINS STRSTARTS STRENDS STRBEFORE STRAFTER YEAR MONTH DAY HOURS "
    "MINUTES SECONDS TIMEZONE TZ NOW UUID STRUUID MD5 SHA1 SHA256 SHA384 SHA512 COALESCE IF STRLANG STRDT "
    "STRLANGDIR SAMETERM ISIRI ISURI ISBLANK ISLITERAL ISNUMERIC ISTRIPLE HASLANG HASLANGDIR REGEX SUBSTR "
    "REPLACE TRIPLE SUBJECT PREDICATE OBJECT ADJUST COUNT SUM MIN MAX AVG SAMPLE GROUP_CONCAT".split()
)

# What an open bracket holds: the top level or a sub-SELECT ("query"), a group, a
# blank node's properties, an annotation, a list of terms (collections, paths, triple
# terms), an expression, or one that cannot be told ("unsure").
_TOP, _QUERY, _GROUP, _BNODE_FRAME, _ANNOTATION, _TERMS, _TRIPLE, _REIFIED, _EXPR, _UNSURE = range(10)
_CLOSER_OF = {_GROUP: "}", _QUERY: "}", _BNODE_FRAME: "]", _ANNOTATION: "|}", _TERMS: ")", _EXPR: ")", _UNSURE: ")", _TRIPLE: ")>>", _REIFIED: ">>"}


class Token(NamedTuple):
    """One token: its kind, its text, where it starts (an offset into the text), how
    many brackets enclose it, and whether it is inside a data block (``INSERT DATA``,
    ``DELETE DATA``, a CONSTRUCT/INSERT/DELETE template or a VALUES block)."""

    kind: str
    text: str
    start: int
    depth: int
    data: bool

    @property
    def end(self) -> int:
        return self.start + len(self.text)


_new_token = tuple.__new__  # Token(...) without the call of its __new__


class _Frame:
    __slots__ = ("kind", "start", "data", "after_values", "empty")

    def __init__(self, kind: int, start: int, data: bool, after_values: bool = False) -> None:
        self.kind, self.start, self.data, self.after_values, self.empty = kind, start, data, after_values, True


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset``.

    >>> position("SELECT\\n  x", 9)
    (2, 3)
    """
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def name_part(token: Token) -> str:
    """A word, or the prefix of a prefixed name: where the engine may read keywords.

    >>> name_part(Token(PNAME, "SERVICEr:sparql", 0, 1, False))
    'SERVICEr'
    """
    return token.text.partition(":")[0] if token.kind == PNAME else token.text


def unescape_iri(body: str) -> str:
    r"""An IRIREF's text with its ``\u``/``\U`` escapes resolved, as the engine does.

    >>> unescape_iri(r"http://127.0.0.1\u003a1/")
    'http://127.0.0.1:1/'
    """
    return _UCHAR.sub(_code_point, body)


def _code_point(match: re.Match[str]) -> str:
    code = int(match.group(1) or match.group(2), 16)
    return chr(code) if code <= 0x10FFFF else "\ufffd"  # no such character: the engine refuses the IRI


def _syntax(text: str, offset: int, message: str) -> QuerySyntaxError:
    line, column = position(text, offset)
    return QuerySyntaxError(message, line=line, column=column)


def tokenize(text: str, *, max_depth: int = 64) -> Iterator[Token]:
    """The tokens of ``text``, comments and white space left out, one at a time.

    >>> [t.text for t in tokenize("FILTER(?a<?b)SERVICE#>")]
    ['FILTER', '(', '?a', '<', '?b', ')', 'SERVICE']

    :raises QuerySyntaxError: with line and column, for text that is no SPARQL token,
        an unbalanced bracket, or a ``<`` that could be read two ways.
    :raises TooComplex: for brackets nested more than ``max_depth`` deep.
    """
    return _Lexer(text, max_depth).run()


class _Lexer:
    def __init__(self, text: str, max_depth: int) -> None:
        self.text, self.max_depth = text, max_depth
        self.stack = [_Frame(_TOP, 0, False)]
        self.prev: Token | None = None
        self.prev2: Token | None = None
        self.closed: _Frame | None = None  # the frame the last ")" closed
        self.plain_until = 0  # a name run before this offset is known not to be a PNAME
        self.pos = 0  # where the last token ends

    def run(self) -> Iterator[Token]:
        text, n, skip = self.text, len(self.text), _SKIP.match
        pos = 0
        while True:
            gap = skip(text, pos)
            if gap:
                pos = gap.end()
            if pos >= n:
                break
            yield self._next(pos)
            pos = self.pos
        if len(self.stack) > 1:
            frame = self.stack[-1]
            raise _syntax(text, frame.start, f"this bracket is never closed (expected {_CLOSER_OF[frame.kind]!r})")

    def _emit(self, kind: str, start: int, end: int) -> Token:
        stack = self.stack
        top = stack[-1]
        token = _new_token(Token, (kind, self.text[start:end], start, len(stack) - 1, top.data))
        if top.empty:
            if top.kind == _GROUP and kind == WORD and token.text.upper().startswith("SELECT"):
                top.kind = _QUERY  # a sub-SELECT: its modifiers follow the rules of a query
            top.empty = False
        self.prev2, self.prev = self.prev, token
        self.pos = end
        return token

    def _next(self, pos: int) -> Token:
        text, char = self.text, self.text[pos]
        if char in _ASCII_LETTERS:  # the commonest starts first (the branches exclude each other)
            return self._name(pos)
        if char in _LONE_PUNCT or (char == "." and text[pos + 1 : pos + 2] not in _DIGITS):
            return self._emit(PUNCT, pos, pos + 1)
        if char == "<":
            return self._angle(pos)
        if char in "'\"":
            match = _STRING.match(text, pos)
            if not match:
                raise _syntax(text, pos, "this string is never closed (or holds a line break)")
            return self._emit(STRING, pos, match.end())
        if char in "?$":
            match = _VAR.match(text, pos)
            if match:
                return self._emit(VAR, pos, match.end())
            if char == "?":
                return self._emit(PUNCT, pos, pos + 1)  # a path modifier
        elif char == "_":
            match = _BNODE.match(text, pos)
            if match:
                return self._emit(BNODE, pos, _strip_dots(text, pos, match.end()))
        elif char == "@":
            match = _LANGTAG.match(text, pos)
            if match:
                return self._emit(LANGTAG, pos, match.end())
        elif char in _DIGITS or (char == "." and text[pos + 1 : pos + 2] in _DIGITS):
            match = _NUMBER.match(text, pos)
            if match:
                return self._emit(NUMBER, pos, match.end())
        elif char == ":" or _WORD.match(char):
            return self._name(pos)
        else:
            return self._punct(pos)
        raise _syntax(text, pos, f"unexpected {char!r}")

    def _name(self, pos: int) -> Token:
        text = self.text
        end = pos  # where a prefix ends (at its ':'), if this is a prefixed name
        if text[pos] != ":":
            word_end = _WORD.match(text, pos).end()  # type: ignore[union-attr]
            after = text[word_end : word_end + 1]
            if after == ":" and pos >= self.plain_until:
                end = word_end  # the name run is this word, and ':' follows: a prefix
            elif not after or not (after in _NAME_GOES_ON or "\u0300" <= after <= "\u036f"):
                if pos >= self.plain_until:
                    self.plain_until = word_end  # the name run is this word: no prefix
                return self._emit(WORD, pos, word_end)
            elif pos >= self.plain_until:
                run = _NAME_RUN.match(text, pos)
                assert run is not None
                if text[run.end() - 1] != "." and text.startswith(":", run.end()):
                    end = run.end()  # a prefix
                else:
                    self.plain_until = run.end()
            if end == pos:
                return self._emit(WORD, pos, word_end)
        local = _LOCAL.match(text, end + 1)
        stop = _strip_dots(text, end + 1, local.end()) if local else end + 1
        return self._emit(PNAME, pos, stop)

    def _punct(self, pos: int) -> Token:
        text, top = self.text, self.stack[-1]
        two = text[pos : pos + 2]
        if two == "{|":
            return self._open(_ANNOTATION, pos, 2)
        if two == "|}" and top.kind == _ANNOTATION:
            return self._close(pos, 2)
        if two == ">>" and top.kind == _REIFIED:
            return self._close(pos, 2)
        if two in _PUNCT2:
            return self._emit(PUNCT, pos, pos + 2)
        char = text[pos]
        if char == "{":
            return self._open(_GROUP, pos, 1)
        if char == "[":
            return self._open(_BNODE_FRAME, pos, 1)
        if char == "(":
            return self._open(self._paren_kind(), pos, 1)
        if char in "}])":
            if top.kind == _TRIPLE and text.startswith(")>>", pos):
                return self._close(pos, 3)
            return self._close(pos, 1)
        if char in _PUNCT1:
            return self._emit(PUNCT, pos, pos + 1)
        if char == "\\":
            raise _syntax(text, pos, "a backslash outside a string, an IRI or a prefixed name (\\u escapes are only read inside those)")
        raise _syntax(text, pos, f"unexpected {char!r}")

    def _open(self, kind: int, pos: int, width: int) -> Token:
        top = self.stack[-1]
        data = top.data or (kind == _GROUP and self._opens_data())
        after_values = self.prev is not None and self.prev.kind == WORD and self.prev.text.upper().endswith("VALUES")
        token = self._emit(PUNCT, pos, pos + width)
        if len(self.stack) > self.max_depth:
            line, column = position(self.text, pos)
            raise TooComplex(
                f"line {line}, column {column}: brackets nest more than {self.max_depth} deep here",
                limit=self.max_depth,
                hint="nest groups, expressions and lists less deeply (deeper nesting would overflow the SPARQL parser's stack)",
            )
        self.stack.append(_Frame(kind, pos, data, after_values))
        return token

    def _opens_data(self) -> bool:
        prev, prev2 = self.prev, self.prev2
        if prev is None:
            return False
        if prev.kind == WORD and prev.text.upper().endswith(_DATA_OPENERS):
            return True
        if prev.kind == VAR and prev2 is not None and prev2.kind == WORD and prev2.text.upper().endswith("VALUES"):
            return True
        return prev.text == ")" and self.closed is not None and self.closed.after_values

    def _close(self, pos: int, width: int) -> Token:
        frame = self.stack[-1]
        closer = self.text[pos : pos + width]
        if len(self.stack) == 1 or _CLOSER_OF[frame.kind] != closer:
            raise _syntax(self.text, pos, f"{closer!r} closes no bracket here")
        self.stack.pop()
        self.closed = frame
        return self._emit(PUNCT, pos, pos + width)

    def _paren_kind(self) -> int:
        top = self.stack[-1].kind
        if top in (_EXPR, _UNSURE):
            return top
        if top in (_TOP, _QUERY):
            return _EXPR
        prev, prev2 = self.prev, self.prev2
        if prev is not None and prev.kind == WORD:
            if prev.text.upper() in _BUILTINS:
                return _EXPR
            return _TERMS if prev.text in ("a", "true", "false") else _UNSURE
        if prev is not None and prev.kind in (IRI, PNAME):  # a function call only after FILTER
            before = prev2.text.upper() if prev2 is not None and prev2.kind == WORD else ""
            if before == "FILTER":
                return _EXPR
            if "FILTER" in before or "FILTER" in name_part(prev).upper():
                return _UNSURE
        return _TERMS

    def _after_operand(self) -> bool:
        prev = self.prev
        if prev is None:
            return False
        if prev.kind == WORD:
            return not prev.text.upper().endswith("DISTINCT")
        return prev.kind in _OPERANDS or (prev.kind == PUNCT and prev.text in _CLOSERS)

    def _angle(self, pos: int) -> Token:
        text, kind = self.text, self.stack[-1].kind
        iri = _IRIREF.match(text, pos)
        if kind in (_EXPR, _UNSURE) and self._after_operand():
            if kind == _UNSURE and iri and any(c in iri.group(1) for c in "#'()[]"):
                raise _syntax(text, pos, "cannot tell whether this '<' compares or opens an IRI")
            if kind == _EXPR or not iri:
                return self._emit(PUNCT, pos, pos + (2 if text.startswith("<=", pos) else 1))
        if iri:
            return self._emit(IRI, pos, iri.end())
        if text.startswith("<<(", pos):
            return self._open(_TRIPLE, pos, 3)
        if text.startswith("<<", pos):
            return self._open(_REIFIED, pos, 2)
        return self._emit(PUNCT, pos, pos + (2 if text.startswith("<=", pos) else 1))


def _strip_dots(text: str, start: int, end: int) -> int:
    """A prefixed name's local part or a blank node label cannot end with an unescaped '.'."""
    while end > start and text[end - 1] == "." and text[end - 2] != "\\":
        end -= 1
    return end
