"""`function`: call the student's function and the reference on the same generated inputs, compare outputs."""
from __future__ import annotations

from typing import Any

from grader.cases import call_reference, clone, generate_cases, label, roll_up
from grader.checks.base import CheckContext, Options
from grader.compare import Tolerance, compare
from grader.execution import CallResult
from grader.results import Outcome


class FunctionOptions(Options):
    cases: str  # reference generator: (torch.Generator) -> list of kwargs dicts, in the student's argument order
    reference: str | None = None  # reference function; defaults to the question's `answer`
    rtol: float = 1e-4
    atol: float = 1e-5
    pure: bool = False  # the inputs (tensors, lists of tensors) must be unchanged after the call
    partial: bool = False  # credit in proportion to the cases passed, instead of all or nothing
    seed: int | None = None


def call_failure(name: str, result: CallResult, case: dict[str, Any]) -> str:
    text = f"`{name}({label(case)})` failed: {result.explain()}"
    return text


def side_effect(case: dict[str, Any], sent: dict[str, Any], result: CallResult) -> str | None:
    """Name the first input the call changed in place, comparing what was sent with what the worker holds after.

    The path into a container is kept (`grads[2]`), so a student learns which tensor of a list was touched.
    """
    if len(result.args_after) != len(sent):
        # An honest worker always echoes every argument; only code run in the worker can break that.
        return "the inputs could not be read back after the call"
    for (name, before), after in zip(sent.items(), result.args_after):
        bad = compare(before, after, Tolerance(0.0, 0.0))
        if bad is not None:
            return f"`{name}{bad.where}` was changed in place"
    return None


class FunctionCheck:
    Options = FunctionOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts: FunctionOptions = ctx.question.options  # type: ignore[assignment]
        where = f"{ctx.rubric.path.name}: {ctx.question.id}"
        reference = ctx.reference_attr(opts.reference or ctx.answer)
        seed = ctx.seed if opts.seed is None else opts.seed
        cases = generate_cases(ctx.reference_attr(opts.cases), seed, where)
        tol = Tolerance(opts.rtol, opts.atol)

        def one(case: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
            return self._one(ctx, case, call_reference(reference, case, where), tol, opts.pure)

        return roll_up(cases, one, opts.partial)

    def _one(
        self, ctx: CheckContext, case: dict[str, Any], expected: Any, tol: Tolerance, pure: bool
    ) -> tuple[str | None, dict[str, Any]]:
        sent = {k: clone(v) for k, v in case.items()}
        result = ctx.session.call(ctx.answer, list(sent.values()), timeout=ctx.timeout, echo_args=pure)
        if not result.ok:
            if result.missing:
                return f"`{ctx.answer}` is not defined", {"missing": True}
            if result.time_up:
                return result.explain(), {"not_checked": True}
            return call_failure(ctx.answer, result, case), {"traceback": result.traceback}
        bad = compare(expected, result.value, tol)
        if bad:
            return f"on inputs {label(case)}: {bad.explain()}", bad.details
        if pure:
            changed = side_effect(case, sent, result)
            if changed:
                return f"on inputs {label(case)}: {changed}; the handout requires inputs to be left unchanged", {}
        return None, {}
