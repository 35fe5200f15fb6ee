"""`function`: call the student's function and the reference on the same generated inputs, compare outputs.

Beyond the whole return value, a question may compare only some items of it (`output: 0` for the `out` of a
forward pass's `(out, cache)`), feed one student function's result into another (a case argument
`output_of("affine_forward", x, w, b, item=1)`: the student's own cache, kept in the student's process), and
check arguments after the call (`after: {bn_param: [running_mean, running_var]}`) against the reference's
arguments after its own call.  Whatever is not compared (a cache) is never read by the grader.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from grader.checks.base import CheckContext, serialized
from grader.checks.details.function import FunctionDetails as FunctionDetails
from grader.checks.support.cases import PASSED, CaseVerdict, OutputOf, clone, generate_cases, label, rebuilder
from grader.checks.support.compare import Mismatch, Tolerance, compare, describe
from grader.checks.support.shrink import Contract, roll_up_reproduced
from grader.errors import GraderError
from grader.execution.session import CallResult
from grader.hints import library_hint
from grader.results import Outcome
from grader.rubric.options import FunctionOptions, Selector
from grader.worker import codec
from grader.worker.codec import Handle
from grader.worker.messages import Pick
from grader.worker.ops_chain import pick

if TYPE_CHECKING:
    from grader.rubric.schema import Question


@dataclass(frozen=True)
class Plan:
    """What one question compares: the result's items (None: all of it) and the arguments after the call."""

    outputs: tuple[Selector, ...] | None = None
    after: dict[str, tuple[Selector, ...] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, opts: FunctionOptions) -> Plan:
        return cls(_selectors(opts.output), {name: _selectors(sel) for name, sel in opts.after.items()})


def _selectors(selection: Selector | list[Selector] | None) -> tuple[Selector, ...] | None:
    if selection is None:
        return None
    return tuple(selection) if isinstance(selection, list) else (selection,)


def _chained(case: dict[str, Any]) -> bool:
    """A case with chained arguments is not shrunk: its inputs pass through the student's other functions."""
    return any(isinstance(v, OutputOf) for v in case.values())


def output_name(selector: Selector, function: str) -> str:
    """How a message names a selected item: `output 0 of `affine_forward``."""
    return f"output {selector!r} of `{function}`"


def call_failure(
    name: str, result: CallResult, case: dict[str, Any], *, failed: str = "", needed: str = ""
) -> CaseVerdict:
    """A case whose call of the student's `name` did not return: `name` is not defined (`needed` says why it was
    called) or the submission's time is used up, which end the question as an error (unanswered), or the call
    raised, ran past its limit or ended the worker: a failed case, with its traceback.  `failed` says what
    failed (default: "`name(case)` failed")."""
    if result.missing:
        return CaseVerdict.stop(f"`{name}` is not defined" + (f"; {needed}" if needed else ""))
    if result.time_up:
        return CaseVerdict.stop(result.failure_message())
    text = f"{failed or f'`{name}({label(case)})` failed'}: {result.failure_message()}"
    hint = library_hint(result.error)
    return CaseVerdict.failed(f"{text}\n{hint}" if hint else text, {"traceback": result.traceback})


def side_effect(
    case: dict[str, Any],
    sent: dict[str, Any],
    result: CallResult,
    skip: frozenset[str] = frozenset(),
    student: StudentSignature | None = None,
) -> tuple[str, str] | None:
    """The first input the call changed, comparing what was sent with what the worker holds after: (the case
    argument's name, what happened in the student's words), or None.

    The path into a container is kept (`grads[2]`), so a student learns which tensor of a list was touched; the
    argument is named as the student's own function names it (`parameters`, not the handout's `params`), and
    what happened is said: an array changed in place, a key of the caller's dict rebound, a list grown or
    shrunk.  Arguments in `skip` (post-conditions say how they change) and chained ones are not compared.
    """
    if len(result.args_after) != len(sent):
        # An honest worker always echoes every argument; only code run in the worker can break that.
        return "", "the inputs could not be read back after the call"
    student = student or StudentSignature()
    for position, ((name, before), after) in enumerate(zip(sent.items(), result.args_after)):
        if name in skip or isinstance(before, OutputOf):
            continue
        bad = compare(before, after, Tolerance(0.0, 0.0))
        if bad is None:
            continue
        own = student.name(position, name)
        if isinstance(before, list) and isinstance(after, (list, tuple)) and len(after) != len(before):
            grew = "appended to" if len(after) > len(before) else "had items removed from"
            return name, f"your list `{own}` was {grew} ({_items(len(before))} before the call, {len(after)} after)"
        if isinstance(before, dict) and bad.where.startswith("[") and own in student.subscripted:
            return name, (f"`{own}{bad.where}` was rebound: your function assigns to a key of the dict `{own}` it "
                          "was given, which is the caller's dict (copy it first)")
        return name, f"`{own}{bad.where}` was changed in place"
    return None


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


