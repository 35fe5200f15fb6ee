"""Student text is bounded in size, depth and time before the grader uses it (issue 9).

Each vector of the security review: adversarial Markdown and LaTeX against every regular expression, huge or
slow formulas against the formula check's budget, formulas wrong only at large values, very long and deeply
nested Python against the forbid walk, lone surrogates and oversized answers at load.  Time bounds are CPU
seconds of the test's own thread, never the wall clock, and generous (they guard against quadratic blow-ups,
which cost minutes, not against a slow machine); wall-clock figures are bench/bench_bounds.py's.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from grader.checks.forbid import DYNAMIC, ForbidCheck, find_violations
from grader.checks.formula import FormulaCheck
from grader.checks.manual import PENDING_MESSAGE, ManualCheck
from grader.errors import SubmissionUnreadable
from grader.formula.latex import find_math, parse_answer_cell, parse_latex
from grader.formula.mathparse import MAX_DEPTH, ParseError
from grader.results import Outcome, Status
from grader.rubric.options import FormulaOptions
from grader.rubric.schema import Question, QuestionSpec
from grader.sources.load import (
    MAX_ANSWER,
    MAX_NOTEBOOK_CELLS,
    SURROGATE_NOTE,
    Cell,
    Submission,
    load_submission,
    strip_magics,
)
from tests.checks.test_formula import CONV, FakeContext, FakeSession, FakeSubmission

BIG = 200_000  # characters of adversarial text
FAST = 1.0  # CPU seconds: linear work on BIG characters takes milliseconds; quadratic work takes minutes

ADVERSARIAL = {
    "spaces": " " * BIG,
    "newlines": "\n" * BIG,
    "tabs": "\t" * BIG,
    "mixed blank": " \t\n\r\f\v" * (BIG // 6),
    "dollars": "$" * BIG,
    "backslashes": "\\" * BIG,
    "braces": "{" * BIG,
    "Answer repeated": "Answer " * (BIG // 7),
    "answer prefix repeated": "**Answer q1.1** " * (BIG // 16),
    "stars": "**" * (BIG // 2),
    "hashes": "#" * BIG,
    "unclosed display": "\\[" * (BIG // 2),
    "unclosed inline": "\\(" * (BIG // 2),
    "escaped dollars": "$\\$" * (BIG // 3),
    "dollar letter": "$a" * (BIG // 2),
    "blank then answer": " " * BIG + "Answer q1.1: $H$",
    "digits": "Answer q" + "1" * BIG,
}


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds `fn` takes in this thread: what other processes do to the machine does not count."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def write_notebook(path: Path, cells: list[dict[str, Any]]) -> Path:
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def markdown(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


# -- 1. regular expressions on student text run in linear time ------------------------------------------------


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_loading_a_markdown_cell_is_fast(tmp_path: Path, text: str) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", [markdown(text), code(text)])
    assert timed(lambda: load_submission(path)) < FAST + 1  # nbformat's own validation is included


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_finding_the_math_of_an_answer_is_fast(text: str) -> None:
    assert timed(lambda: find_math(text)) < FAST
    assert timed(lambda: strip_magics(text)) < FAST


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_reading_an_answer_cell_is_fast_and_fails_cleanly(text: str) -> None:
    def read() -> None:
        try:
            parse_answer_cell(text, ["H", "K", "S"])
        except ParseError:
            pass

    assert timed(read) < FAST


def test_blank_space_before_the_prefix_still_finds_the_answer(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", [markdown("\n  \t" * 1000 + "### **Answer Q1.2:** $K$")])
    assert load_submission(path).answers == {"q1.2": "$K$"}


@pytest.mark.parametrize(
    ("cell", "math"),
    [
        ("$$a$$ and $$b = c$$", "b = c"),
        (r"\[x\] then $y$", "x"),
        ("$a$ $b=1$ $c$", "b=1"),
        (r"\(p\) and $q$", "q"),
        (r"price \$5 and $x$", "x"),
        ("$$$x$$", "$x"),
        (r"\[ \[ x \]", r" \[ x "),
        ("$ unclosed", None),
        (r"\( unclosed $x$", "x"),
    ],
)
def test_math_spans_as_before(cell: str, math: str | None) -> None:
    assert find_math(cell) == math


def test_a_question_id_made_of_thousands_of_digits_is_no_answer(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", [markdown("Answer q" + "1" * 5000 + ": x")])
    assert load_submission(path).answers == {}


# -- 2. the formula check has a budget; huge formulas are refused before any work -----------------------------


def formula_context(options: dict[str, Any], value: Any) -> FakeContext:
    spec = QuestionSpec(id="q1.1", title="a formula", points=1, kind="formula", answer="f", **options)
    question = Question(spec, FormulaOptions.model_validate(spec.options))
    return FakeContext(question, FakeSession({"f": value}), FakeSubmission())


def grade(options: dict[str, Any], value: Any) -> Outcome:
    return FormulaCheck().run(formula_context(options, value))  # type: ignore[arg-type]


RIGHT = "floor((H + 2*P - D*(K - 1) - 1)/S) + 1"
# Right (each pair cancels), but SymPy cannot see it and the evaluator sums large fractions at every point:
# about 3 s on the CI machine.
SLOW_RIGHT = RIGHT + " + " + "+".join(f"(Abs(H-K)/(S+{i}))**90 - (Max(H-K,K-H)/(S+{i}))**90" for i in range(9))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("2**2**2**99", "the exponent 633825300114114700748351602688 is too large (the limit is 1000)"),
        ("10**10**10", "the exponent 10000000000 is too large (the limit is 1000)"),
        ("floor(exp(exp(exp(5))))", "the number exp(exp(exp(5))) in the formula is too large (over 2**10000)"),
        ("H*(exp(exp(exp(exp(5)))) - 1)", "the number exp(exp(exp(5))) in the formula is too large"),
        ("floor(exp(999)**999)", "the number exp(998001) in the formula is too large"),
        ("floor(1 - exp(-exp(exp(5))))", "in the formula is too close to zero to evaluate"),
        ("*".join(["2**999"] * 20), "a number in the formula has more than 10000 bits"),
        ("(" * (MAX_DEPTH + 1) + "H" + ")" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
        ("H+" * 600 + "H", "characters long; the limit is 1000"),
    ],
)
def test_huge_formulas_are_refused_quickly(answer: str, message: str) -> None:
    outcome = None

    def check() -> None:
        nonlocal outcome
        outcome = grade(CONV, answer)

    assert timed(check) < 5
    assert outcome is not None
    assert outcome.resolved_status is Status.FAILED
    assert message in outcome.message


TOO_SLOW = "your formula is too large for the grader to check in 0.5 s; a TA will check it (simplifying it would let the grader do so)"


def test_a_right_formula_too_slow_to_check_needs_a_ta_not_a_zero() -> None:
    outcome = grade({**CONV, "budget": 0.5}, SLOW_RIGHT)  # it passes in about 3 s: the message is the budget's
    assert outcome.resolved_status is Status.GRADER_ERROR
    assert outcome.message == TOO_SLOW
    assert outcome.details["proof"] == "timeout"


def test_the_budget_holds_outside_the_main_thread_too() -> None:
    outcomes: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(grade({**CONV, "budget": 0.5}, SLOW_RIGHT)))
    thread.start()
    thread.join()
    assert outcomes[0].message == TOO_SLOW


def test_the_right_answer_still_passes_within_the_budget() -> None:
    outcome = grade(CONV, RIGHT)
    assert outcome.resolved_status is Status.PASSED
    assert outcome.message == "proved equal"


def test_the_budget_is_a_rubric_option() -> None:
    with pytest.raises(ValidationError, match="budget"):
        FormulaOptions.model_validate({**CONV, "budget": 0})


# -- 3. large values are sampled too --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        RIGHT + " + Min(1, H // 1000)",  # one more once H reaches 1000
        RIGHT + " + Min(1, Max(0, S - 5000))",  # one more once the stride passes 5000
        RIGHT + " - floor(P / 100000)",
    ],
)
def test_a_formula_wrong_only_at_large_values_gets_a_counterexample(answer: str) -> None:
    outcome = grade(CONV, answer)
    assert outcome.resolved_status is Status.FAILED
    point = outcome.details["counterexample"]["point"]
    assert point["H"] + 2 * point["P"] >= point["D"] * (point["K"] - 1) + 1  # the rubric's constraint holds
    assert max(point.values()) > 60


def test_large_points_stay_in_the_declared_domain() -> None:
    options = {"expected": "K", "symbols": {"K": {"min": 2, "max": 500}}, "large_points": 50}
    assert grade(options, "Min(K, 500)").resolved_status is Status.PASSED
    assert grade(options, "Min(K, 499)").message.startswith("K=500: yours 499, expected 500")


def test_a_right_answer_too_large_for_exact_arithmetic_at_large_values_still_passes() -> None:
    # (H + 1)**999 has 30,000 bits at H = 10**9: beyond the evaluator's limit, which proves nothing.
    answer = RIGHT + " + (H + 1)**999 - H*(H + 1)**998 - (H + 1)**998"
    outcome = grade({**CONV, "time_limit": 0}, answer)
    assert outcome.resolved_status is Status.PASSED, outcome.message


# -- 4. the forbid walk and Python's parser on long and deeply nested code ------------------------------------


def py_submission(tmp_path: Path, source: str) -> Submission:
    path = tmp_path / "s.py"
    path.write_text(source)
    return load_submission(path)


def forbid(sub: Submission) -> Outcome:
    spec = QuestionSpec(id="q1.4", title="no autograd", points=3, kind="forbid", answer="f")  # type: ignore[call-arg]
    question = Question(spec, ForbidCheck.Options.model_validate(spec.options))
    ctx = FakeContext(question, FakeSession({}), sub)  # type: ignore[arg-type]
    return ForbidCheck().run(ctx)  # type: ignore[arg-type]


@pytest.mark.parametrize("terms", [1000, 2800])
def test_a_correct_function_of_one_very_long_expression_gets_its_points(tmp_path: Path, terms: int) -> None:
    source = "import torch\n\ndef f(x):\n    return x" + " + x" * terms + "\n"
    # A fresh Python (as the worker is) compiles it; from deep inside pytest's stack `compile` would not.
    fresh = subprocess.run([sys.executable, "-I", "-c", "import sys; compile(sys.stdin.read(), 's.py', 'exec')"],
                           input=source, text=True, capture_output=True, timeout=60)
    assert fresh.returncode == 0, fresh.stderr
    sub = py_submission(tmp_path, source)
    assert len(sub.cells) == 2  # split into statements, as any file that parses
    outcome = forbid(sub)
    assert outcome.resolved_status is Status.PASSED, outcome.message


def test_a_banned_call_deep_inside_a_long_expression_is_found(tmp_path: Path) -> None:
    source = "import torch\n\ndef f(x):\n    return x" + " + x" * 2000 + " + torch.autograd.grad(x, x)\n"
    outcome = forbid(py_submission(tmp_path, source))
    assert outcome.resolved_status is Status.FAILED
    assert outcome.message.startswith("f calls torch.autograd.grad (line 4: ")


def test_nesting_past_pythons_own_parser_is_the_students_syntax_problem(tmp_path: Path) -> None:
    source = "def f(x):\n    return " + "(" * 300 + "x" + ")" * 300 + "\n"
    sub = py_submission(tmp_path, source)
    assert forbid(sub).message == "`f` is not defined"  # too many nested parentheses: it does not run either


def test_a_cell_too_deep_for_the_grader_to_read_cannot_hide_code() -> None:
    deep = "def f(x):\n    return x" + " + x" * 40_000 + "\n"
    sub = Submission(Path("s.ipynb"), "s", (Cell(0, "import torch"), Cell(1, deep)))
    violations = find_violations(sub, "f", ["autograd"])
    assert [(v.cell, v.api) for v in violations] == [(1, DYNAMIC)]
    outcome = forbid(sub)
    assert outcome.resolved_status is Status.FAILED
    assert "cell 1 is nested too deeply for Python's parser to read (RecursionError); simplify it" in outcome.message


# -- 5. lone surrogates and odd characters -------------------------------------------------------------------


def test_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nb = ('{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "Answer q6.1: caf\\udcff \\ud800"},'
          ' {"cell_type": "code", "metadata": {}, "source": "s = \\"\\udfff\\"", "outputs": [],'
          ' "execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    path.write_text(nb)
    sub = load_submission(path)
    assert sub.answers == {"q6.1": "caf\ufffd \ufffd"}
    assert sub.cells[0].source == 's = "\ufffd"'
    assert sub.notes == (SURROGATE_NOTE,)
    for text in [*sub.answers.values(), *(c.source for c in sub.cells)]:
        text.encode("utf-8")  # nothing left that cannot be encoded


def test_odd_line_separators_do_not_move_lines(tmp_path: Path) -> None:
    source = 'a = "x\u2028y\x0cz"\n%time\nb = 2\n'
    assert strip_magics(source) == 'a = "x\u2028y\x0cz"\n\nb = 2\n'
    sub = py_submission(tmp_path, 'import torch\ns = "\u2028\x1c"\n\ndef f(x):\n    return x\n')
    assert sub.cells[1].source.endswith('s = "\u2028\x1c"\n\n')
    assert forbid(sub).resolved_status is Status.PASSED


def test_math_with_odd_characters_fails_cleanly() -> None:
    with pytest.raises(ParseError):
        parse_latex("H \udcff + \u2028 K", ["H", "K"])


# -- 6. bounds at load ----------------------------------------------------------------------------------------


def test_a_long_answer_is_cut_and_the_cut_is_said(tmp_path: Path) -> None:
    text = "word " * (MAX_ANSWER // 2)
    path = write_notebook(tmp_path / "nb.ipynb", [markdown("Answer q6.1: " + text)])
    sub = load_submission(path)
    answer = sub.answers["q6.1"]
    assert answer.startswith(text[:MAX_ANSWER].strip()[:100])
    assert answer.endswith(f"[cut by the grader: the answer was {len(text.strip())} characters, the limit is {MAX_ANSWER}]")
    assert len(answer) < MAX_ANSWER + 200
    assert sub.notes == (
        f"the `Answer q6.1:` cell is {len(text.strip())} characters long; only the first {MAX_ANSWER} were kept",
    )
    spec = QuestionSpec(id="q6.1", title="explain", points=2, kind="manual")  # type: ignore[call-arg]
    question = Question(spec, ManualCheck.Options.model_validate(spec.options))
    outcome = ManualCheck().run(FakeContext(question, FakeSession({}), sub))  # type: ignore[arg-type]
    assert outcome.message == f"{PENDING_MESSAGE} ({sub.notes[0]})"
    assert outcome.details["cut"] is True


def test_a_long_formula_answer_is_refused_with_the_limit() -> None:
    with pytest.raises(ParseError, match="the limit is 2000"):
        parse_answer_cell("$" + "H+" * 5000 + "H$", ["H"])


def test_too_many_code_cells(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", [code("x = 1")] * (MAX_NOTEBOOK_CELLS + 1))
    with pytest.raises(SubmissionUnreadable, match=f"more than {MAX_NOTEBOOK_CELLS} code cells"):
        load_submission(path)
    ok = write_notebook(tmp_path / "ok.ipynb", [code("x = 1")] * MAX_NOTEBOOK_CELLS)
    assert len(load_submission(ok).cells) == MAX_NOTEBOOK_CELLS


def test_latex_nesting_without_braces_is_bounded() -> None:
    for latex in ["\\sqrt" * 390 + "H", "\\mathbf" * 250 + "H"]:
        with pytest.raises(ParseError, match=f"nested more than {MAX_DEPTH} levels deep"):
            parse_latex(latex, ["H"])
    # A subscript's style commands are a loop: `H_{in}` for the symbol H (the handout's H stands for H_in).
    assert str(parse_latex("H_" + "\\mathrm" * 250 + "{in}", ["H"])) == "H"
