"""The whitelist formula parser: what it accepts, what it builds, and what it refuses (with which message)."""
from __future__ import annotations

import pytest
import sympy

from grader.formula.mathparse import ParseError, make_symbols, parse_expression, parse_relation, tokenize

CONV = make_symbols(["H", "K", "P", "S", "D"])
H, K, P, S, D = CONV.values()
CONV_EXPECTED = sympy.floor((H + 2 * P - D * (K - 1) - 1) / S) + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("floor((H + 2*P - D*(K-1) - 1)/S) + 1", CONV_EXPECTED),
        ("(H+2P-D(K-1)-1)//S + 1", CONV_EXPECTED),  # implicit products, `D(` with D a symbol, floor division
        ("[H + 2P - D(K - 1) - 1]//S + 1", CONV_EXPECTED),
        ("conv_output_size = floor((H + 2*P - D*(K-1) - 1)/S) + 1", CONV_EXPECTED),  # a restated left side
        ("ceil(H/S)", sympy.ceiling(H / S)),
        ("ceiling(H/S)", sympy.ceiling(H / S)),
        ("2P", 2 * P),
        ("(H)(K)", H * K),
        ("H K", H * K),
        ("H^2", H**2),
        ("H**2", H**2),
        ("-H**2", -(H**2)),
        ("2**-1", sympy.Rational(1, 2)),
        ("2^3^2", sympy.Integer(512)),  # right-associative
        ("0.5*H", H / 2),  # decimals are exact rationals
        ("log(K)", sympy.log(K)),
        ("ln(K)", sympy.log(K)),
        ("log(K, 2)", sympy.log(K, 2)),
        ("exp(K)", sympy.exp(K)),
        ("E**K", sympy.exp(K)),  # E is Euler's number when it is not a question symbol
        ("sqrt(K)", sympy.sqrt(K)),
        ("abs(H - K)", sympy.Abs(H - K)),
        ("Max(H, K, 1)", sympy.Max(H, K, 1)),
        ("min(H, K)", sympy.Min(H, K)),
        ("Mod(H, S)", sympy.Mod(H, S)),
        ("H % S", sympy.Mod(H, S)),
        ("H \u2212 K \u00b7 S", H - K * S),  # Unicode minus and dot
        ("S + E + D", S + sympy.E + D),
    ],
)
def test_accepts(text: str, expected: sympy.Expr) -> None:
    assert parse_expression(text, CONV) == expected


def test_singleton_names_are_plain_symbols() -> None:
    symbols = make_symbols(["S", "E", "I", "N"])
    expr = parse_expression("S + E + I + N", symbols)
    assert expr.free_symbols == set(symbols.values())
    assert all(s.is_integer for s in symbols.values())


def test_symbol_assumptions_come_from_the_caller() -> None:
    symbols = make_symbols(["K"], {"K": {"integer": True, "positive": True}})
    assert parse_expression("sqrt(K**2)", symbols) == symbols["K"]


def test_names_from_an_iterable() -> None:
    assert str(parse_expression("s*(r-1) + k", ["r", "s", "k"])) == "k + s*(r - 1)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "unknown name '__import__'; the symbols are H, K, P, S, D"),
        ("foo + 1", "unknown name 'foo'; the symbols are H, K, P, S, D"),
        ("lambda: 0", "unknown name 'lambda'"),
        ("math.floor(H/S)", "unknown name 'math'; the symbols are H, K, P, S, D (write floor(...), log(...) without"),
        ("H.real", "unexpected character '.' at position 2 (attribute access is not part of a formula)"),
        ("'H + 1'", "unexpected character \"'\" at position 1 (a formula is not a string literal)"),
        ('"H"', "a formula is not a string literal"),
        ("h + 1", "unknown name 'h'"),
        ("I", "unknown name 'I'"),  # no complex unit
        ("H @ K", "unexpected character '@'"),
        ("2 3", "missing operator between two numbers"),
        ("H >= 1", "a relation ('>=') is not a formula"),
        ("H +", "the formula ends too early"),
        ("(H + 1", "the formula ends too early; expected ')'"),
        ("H + 1)", "unexpected ')'"),
        ("floor H", "'floor' needs its argument in parentheses"),
        ("floor(H, K)", "'floor' takes 1 argument(s), not 2"),
        ("log(H, K, S)", "'log' takes 1 to 2 argument(s), not 3"),
        ("H = K = 1", "unexpected '='"),
        ("", "the formula is empty"),
        ("H" + " + H" * 300, "the limit is 1000"),
        ("(" * 70 + "H" + ")" * 70, "nested more than 60 levels"),
        ("10**10**10", "the exponent 10000000000 is too large"),
        ("(H**1000)**1000", "the exponent 1000000 is too large"),
        ("99999**999", "is too large"),
        ("1" * 50, "more than 40 digits"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expression(text, CONV)
    assert message in str(info.value)


def test_rejects_non_text() -> None:
    with pytest.raises(ParseError, match="a formula is text"):
        parse_expression(3, CONV)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H + 2*P >= D*(K - 1) + 1", sympy.Ge(H + 2 * P, D * (K - 1) + 1)),
        ("H <= 10", sympy.Le(H, 10)),
        ("H > K", sympy.Gt(H, K)),
        ("H < K", sympy.Lt(H, K)),
        ("H == K", sympy.Eq(H, K)),
    ],
)
def test_relations(text: str, expected: sympy.Basic) -> None:
    assert parse_relation(text, CONV) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("H + 1", "a constraint needs a relation"), ("1 <= H <= 5", "write one relation per constraint")],
)
def test_relation_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_relation(text, CONV)


def test_tokenize_marks_bad_characters_without_raising() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("H.x")]
    assert kinds == [("name", "H"), ("bad", "."), ("name", "x"), ("end", "")]
