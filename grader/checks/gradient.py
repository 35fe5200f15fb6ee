"""`gradient`: a hand-written gradient against autograd through the reference forward, in float64.

The expected gradient is autograd's, and autograd itself is cross-checked by central finite differences on a
few coordinates, so a wrong reference is caught as an authoring error rather than graded into students.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from grader.cases import clone, generate_cases, label
from grader.checks.base import CheckContext, Options
from grader.checks.function import call_failure
from grader.compare import describe, is_array, relative_error, to_numpy
from grader.errors import ReferenceError_
from grader.results import Outcome

if TYPE_CHECKING:
    from grader.rubric import Question, Rubric


class GradientOptions(Options):
    cases: str  # reference generator of the student's inputs, in the student's argument order
    forward: str  # reference forward function, called with keyword arguments
    wrt: str  # the variable differentiated with respect to: a case key, or the name of `at`'s result
    upstream: str | None = None  # case key of dL/d(output); without it the check expects the full Jacobian
    at: str | None = None  # reference fn(case) -> tensor: the point for `wrt` when it is not an input
    max_rel_error: float = 1e-5
    fd_coordinates: int = 12
    seed: int | None = None


def expected_gradient(forward: Callable[..., Any], case: dict[str, Any], opts: GradientOptions, point: torch.Tensor) -> torch.Tensor:
    kwargs = {k: clone(v) for k, v in case.items() if k != opts.upstream}
    variable = point.detach().clone().to(torch.float64).requires_grad_(True)
    kwargs[opts.wrt] = variable

    def f(v: torch.Tensor) -> torch.Tensor:
        out = forward(**{**kwargs, opts.wrt: v})
        if opts.upstream is not None:
            return (out * case[opts.upstream].to(out.dtype)).sum()
        return out

    if opts.upstream is not None:
        (grad,) = torch.autograd.grad(f(variable), variable)
    else:
        grad = torch.autograd.functional.jacobian(f, variable)
    _finite_difference_check(f, variable.detach(), grad, opts)
    return grad.detach()


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
        opts: GradientOptions = question.options  # type: ignore[assignment]
        where = f"{rubric.path.name}: {question.id}"
        forward = getattr(reference, opts.forward)
        at = getattr(reference, opts.at) if opts.at else None
        for case in generate_cases(getattr(reference, opts.cases), rubric.spec.seed if opts.seed is None else opts.seed, where):
            point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
            try:
                expected_gradient(forward, case, opts, point)
            except ReferenceError_ as exc:
                raise ReferenceError_(f"{where}: {exc}") from None

    def run(self, ctx: CheckContext) -> Outcome:
        opts: GradientOptions = ctx.question.options  # type: ignore[assignment]
        where = f"{ctx.rubric.path.name}: {ctx.question.id}"
        forward = ctx.reference_attr(opts.forward)
        at = ctx.reference_attr(opts.at) if opts.at else None
        cases = generate_cases(ctx.reference_attr(opts.cases), ctx.seed if opts.seed is None else opts.seed, where)
        errors: list[float] = []
        for case in cases:
            point = at(**{k: clone(v) for k, v in case.items()}) if at else case[opts.wrt]
            expected = expected_gradient(forward, case, opts, point)
            result = ctx.session.call(ctx.answer, [clone(v) for v in case.values()], timeout=ctx.timeout)
            if not result.ok:
                if result.missing:
                    return Outcome.error(f"`{ctx.answer}` is not defined")
                if result.time_up:
                    return Outcome.error(result.explain())
                return Outcome.failed(call_failure(ctx.answer, result, case), traceback=result.traceback)
            rel, problem = gradient_error(expected, result.value)
            if rel is None:
                return Outcome.failed(f"on inputs {label(case)}: {problem}", case=label(case))
            errors.append(rel)
            if rel > opts.max_rel_error:
                return Outcome.failed(
                    f"on inputs {label(case)}: relative error {rel:.2e} against autograd "
                    f"(at most {opts.max_rel_error:.0e} passes)",
                    case=label(case),
                    rel_error=rel,
                    rel_errors=errors,
                )
        return Outcome.passed(
            f"matches autograd on all {len(cases)} test inputs (largest relative error {max(errors):.1e})",
            rel_errors=errors,
        )
