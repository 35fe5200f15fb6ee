"""`gradient`: a hand-written gradient against autograd through the reference forward, in float64.

The expected gradient is autograd's, and autograd itself is cross-checked by central finite differences on a
few coordinates, so a wrong reference is caught as an authoring error rather than graded into students.
"""
from __future__ import annotations

import weakref
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
import torch

from grader.checks.base import CheckContext, question_seed
from grader.checks.details.gradient import GradientDetails as GradientDetails
from grader.checks.function import call_failure
from grader.checks.support.cases import CaseVerdict, clone, generate_cases, label, rebuilder, same_kind, tally
from grader.checks.support.compare import describe, is_array, relative_error, to_numpy
from grader.checks.support.diagnose import around, diagnose, diagnose_shapes
from grader.checks.support.shrink import Contract, reproduction
from grader.errors import ReferenceError_
from grader.execution.session import CallResult
from grader.results import Outcome
from grader.rubric.options import GradientOptions

if TYPE_CHECKING:
    from grader.rubric.schema import Question, Rubric


def expected_gradient(forward: Callable[..., Any], case: dict[str, Any], opts: GradientOptions, point: torch.Tensor) -> torch.Tensor:
    kwargs = {k: clone(v) for k, v in case.items() if k != opts.upstream}
    variable = point.detach().clone().to(torch.float64).requires_grad_(True)
    kwargs[opts.wrt] = variable

    def f(v: torch.Tensor) -> torch.Tensor:
        out = forward(**{**kwargs, opts.wrt: v})
        if opts.upstream is not None:
            total: torch.Tensor = (out * case[opts.upstream].to(out.dtype)).sum()
            return total
        return cast(torch.Tensor, out)

    if opts.upstream is not None:
        (grad,) = torch.autograd.grad(f(variable), variable)
    else:
        grad = torch.autograd.functional.jacobian(f, variable)
    _finite_difference_check(f, variable.detach(), grad, opts)
    return grad.detach()


def reference_output(reference: ModuleType, q: Question, case: dict[str, Any], where: str) -> torch.Tensor:
    """The expected gradient on one case of `q` (the kind's `reference_output`, for hidden questions' data)."""
    opts = q.options_as(GradientOptions)
    at = getattr(reference, opts.at) if opts.at else None
    point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
    return expected_gradient(getattr(reference, opts.forward), case, opts, point)


def _finite_difference_check(f: Callable[[torch.Tensor], torch.Tensor], point: torch.Tensor, grad: torch.Tensor, opts: GradientOptions) -> None:
    eps = 1e-6
    gen = torch.Generator().manual_seed(1234)
    flat = point.reshape(-1)
    picks = torch.randperm(flat.numel(), generator=gen)[: opts.fd_coordinates]
    out_shape = grad.shape[: grad.dim() - point.dim()]
    grad_cols = grad.reshape(*out_shape, -1) if point.dim() else grad.reshape(*out_shape, 1)
    for i in picks.tolist():
        step = torch.zeros_like(flat)
        step[i] = eps
        with torch.no_grad():
            plus = f((flat + step).reshape(point.shape))
            minus = f((flat - step).reshape(point.shape))
        numeric = ((plus - minus) / (2 * eps)).detach()
        analytic = grad_cols[..., i]
        if relative_error(to_numpy(analytic).reshape(-1), to_numpy(numeric).reshape(-1)) > 1e-5 and float(
            (analytic - numeric).abs().max()
        ) > 1e-6:
            raise ReferenceError_(
                f"the reference's autograd gradient disagrees with finite differences at coordinate {i}"
            )


