"""The `formula` check on the handouts' formula questions, with a duck-typed context instead of a worker."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
import sympy
from pydantic import ValidationError

from grader.checks import get_kind
from grader.checks.formula import (
    PROBE_POINTS,
    FormulaCheck,
    FormulaOptions,
    TooLarge,
    Undefined,
    compile_formula,
    prove_equal,
)
from grader.execution.session import GetResult
from grader.formula.mathparse import make_symbols
from grader.results import Outcome, Status
from grader.rubric.schema import Question, QuestionSpec
from grader.worker.codec import Opaque, SympyText

CONV = {
    "expected": "floor((H + 2*P - D*(K - 1) - 1)/S) + 1",
    "symbols": {"H": {"min": 1}, "K": {"min": 1}, "P": {"min": 0}, "S": {"min": 1}, "D": {"min": 1}},
    "constraints": ["H + 2*P >= D*(K - 1) + 1"],
}
GATED = {"expected": "m", "symbols": {"m": {"min": 1}, "n": {"min": 1}}}
ATTENTION = {"expected": "k + 1", "symbols": {"k": {"min": 0}, "n": {"min": 1}}}
LOSS = {"expected": "log(K)", "symbols": {"K": {"min": 2}}}
ACCURACY = {"expected": "1/K", "symbols": {"K": {"min": 1}}}
RECEPTIVE = {"expected": "s*(r - 1) + k", "symbols": {"r": {"min": 1}, "s": {"min": 1}, "k": {"min": 1}}}
PARAMS = {"expected": "k**2*C_in*C_out + C_out", "symbols": {"k": {"min": 1}, "C_in": {"min": 1}, "C_out": {"min": 1}}}
MULTS = {
    "expected": "H*W*k**2*C_in*C_out",
    "symbols": {"H": {"min": 1}, "W": {"min": 1}, "k": {"min": 1}, "C_in": {"min": 1}, "C_out": {"min": 1}},
}


# -- a context without a worker ---------------------------------------------------------------------------------


@dataclass
class FakeSession:
    values: dict[str, Any]
    error: str = ""

    def get(self, name: str) -> GetResult:
        if name in self.values:
            return GetResult(True, self.values[name])
        return GetResult(False, error=self.error)


@dataclass
class FakeSubmission:
    answers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeContext:
    question: Question
    session: FakeSession
    submission: FakeSubmission
    seed: int = 0

    @property
    def answer(self) -> str:
        assert self.question.spec.answer
        return self.question.spec.answer


def make_context(options: dict[str, Any], value: Any = None, cell: str | None = None,
                 qid: str = "q1.1", answer: str = "conv_output_size", error: str = "") -> FakeContext:
    spec = QuestionSpec(id=qid, title="a formula", points=1, kind="formula", answer=answer, **options)
    question = Question(spec, FormulaOptions.model_validate(spec.options))
    values = {} if value is None else {answer: value}
    answers = {} if cell is None else {qid: cell}
    return FakeContext(question, FakeSession(values, error), FakeSubmission(answers))


def grade(options: dict[str, Any], value: Any = None, cell: str | None = None, **kwargs: Any) -> Outcome:
    return FormulaCheck().run(make_context(options, value, cell, **kwargs))  # type: ignore[arg-type]


# -- right answers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "answer"),
    [
        (CONV, "floor((H + 2*P - D*(K-1) - 1)/S) + 1"),
        (CONV, "floor((H + 2*P - D*K + D - 1 + S)/S)"),
        (CONV, "(H+2P-D(K-1)-1)//S + 1"),
        (CONV, SympyText("floor((-D*(K - 1) + H + 2*P - 1)/S) + 1")),
        (GATED, "m"),
        (ATTENTION, "k+1"),
        (ATTENTION, "1 + k"),
        (LOSS, "log(K)"),
        (LOSS, "ln(K)"),
        (LOSS, "-log(1/K)"),
        (LOSS, SympyText("log(K)")),
        (ACCURACY, "1/K"),
        (ACCURACY, "K**-1"),
        (RECEPTIVE, "s*(r-1) + k"),
        (RECEPTIVE, "r*s - s + k"),
        (PARAMS, "k**2*C_in*C_out + C_out"),
        (PARAMS, "C_out*(k^2 C_in + 1)"),
        (MULTS, "H*W*k**2*C_in*C_out"),
        (MULTS, "C_in*C_out*H*W*k*k"),
        (ACCURACY, r"\frac{1}{K}"),  # LaTeX in a string
    ],
)
def test_right_answers_are_proved(options: dict[str, Any], answer: Any) -> None:
    outcome = grade(options, answer)
    assert outcome.resolved_status is Status.PASSED, outcome.message
    assert outcome.message == "proved equal"
    assert outcome.details["proof"] == "symbolic"
    assert outcome.details["points"] > 0


def test_a_form_sympy_cannot_prove_passes_on_samples() -> None:
    outcome = grade(CONV, "ceiling((H + 2*P - D*(K-1))/S)")
    assert outcome.resolved_status is Status.PASSED
    assert re.fullmatch(r"equal on \d+ points of the domain", outcome.message)
    assert outcome.details["proof"] == "sampled"
    assert outcome.details["counterexample"] is None
    assert outcome.message == f"equal on {outcome.details['points']} points of the domain"


def test_a_proof_spares_the_points_after_the_probe() -> None:
    proved = grade(CONV, "floor((H + 2*P - D*(K - 1) - 1)/S) + 1")
    assert (proved.details["proof"], proved.details["points"]) == ("symbolic", PROBE_POINTS)
    unproved = grade({**CONV, "time_limit": 0}, "floor((H + 2*P - D*(K - 1) - 1)/S) + 1")
    assert unproved.details["proof"] == "sampled"
    assert unproved.details["points"] > 20 * PROBE_POINTS  # the box, the random and the large points


def test_a_wrong_answer_past_the_probe_fails_at_its_first_counterexample() -> None:
    # Wrong only from K = 100 000 on: the probe agrees, the proof fails, the large points find it.
    options = {"expected": "K", "symbols": {"K": {"min": 1}}}
    outcome = grade(options, "K + floor(K/100000)")
    assert outcome.resolved_status is Status.FAILED
    assert outcome.details["proof"] == "sampled"
    assert outcome.details["points"] > PROBE_POINTS
    point = outcome.details["counterexample"]["point"]["K"]
    assert point >= 100_000
    assert outcome.message == f"K={point}: yours {point + point // 100_000}, expected {point}"


def test_time_limit_zero_skips_the_proof() -> None:
    outcome = grade({**LOSS, "time_limit": 0}, "ln(K)")
    assert outcome.message.startswith("equal on ")
    assert outcome.details["proof"] == "sampled"


def test_sampling_is_deterministic() -> None:
    first = grade(CONV, "ceiling((H + 2*P - D*(K-1))/S)")
    assert grade(CONV, "ceiling((H + 2*P - D*(K-1))/S)").details == first.details


# -- wrong answers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "answer", "message"),
    [
        (CONV, "floor((H + P - D*(K-1) - 1)/S) + 1", "H=1, K=1, P=1, S=1, D=1: yours 2, expected 3"),  # wrong at P>0
        (CONV, "floor((H + 2*P - K)/S) + 1", "H=1, K=2, P=1, S=1, D=2: yours 2, expected 1"),  # wrong at D>1
        (CONV, "floor((H + 2*P - D*(K-1))/S)", "H=1, K=1, P=0, S=2, D=1: yours 0, expected 1"),
        (CONV, "(H + 2*P - D*(K-1) - 1)/S + 1", "H=1, K=1, P=1, S=3, D=1: yours 5/3, expected 1"),
        (GATED, "n", "m=1, n=2: yours 2, expected 1"),
        (ATTENTION, "k", "k=0, n=1: yours 0, expected 1"),
        (LOSS, "log(K, 2)", "K=2: yours 1, expected 0.69314718056 (= log(2))"),
        (ACCURACY, "1/(K-1)", "K=1: yours is undefined, expected 1"),
        (ACCURACY, 0.5, "K=1: yours 0.5, expected 1"),
        (ACCURACY, 1, "K=2: yours 1, expected 1/2"),
        (RECEPTIVE, "r*s + k", "r=1, s=1, k=1: yours 2, expected 1"),
        (PARAMS, "k**2*C_in*C_out", "k=1, C_in=1, C_out=1: yours 1, expected 2"),
        (MULTS, "H*W*k*C_in*C_out", "H=1, W=1, k=2, C_in=1, C_out=1: yours 2, expected 4"),
    ],
)
def test_wrong_answers_get_a_counterexample(options: dict[str, Any], answer: Any, message: str) -> None:
    outcome = grade(options, answer)
    assert outcome.resolved_status is Status.FAILED
    assert outcome.message == message


def test_a_formula_too_large_to_evaluate_needs_a_ta_not_a_zero() -> None:
    # Right (Min(K, 2**2**2**K) is K), but from K=4 on too large for exact arithmetic, and beyond SymPy's proof.
    outcome = grade({"expected": "K", "symbols": {"K": {"min": 1}}}, "Min(K, 2**2**2**K)")
    assert outcome.resolved_status is Status.GRADER_ERROR
    assert outcome.message.startswith("K=4: your formula is too large to evaluate exactly (at ")
    assert outcome.message.endswith(
        "of the points checked) and could not be proved equal; a TA will check it (simplifying it would let the grader do so)"
    )
    assert outcome.details["counterexample"] is None


def test_a_wrong_value_beside_a_too_large_one_is_still_a_counterexample() -> None:
    outcome = grade({"expected": "K", "symbols": {"K": {"min": 1}}}, "Min(K + 1, 2**2**2**K)")
    assert outcome.resolved_status is Status.FAILED
    assert outcome.message == "K=1: yours 2, expected 1"


def test_counterexample_details() -> None:
    outcome = grade(CONV, "floor((H + 2*P - K)/S) + 1")
    assert outcome.details["counterexample"] == {
        "point": {"H": 1, "K": 2, "P": 1, "S": 1, "D": 2}, "yours": "2", "expected": "1",
    }
    assert outcome.details["proof"] == "sampled"
    assert outcome.details["yours"] == "floor((H + 2*P - K)/S) + 1"
    assert outcome.details["expected"] == CONV["expected"]
    assert outcome.details["parsed"] == "floor((H - K + 2*P)/S) + 1"


def test_points_where_the_expected_formula_is_undefined_are_skipped() -> None:
    options = {"expected": "1/(K-1)", "symbols": {"K": {"min": 1}}}
    assert grade(options, "1/(K-1)").resolved_status is Status.PASSED
    assert grade(options, "1/K").message == "K=2: yours 1/2, expected 1"


# -- where the answer comes from --------------------------------------------------------------------------------


def test_markdown_answer_cell() -> None:
    cell = r"$$H_{out} = \left\lfloor \frac{H + 2P - D(K-1) - 1}{S} \right\rfloor + 1$$"
    outcome = grade(CONV, cell=cell)
    assert outcome.resolved_status is Status.PASSED
    assert outcome.details["yours"] == cell


def test_the_code_answer_wins_over_the_cell() -> None:
    outcome = grade(CONV, "H", cell=r"$\lfloor (H+2P-D(K-1)-1)/S \rfloor + 1$")
    assert outcome.resolved_status is Status.FAILED


def test_no_answer_at_all_is_an_error() -> None:
    outcome = grade(CONV)
    assert outcome.resolved_status is Status.ERROR
    assert outcome.message == "`conv_output_size` is not defined and there is no `Answer q1.1:` cell"


def test_a_worker_error_is_reported() -> None:
    outcome = grade(CONV, error="the worker died")
    assert outcome.message.endswith("(the worker died)")


@pytest.mark.parametrize(
    ("value", "cell", "message"),
    [
        ("floor((H - k)/S) + 1", None, "`conv_output_size` could not be read as a formula: unknown name 'k'; "
                                       "the symbols are H, K, P, S, D"),
        ("__import__('os').system('ls')", None, "unknown name '__import__'"),
        (None, "$H_{out} = \\foo$", "your `Answer q1.1:` cell could not be read as a formula: "
                                    "unsupported LaTeX command '\\foo'"),
        ((1, 2), None, "`conv_output_size` is a tuple, not a formula"),
        (True, None, "`conv_output_size` is a bool, not a formula"),
        (Opaque("function", "<function f>"), None, "`conv_output_size` is a function, not a formula"),
    ],
)
def test_unreadable_answers_fail_with_a_message(value: Any, cell: str | None, message: str) -> None:
    outcome = grade(CONV, value, cell)
    assert outcome.resolved_status is Status.FAILED
    assert message in outcome.message


# -- options ----------------------------------------------------------------------------------------------------


def test_registered_kind() -> None:
    assert get_kind("formula").Options is FormulaOptions


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({**CONV, "expected": "floor((H - X)/S)"}, "unknown name 'X'"),
        ({**CONV, "constraints": ["H + Q >= 1"]}, "unknown name 'Q'"),
        ({**CONV, "constraints": ["H + 1"]}, "needs a relation"),
        ({**CONV, "constraints": ["H >= 100"]}, "no point of the box satisfies the constraints"),
        ({"expected": "K", "symbols": {"K": {"min": 3, "max": 2}}}, "max 2 is below min 3"),
        ({"expected": "K", "symbols": {"floor": {"min": 1}}}, "'floor' cannot be a symbol name"),
        ({**CONV, "tolerance": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        FormulaOptions.model_validate(options)
    assert message in str(info.value)


def test_bounded_symbols_stay_in_range() -> None:
    options = {"expected": "K", "symbols": {"K": {"min": 2, "max": 3}}}
    outcome = grade(options, "Min(K, 3)")
    assert outcome.resolved_status is Status.PASSED
    assert outcome.details["points"] == 2


# -- the evaluator and the proof --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "point", "value"),
    [
        ("floor((H - K)/S) + 1", (7, 3, 2), 3),
        ("ceiling(H/S)", (7, 3, 2), 4),
        ("H/S", (7, 3, 2), Fraction(7, 2)),
        ("sqrt(H + 2)", (7, 3, 2), 3),
        ("Mod(H, S)", (7, 3, 2), 1),
        ("Max(H, K) - Min(H, K)", (7, 3, 2), 4),
        ("floor(log(8)/log(2))", (7, 3, 2), 3),  # a float within rounding of an integer floors to it
    ],
)
def test_exact_evaluation(text: str, point: tuple[int, ...], value: Any) -> None:
    symbols = make_symbols(["H", "K", "S"])
    from grader.formula.mathparse import parse_expression

    evaluate = compile_formula(parse_expression(text, symbols), list(symbols.values()))
    assert evaluate(point) == value


@pytest.mark.parametrize(
    ("text", "error"),
    [("1/(H - 7)", Undefined), ("log(H - 7)", Undefined), ("sqrt(K - H)", Undefined), ("2**2**2**H", TooLarge)],
)
def test_undefined_values(text: str, error: type[Exception]) -> None:
    symbols = make_symbols(["H", "K"])
    from grader.formula.mathparse import parse_expression

    evaluate = compile_formula(parse_expression(text, symbols), list(symbols.values()))
    with pytest.raises(error):
        evaluate((7, 3))


def test_a_proof_in_any_thread() -> None:
    """A batch's slots are threads: a formula is proved there as in the main thread (grader.timeouts)."""
    k = sympy.Symbol("k", integer=True)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(prove_equal(k + 1, 1 + k, 5)))
    thread.start()
    thread.join()
    assert results == [True]
    assert prove_equal(k + 1, 1 + k, 5) is True
    assert prove_equal(k + 1, k, 5) is False


def test_an_outer_timer_survives_the_proof() -> None:
    import signal

    before_handler = signal.getsignal(signal.SIGALRM)
    before_remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    k = sympy.Symbol("k", integer=True)
    assert prove_equal(k + 1, 1 + k, 5) is True
    assert signal.getsignal(signal.SIGALRM) is before_handler
    after_remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    assert (after_remaining > 0) == (before_remaining > 0)
    assert after_remaining <= before_remaining


def test_an_expected_formula_undefined_on_the_whole_box_is_a_rubric_error() -> None:
    with pytest.raises(ValidationError, match="expected formula defined"):
        FormulaOptions.model_validate({"expected": "1/(K - K)", "symbols": {"K": {"min": 1}}})
