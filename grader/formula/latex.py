"""LaTeX formula answers (a notebook's `Answer qX.Y:` Markdown cell) -> SymPy, through mathparse's grammar.

The LaTeX is rewritten into the plain formula text that `grader.formula.mathparse` accepts (`\\frac{a}{b}` -> `(a)/(b)`,
`\\lfloor x \\rfloor` -> `floor(x)`, `HK` -> `H K` when both are symbols, `C_{in}` -> `C_in`) and parsed there,
so the whitelist and its limits are the same for both kinds of answer and nothing is ever evaluated.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sympy

from grader.formula.mathparse import FUNCTIONS, MAX_DEPTH, ParseError, make_symbols, parse_expression

MAX_LATEX = 2000  # characters of one math span: LaTeX is wordier than the text the parser bounds at 1000

__all__ = ["find_math", "latex_to_text", "parse_answer_cell", "parse_latex"]


@dataclass(frozen=True)
class _Tok:
    kind: str  # "cmd", "ws", "digit", "letter", "char"
    text: str


_TOKEN_RE = re.compile(r"(?P<cmd>\\[A-Za-z]+|\\.)|(?P<ws>\s+)|(?P<digit>\d)|(?P<letter>[A-Za-z])|(?P<char>.)", re.S)
_UNICODE = str.maketrans({"\u2212": "-", "\u00d7": r"\times ", "\u00b7": r"\cdot ", "\u22c5": r"\cdot ",
                          "\u230a": r"\lfloor ", "\u230b": r"\rfloor ", "\u2308": r"\lceil ", "\u2309": r"\rceil "})

# Math delimiters: `$$...$$` and `\\[...\\]` (display), `$...$` and `\\(...\\)` (inline).  They are found by
# a scan rather than by `.+?` patterns, which cost quadratic time on a cell of unclosed `\\[` or `\\(`.
_DISPLAY = (("$$", "$$"), ("\\[", "\\]"))
_INLINE_PAREN = ("\\(", "\\)")

_IGNORED = {  # spacing and style commands that change nothing in the maths
    "\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad", "\\displaystyle", "\\textstyle", "\\limits",
    "\\nolimits", "\\nonumber",
}
_SIZES = {"\\left", "\\right", "\\middle", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\bigl", "\\bigr", "\\Bigl",
          "\\Bigr", "\\biggl", "\\biggr", "\\Biggl", "\\Biggr"}
_OPENING_SIZES = {"\\left", "\\bigl", "\\Bigl", "\\biggl", "\\Biggl"}
_SYNONYMS = {"\\lbrace": "\\{", "\\rbrace": "\\}", "\\lbrack": "[", "\\rbrack": "]", "\\vert": "|",
             "\\lparen": "(", "\\rparen": ")", "\\dfrac": "\\frac", "\\tfrac": "\\frac", "\\cfrac": "\\frac",
             "\\ceil": "\\lceil"}
_BARS = {"|", "\\vert", "\\lvert", "\\rvert"}
_CLOSERS = {")", "]", "}", "\\}", "\\rfloor", "\\rceil", "\\rvert"}
_BRACKETS = {"(": ")", "[": "]", "{": "}", "\\{": "\\}"}
_PRODUCT = {"\\cdot", "\\times", "\\ast"}
_FUNCTION_COMMANDS = {"\\log": "log", "\\ln": "log", "\\exp": "exp", "\\max": "max", "\\min": "min",
                      "\\sqrt": "sqrt"}
_WORD_COMMANDS = {"\\operatorname", "\\mathrm", "\\text", "\\textrm", "\\textit", "\\mbox", "\\rm"}
_REMARK_COMMANDS = {"\\text", "\\textrm", "\\textit", "\\mbox"}  # prose: dropped unless it names something
_STYLE_COMMANDS = {"\\mathbf", "\\mathit", "\\mathsf", "\\boldsymbol", "\\bm", "\\mathnormal"}
_EQUALS = {"=", "\\coloneqq", "\\triangleq", "\\equiv"}


def find_math(cell: str) -> str | None:
    """The math span that holds the answer: display maths first, then inline; the last one with an `=`,
    else the last one (a trailing `$S$ is the stride` remark loses to the formula only through its `=`)."""
    spans = _display_spans(cell) or _inline_spans(cell)
    spans = [s for s in spans if s.strip()]
    if not spans:
        return None
    with_equals = [s for s in spans if any(e in s for e in _EQUALS)]
    return (with_equals or spans)[-1]


def _display_spans(cell: str) -> list[str]:
    """`$$...$$` and `\\[...\\]`, leftmost first, each closed by the first closer after one character at least.

    Linear time: each kind's next opener is searched for again only once the scan has passed it, and an
    opener that is never closed is never closed later either, so its kind is dropped for good.
    """
    spans: list[str] = []
    upcoming = {pair: cell.find(pair[0]) for pair in _DISPLAY}
    pos = 0
    while upcoming:
        for pair, at in list(upcoming.items()):
            if at < pos:
                at = cell.find(pair[0], pos)
                upcoming[pair] = at
            if at < 0:
                del upcoming[pair]
        if not upcoming:
            break
        (opener, closer), start = min(upcoming.items(), key=lambda item: item[1])
        end = cell.find(closer, start + len(opener) + 1)
        if end < 0:
            del upcoming[(opener, closer)]
            continue
        spans.append(cell[start + len(opener):end])
        pos = end + len(closer)
    return spans


def _inline_spans(cell: str) -> list[str]:
    """`$...$` (a `$` neither escaped nor doubled) and `\\(...\\)`, scanned left to right in linear time."""
    dollars = [i for i, ch in enumerate(cell) if ch == "$" and _lone_dollar(cell, i)]
    spans: list[str] = []
    d = 0  # next candidate in `dollars`
    paren = cell.find(_INLINE_PAREN[0])
    pos = 0
    while True:
        while d < len(dollars) and dollars[d] < pos:
            d += 1
        if 0 <= paren < pos:
            paren = cell.find(_INLINE_PAREN[0], pos)
        dollar = dollars[d] if d < len(dollars) else -1
        if dollar < 0 and paren < 0:
            return spans
        if dollar >= 0 and (paren < 0 or dollar < paren):
            # The closing `$` is the first lone one at least two characters on; none means none ever.
            k = d + 1
            while k < len(dollars) and dollars[k] < dollar + 2:
                k += 1
            if k == len(dollars):
                dollars = dollars[:d]
                continue
            spans.append(cell[dollar + 1:dollars[k]])
            pos = dollars[k] + 1
        else:
            end = cell.find(_INLINE_PAREN[1], paren + 3)
            if end < 0:
                paren = -1  # no `\\)` from here on: no later `\\(` closes either
                continue
            spans.append(cell[paren + 2:end])
            pos = end + 2


def _lone_dollar(cell: str, i: int) -> bool:
    before = cell[i - 1] if i > 0 else ""
    after = cell[i + 1] if i + 1 < len(cell) else ""
    return before not in ("\\", "$") and after != "$"


def parse_answer_cell(cell: str, symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> sympy.Expr:
    """The formula of an `Answer qX.Y:` cell (the Markdown after that prefix)."""
    symbols = _as_symbols(symbols)
    math = find_math(cell)
    if math is not None:
        return parse_latex(math, symbols)
    line = next((ln.strip().strip("`*_ ") for ln in cell.splitlines() if ln.strip().strip("`*_ ")), "")
    if not line:
        raise ParseError("the Answer cell holds no formula")
    try:
        return parse_expression(line, symbols)
    except ParseError as text_error:
        try:
            return parse_latex(line, symbols)
        except ParseError:
            raise ParseError(f"the Answer cell has no $...$ formula and its text is not one: {text_error}") from None


def parse_latex(latex: str, symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> sympy.Expr:
    """One math span (without its `$`) -> SymPy; for `lhs = rhs` the right-hand side is the answer."""
    symbols = _as_symbols(symbols)
    return parse_expression(latex_to_text(latex, symbols), symbols)


def latex_to_text(latex: str, symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> str:
    """Rewrite LaTeX into mathparse's formula grammar (no evaluation; unknown commands are errors)."""
    if len(latex) > MAX_LATEX:
        raise ParseError(f"the formula is {len(latex)} characters long; the limit is {MAX_LATEX}")
    tokens = _right_hand_side(_normalise(_tokenize(latex)))
    if not any(t.kind != "ws" for t in tokens):
        raise ParseError("the LaTeX formula is empty")
    pieces = _Converter(tokens, _as_symbols(symbols)).seq(None)
    return _join(pieces)


