"""`property`: answers that are not unique are checked against the property that defines a right answer.

The rubric names a case generator and a predicate in the reference module.  For each case the student's
function is called in the worker; the predicate, in the grader, receives the inputs and an `Answer` (the
plain-data output, or a handle on what stayed in the worker) and returns `(ok, message)`.

Cases may hold `ModelSpec`s: the worker builds the model and keeps it (the call gets a handle), the grader
builds its own copy for the predicate, so no verdict depends on a model object from the student's process.
With `pure`, the inputs must be unchanged after the call: tensors are echoed back and compared, models are
compared by a digest of their state against the grader's copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from grader.checks.base import CheckContext
from grader.checks.details.property import PropertyDetails as PropertyDetails
from grader.checks.function import StudentSignature, call_failure
from grader.checks.support.cases import PASSED, CaseVerdict, call_reference, clone, generate_cases, label, rebuilder
from grader.checks.support.compare import Tolerance, compare, is_array
from grader.checks.support.shrink import Contract, roll_up_reproduced
from grader.errors import GraderError
from grader.execution.session import CallResult, WorkerSession
from grader.explain import bounded
from grader.results import Outcome
from grader.rubric.options import PropertyOptions
from grader.worker.codec import Handle
from grader.worker.messages import BuildModel, DescribeGroups, ModelDigest
from grader.worker.ops_models import ModelSpec, build_model, digest_difference, model_digest

Verdict = tuple[bool, str]
Predicate = Callable[[dict[str, Any], "Answer"], Any]


class StudentFailure(Exception):
    """Raised by `Answer` when the student's object fails while a predicate inspects it: a graded failure."""


@dataclass
class Answer:
    """The student's output as a predicate sees it: `value` is plain data, or a `Handle` when kept in the worker."""

    value: Any
    session: WorkerSession
    timeout: float
    models: dict[str, Handle] = field(default_factory=dict)

    def call(self, *args: Any, seed: int | None = None) -> Any:
        """Call the kept object (e.g. a returned transform) in the worker; its output comes back as plain data."""
        result = self.session.call(self._handle(), list(args), timeout=self.timeout, seed=seed)
        if not result.ok:
            raise StudentFailure(f"calling the returned {self._handle().type_name} failed: {result.failure_message()}")
        return result.value

    def param_groups(self, model: str = "model") -> dict[str, Any]:
        """The worker's description of kept param groups: per group the names of its params, by identity."""
        request = DescribeGroups(groups=self._handle().id, model=self.models[model].id)
        result = self.session.request_call(request, self.timeout)
        if not result.ok or not isinstance(result.value, dict):
            raise StudentFailure(f"the returned groups could not be inspected: {result.failure_message() or 'no description'}")
        return result.value

    def _handle(self) -> Handle:
        if not isinstance(self.value, Handle):
            raise GraderError("this predicate needs `keep: true` in the rubric")
        return self.value


def matches(reference: Callable[..., Any], rtol: float = 1e-6, atol: float = 1e-9) -> Predicate:
    """A predicate for a unique answer: the reference's output on the grader's copies of the inputs."""

    def predicate(inputs: dict[str, Any], answer: Answer) -> Verdict:
        expected = call_reference(reference, inputs, getattr(reference, "__name__", "reference"))
        bad = compare(expected, answer.value, Tolerance(rtol, atol))
        return (True, "matches the reference") if bad is None else (False, bad.summary())

    return predicate


def _verdict(raw: Any, where: str) -> Verdict:
    if isinstance(raw, bool):
        return raw, "" if raw else "the answer does not have the required property"
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], bool):
        return raw[0], str(raw[1])
    raise GraderError(f"{where}: a predicate returns a bool or (bool, message), not {type(raw).__name__}")


@dataclass
class _Models:
    """The models of one case: the worker's handles and the grader's own copies."""

    handles: dict[str, Handle] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, dict[str, Any]] = field(default_factory=dict)


