"""LaTeX answers: the handouts' notations, span selection in an Answer cell, and refusals."""
from __future__ import annotations

import pytest
import sympy

from grader.formula.latex import find_math, latex_to_text, parse_answer_cell, parse_latex
from grader.formula.mathparse import ParseError, make_symbols

CONV = make_symbols(["H", "K", "P", "S", "D"])
H, K, P, S, D = CONV.values()
CONV_EXPECTED = sympy.floor((H + 2 * P - D * (K - 1) - 1) / S) + 1
CONV_PARAMS = make_symbols(["k", "C_in", "C_out"])
k, C_in, C_out = CONV_PARAMS.values()
MULTS = make_symbols(["H", "W", "k", "C_in", "C_out"])
RF = make_symbols(["r", "s", "k"])
KS = make_symbols(["K"])
MN = make_symbols(["m", "n"])


@pytest.mark.parametrize(
    ("latex", "symbols", "expected"),
    [
        (r"\left\lfloor \frac{H-K}{S} \right\rfloor + 1", CONV, sympy.floor((H - K) / S) + 1),
        (r"\lfloor (H+2P-D(K-1)-1)/S \rfloor + 1", CONV, CONV_EXPECTED),
        (r"H_{out} = \left\lfloor \dfrac{H + 2P - D\cdot(K-1) - 1}{S}\right\rfloor + 1", CONV, CONV_EXPECTED),
        (r"\left\lfloor\tfrac{H+2P-D(K-1)-1}{S}\right\rfloor+1.", CONV, CONV_EXPECTED),  # a full stop at the end
        (r"\Big\lfloor \frac{H + 2 \times P - D \times (K - 1) - 1}{S} \Big\rfloor + 1", CONV, CONV_EXPECTED),
        (r"\lfloor \frac{H+2P-DK+D-1}{S} \rfloor + 1", CONV, sympy.floor((H + 2 * P - D * K + D - 1) / S) + 1),
        ("\u230a(H+2P\u2212D(K\u22121)\u22121)/S\u230b + 1", CONV, CONV_EXPECTED),  # Unicode brackets
        (r"\operatorname{floor}\left(\frac{H-K}{S}\right)+1", CONV, sympy.floor((H - K) / S) + 1),
        (r"\mathrm{floor}((H-K)/S)+1", CONV, sympy.floor((H - K) / S) + 1),
        (r"\lceil \frac{H-K+1}{S} \rceil", CONV, sympy.ceiling((H - K + 1) / S)),
        (r"\frac12 HK", CONV, H * K / 2),  # one-digit arguments, HK split into symbols
        (r"k^2 C_{in} C_{out} + C_{out}", CONV_PARAMS, k**2 * C_in * C_out + C_out),
        (r"k^{2}\,C_{\text{in}}\;C_{\mathrm{out}} + C_{out}", CONV_PARAMS, k**2 * C_in * C_out + C_out),
        (r"C_{out}(k^2 C_in + 1)", CONV_PARAMS, C_out * (k**2 * C_in + 1)),
        (r"kkC_{in}C_{out}+C_{out}", CONV_PARAMS, k**2 * C_in * C_out + C_out),
        (r"H W k^2 C_{in} C_{out}", MULTS, MULTS["H"] * MULTS["W"] * MULTS["k"] ** 2 * MULTS["C_in"] * MULTS["C_out"]),
        (r"HWk^2C_{in}C_{out}", MULTS, MULTS["H"] * MULTS["W"] * MULTS["k"] ** 2 * MULTS["C_in"] * MULTS["C_out"]),
        (r"r_{l-1} = s_l (r_l - 1) + k_l", RF, RF["s"] * (RF["r"] - 1) + RF["k"]),  # subscripts naming no symbol
        (r"s(r-1)+k", RF, RF["s"] * (RF["r"] - 1) + RF["k"]),
        (r"\log K", KS, sympy.log(KS["K"])),
        (r"\ln(K)", KS, sympy.log(KS["K"])),
        (r"\ln\left(K\right)", KS, sympy.log(KS["K"])),
        (r"-\log\frac{1}{K}", KS, -sympy.log(1 / KS["K"])),
        (r"\log_2 K", KS, sympy.log(KS["K"], 2)),
        (r"\frac{1}{K}", KS, 1 / KS["K"]),
        (r"K^{-1}", KS, 1 / KS["K"]),
        (r"e^{K}", KS, sympy.exp(KS["K"])),
        (r"\sqrt{K} + \sqrt[3]{K}", KS, sympy.sqrt(KS["K"]) + KS["K"] ** sympy.Rational(1, 3)),
        (r"\max(m, n)", MN, sympy.Max(MN["m"], MN["n"])),
        (r"\max\{m, n\}", MN, sympy.Max(MN["m"], MN["n"])),
        (r"|m - n|", MN, sympy.Abs(MN["m"] - MN["n"])),
        (r"\left| m - n \right|", MN, sympy.Abs(MN["m"] - MN["n"])),
        (r"m \quad \text{(one gate per unit)}", MN, MN["m"]),  # a trailing remark is dropped
        (r"\mathbf{m}", MN, MN["m"]),
    ],
)
def test_parses(latex: str, symbols: dict[str, sympy.Symbol], expected: sympy.Expr) -> None:
    assert parse_latex(latex, symbols) == expected


