"""The tokens the lexer reads (patrolkg.sparql_lexer) for the forms its patterns read
in runs between escapes: IRIs with \\u and \\U escapes, strings with escapes in each of
the four quotings, prefixed names with %-escapes and backslash escapes, and words run
together with what follows them."""

from __future__ import annotations

import pytest

from patrolkg.errors import QuerySyntaxError
from patrolkg.sparql_lexer import tokenize


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(token.kind, token.text) for token in tokenize(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<http://e/a\\u0041b\\U0001F600c>", [("IRI", "<http://e/a\\u0041b\\U0001F600c>")]),
        ("<http://e/\\u0041\\u0042>", [("IRI", "<http://e/\\u0041\\u0042>")]),
        ("<>", [("IRI", "<>")]),
        ("""'a\\'b' "c\\"d\\\\" 'e\\\\'""", [("STRING", "'a\\'b'"), ("STRING", '"c\\"d\\\\"'), ("STRING", "'e\\\\'")]),
        ("'''a'b''c\\'''' x", [("STRING", "'''a'b''c\\''''"), ("WORD", "x")]),
        ('"""a\n"b""c""" x', [("STRING", '"""a\n"b""c"""'), ("WORD", "x")]),
        ("p:a%41b\\-c\\.d. ?x", [("PNAME", "p:a%41b\\-c\\.d"), ("PUNCT", "."), ("VAR", "?x")]),
        ("p:a%41\\%.", [("PNAME", "p:a%41\\%"), ("PUNCT", ".")]),
        (":%4A:b", [("PNAME", ":%4A:b")]),
        ("ab.cd.ef", [("WORD", "ab"), ("PUNCT", "."), ("WORD", "cd"), ("PUNCT", "."), ("WORD", "ef")]),
        ("ab.cd:ef", [("PNAME", "ab.cd:ef")]),
        ("ab-cd:ef ab.:x", [("PNAME", "ab-cd:ef"), ("WORD", "ab"), ("PUNCT", "."), ("PNAME", ":x")]),
        ("SERVICEr:x", [("PNAME", "SERVICEr:x")]),
        ("x;y,z*1-2+3/4=5~6", [("WORD", "x"), ("PUNCT", ";"), ("WORD", "y"), ("PUNCT", ","), ("WORD", "z"), ("PUNCT", "*"), ("NUMBER", "1"), ("PUNCT", "-"), ("NUMBER", "2"), ("PUNCT", "+"), ("NUMBER", "3"), ("PUNCT", "/"), ("NUMBER", "4"), ("PUNCT", "="), ("NUMBER", "5"), ("PUNCT", "~"), ("NUMBER", "6")]),
        (". .5 ..5", [("PUNCT", "."), ("NUMBER", ".5"), ("PUNCT", "."), ("NUMBER", ".5")]),
    ],
)
def test_tokens(text: str, expected: list[tuple[str, str]]) -> None:
    assert _tokens(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<http://e/a\\u00>",  # an escape cut short
        "<http://e/a\\x>",  # no such escape
        "'a\nb'",  # a line break in a short string
        "'a\\'",  # the closing quote escaped
        '"""a""',  # never closed
    ],
)
def test_what_is_no_token_is_a_syntax_error(text: str) -> None:
    with pytest.raises(QuerySyntaxError):
        list(tokenize(text))