class PropertyCheck:
    Options = PropertyOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(PropertyOptions)
        where = f"{ctx.rubric.path.name}: {ctx.question.id}"
        predicate = ctx.reference_attr(opts.predicate)
        seed = ctx.case_seed(opts.seed)
        cases = generate_cases(ctx.reference_attr(opts.cases), seed, where)

        def one(case: dict[str, Any]) -> CaseVerdict:
            return self._one(ctx, opts, case, predicate, where)

        # A model is built from its spec in each process and cannot be pasted as a value: such cases are not shown.
        outcome, found = roll_up_reproduced(
            ctx.answer, cases, one, opts.partial,
            lambda case: ctx.shows_inputs and not any(isinstance(v, ModelSpec) for v in case.values()),
            Contract(rebuild=rebuilder(ctx.reference_attr(opts.cases), seed)),
        )
        if found is not None:
            record = replace(PropertyDetails.from_dict(outcome.details), reproduce=found)
            outcome = replace(outcome, details={**outcome.details, **record.serialize()})
        return outcome

    def _one(
        self, ctx: CheckContext, opts: PropertyOptions, case: dict[str, Any], predicate: Predicate, where: str
    ) -> CaseVerdict:
        on = f"on inputs {label(case)}" if case else "on the call without arguments"
        models, problem = _build_models(ctx, case, where)
        if ctx.session.out_of_time:
            return CaseVerdict.stop(ctx.session.not_checked_message)
        if problem:
            return CaseVerdict.failed(f"{on}: {problem}")
        sent = [models.handles.get(k, clone(v)) for k, v in case.items()]
        result = ctx.session.call(ctx.answer, sent, timeout=ctx.timeout, echo_args=opts.pure, keep=opts.keep)
        if not result.ok:
            return call_failure(ctx.answer, result, case)
        if opts.pure:
            student = StudentSignature.of((c.source for c in ctx.submission.cells), ctx.answer)
            changed = _changed_tensors(case, result, student) or _changed_models(ctx, models)
            if changed:
                return CaseVerdict.failed(f"{on}: {changed}; the handout requires inputs to be left unchanged")
        inputs = {k: models.local.get(k, clone(v)) for k, v in case.items()}
        answer = Answer(result.value, ctx.session, ctx.timeout, models.handles)
        try:
            ok, message = _verdict(predicate(inputs, answer), where)
        except StudentFailure as exc:
            return CaseVerdict.failed(f"{on}: {exc}")
        if ok:
            return PASSED
        message = bounded(message) or ""  # it may quote the student's answer
        return CaseVerdict.failed(f"{on}: {message}", {"predicate": message})


def _build_models(ctx: CheckContext, case: dict[str, Any], where: str) -> tuple[_Models, str | None]:
    models = _Models()
    for name, spec in case.items():
        if not isinstance(spec, ModelSpec):
            continue
        try:  # the grader's copy first: a bad spec is an authoring error, not the student's
            local = build_model(spec)
        except Exception as exc:
            raise GraderError(f"{where}: cannot build model {spec.builder!r}: {exc!r}") from exc
        models.local[name], models.digests[name] = local, model_digest(local)
        result = ctx.session.request_call(BuildModel(spec=_encode_spec(spec)), ctx.timeout)
        built = result.value if result.ok and isinstance(result.value, dict) else {}
        if not isinstance(built.get("handle"), Handle):
            return models, f"the model `{name}` could not be built in your notebook's process ({result.failure_message()})"
        if digest_difference(models.digests[name], built.get("digest")):
            # Student code changed torch's defaults or builders before the call: the model given is not the handout's.
            return models, f"the model `{name}` built in your notebook's process differs from the grader's"
        models.handles[name] = built["handle"]
    return models, None


def _encode_spec(spec: ModelSpec) -> Any:
    from grader.worker import codec

    return codec.encode(spec.to_plain())


def _changed_tensors(case: dict[str, Any], result: CallResult, student: StudentSignature) -> str | None:
    """The first tensor (or list of them) the call changed, named as the student's function names it."""
    for position, ((name, before), after) in enumerate(zip(case.items(), result.args_after)):
        if isinstance(before, ModelSpec) or not (is_array(before) or isinstance(before, (list, tuple))):
            continue
        if compare(before, after, Tolerance(0.0, 0.0)) is not None:
            return f"`{student.name(position, name)}` was changed in place"
    return None


def _changed_models(ctx: CheckContext, models: _Models) -> str | None:
    for name, handle in models.handles.items():
        result = ctx.session.request_call(ModelDigest(model=handle.id), ctx.timeout)
        if not result.ok:
            return f"the model `{name}` could not be read after the call ({result.failure_message()})"
        difference = digest_difference(models.digests[name], result.value)
        if difference:
            return f"the model `{name}` was changed: {difference}"
    return None
