"""What a `function` question's result holds, and how it is explained: no torch, so reports and `grader show`
import it without the check."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.checks.support.compare import Difference
from grader.explain import Reproduction, View, bounded, explain_failure, listed
from grader.rubric.options import Selector


@dataclass(frozen=True)
class FunctionDetails:
    """A function question as graded: the first failing test input, how the result (or the selected output, or
    an argument after the call) differs there, and that input shown in full (shrunk) with a snippet."""

    case: str | None = None  # the failing input, as `label` names it
    output: Selector | None = None  # the selected item of the result that differed
    difference: Difference = field(default_factory=Difference)
    traceback: list[str] = field(default_factory=list)  # the student's own frames, when the call raised
    reproduce: Reproduction | None = None  # never for a hidden question

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"case": self.case, "output": self.output, **self.difference.serialize()}
        if self.traceback:
            data["traceback"] = self.traceback
        if self.reproduce is not None:
            data["reproduce"] = self.reproduce.serialize()
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionDetails:
        output = data.get("output")
        return cls(
            case=bounded(data.get("case"), 500),
            output=output if isinstance(output, (int, str)) and not isinstance(output, bool) else None,
            difference=Difference.from_dict(data),
            traceback=[str(x) for x in listed(data.get("traceback"))],
            reproduce=Reproduction.from_dict(data.get("reproduce")),
        )

    def explain(self, view: View) -> None:
        if view.passed:
            return
        view.fact("inputs", self.case)
        self.difference.explain(view)
        explain_failure(view, self.reproduce, self.difference.around)
