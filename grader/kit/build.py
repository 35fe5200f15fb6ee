"""Making a kit (the author's side): the rubric's public questions, with the reference's outputs as data.

This is the only part of `grader.kit` that imports the reference.  What it writes per kind (its registry entry's
`kit_build`, grader.rubric.kinds):

* function, gradient: the grading's own test inputs of the question and the reference's outputs on them
  (for a gradient, autograd's gradient through the reference forward, cross-checked as in grading);
* value: the expected value;
* formula: the domain, sample points and a salted hash of the expected value at each (`grader.kit.hashing`);
* forbid: the API list; training: the data recipe and the tiers;
* property and manual: only that they are checked when graded.

Hidden questions are left out entirely; only their number and points are kept, so a check can say how many
points it cannot see.  Neither rubric text beyond titles nor reference names (generators, predicates,
reference functions) are written.
"""
from __future__ import annotations

import hashlib
import random
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel

from grader import __version__
from grader.checks.function import Plan, reference_side
from grader.checks.gradient import expected_gradient
from grader.checks.support.cases import OutputOf, clone, generate_cases
from grader.errors import GraderError
from grader.formula.problem import FormulaProblem, Point
from grader.kit.hashing import canonical, point_hash
from grader.kit.schema import (
    Case,
    CheckRecord,
    ForbidData,
    FormulaData,
    FunctionData,
    GradientData,
    KitFile,
    KitQuestion,
    NotChecked,
    TrainingData,
    ValueData,
)
from grader.rubric.kinds import kind_spec, load
from grader.rubric.options import (
    ForbidOptions,
    FormulaOptions,
    FunctionOptions,
    GradientOptions,
    TrainingOptions,
    ValueOptions,
)
from grader.rubric.schema import Question, Rubric
from grader.worker import codec
from grader.worker.codec import Opaque

_Model = TypeVar("_Model", bound=BaseModel)

FORMULA_POINTS = 200  # sample points per formula question
CORNER_POINTS = 40  # of which the first ones of the grading's box, where off-by-one formulas differ


def build_kit(rubric: Rubric) -> KitFile:
    reference = rubric.load_reference()
    public = [q for q in rubric.questions if q.spec.visibility == "public"]
    hidden = [q for q in rubric.questions if q.spec.visibility != "public"]
    return KitFile(
        assignment=rubric.assignment,
        title=rubric.spec.title,
        grader_version=__version__,
        rubric_sha256=rubric.sha256,
        seed=rubric.spec.seed,
        limits=rubric.limits,
        total=rubric.max_score,
        hidden_points=sum(q.spec.points for q in hidden),
        hidden_questions=len(hidden),
        questions=[_question(rubric, q, reference) for q in public],
        requires=list(rubric.requires),
    )


def _question(rubric: Rubric, q: Question, reference: ModuleType) -> KitQuestion:
    where = f"{rubric.path.name}: {q.id}"
    kind = kind_spec(q.spec.kind)
    check: CheckRecord
    if kind.kit_build is None:
        check = NotChecked(kind=kind.name, reason=kind.kit_unchecked or "checked only when graded")
    else:
        check = load(kind.kit_build)(KitSource(rubric, q, reference, where))
    return KitQuestion(
        id=q.id, title=q.spec.title, points=q.spec.points, answer=q.spec.answer, timeout=q.spec.timeout,
        forbid=list(q.spec.forbid), check=check,
    )


class KitSource:
    """What a kind's kit builder (its entry's `kit_build`) reads: the question, its options, the reference (grader
    side only)."""

    def __init__(self, rubric: Rubric, question: Question, reference: ModuleType, where: str) -> None:
        self.rubric, self.question, self.reference, self.where = rubric, question, reference, where

    def options_as(self, model: type[_Model]) -> _Model:
        return self.question.options_as(model)

    def attr(self, name: str) -> Any:
        try:
            return getattr(self.reference, name)
        except AttributeError:
            raise GraderError(f"{self.where}: reference module has no '{name}'") from None

    def seed(self, override: int | None) -> int:
        return self.rubric.spec.seed if override is None else override

    def encode(self, value: Any, what: str) -> Any:
        data = codec.encode(value)
        if _has_opaque(codec.decode(data)):
            raise GraderError(f"{self.where}: {what} is not plain data and cannot go into a kit")
        return data


def _has_opaque(value: Any) -> bool:
    if isinstance(value, Opaque):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_opaque(v) for v in value)
    if isinstance(value, dict):
        return any(_has_opaque(k) or _has_opaque(v) for k, v in value.items())
    return False


