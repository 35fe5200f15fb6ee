"""What a `formula` question's result holds, and how it is explained: no SymPy, so reports and `grader show`
import it without the check."""
from __future__ import annotations

import dataclasses
from typing import Any

from grader.explain import View, bounded


@dataclasses.dataclass(frozen=True)
class Counterexample:
    """A point where the student's formula and the expected one differ, with both values as text."""

    point: dict[str, int]
    yours: str
    expected: str | None = None  # a kit knows only a hash of the expected value

    @classmethod
    def from_dict(cls, data: Any) -> Counterexample | None:
        if not isinstance(data, dict) or not isinstance(data.get("point"), dict):
            return None
        point = {str(k): v for k, v in data["point"].items() if isinstance(v, int) and not isinstance(v, bool)}
        expected = data.get("expected")
        return cls(point, bounded(data.get("yours"), 200) or "", bounded(expected, 200) if expected is not None else None)


@dataclasses.dataclass(frozen=True)
class FormulaDetails:
    """A formula question as graded: the answer as written and as read, the counterexample when it is wrong,
    how far equality was shown when it is right.  `expected` is the expected formula, which is the answer
    itself: TAs only."""

    yours: str | None = None
    parsed: str | None = None
    expected: str | None = None
    proof: str | None = None  # "symbolic", "sampled" or "timeout"
    points: int | None = None  # points compared
    counterexample: Counterexample | None = None

    def serialize(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FormulaDetails:
        points = data.get("points")
        text = {k: bounded(data[k]) if isinstance(data.get(k), str) else None for k in ("yours", "parsed", "expected", "proof")}
        return cls(
            **text,
            points=points if isinstance(points, int) and not isinstance(points, bool) else None,
            counterexample=Counterexample.from_dict(data.get("counterexample")),
        )

    def explain(self, view: View) -> None:
        view.fact("your answer", self.yours)
        view.fact("read as", self.parsed)
        ce = self.counterexample
        if ce is not None:
            view.fact("counterexample", ", ".join(f"{k} = {v}" for k, v in ce.point.items()))
            view.fact("your formula gives", ce.yours)
            view.fact("the correct formula gives", ce.expected)
        if self.proof == "symbolic":
            view.fact("proof", "proved equal symbolically")
        elif self.proof == "sampled" and ce is None:
            view.fact("proof", f"equal on {self.points if self.points is not None else '?'} sampled points "
                               "(not proved symbolically)")
        elif self.proof and self.points is not None:
            view.fact("compared on", f"{self.points} points of the domain")
        if view.ta:
            view.fact("expected formula (TA only)", self.expected)