@dataclass(frozen=True)
class StudentSignature:
    """What the student's own source says of their function (read, never run): its parameters' names and
    those it assigns to by key (`params[k] = ...`)."""

    parameters: tuple[str, ...] = ()
    subscripted: frozenset[str] = frozenset()

    def name(self, position: int, fallback: str) -> str:
        return self.parameters[position] if position < len(self.parameters) else fallback

    @classmethod
    def of(cls, sources: Iterable[str], function: str) -> StudentSignature:
        """From the last `def function(...)` in the sources (cells in order), as the notebook leaves it defined."""
        found: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        for source in sources:
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
                    found = node
        if found is None:
            return cls()
        args = found.args
        names = tuple(a.arg for a in (*args.posonlyargs, *args.args))
        assigned = {
            target.value.id
            for node in ast.walk(found) if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
        }
        return cls(names, frozenset(assigned & set(names)))


class FunctionCheck:
    Options = FunctionOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(FunctionOptions)
        where = f"{ctx.rubric.path.name}: {ctx.question.id}"
        reference = ctx.reference_attr(opts.reference or ctx.answer)
        seed = ctx.case_seed(opts.seed)
        generator = ctx.reference_attr(opts.cases)
        cases = generate_cases(generator, seed, where)
        tol = Tolerance(opts.rtol, opts.atol)
        plan = Plan.of(opts)

        def one(case: dict[str, Any]) -> CaseVerdict:
            expected, after = reference_side(ctx.reference, reference, case, plan, where)
            return self.compare_case(ctx, case, expected, tol, opts.pure, plan, after)

        # A smaller input is shown only where the reference takes it and answers with the same structure.
        contract = Contract(
            reference=lambda case: reference_side(ctx.reference, reference, case, plan, where),
            rebuild=rebuilder(generator, seed),
        )
        outcome, found = roll_up_reproduced(
            ctx.answer, cases, one, opts.partial, lambda case: ctx.shows_inputs and not _chained(case), contract
        )
        if found is not None:
            record = replace(FunctionDetails.from_dict(outcome.details), reproduce=found)
            outcome = replace(outcome, details={**outcome.details, **record.serialize()})
        return outcome

    def compare_case(
        self,
        ctx: CheckContext,
        case: dict[str, Any],
        expected: Any,
        tol: Tolerance,
        pure: bool,
        plan: Plan = Plan(),
        expected_after: dict[str, Any] | None = None,
    ) -> CaseVerdict:
        """One case against the reference's side: `expected` is the whole result, or with `plan.outputs` the
        tuple of the selected items; `expected_after` holds, per post-condition, the argument or its items."""
        kept: list[Handle] = []  # what this case keeps in the worker, let go when it is done
        try:
            return self._compare_one(ctx, case, expected, tol, pure, plan, expected_after or {}, kept)
        finally:
            ctx.session.release(kept, ctx.timeout)

    def _compare_one(
        self,
        ctx: CheckContext,
        case: dict[str, Any],
        expected: Any,
        tol: Tolerance,
        pure: bool,
        plan: Plan,
        expected_after: dict[str, Any],
        kept: list[Handle],
    ) -> CaseVerdict:
        sent = {k: clone(v) for k, v in case.items()}
        args: list[Any] = []
        for name, value in sent.items():
            if not isinstance(value, OutputOf):
                args.append(value)
                continue
            chained = _student_chain(ctx, value, name, kept)
            if not isinstance(chained, Handle):
                return chained
            args.append(chained)
        keep = plan.outputs is not None
        result = ctx.session.call(ctx.answer, args, timeout=ctx.timeout, echo_args=pure or bool(plan.after), keep=keep)
        if isinstance(result.value, Handle):
            kept.append(result.value)
        if not result.ok:
            return call_failure(ctx.answer, result, case)
        on = f"on inputs {label(case)}"
        if plan.outputs is None:
            if result.value is None and expected is not None:
                return CaseVerdict.failed(f"{on}: `{ctx.answer}` returned None: is a `return` missing?")
            bad = compare(expected, result.value, tol)
            if bad:
                # `[0]` alone reads as noise; said as a part of the result it says where to look.
                where = f"item {bad.where} of your result" if bad.where else ""
                return CaseVerdict.failed(f"{on}: {where}: {bad.message}" if where else f"{on}: {bad.message}", bad.details)
        else:
            outputs = _compare_outputs(ctx, result.value, plan.outputs, expected, tol)
            if outputs.problem:
                return CaseVerdict.failed(f"{on}: {outputs.problem}", outputs.details)
        if plan.after:
            after = _compare_after(list(sent), result, plan, expected_after, tol)
            if after.problem:
                return CaseVerdict.failed(f"{on}: {after.problem}", after.details)
        if pure:
            student = StudentSignature.of((c.source for c in ctx.submission.cells), ctx.answer)
            changed = side_effect(case, sent, result, frozenset(plan.after), student)
            if changed:
                name, what = changed
                return CaseVerdict.failed(f"{on}: {what}; the handout requires inputs to be left unchanged", {"changed": name or True})
        return PASSED