def _case(src: KitSource, case: dict[str, Any], expected: Any, after: dict[str, Any] | None = None) -> Case:
    return Case(
        label=str(getattr(case, "label", "") or ""),
        names=list(case),
        args=[src.encode(chain_to_plain(v), f"the test input `{k}`") for k, v in case.items()],
        expected=src.encode(expected, "the reference's output"),
        after={k: src.encode(v, f"the reference's `{k}` after the call") for k, v in (after or {}).items()},
    )


def chain_to_plain(value: Any) -> Any:
    """A chained argument (`output_of`) as plain data: the function's name, its inputs, the item taken.

    The kit check gives it back to `FunctionCheck`, which calls the student's own function, as grading does.
    """
    if not isinstance(value, OutputOf):
        return value
    return {"$output_of": {
        "function": value.function,
        "args": [chain_to_plain(a) for a in value.args],
        "kwargs": {k: chain_to_plain(v) for k, v in value.kwargs.items()},
        "item": value.item,
    }}


def build_function(src: KitSource) -> FunctionData:
    opts = src.options_as(FunctionOptions)
    fn = src.attr(opts.reference or src.question.spec.answer or "")
    cases = generate_cases(src.attr(opts.cases), src.seed(opts.seed), src.where)
    plan = Plan.of(opts)
    stored = [_case(src, case, *reference_side(src.reference, fn, case, plan, src.where)) for case in cases]
    return FunctionData(
        cases=stored, rtol=opts.rtol, atol=opts.atol, pure=opts.pure, partial=opts.partial,
        output=None if plan.outputs is None else list(plan.outputs),
        after={k: None if v is None else list(v) for k, v in plan.after.items()},
    )


def build_gradient(src: KitSource) -> GradientData:
    opts = src.options_as(GradientOptions)
    forward = src.attr(opts.forward)
    at = src.attr(opts.at) if opts.at else None
    stored = []
    for case in generate_cases(src.attr(opts.cases), src.seed(opts.seed), src.where):
        point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
        stored.append(_case(src, case, expected_gradient(forward, case, opts, point)))
    return GradientData(cases=stored, max_rel_error=opts.max_rel_error)


def build_value(src: KitSource) -> ValueData:
    opts = src.options_as(ValueOptions)
    expected = opts.expected
    if expected is None:
        expected = src.attr(opts.reference or src.question.spec.answer or "")
    return ValueData(expected=src.encode(expected, "the expected value"), rtol=opts.rtol, atol=opts.atol)


def build_formula(src: KitSource) -> FormulaData:
    opts = src.options_as(FormulaOptions)
    problem = FormulaProblem(opts)
    # The salt is fixed by the rubric and the question, so one rubric always makes the same kit; it is public
    # (it is in the kit), its use is only that hashes from one kit say nothing about another's.
    salt = hashlib.sha256(f"{src.rubric.sha256}:{src.question.id}".encode()).hexdigest()[:32]
    chosen = [(p, v) for p in _sample_points(src, problem) if (v := problem.expected_at(p)) is not None]
    return FormulaData(
        symbols=list(opts.symbols.items()),
        constraints=list(opts.constraints),
        salt=salt,
        points=[list(p) for p, _ in chosen],
        hashes=[point_hash(salt, p, canonical(v)) for p, v in chosen],
        rtol=opts.rtol,
    )


def _sample_points(src: KitSource, problem: FormulaProblem) -> list[Point]:
    """A spread of the points grading evaluates: the box's first corner points, a seeded sample of the rest of
    the box, then the grading's own random points (same rng as `grader.checks.formula`)."""
    box = [p for p in problem.points(random.Random(0), random_points=0) if problem.expected_at(p) is not None]
    grading = random.Random(f"{src.rubric.spec.seed}:{src.question.id}")
    box_set = set(box)
    beyond = [p for p in problem.points(grading) if p not in box_set and problem.expected_at(p) is not None]
    corner, rest = box[:CORNER_POINTS], box[CORNER_POINTS:]
    wanted = FORMULA_POINTS - len(corner)
    far = beyond[: wanted // 2]
    picks = random.Random(f"kit:{src.question.id}").sample(range(len(rest)), min(len(rest), wanted - len(far)))
    return corner + [rest[i] for i in sorted(picks)] + far


def build_forbid(src: KitSource) -> ForbidData:
    opts = src.options_as(ForbidOptions)
    return ForbidData(apis=list(opts.apis), function=opts.function)


def build_training(src: KitSource) -> TrainingData:
    opts = src.options_as(TrainingOptions)
    data = opts.data.model_copy(update={"seed": src.seed(opts.data.seed)})
    return TrainingData(options=opts.model_copy(update={"data": data}))
