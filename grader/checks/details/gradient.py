"""What a `gradient` question's result holds, and how it is explained: no torch, so reports and `grader show`
import it without the check."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from grader.explain import Around, Reproduction, View, bounded, explain_failure, listed, number, sci, whole_numbers


@dataclass(frozen=True)
class GradientDetails:
    """A gradient question as graded: the relative error per test input and, for the failing one, the worst
    element expected against yours, the values around it, and the input shown in full (shrunk) with a snippet."""

    case: str | None = None  # the failing input, as `label` names it
    rel_errors: list[float] = field(default_factory=list)  # per input checked, the failing one last
    max_rel_error: float | None = None
    index: list[int] | None = None
    expected: float | None = None
    got: float | None = None
    diagnosis: str | None = None
    expected_shape: list[int] | None = None
    got_shape: list[int] | None = None
    traceback: list[str] = field(default_factory=list)
    around: Around | None = None
    reproduce: Reproduction | None = None  # never for a hidden question

    def serialize(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["around"] = self.around.serialize() if self.around is not None else None
        data["reproduce"] = self.reproduce.serialize() if self.reproduce is not None else None
        return {k: v for k, v in data.items() if v is not None and v != []}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradientDetails:
        def real(key: str) -> float | None:
            x = number(data.get(key))
            return None if x is None else float(x)

        return cls(
            case=bounded(data.get("case"), 500),
            rel_errors=[float(x) for x in listed(data.get("rel_errors")) if number(x) is not None],
            max_rel_error=real("max_rel_error"),
            index=whole_numbers(data.get("index")),
            expected=real("expected"),
            got=real("got"),
            diagnosis=bounded(data["diagnosis"]) if isinstance(data.get("diagnosis"), str) else None,
            expected_shape=whole_numbers(data.get("expected_shape")),
            got_shape=whole_numbers(data.get("got_shape")),
            traceback=[str(x) for x in listed(data.get("traceback"))],
            around=Around.from_dict(data.get("around")),
            reproduce=Reproduction.from_dict(data.get("reproduce")),
        )

    def explain(self, view: View) -> None:
        if view.passed:
            if self.rel_errors:  # one number, not one line of zeros per input
                view.fact("largest relative error", max(self.rel_errors), sci)
            return
        view.fact("inputs", self.case)
        view.fact("likely cause", view.unsaid(self.diagnosis))
        if self.expected_shape is not None:
            view.fact("expected shape", tuple(self.expected_shape))
            view.fact("your shape", tuple(self.got_shape or ()))
        if self.index is not None:
            view.fact("worst element", f"index {self.index}")
            view.fact("expected (autograd)", self.expected)
            view.fact("yours", self.got)
        if self.rel_errors:
            view.fact("relative error", self.rel_errors[-1], sci)
            if len(self.rel_errors) > 1:
                view.fact("relative error of the inputs before it", ", ".join(sci(x) for x in self.rel_errors[:-1]))
        view.fact("passes at", self.max_rel_error, lambda x: f"at most {x:.0e}")
        explain_failure(view, self.reproduce, self.around)