def gradient_error(expected: torch.Tensor, got: Any) -> tuple[float | None, str]:
    """CS231n-style relative error of a whole tensor, or why it cannot be computed."""
    if not is_array(got):
        return None, f"expected a tensor of shape {tuple(expected.shape)}, got {describe(got)}"
    g = to_numpy(got).astype(np.float64)
    e = to_numpy(expected).astype(np.float64)
    if g.shape != e.shape:
        return None, f"expected shape {tuple(e.shape)}, got shape {tuple(g.shape)}"
    if not np.all(np.isfinite(g)):
        return None, "the gradient has non-finite values"
    scale = max(float(np.max(np.abs(e), initial=0.0)) + float(np.max(np.abs(g), initial=0.0)), 1e-12)
    return float(np.max(np.abs(e - g), initial=0.0)) / scale, ""


class GradientCheck:
    Options = GradientOptions

    def preflight(self, rubric: Rubric, question: Question, reference: ModuleType) -> None:
        """The reference's gradients on every case, once, before any student code runs: a reference whose
        autograd disagrees with finite differences stops the run here (ReferenceError_), not in a student's."""
        opts = question.options_as(GradientOptions)
        where = f"{rubric.path.name}: {question.id}"
        forward = getattr(reference, opts.forward)
        at = getattr(reference, opts.at) if opts.at else None
        for case in generate_cases(getattr(reference, opts.cases), question_seed(rubric, question, opts.seed), where):
            point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
            try:
                expected_gradient(forward, case, opts, point)
            except ReferenceError_ as exc:
                raise ReferenceError_(f"{where}: {exc}") from None

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(GradientOptions)
        where = f"{ctx.rubric.path.name}: {ctx.question.id}"
        forward = ctx.reference_attr(opts.forward)
        at = ctx.reference_attr(opts.at) if opts.at else None
        cases, gradients = _reference_gradients(ctx, opts, where)
        known = {id(case): grad for case, grad in zip(cases, gradients)}

        def one(case: dict[str, Any]) -> CaseVerdict:
            expected = known.get(id(case))
            if expected is None:  # a shrunk case: the reference's gradient on it is computed here
                point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
                expected = expected_gradient(forward, case, opts, point)
            result = ctx.session.call(ctx.answer, [clone(v) for v in case.values()], timeout=ctx.timeout)
            return judge(ctx.answer, case, expected, result, opts.max_rel_error)

        outcome = gradient_outcome(cases, one, opts.max_rel_error)
        failing = outcome.details.get("case_index")
        # A point computed by `at` from the inputs may not survive smaller inputs: only plain cases are shrunk.
        if isinstance(failing, int) and ctx.shows_inputs and at is None:
            contract = Contract(
                reference=lambda case: forward(**_inputs(case, opts)),
                valid=lambda case: _fits_upstream(forward, case, opts),
                rebuild=rebuilder(ctx.reference_attr(opts.cases), ctx.case_seed(opts.seed)),
            )
            outcome, found = reproduction(ctx.answer, outcome, cases[failing], outcome.details, one, contract=contract)
            if found is not None:
                outcome = replace(outcome, details={**outcome.details, "reproduce": found.serialize()})
        return outcome


def _inputs(case: dict[str, Any], opts: GradientOptions) -> dict[str, Any]:
    return {k: clone(v) for k, v in case.items() if k != opts.upstream}


def _fits_upstream(forward: Callable[..., Any], case: dict[str, Any], opts: GradientOptions) -> bool:
    """An upstream gradient has exactly the forward output's shape: the expected gradient multiplies them, and
    broadcasting would take an upstream of another shape (a 1x1 for a 1x2 output) without a word."""
    if opts.upstream is None:
        return True
    out, upstream = forward(**_inputs(case, opts)), case[opts.upstream]
    return is_array(out) and is_array(upstream) and to_numpy(out).shape == to_numpy(upstream).shape


# A question's seeded cases and the reference's gradients on them (autograd and the finite-difference check) are
# the same for every student: each grading process computes them once, for the reference module it loaded (a
# module object of its own per load, so a changed reference or rubric is never served an old gradient).
_GRADIENTS: weakref.WeakKeyDictionary[ModuleType, dict[tuple[str, str, int], tuple[list[dict[str, Any]], list[torch.Tensor]]]] = (
    weakref.WeakKeyDictionary()
)


