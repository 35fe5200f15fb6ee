"""Checking one question against a kit: the grading's own checks where they need no reference, kit
counterparts (stored outputs instead of the reference) where they do.

The kit is turned into a `Rubric` of its checked public questions, so that a `CheckContext` is the grading's
own and `ValueCheck`, `ForbidCheck`, `TrainingCheck`, the forbid gate, `FunctionCheck`'s per-case comparison
and the formula answer reader all run unchanged: the same messages, explanations and scores as grading.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from grader.checks.base import CheckContext
from grader.checks.formula import read_answer
from grader.checks.function import FunctionCheck, Plan
from grader.checks.gradient import gradient_outcome, judge
from grader.checks.support.cases import Case as Labelled
from grader.checks.support.cases import CaseVerdict, OutputOf, case, roll_up
from grader.checks.support.compare import Tolerance
from grader.checks.support.shrink import as_held
from grader.errors import GraderError
from grader.formula.problem import FormulaProblem, TooLarge, Undefined, Unsupported, compile_formula, show_value
from grader.grading.submission import run_question
from grader.kit.hashing import matches
from grader.kit.schema import (
    Case,
    FormulaData,
    FunctionData,
    GradientData,
    KitFile,
    KitQuestion,
    decoded,
)
from grader.results import Outcome, QuestionResult
from grader.rubric.kinds import get_kind, kind_spec, load
from grader.rubric.options import FormulaOptions
from grader.rubric.schema import Question, QuestionSpec, Rubric, RubricSpec

log = logging.getLogger(__name__)

KIT_REFERENCE = "(none: a kit holds no reference)"


def as_rubric(kit: KitFile, path: Path) -> Rubric:
    """The kit's checked public questions as a rubric, for the grading's `CheckContext`."""
    questions = [q for q in kit.questions if q.checked]
    specs = [_spec(q) for q in questions]
    spec = RubricSpec(assignment=kit.assignment, title=kit.title, reference=KIT_REFERENCE, total=None, seed=kit.seed,
                      limits=kit.limits, questions=specs)
    return Rubric(path, spec, tuple(Question(s, _options(q)) for s, q in zip(specs, questions)), kit.rubric_sha256)


def _spec(q: KitQuestion) -> QuestionSpec:
    return QuestionSpec(id=q.id, title=q.title, points=q.points, kind=q.kind, answer=q.answer,
                        timeout=q.timeout, forbid=q.forbid)


def _options(q: KitQuestion) -> BaseModel:
    """The options a reused grading check reads; the kit's own data for the kit counterparts."""
    return q.check.check_options()


def reference_for(q: KitQuestion) -> ModuleType:
    """A stand-in for the reference module holding only the question's public data: `ValueCheck` reads the
    expected value as the reference's attribute of the answer's name, as it does in grading."""
    module = ModuleType("kit_data")
    if q.answer:
        for name, value in q.check.reference_values(q.answer).items():
            setattr(module, name, value)
    return module


# -- kit counterparts of the checks that need the reference ------------------------------------------------------


def _cases(cases: list[Case]) -> list[tuple[Labelled, Any]]:
    """The stored cases with their labels (shown before the inputs in every message, as in grading)."""
    return [(case(c.label, **dict(zip(c.names, (decoded(a) for a in c.args)))), decoded(c.expected)) for c in cases]


def check_function(ctx: CheckContext) -> Outcome:
    data = ctx.question.options_as(FunctionData)
    pairs = _cases(data.cases)
    cases: list[dict[str, Any]] = [case(c.label, **{k: _chain(v) for k, v in c.items()}) for c, _ in pairs]
    expected = {id(case): output for case, (_, output) in zip(cases, pairs)}
    after = {id(case): {k: decoded(v) for k, v in stored.after.items()} for case, stored in zip(cases, data.cases)}
    plan = Plan(
        None if data.output is None else tuple(data.output),
        {k: None if v is None else tuple(v) for k, v in data.after.items()},
    )
    tol = Tolerance(data.rtol, data.atol)
    one = FunctionCheck().compare_case  # the grading's own comparison of one case, given the expected output

    failing: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def check(case: dict[str, Any]) -> CaseVerdict:
        verdict = one(ctx, case, expected[id(case)], tol, data.pure, plan, after[id(case)])
        if verdict.problem is not None and not verdict.unanswered and not failing:
            failing.append((case, verdict.details))
        return verdict

    return _with_values(ctx, roll_up(cases, check, data.partial), cases, failing)