# -- the reference's side: chained calls resolved, selected items and arguments after the call --------------------


def reference_side(
    module: ModuleType, fn: Callable[..., Any], case: dict[str, Any], plan: Plan, where: str
) -> tuple[Any, dict[str, Any]]:
    """The reference's answer to one case, as `compare_case` compares it: (the result or its selected items, and per
    post-condition the argument after the call or its selected items).  Any failure is the grader's."""
    args = {k: _reference_value(module, clone(v), where) for k, v in case.items()}
    try:
        value = fn(**args)
    except Exception as exc:
        raise GraderError(f"{where}: the reference failed on {label(case)}: {exc!r}") from exc
    if plan.outputs is not None:
        value = tuple(_reference_item(value, s, "the reference's result", where) for s in plan.outputs)
    after: dict[str, Any] = {}
    for name, selectors in plan.after.items():
        if name not in args:
            raise GraderError(f"{where}: after: the cases have no argument `{name}` (they have {', '.join(args)})")
        arg = args[name]
        after[name] = arg if selectors is None else tuple(
            _reference_item(arg, s, f"the reference's `{name}` after the call", where) for s in selectors
        )
    return value, after


def reference_output(reference: ModuleType, q: Question, case: dict[str, Any], where: str) -> tuple[Any, dict[str, Any]]:
    """`reference_side` of one case of `q` (the kind's `reference_output`, for hidden questions' data)."""
    opts = q.options_as(FunctionOptions)
    fn = getattr(reference, opts.reference or q.spec.answer or "")
    return reference_side(reference, fn, case, Plan.of(opts), where)


def _reference_value(module: ModuleType, value: Any, where: str) -> Any:
    """A case argument on the reference's side: an `output_of` is the reference's own function's result."""
    if not isinstance(value, OutputOf):
        return value
    fn = getattr(module, value.function, None)
    if not callable(fn):
        raise GraderError(f"{where}: output_of: the reference module has no function '{value.function}'")
    fn = serialized(fn)
    args = [_reference_value(module, a, where) for a in value.args]
    kwargs = {k: _reference_value(module, v, where) for k, v in value.kwargs.items()}
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        raise GraderError(f"{where}: the reference's {value.describe()} failed: {exc!r}") from exc
    return result if value.item is None else _reference_item(result, value.item, f"the reference's {value.function}", where)


def _reference_item(value: Any, selector: Selector, what: str, where: str) -> Any:
    found, item = pick(value, selector)
    if not found:
        raise GraderError(f"{where}: {what} has no item {selector!r} ({describe(value)})")
    return item


# -- the student's side: chained calls kept in the worker, items read from there --------------------------------