def _reference_gradients(
    ctx: CheckContext, opts: GradientOptions, where: str
) -> tuple[list[dict[str, Any]], list[torch.Tensor]]:
    seed = ctx.case_seed(opts.seed)
    key = (ctx.question.id, opts.model_dump_json(), seed)
    per_module = _GRADIENTS.setdefault(ctx.reference, {})
    if key not in per_module:
        forward = ctx.reference_attr(opts.forward)
        at = ctx.reference_attr(opts.at) if opts.at else None
        cases = generate_cases(ctx.reference_attr(opts.cases), seed, where)
        gradients = []
        for case in cases:
            point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
            gradients.append(expected_gradient(forward, case, opts, point))
        per_module[key] = (cases, gradients)
    cases, gradients = per_module[key]
    # Copies: nothing a check does to a case or a gradient reaches the next student's.
    # Each copy keeps its case's label and sizes.
    return [same_kind(case, {k: clone(v) for k, v in case.items()}) for case in cases], [g.clone() for g in gradients]


def judge(
    answer: str, case: dict[str, Any], expected: torch.Tensor, result: CallResult, max_rel_error: float
) -> CaseVerdict:
    """One case's verdict, as grading and the kit both give it."""
    if not result.ok:
        return call_failure(answer, result, case)
    on = f"on inputs {label(case)}"
    rel, problem = gradient_error(expected, result.value)
    if rel is None:
        info: dict[str, Any] = {"case": label(case)}
        if is_array(result.value) and problem.startswith("expected shape"):
            e, g = to_numpy(expected), to_numpy(result.value)
            info.update(expected_shape=list(e.shape), got_shape=list(g.shape))
            why = diagnose_shapes(e, g, 1e-4, 1e-6)
            if why:
                info["diagnosis"] = why
                problem += f"; {why}"
        return CaseVerdict.failed(f"{on}: {problem}", info)
    info = {"case": label(case), "rel_error": rel}
    if rel <= max_rel_error:
        return CaseVerdict(None, info)
    e, g = to_numpy(expected).astype(np.float64), to_numpy(result.value).astype(np.float64)
    message = f"{on}: relative error {rel:.2e} against autograd (at most {max_rel_error:.0e} passes)"
    if e.size:
        index = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(e - g)), e.shape))
        info.update(index=list(index), expected=float(e[index]), got=float(g[index]), around=around(e, g, index).serialize())
        message += f"; worst at index {list(index)}: expected {e[index]:.6g}, got {g[index]:.6g}"
        scale = float(np.max(np.abs(e), initial=0.0))
        why = diagnose(e, g, rtol=max_rel_error * 10, atol=max_rel_error * scale)
        if why:
            info["diagnosis"] = why
            message += f". Likely cause: {why}"
    return CaseVerdict.failed(message, info)


def gradient_outcome(
    cases: list[dict[str, Any]], one: Callable[[dict[str, Any]], CaseVerdict], max_rel_error: float
) -> Outcome:
    """All cases must pass (`tally`, all or nothing); the first that does not is the question's failure (its index
    in `case_index`).  The relative error of every case judged is kept."""
    t = tally(cases, one, partial=False)
    if t.error is not None:
        return Outcome.error(t.error)
    errors = [info["rel_error"] for info in t.judged if "rel_error" in info]
    if t.failure is not None:
        info = t.failure.details
        record = GradientDetails.from_dict({**info, "rel_errors": errors, "max_rel_error": max_rel_error})
        return Outcome.failed(t.failure.problem, **{**info, **record.serialize(), "case_index": t.failure.index})
    inputs = f"all {len(cases)} test inputs" if len(cases) > 1 else "the test input"
    record = GradientDetails(rel_errors=errors, max_rel_error=max_rel_error)
    return Outcome.passed(
        f"matches autograd on {inputs} (largest relative error {max(errors):.1e})", **record.serialize()
    )

