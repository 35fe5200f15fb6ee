"""`formula`: a symbolic answer (text, a SymPy expression or a LaTeX Answer cell) against the expected formula.

The student's formula is parsed by the whitelist parser (`grader.formula.mathparse`, `grader.formula.latex`), never evaluated
as code.  Equivalence is decided on the question's integer domain: every point of a small box at the domain's
corner, seeded random points further out, and seeded points at large values (a formula wrong only past
H = 1000 is caught), evaluated exactly (fractions; floor and ceiling exact) by an evaluator of our own.  A
counterexample fails the answer.  Once the first points agree, a time-limited SymPy proof is tried: "proved
equal" passes the answer without the thousands of points left; without a proof every point must agree
("equal on N points").  The whole check (reading the formula, every point, the proof) has a time budget.
"""
from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Mapping
from typing import Any

import sympy

from grader.checks.base import CheckContext
from grader.checks.details.formula import Counterexample as Counterexample
from grader.checks.details.formula import FormulaDetails as FormulaDetails
from grader.errors import GraderError
from grader.formula.latex import parse_answer_cell, parse_latex
from grader.formula.mathparse import ParseError, parse_expression
from grader.formula.problem import (
    EXACT as EXACT,  # kept importable from here, as are the problem and evaluator names
)
from grader.formula.problem import (
    Budget,
    Evaluator,
    FormulaProblem,
    OutOfTime,
    Point,
    TooLarge,
    Undefined,
    Unsupported,
    Value,
    alarm,
    compile_formula,
    prove_equal,
    same_value,
    show_value,
)
from grader.results import Outcome, Status
from grader.rubric.options import FormulaOptions
from grader.rubric.options import SymbolDomain as SymbolDomain  # kept importable from here
from grader.worker.codec import Opaque, SympyText

# -- the check --------------------------------------------------------------------------------------------------


class FormulaCheck:
    Options = FormulaOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(FormulaOptions)
        budget = Budget(opts.budget)
        details: dict[str, Any] = {"expected": opts.expected}
        try:
            with alarm(opts.budget):
                problem = FormulaProblem(opts)
                answer = read_answer(ctx, problem.symbols)
                if isinstance(answer, Outcome):
                    return answer
                expr, raw = answer
                details.update(yours=raw, parsed=_shown(expr))
                return _judged(ctx, problem, expr, details, budget)
        except OutOfTime:
            # Not a verdict: nothing showed the answer wrong, the grader ran out of its own time first.
            message = f"your formula is too large for the grader to check in {opts.budget:g} s; {NEEDS_TA}"
            return Outcome(0.0, message, {**details, "proof": "timeout"}, Status.GRADER_ERROR)


# A class has a few distinct formulas per question: each parsed answer is judged once per grading process.
_JUDGED: dict[tuple[object, ...], Outcome] = {}
JUDGED_CACHE = 512
_JUDGED_LOCK = threading.Lock()


def _judged(
    ctx: CheckContext, problem: FormulaProblem, expr: sympy.Expr, details: dict[str, Any], budget: Budget
) -> Outcome:
    """`judge`, remembered by the question's setting and the parsed answer; the student's own text is theirs."""
    key = (ctx.seed, ctx.question.id, problem.options.model_dump_json(), sympy.srepr(expr))
    cached = _JUDGED.get(key)
    if cached is None:
        cached = judge(problem, expr, _rng(ctx), details, budget)
        with _JUDGED_LOCK:  # slots of a batch are threads
            while len(_JUDGED) >= JUDGED_CACHE:
                _JUDGED.pop(next(iter(_JUDGED)))
            _JUDGED[key] = cached
    return dataclasses.replace(cached, details={k: details.get(k, v) for k, v in cached.details.items()})


def _shown(expr: sympy.Expr) -> str:
    text = str(expr)
    return text if len(text) <= 2000 else text[:2000] + "..."


def _rng(ctx: CheckContext) -> random.Random:
    # The same points for every student of a question: a seed of the rubric's seed and the question id.
    return random.Random(f"{ctx.seed}:{ctx.question.id}")


NEEDS_TA = "a TA will check it (simplifying it would let the grader do so)"

# Points compared before the proof is tried: the sampled check goes on past them only when the proof fails.
PROBE_POINTS = 64


