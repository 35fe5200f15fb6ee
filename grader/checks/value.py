"""`value`: a variable compared with the reference's value, exactly or within a tolerance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.checks.base import CheckContext
from grader.checks.support.compare import Difference, Tolerance, compare, describe
from grader.explain import View, explain_failure
from grader.results import Outcome
from grader.rubric.options import ValueOptions
from grader.worker.codec import Opaque


@dataclass(frozen=True)
class ValueDetails:
    """A value question as graded: how the student's value differs from the expected one (nothing when right)."""

    difference: Difference = field(default_factory=Difference)

    def serialize(self) -> dict[str, Any]:
        return self.difference.serialize()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValueDetails:
        return cls(Difference.from_dict(data))

    def explain(self, view: View) -> None:
        if view.passed:
            return
        self.difference.explain(view)
        explain_failure(view, None, self.difference.around)


class ValueCheck:
    Options = ValueOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(ValueOptions)
        expected = opts.expected
        if expected is None:
            expected = ctx.reference_attr(opts.reference or ctx.answer)
        got = ctx.session.get(ctx.answer)
        if got.unread:  # not checked (time up), or the worker's answer could not be used: `error` says which
            return Outcome.error(got.error)
        if not got.exists:
            return Outcome.error(f"`{ctx.answer}` is not defined" + (f" ({got.error})" if got.error else ""))
        if isinstance(got.value, Opaque) and not got.value.diagnostic:
            return Outcome.failed(f"`{ctx.answer}` is {describe(got.value)}, not plain data")
        bad = compare(expected, got.value, Tolerance(opts.rtol, opts.atol))
        if bad:
            details = ValueDetails(Difference.from_dict(bad.details))
            return Outcome.failed(f"`{ctx.answer}` is wrong: {bad.summary()}", **details.serialize())
        return Outcome.passed(f"`{ctx.answer}` is correct")
