"""`value`: a variable compared with the reference's value, exactly or within a tolerance."""
from __future__ import annotations

from typing import Any

from grader.checks.base import CheckContext, Options
from grader.compare import Tolerance, compare, describe
from grader.results import Outcome
from grader.worker.codec import Opaque


class ValueOptions(Options):
    expected: Any = None  # a literal; when absent, the reference module's attribute `reference`
    reference: str | None = None  # defaults to the question's `answer`
    rtol: float = 1e-6
    atol: float = 1e-9


class ValueCheck:
    Options = ValueOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts: ValueOptions = ctx.question.options  # type: ignore[assignment]
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
            return Outcome.failed(f"`{ctx.answer}` is wrong: {bad.explain()}", **bad.details)
        return Outcome.passed(f"`{ctx.answer}` is correct")
