"""What a `property` question's result holds, and how it is explained: no torch, so reports and `grader show`
import it without the check."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.explain import Reproduction, View, bounded, explain_failure, listed


@dataclass(frozen=True)
class PropertyDetails:
    """A property question as graded: the first input whose answer lacks the property, what the predicate said
    of it, and that input shown in full (shrunk while the predicate still fails) with a snippet."""

    case: str | None = None  # the failing input, as `label` names it
    predicate: str | None = None  # the predicate's message on it (None when the call itself failed)
    traceback: list[str] = field(default_factory=list)
    reproduce: Reproduction | None = None  # never for a hidden question

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"case": self.case, "predicate": self.predicate}
        if self.traceback:
            data["traceback"] = self.traceback
        if self.reproduce is not None:
            data["reproduce"] = self.reproduce.serialize()
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PropertyDetails:
        return cls(
            case=bounded(data.get("case"), 500),
            predicate=bounded(data["predicate"]) if isinstance(data.get("predicate"), str) else None,
            traceback=[str(x) for x in listed(data.get("traceback"))],
            reproduce=Reproduction.from_dict(data.get("reproduce")),
        )

    def explain(self, view: View) -> None:
        if view.passed:
            return
        view.fact("inputs", self.case)
        view.fact("the property check says", view.unsaid(self.predicate))
        explain_failure(view, self.reproduce, None)