def judge(
    problem: FormulaProblem, expr: sympy.Expr, rng: random.Random, details: dict[str, Any], budget: Budget | None = None
) -> Outcome:
    """A counterexample fails the answer; a proof (tried after the first PROBE_POINTS agree) passes it at once;
    otherwise every point must agree.  Raises OutOfTime when `budget` runs out first."""
    budget = budget or Budget(problem.options.budget)
    try:
        evaluate = compile_formula(expr, problem.order)
    except Unsupported as exc:
        return Outcome.failed(f"your formula uses {exc}, which is not part of a formula here", **details)
    count = 0
    # Points where yours is too large to evaluate exactly, the first of them: neither agreement nor a counterexample.
    undecided = 0
    first_undecided: Point | None = None
    proof_tried = False
    for point, is_large in problem.labelled_points(rng):
        if count == PROBE_POINTS and not proof_tried:
            # A wrong answer almost always fails at one of the first points (the domain's corner); a right one
            # is then proved in about a millisecond, and the thousands of points left would add nothing.
            proof_tried = True
            if prove_equal(expr, problem.expected, min(problem.options.time_limit, budget.left())):
                return Outcome.passed("proved equal", proof="symbolic", points=count, counterexample=None,
                                      **details)
        budget.check()
        expected = problem.expected_at(point)
        if expected is None:
            continue  # outside the formula's own domain: nothing to compare
        message = _disagreement(evaluate, point, expected, problem.options.rtol)
        if message and message[1] == "too large":
            # A value too large for exact arithmetic proves nothing either way (Min(K, 2**2**2**K) is K).
            if not is_large:
                undecided += 1
                first_undecided = first_undecided or point
            continue
        count += 1
        if message:
            where = problem.show_point(point)
            counterexample = {"point": dict(zip(problem.names, point)), "yours": message[1],
                              "expected": show_value(expected)}
            return Outcome.failed(f"{where}: {message[0]}", proof="sampled", points=count,
                                  counterexample=counterexample, **details)
    if count == 0 and not undecided:
        raise GraderError("the formula question's domain has no point where the expected formula is defined")
    if not proof_tried and prove_equal(expr, problem.expected, min(problem.options.time_limit, budget.left())):
        return Outcome.passed("proved equal", proof="symbolic", points=count, counterexample=None, **details)
    if first_undecided is not None:
        where = problem.show_point(first_undecided)
        text = (f"{where}: your formula is too large to evaluate exactly (at {undecided} of the points checked) "
                f"and could not be proved equal; {NEEDS_TA}")
        return Outcome(0.0, text, {**details, "proof": "sampled", "points": count, "counterexample": None},
                       Status.GRADER_ERROR)
    return Outcome.passed(f"equal on {count} points of the domain", proof="sampled", points=count,
                          counterexample=None, **details)


def _disagreement(evaluate: Evaluator, point: Point, expected: Value, rtol: float) -> tuple[str, str] | None:
    """None where the answer agrees; else (message, your value as text)."""
    shown = show_value(expected)
    try:
        yours = evaluate(point)
    except TooLarge:
        return f"yours is too large to evaluate, expected {shown}", "too large"
    except Undefined:
        return f"yours is undefined, expected {shown}", "undefined"
    if same_value(yours, expected, rtol):
        return None
    return f"yours {show_value(yours)}, expected {shown}", show_value(yours)


# -- reading the answer -----------------------------------------------------------------------------------------

_EXAMPLE = '"floor((H - K)/S) + 1"'


def read_answer(ctx: CheckContext, symbols: Mapping[str, sympy.Symbol]) -> tuple[sympy.Expr, str] | Outcome:
    """The student's formula and its text; the code answer wins over an `Answer qX.Y:` cell."""
    name = ctx.question.spec.answer
    qid = ctx.question.id
    got = ctx.session.get(name) if name else None
    if got is not None and got.exists:
        return _from_value(name or "", got.value, symbols)
    cell = ctx.submission.answers.get(qid)
    if cell is not None:
        try:
            return parse_answer_cell(cell, symbols), cell
        except ParseError as exc:
            return Outcome.failed(f"your `Answer {qid}:` cell could not be read as a formula: {exc}", yours=cell)
    if got is not None and got.unread:  # the worker could not say (time up, a dead worker): not "not defined"
        return Outcome.error(got.error)
    missing = f"`{name}` is not defined and there is no `Answer {qid}:` cell" if name else f"there is no `Answer {qid}:` cell"
    if got is not None and got.error:
        missing += f" ({got.error})"
    return Outcome.error(missing)


def _from_value(name: str, value: Any, symbols: Mapping[str, sympy.Symbol]) -> tuple[sympy.Expr, str] | Outcome:
    if isinstance(value, (str, SympyText)):
        text = value if isinstance(value, str) else value.text
        try:
            return _parse_text(text, symbols), text
        except ParseError as exc:
            return Outcome.failed(f"`{name}` could not be read as a formula: {exc}", yours=text)
    if isinstance(value, int) and not isinstance(value, bool):
        return sympy.Integer(value), str(value)
    if isinstance(value, float) and math.isfinite(value):
        return sympy.Float(value), repr(value)
    kind = value.type_name if isinstance(value, Opaque) else type(value).__name__
    return Outcome.failed(f"`{name}` is a {kind}, not a formula (write a string such as {_EXAMPLE} "
                          "or a SymPy expression)", yours=str(value)[:200])


def _parse_text(text: str, symbols: Mapping[str, sympy.Symbol]) -> sympy.Expr:
    """Python/SymPy syntax; a string holding LaTeX (r"\\frac{1}{K}") is read as LaTeX."""
    try:
        return parse_expression(text, symbols)
    except ParseError as text_error:
        if "\\" not in text:
            raise
        try:
            return parse_latex(text.strip().strip("$"), symbols)
        except ParseError:
            raise text_error from None