def _as_symbols(symbols: Mapping[str, sympy.Symbol] | Iterable[str]) -> Mapping[str, sympy.Symbol]:
    return symbols if isinstance(symbols, Mapping) else make_symbols(symbols)


def _tokenize(latex: str) -> list[_Tok]:
    text = latex.translate(_UNICODE)
    return [_Tok(m.lastgroup or "char", m.group()) for m in _TOKEN_RE.finditer(text)]


def _normalise(tokens: list[_Tok]) -> list[_Tok]:
    """Drop spacing and sizing commands, map synonyms, turn `\\left| x \\right|` into `\\lvert x \\rvert`."""
    out: list[_Tok] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        text = _SYNONYMS.get(tok.text, tok.text)
        if text in _IGNORED or text == "~":
            out.append(_Tok("ws", " "))
        elif text in _SIZES:
            j = i + 1
            while j < len(tokens) and tokens[j].kind == "ws":
                j += 1
            delimiter = tokens[j].text if j < len(tokens) else ""
            if delimiter == ".":  # \left. is an invisible delimiter
                i = j
            elif delimiter in _BARS:
                out.append(_Tok("cmd", "\\lvert" if text in _OPENING_SIZES else "\\rvert"))
                i = j
        else:
            out.append(_Tok(tok.kind, text))
        i += 1
    return out