def test_rewrites_into_the_text_grammar() -> None:
    assert latex_to_text(r"\left\lfloor \frac{H-K}{S} \right\rfloor + 1", CONV) == "floor(((H-K)/(S)))+1"
    assert latex_to_text(r"k^2 C_{in} C_{out}", CONV_PARAMS) == "k^2 C_in C_out"


@pytest.mark.parametrize(
    ("latex", "message"),
    [
        (r"\foo{H}", r"unsupported LaTeX command '\foo'"),
        (r"Hout", "unknown name 'Hout'; the symbols are H, K, P, S, D"),
        (r"X_{in}", "unknown name 'X_{in}'"),
        (r"\frac{H}{", "missing '}'"),
        (r"\lfloor H", r"missing '\rfloor'"),
        (r"H)", "unexpected ')'"),
        (r"H!", "unsupported character '!'"),
        (r"\log^2 K", "rather than"),
        (r"H_out = ", "the LaTeX formula is empty"),
        (r"\operatorname{sinc}(H)", "unknown name 'sinc'"),
        ("x" * 2001, "the limit is 2000"),
        ("{" * 70 + "H" + "}" * 70, "nested more than 60"),
    ],
)
def test_rejects(latex: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_latex(latex, CONV)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("cell", "span"),
    [
        ("$x$", "x"),
        ("$$a$$", "a"),
        ("first $a$ then $b$", "b"),
        ("$$H_{out} = a$$ where $S$ is the stride", "H_{out} = a"),
        ("$H_{out} = a$, where $S$ is the stride", "H_{out} = a"),
        (r"\[a\] and \(b\)", "a"),
        ("no maths here", None),
    ],
)
def test_find_math(cell: str, span: str | None) -> None:
    assert find_math(cell) == span


@pytest.mark.parametrize(
    "cell",
    [
        r"$$H_{out} = \left\lfloor \frac{H + 2P - D(K-1) - 1}{S} \right\rfloor + 1$$ where $S$ is the stride.",
        r"The output height is $\lfloor (H+2P-D(K-1)-1)/S \rfloor + 1$.",
        "floor((H + 2*P - D*(K-1) - 1)/S) + 1",
        "`(H+2P-D(K-1)-1)//S + 1`",
        r"\lfloor (H+2P-D(K-1)-1)/S \rfloor + 1",
    ],
)
def test_answer_cells(cell: str) -> None:
    assert parse_answer_cell(cell, CONV) == CONV_EXPECTED


@pytest.mark.parametrize(
    ("cell", "message"),
    [("", "holds no formula"), ("the output gets smaller", "has no $...$ formula and its text is not one")],
)
def test_answer_cell_errors(cell: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_answer_cell(cell, CONV)
    assert message in str(info.value)