def _with_values(
    ctx: CheckContext, outcome: Outcome, cases: list[dict[str, Any]], failing: list[tuple[dict[str, Any], dict[str, Any]]]
) -> Outcome:
    """The outcome with the failing input's values (or how to load it from the kit), as grading shows the
    reproduction, so that a student can run it without submitting."""
    if not failing or outcome.fraction >= 1:
        return outcome
    case, info = failing[0]
    n = next(i for i, c in enumerate(cases, 1) if c is case)
    rebuild = ["from grader import kit",
               f"args = kit.load({str(ctx.rubric.path)!r}).inputs({ctx.question.id!r}, {n})  # test input {n} of {len(cases)}"]
    found = as_held(ctx.answer, case, info, rebuild)
    if found is None:
        return outcome
    return Outcome(outcome.fraction, outcome.message, {**outcome.details, "reproduce": found.serialize()}, outcome.status)


def _chain(value: Any) -> Any:
    """A stored chained argument (`grader.kit.build.chain_to_plain`) made an `OutputOf` again."""
    if not (isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$output_of"), dict)):
        return value
    body = value["$output_of"]
    item = body.get("item")
    return OutputOf(
        str(body.get("function")),
        tuple(_chain(a) for a in body.get("args") or ()),
        {str(k): _chain(v) for k, v in (body.get("kwargs") or {}).items()},
        item if isinstance(item, (int, str)) and not isinstance(item, bool) else None,
    )


def check_gradient(ctx: CheckContext) -> Outcome:
    data = ctx.question.options_as(GradientData)
    pairs = _cases(data.cases)
    stored = {id(c): expected for c, expected in pairs}

    failing: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def one(case: dict[str, Any]) -> CaseVerdict:
        result = ctx.session.call(ctx.answer, list(case.values()), timeout=ctx.timeout)
        verdict = judge(ctx.answer, case, stored[id(case)], result, data.max_rel_error)
        if verdict.problem is not None and not verdict.unanswered and not failing:
            failing.append((case, verdict.details))
        return verdict

    cases: list[dict[str, Any]] = [c for c, _ in pairs]
    return _with_values(ctx, gradient_outcome(cases, one, data.max_rel_error), cases, failing)


def formula_problem(data: FormulaData) -> FormulaProblem:
    """The question's symbols, constraints and point printing, as grading sets them up.  A kit has no expected
    formula: the placeholder `0` is never compared with anything (the stored hashes are)."""
    options = FormulaOptions.model_validate(
        {"expected": "0", "symbols": dict(data.symbols), "constraints": data.constraints, "random_points": 0,
         "time_limit": 0, "rtol": data.rtol}
    )
    return FormulaProblem(options)


def check_formula(ctx: CheckContext) -> Outcome:
    data = ctx.question.options_as(FormulaData)
    problem = formula_problem(data)
    answer = read_answer(ctx, problem.symbols)
    if isinstance(answer, Outcome):
        return answer
    expr, raw = answer
    details: dict[str, Any] = {"yours": raw, "parsed": str(expr)}
    try:
        evaluate = compile_formula(expr, problem.order)
    except Unsupported as exc:
        return Outcome.failed(f"your formula uses {exc}, which is not part of a formula here", **details)
    for count, (point, stored) in enumerate(zip(data.points, data.hashes), 1):
        try:
            yours = evaluate(point)
        except Undefined as exc:
            shown = "too large to evaluate" if isinstance(exc, TooLarge) else "undefined"
            ok = False
        else:
            shown = show_value(yours)
            ok = matches(data.salt, point, yours, stored)
        if not ok:
            where = problem.show_point(tuple(point))
            counterexample = {"point": dict(zip(problem.names, point)), "yours": shown}
            return Outcome.failed(f"{where}: yours {shown}, not the expected value", proof="sampled", points=count,
                                  counterexample=counterexample, **details)
    return Outcome.passed(f"equal on {len(data.points)} points of the domain", proof="sampled",
                          points=len(data.points), counterexample=None, **details)


Runner = Callable[[CheckContext], Outcome]


def runner(kind: str) -> Runner:
    """How a kit checks a question of `kind`: its entry's `kit_check`, else the grading's own check."""
    spec = kind_spec(kind)
    if spec.kit_check is not None:
        return load(spec.kit_check)  # type: ignore[no-any-return]
    return get_kind(kind).run


def run_kit_question(ctx: CheckContext) -> QuestionResult:
    """One question, as grading runs it (`grader.grading.submission.run_question`: the forbid gate first, then
    the check), with the kit's checks; a check that crashes stops the kit check with one line (no TA looks)."""
    return run_question(ctx, _kit_check, _stop)


def _kit_check(ctx: CheckContext) -> Outcome:
    return runner(ctx.question.spec.kind)(ctx)


def _stop(ctx: CheckContext, exc: Exception) -> Outcome:
    """A crash in a checker is the grader's own failure, never a student's."""
    if isinstance(exc, GraderError):
        raise exc
    log.exception("kit check %s crashed on %s", ctx.question.id, ctx.submission.path)
    raise GraderError(f"the kit check of {ctx.question.id} crashed: {exc!r}") from exc