def _right_hand_side(tokens: list[_Tok]) -> list[_Tok]:
    """`H_{out} = \\lfloor ... \\rfloor + 1` answers with its right-hand side; trailing punctuation goes."""
    depth, last = 0, -1
    for i, tok in enumerate(tokens):
        if tok.text in ("{", "(", "["):
            depth += 1
        elif tok.text in ("}", ")", "]"):
            depth -= 1
        elif depth == 0 and (tok.text in _EQUALS or (tok.text == ":" and _text_at(tokens, i + 1) == "=")):
            last = i + 1 if tok.text == ":" else i
    end = len(tokens)
    while end > last + 1 and (tokens[end - 1].kind == "ws" or tokens[end - 1].text in (".", ",", ";", "\\\\")):
        end -= 1
    return tokens[last + 1:end]


def _text_at(tokens: list[_Tok], i: int) -> str:
    return tokens[i].text if i < len(tokens) else ""


def _join(pieces: list[str]) -> str:
    """Join with a space only where two names or numbers would otherwise run together."""
    out = ""
    for piece in pieces:
        if out and (out[-1].isalnum() or out[-1] == "_") and (piece[0].isalnum() or piece[0] == "_"):
            out += " "
        out += piece
    return out


class _Converter:
    def __init__(self, tokens: list[_Tok], symbols: Mapping[str, sympy.Symbol]) -> None:
        self.tokens = tokens
        self.symbols = symbols
        self.i = 0
        self.depth = 0
        # Greedy longest match when splitting a run of letters: `HK` -> H K, `logK` -> log K.
        self.words = sorted(set(symbols) | set(FUNCTIONS) | {"pi"}, key=len, reverse=True)

    # -- token helpers ------------------------------------------------------------------------------------
    def peek(self, skip_ws: bool = True) -> _Tok | None:
        if skip_ws:
            while self.i < len(self.tokens) and self.tokens[self.i].kind == "ws":
                self.i += 1
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ParseError("the LaTeX formula ends too early")
        self.i += 1
        return tok

    # -- structure ----------------------------------------------------------------------------------------
    def seq(self, closer: str | None) -> list[str]:
        """Atoms up to `closer` (consumed) or the end of the span."""
        self.enter()
        out: list[str] = []
        while True:
            tok = self.peek()
            if tok is None:
                if closer is not None:
                    raise ParseError(f"missing '{closer}' in the LaTeX formula")
                break
            if closer is not None and tok.text == closer:
                self.i += 1
                break
            if tok.text in _CLOSERS:
                raise ParseError(f"unexpected '{tok.text}' in the LaTeX formula")
            out += self.atom()
        self.depth -= 1
        return out

    def atom(self) -> list[str]:
        # `\\sqrt\\sqrt\\sqrt...` nests without braces, so depth is counted here too, not only in `seq`.
        self.enter()
        tok = self.next()
        if tok.kind == "digit":
            out = [self.number(tok.text)]
        elif tok.kind == "letter":
            out = self.letters(tok.text)
        elif tok.kind == "cmd":
            out = self.command(tok.text)
        else:
            out = self.char(tok.text)
        self.depth -= 1
        return out

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"the formula is nested more than {MAX_DEPTH} levels deep")

    def char(self, text: str) -> list[str]:
        if text in _BRACKETS:
            inner = self.seq(_BRACKETS[text])
            return ["[", *inner, "]"] if text == "[" else ["(", *inner, ")"]
        if text == "|":
            return ["Abs", "(", *self.seq("|"), ")"]
        if text == "^":
            return ["^", *self.arg()]
        if text == "*" and self.peek(skip_ws=False) == _Tok("char", "*"):
            self.i += 1  # `**` typed inside maths: a power
            return ["^"]
        if text in "+-*/,":
            return [text]
        if text == "_":
            raise ParseError("a subscript '_' must follow a name")
        raise ParseError(f"unsupported character '{text}' in the LaTeX formula")

    def arg(self) -> list[str]:
        """One TeX argument (`{...}`, one letter, one digit or one command), parenthesised."""
        tok = self.peek()
        if tok is None:
            raise ParseError("the LaTeX formula ends where an argument was expected")
        if tok.text == "{":
            self.i += 1
            return ["(", *self.seq("}"), ")"]
        if tok.kind in ("digit", "letter"):
            self.i += 1
            return [tok.text if tok.kind == "digit" else self.letter_name(tok.text)]
        if tok.kind == "cmd":
            return ["(", *self.atom(), ")"]
        raise ParseError(f"unexpected '{tok.text}' where an argument was expected")

    def number(self, first: str) -> str:
        text = first
        while (tok := self.peek(skip_ws=False)) is not None and (tok.kind == "digit" or (
                tok.text == "." and "." not in text and _text_kind(self.tokens, self.i + 1) == "digit")):
            text += tok.text
            self.i += 1
        return text

    # -- names --------------------------------------------------------------------------------------------
    def letters(self, first: str) -> list[str]:
        run = first
        while (tok := self.peek(skip_ws=False)) is not None and tok.kind == "letter":
            run += tok.text
            self.i += 1
        if (tok := self.peek(skip_ws=False)) is not None and tok.text == "_":
            self.i += 1
            return self.subscripted(run, self.subscript())
        return self.resolve_run(run)

    def letter_name(self, letter: str) -> str:
        if letter == "e" and "e" not in self.symbols:
            return "exp(1)"  # Euler's number; `E` could be a question symbol
        return letter

    def split(self, run: str) -> list[str] | None:
        """`run` as a product of known names, longest match first; None if some part is unknown."""
        pieces: list[str] = []
        k = 0
        while k < len(run):
            word = next((w for w in self.words if run.startswith(w, k)), None)
            if word is None and run[k] == "e":
                word = "e"
            if word is None:
                return None
            pieces.append(self.letter_name(word) if word == "e" else word)
            k += len(word)
        return pieces

    def resolve_run(self, run: str) -> list[str]:
        pieces = self.split(run)
        if pieces is None:
            return [run]  # the parser names it: "unknown name 'Hout'"
        out: list[str] = []
        for n, piece in enumerate(pieces):
            if piece in FUNCTIONS and n + 1 < len(pieces):
                out += [piece, "(", pieces[n + 1], ")"]  # `logK` -> log(K)
                pieces[n + 1] = ""
            elif piece in FUNCTIONS:
                out += self.function(piece)
            elif piece:
                out.append(piece)
        return out

    def subscript(self) -> str:
        """The text of a subscript: `{in}`, `{\\text{in}}`, `in` (typed as `C_in`), `1`, `{l-1}`."""
        tok = self.next()
        if tok.text == "{":
            return self.braced_text()
        while tok.kind == "cmd" and tok.text in _WORD_COMMANDS | _STYLE_COMMANDS:
            tok = self.next()  # `_\\mathrm\\mathbf in`: a loop, not a recursion, however many there are
            if tok.text == "{":
                return self.braced_text()
        if tok.kind not in ("letter", "digit"):
            raise ParseError(f"unexpected '{tok.text}' after '_'")
        text = tok.text
        while (nxt := self.peek(skip_ws=False)) is not None and nxt.kind in ("letter", "digit"):
            text += nxt.text
            self.i += 1
        return text

    def braced_text(self) -> str:
        text, depth = "", 1
        while True:
            tok = self.next()
            if tok.text == "{":
                depth += 1
            elif tok.text == "}":
                depth -= 1
                if depth == 0:
                    return text
            elif tok.kind in ("letter", "digit", "char"):
                text += tok.text

    def subscripted(self, run: str, sub: str) -> list[str]:
        for j in range(len(run)):
            name = f"{run[j:]}_{sub}"
            if name in self.symbols:
                prefix = self.resolve_run(run[:j]) if j else []
                return [*prefix, name]
        pieces = self.split(run)
        if pieces is not None and pieces[-1] in self.symbols:
            return self.resolve_run(run)  # `r_l` for r: the handout's r stands for r_l
        known = ", ".join(self.symbols) or "none"
        raise ParseError(f"unknown name '{run}_{{{sub}}}'; the symbols are {known}")

    # -- commands -----------------------------------------------------------------------------------------
    def command(self, cmd: str) -> list[str]:
        if cmd == "\\frac":
            numerator, denominator = self.arg(), self.arg()
            return ["(", *numerator, "/", *denominator, ")"]
        if cmd in ("\\lfloor", "\\lceil", "\\lvert"):
            closer = {"\\lfloor": "\\rfloor", "\\lceil": "\\rceil", "\\lvert": "\\rvert"}[cmd]
            name = {"\\lfloor": "floor", "\\lceil": "ceiling", "\\lvert": "Abs"}[cmd]
            return [name, "(", *self.seq(closer), ")"]
        if cmd == "\\{":
            return ["(", *self.seq("\\}"), ")"]
        if cmd in _PRODUCT:
            return ["*"]
        if cmd == "\\div":
            return ["/"]
        if cmd == "\\pi":
            return ["pi"]
        if cmd in _FUNCTION_COMMANDS:
            return self.function(_FUNCTION_COMMANDS[cmd])
        if cmd == "\\operatorname" or cmd in _WORD_COMMANDS:
            return self.word(cmd)
        if cmd in _STYLE_COMMANDS:
            return self.arg()
        raise ParseError(f"unsupported LaTeX command '{cmd}'")

    def word(self, cmd: str) -> list[str]:
        """`\\operatorname{floor}`, `\\mathrm{e}`, `\\text{ where S is the stride}` (a remark: dropped)."""
        tok = self.next()
        word = self.braced_text().strip() if tok.text == "{" else tok.text
        word = word.replace(" ", "") if cmd not in _REMARK_COMMANDS else word.strip()
        if word in FUNCTIONS or word == "ceil":
            return self.function("ceiling" if word == "ceil" else word)
        if word in self.symbols or word == "pi":
            return [word]
        if word == "e":
            return [self.letter_name(word)]
        if cmd in _REMARK_COMMANDS:
            return []
        raise ParseError(f"unknown name '{word}' in {cmd}{{...}}; the symbols are {', '.join(self.symbols)}")

    def function(self, name: str) -> list[str]:
        """A function and its argument: `\\log_2 K`, `\\log(K)`, `\\ln\\frac{1}{K}`, `\\sqrt[3]{x}`."""
        base: list[str] = []
        if (tok := self.peek()) is not None and tok.text == "_":
            self.i += 1
            base = self.arg()
        if (tok := self.peek()) is not None and tok.text == "^" and name != "sqrt":
            raise ParseError(f"write (\\{name} x)^n rather than \\{name}^n x")
        if name == "sqrt":
            return self.root()
        tok = self.peek()
        if tok is None:
            raise ParseError(f"'{name}' has no argument")
        body = self.atom()
        if tok.text not in _BRACKETS:
            body = ["(", *body, ")"]
        if base:
            return ["log", "(", *body, ",", *base, ")"] if name == "log" else [name, *body]
        return [name, *body]

    def root(self) -> list[str]:
        index: list[str] = []
        if (tok := self.peek()) is not None and tok.text == "[":
            self.i += 1
            index = self.seq("]")
        body = self.arg()
        if not index:
            return ["sqrt", *body]
        return ["(", *body, ")", "^", "(", "1", "/", "(", *index, ")", ")"]


def _text_kind(tokens: list[_Tok], i: int) -> str:
    return tokens[i].kind if i < len(tokens) else ""