def _student_chain(ctx: CheckContext, value: OutputOf, name: str, kept: list[Handle]) -> Handle | CaseVerdict:
    """Call the student's `value.function` in the worker and keep its result there: a handle on it (or on its
    item `value.item`), or the failed case's verdict.  Every handle made is added to `kept`."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for key, arg in [*((None, a) for a in value.args), *value.kwargs.items()]:
        if isinstance(arg, OutputOf):
            arg = _student_chain(ctx, arg, name, kept)
            if not isinstance(arg, Handle):
                return arg
        if key is None:
            args.append(arg)
        else:
            kwargs[key] = arg
    needed = f"`{ctx.answer}` is checked on what your `{value.function}` returns (its input `{name}`)"
    result = ctx.session.call(value.function, args, kwargs, timeout=ctx.timeout, keep=True)
    if not result.ok:
        failed = f"`{value.describe()}` failed, so `{ctx.answer}` could not be checked"
        return call_failure(value.function, result, {}, failed=failed, needed=needed)
    if not isinstance(result.value, Handle):
        return CaseVerdict.failed(f"the result of `{value.describe()}` could not be kept for `{ctx.answer}`")
    kept.append(result.value)
    if value.item is None:
        return result.value
    picked = _pick(ctx, result.value, value.item, keep=True, function=value.function)
    if isinstance(picked, str):
        return CaseVerdict.failed(f"{picked}; {needed}")
    item: Handle = picked.value
    kept.append(item)
    return item


def _pick(ctx: CheckContext, handle: Handle, selector: Selector, *, keep: bool, function: str = "") -> Any:
    """Item `selector` of a value kept in the worker (plain data, or a new handle with `keep`); a problem in
    words (a str) when it has no such item."""
    result = ctx.session.request_call(Pick(handle=handle.id, item=codec.encode(selector), keep=keep), ctx.timeout)
    reply = result.value if result.ok and isinstance(result.value, dict) else {}
    function = function or handle.type_name
    if reply.get("found") is True and "item" in reply:
        item = reply["item"]
        if keep and not isinstance(item, Handle):
            return f"output {selector!r} of `{function}` could not be kept"
        return _Picked(item)
    if not result.ok:
        return f"output {selector!r} of `{function}` could not be read: {result.failure_message()}"
    kind, size = str(reply.get("type", "?")), reply.get("size")
    if kind == "NoneType":
        return f"`{function}` returned None: is a `return` missing?"
    if isinstance(selector, str) and isinstance(size, int):
        return f"`{function}` returned a {kind} without the key {selector!r}"
    if isinstance(size, int):
        return f"`{function}` returned a {kind} of {size} items, so it has no output {selector!r}"
    return f"`{function}` returned a {kind}, not a tuple, so it has no output {selector!r}"


@dataclass(frozen=True)
class _Picked:
    """An item read from the worker (a `str` from `_pick` is a problem, so a picked string is wrapped)."""

    value: Any


def _compare_outputs(
    ctx: CheckContext, kept: Any, outputs: tuple[Selector, ...], expected: tuple[Any, ...], tol: Tolerance
) -> CaseVerdict:
    if not isinstance(kept, Handle):
        return CaseVerdict.failed(f"the result of `{ctx.answer}` could not be kept")
    for selector, want in zip(outputs, expected):
        got = _pick(ctx, kept, selector, keep=False, function=ctx.answer)
        if isinstance(got, str):
            return CaseVerdict.failed(got)
        bad = compare(want, got.value, tol)
        if bad:
            return CaseVerdict.failed(f"{output_name(selector, ctx.answer)}{bad.where}: {bad.message}", {**bad.details, "output": selector})
    return PASSED


def _compare_after(
    names: list[str], result: CallResult, plan: Plan, expected: dict[str, Any], tol: Tolerance
) -> CaseVerdict:
    if len(result.args_after) != len(names):
        return CaseVerdict.failed("the inputs could not be read back after the call")
    after = dict(zip(names, result.args_after))
    for name, selectors in plan.after.items():
        got = after.get(name)
        if selectors is None:
            bad = compare(expected[name], got, tol)
            if bad:
                return CaseVerdict.failed(_after_message(f"`{name}{bad.where}`", bad), {**bad.details, "after": name})
            continue
        for selector, want in zip(selectors, expected[name]):
            found, item = pick(got, selector)
            if not found:
                what = "key" if isinstance(selector, str) else "item"
                return CaseVerdict.failed(f"`{name}` has no {what} {selector!r} after the call ({describe(got)})")
            bad = compare(want, item, tol)
            if bad:
                item_name = f"{name}[{selector!r}]"
                return CaseVerdict.failed(_after_message(f"`{item_name}{bad.where}`", bad), {**bad.details, "after": item_name})
    return PASSED


def _after_message(where: str, bad: Mismatch) -> str:
    return f"{where} after the call: {bad.message}"
