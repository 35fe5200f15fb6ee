"""Formula text -> SymPy expression, by a whitelist parser that never evaluates the text.

A student's formula is untrusted: `eval`, `sympify` and `parse_expr` would run arbitrary Python.  Here a small
tokenizer feeds a Pratt parser that knows only numbers, the question's symbols, a few functions and the
arithmetic operators, and builds SymPy objects directly.  Anything else is a `ParseError` whose message names
the offending token, so the student learns what to fix.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import sympy

MAX_LENGTH = 1000  # characters of formula text
MAX_DEPTH = 60  # nested parentheses, unary signs and powers
MAX_EXPONENT = 1000  # |n| of a numeric exponent: x**10**9 would hang SymPy and the evaluator
MAX_DIGITS = 40  # digits of one number literal
MAX_CONSTANT_BITS = 10_000  # size of a constant that SymPy folds at construction (2**1000 is fine)
MAX_NODES = 2000  # SymPy nodes of a parsed formula: what the evaluator walks at every point

__all__ = [
    "FUNCTIONS",
    "ParseError",
    "Token",
    "make_symbols",
    "parse_expression",
    "parse_relation",
    "tokenize",
]


class ParseError(ValueError):
    """The text is not a formula of the whitelisted grammar; the message says what to fix."""


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    pos: int


def _log(*args: sympy.Expr) -> sympy.Expr:
    return sympy.log(args[0]) if len(args) == 1 else sympy.log(args[0], args[1])


# name -> (fewest arguments, most arguments, builder).  Lower-case aliases are what students type.
FUNCTIONS: dict[str, tuple[int, int, Callable[..., sympy.Expr]]] = {
    "floor": (1, 1, sympy.floor),
    "ceiling": (1, 1, sympy.ceiling),
    "ceil": (1, 1, sympy.ceiling),
    "log": (1, 2, _log),
    "ln": (1, 1, sympy.log),
    "exp": (1, 1, sympy.exp),
    "sqrt": (1, 1, sympy.sqrt),
    "Abs": (1, 1, sympy.Abs),
    "abs": (1, 1, sympy.Abs),
    "Max": (1, 32, sympy.Max),
    "max": (1, 32, sympy.Max),
    "Min": (1, 32, sympy.Min),
    "min": (1, 32, sympy.Min),
    "Mod": (2, 2, sympy.Mod),
}

# Names SymPy prints for constants; a question symbol of the same name wins.
_CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}

_UNICODE = str.maketrans({"\u2212": "-", "\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u00f7": "/",
                          "\u2265": ">=", "\u2264": "<="})

_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>\d+(?:\.\d*)?|\.\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|>=|<=|==|!=|[-+*/^()\[\],<>%=])"
)
_RELATIONS: dict[str, Callable[[sympy.Expr, sympy.Expr], sympy.Basic]] = {
    ">=": sympy.Ge, "<=": sympy.Le, ">": sympy.Gt, "<": sympy.Lt, "==": sympy.Eq,
}
_CLOSER = {"(": ")", "[": "]"}
# Binding powers: sums < products (and implicit products) < unary signs < powers.
_SUM, _PRODUCT, _UNARY, _POWER = 10, 20, 30, 40
_INFIX = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT, "%": _PRODUCT,
          "**": _POWER, "^": _POWER}
_MODULES = {"math", "np", "numpy", "sp", "sympy", "torch"}
_BAD_HINTS = {
    ".": "attribute access is not part of a formula",
    "'": "a formula is not a string literal",
    '"': "a formula is not a string literal",
    ":": "write only the expression",
}
# `H_out = ...` or `conv_output_size = ...`: students often restate the left-hand side.
_LHS_RE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=(?!=)")


def make_symbols(
    names: Iterable[str], assumptions: Mapping[str, Mapping[str, bool]] | None = None
) -> dict[str, sympy.Symbol]:
    """Plain SymPy symbols (integer unless the caller says otherwise), in the given order.

    `sympy.Symbol("S")` is a symbol, unlike `sympify("S")` (the singleton registry), so S, E, I, N are safe.
    """
    given = assumptions or {}
    return {name: sympy.Symbol(name, **(given.get(name) or {"integer": True})) for name in names}


def tokenize(text: str) -> list[Token]:
    text = text.translate(_UNICODE)
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            # Reported when the parser reaches it, so `__import__('os')` is rejected for its name first.
            tokens.append(Token("bad", text[pos], pos))
            pos += 1
            continue
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def parse_expression(text: str, symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> sympy.Expr:
    """Parse a formula (no relations); a leading `name =` is dropped."""
    _check_length(text)
    text = _LHS_RE.sub("", text, count=1)
    return _parse(text, _as_symbols(symbols), relation=False)


def parse_relation(text: str, symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> sympy.Basic:
    """Parse a constraint such as `H + 2*P >= D*(K-1) + 1`; SymPy may fold it to `true`/`false`."""
    _check_length(text)
    return _parse(text, _as_symbols(symbols), relation=True)


def _parse(text: str, symbols: Mapping[str, sympy.Symbol], relation: bool) -> sympy.Basic:
    try:
        result = _Parser(tokenize(text), symbols).parse(relation=relation)
    except ParseError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError, sympy.SympifyError) as exc:
        # SymPy folds numbers while it builds (`floor(H + exp(...))` overflowed with OverflowError): whatever
        # it raises on the student's formula is the formula's problem, said as such.
        raise ParseError(f"the formula cannot be built ({type(exc).__name__}: {str(exc)[:100]})") from None
    for nodes, _ in enumerate(sympy.preorder_traversal(result), start=1):
        if nodes > MAX_NODES:
            raise ParseError(f"the formula has more than {MAX_NODES} parts; simplify it")
    return result


def _check_length(text: str) -> None:
    if not isinstance(text, str):
        raise ParseError(f"a formula is text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise ParseError("the formula is empty")


def _as_symbols(symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> Mapping[str, sympy.Symbol]:
    if isinstance(symbols, Mapping):
        return symbols
    return make_symbols(symbols)


class _Parser:
    def __init__(self, tokens: list[Token], symbols: Mapping[str, sympy.Symbol]) -> None:
        self.tokens = tokens
        self.symbols = symbols
        self.i = 0
        self.depth = 0

    # -- token helpers ------------------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.advance()
        if token.text != text or token.kind == "end":
            raise self.unexpected(token, f"expected '{text}'")

    @staticmethod
    def unexpected(token: Token, why: str = "") -> ParseError:
        if token.kind == "bad":
            why = why or _BAD_HINTS.get(token.text, "")
            return ParseError(f"unexpected character {token.text!r} at position {token.pos + 1}"
                              + (f" ({why})" if why else ""))
        if token.kind == "end":
            return ParseError(f"the formula ends too early{'; ' + why if why else ''}")
        suffix = f" ({why})" if why else ""
        return ParseError(f"unexpected '{token.text}' at position {token.pos + 1}{suffix}")

    # -- grammar ------------------------------------------------------------------------------------------
    def parse(self, relation: bool) -> sympy.Basic:
        left = self.expr(0)
        token = self.peek()
        if token.text in _RELATIONS:
            if not relation:
                raise ParseError(f"a relation ('{token.text}') is not a formula; write only the expression")
            self.advance()
            right = self.expr(0)
            if self.peek().text in _RELATIONS:
                raise self.unexpected(self.peek(), "write one relation per constraint")
            result = _RELATIONS[token.text](left, right)
        elif relation:
            raise ParseError("a constraint needs a relation: >=, <=, >, < or ==")
        else:
            result = left
        if self.peek().kind != "end":
            raise self.unexpected(self.peek(), self._hint(self.peek()))
        return result

    @staticmethod
    def _hint(token: Token) -> str:
        if token.text == "=":
            return "write only the right-hand side of the formula"
        return "missing operator?" if token.kind in ("num", "name") else ""

    def expr(self, rbp: int) -> sympy.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"the formula is nested more than {MAX_DEPTH} levels deep")
        left = _bounded_number(self.nud(self.advance()))
        while True:
            token = self.peek()
            lbp = self.lbp(token)
            if lbp <= rbp:
                break
            left = _bounded_number(self.led(token, left))
        self.depth -= 1
        return left

    def lbp(self, token: Token) -> int:
        if token.kind == "op" and token.text in _INFIX:
            return _INFIX[token.text]
        if token.kind in ("num", "name") or token.text in _CLOSER:
            # Implicit product (`2P`, `D(K-1)`, `(a)(b)`), but `2 3` is a typo, not 6.
            if token.kind == "num" and self.tokens[self.i - 1].kind == "num":
                raise self.unexpected(token, "missing operator between two numbers")
            return _PRODUCT
        return 0

    def nud(self, token: Token) -> sympy.Expr:
        if token.kind == "num":
            return _number(token)
        if token.kind == "name":
            return self.name(token)
        if token.text in _CLOSER:
            inner = self.expr(0)
            self.expect(_CLOSER[token.text])
            return inner
        if token.text == "-":
            return -self.expr(_UNARY)
        if token.text == "+":
            return self.expr(_UNARY)
        raise self.unexpected(token)

    def led(self, token: Token, left: sympy.Expr) -> sympy.Expr:
        if token.kind != "op" or token.text not in _INFIX:
            return left * self.expr(_PRODUCT)  # implicit product: the token is not consumed here
        self.advance()
        if token.text in ("**", "^"):
            return _power(left, self.expr(_POWER - 1))  # right-associative
        right = self.expr(_INFIX[token.text])
        if token.text == "+":
            return left + right
        if token.text == "-":
            return left - right
        if token.text == "*":
            return left * right
        if token.text == "/":
            return left / right
        if token.text == "//":
            return sympy.floor(left / right)
        return sympy.Mod(left, right)

    def name(self, token: Token) -> sympy.Expr:
        if token.text in self.symbols:
            return self.symbols[token.text]
        if token.text in FUNCTIONS:
            return self.call(token)
        if token.text in _CONSTANTS:
            return _CONSTANTS[token.text]
        known = ", ".join(self.symbols) or "none"
        hint = " (write floor(...), log(...) without a module prefix)" if token.text in _MODULES else ""
        raise ParseError(f"unknown name '{token.text}'; the symbols are {known}{hint}")

    def call(self, token: Token) -> sympy.Expr:
        low, high, build = FUNCTIONS[token.text]
        opener = self.advance()
        if opener.text not in _CLOSER:
            raise self.unexpected(opener, f"'{token.text}' needs its argument in parentheses")
        args = [self.expr(0)]
        while self.peek().text == ",":
            self.advance()
            args.append(self.expr(0))
        self.expect(_CLOSER[opener.text])
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise ParseError(f"'{token.text}' takes {want} argument(s), not {len(args)}")
        return build(*args)


def _number(token: Token) -> sympy.Expr:
    if len(token.text) > MAX_DIGITS:
        raise ParseError(f"the number at position {token.pos + 1} has more than {MAX_DIGITS} digits")
    text = token.text + "0" if token.text.endswith(".") else token.text
    return sympy.Rational(text)  # exact: 0.5 is 1/2, so equal formulas stay exactly equal


def _bounded_number(value: sympy.Expr) -> sympy.Expr:
    """Refuse a constant part of the formula that is huge, or nonzero but astronomically small.

    SymPy evaluates constants while it builds on them (`floor(exp(exp(exp(5))))` asks for every digit of a
    number with 10**64 digits, and hangs); checking each constant as soon as it is built keeps every later
    step working on numbers of at most MAX_CONSTANT_BITS bits, so that this check itself stays cheap.
    """
    if value.is_Rational:
        if _rational_bits(value) > MAX_CONSTANT_BITS:
            raise ParseError(f"a number in the formula has more than {MAX_CONSTANT_BITS} bits; simplify it")
        return value
    if not value.is_number:
        return value
    approx = value.evalf(15)
    for part in approx.as_real_imag():
        mpf = getattr(part, "_mpf_", None)
        if mpf is None or not mpf[1]:  # not a plain float (zoo, nan), or zero
            continue
        magnitude = mpf[2] + mpf[3]  # log2 |x|, from the exponent and the mantissa's length
        if magnitude > MAX_CONSTANT_BITS:
            raise ParseError(f"the number {_short(value)} in the formula is too large (over 2**{MAX_CONSTANT_BITS})")
        if magnitude < -MAX_CONSTANT_BITS:
            raise ParseError(f"the number {_short(value)} in the formula is too close to zero to evaluate")
    return value


def _rational_bits(value: sympy.Expr) -> int:
    return int(abs(value.p).bit_length() + value.q.bit_length())


def _short(value: sympy.Expr) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """`base ** exponent`, refusing what would make SymPy fold or expand something huge."""
    if exponent.is_Rational:
        if abs(exponent) > MAX_EXPONENT:
            raise ParseError(f"the exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
        if base.is_Rational and not base.is_zero:
            bits = (abs(base.p).bit_length() + base.q.bit_length()) * abs(exponent)
            if bits > MAX_CONSTANT_BITS:
                raise ParseError(f"the number {base}**{exponent} is too large")
    result = sympy.Pow(base, exponent)
    # (x**1000)**1000 folds to x**1000000: check what SymPy built, not only what was written.
    if isinstance(result, sympy.Pow) and result.exp.is_Rational and abs(result.exp) > MAX_EXPONENT:
        raise ParseError(f"the exponent {result.exp} is too large (the limit is {MAX_EXPONENT})")
    return result
