"""The record of a kit check: the checked questions' results, what the kit could not check, and the honest
roll-up ("24/30 points pass; 6 more points are graded only when you submit")."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from grader.classroom.score_files import gradescope
from grader.results import Status, SubmissionResult
from grader.rubric.kinds import find_kind


@dataclass(frozen=True)
class Unchecked:
    """A public question the kit does not check, and why ("checked only when graded", "graded by a TA")."""

    qid: str
    title: str
    points: float
    kind: str  # a kind kits do not check (its entry has no `kit_record`): "property", "manual"
    reason: str

    def serialize(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unchecked:
        return cls(**data)


@dataclass(frozen=True)
class KitReport:
    result: SubmissionResult  # the questions the kit checked, graded as grading grades them
    unchecked: tuple[Unchecked, ...] = ()
    hidden_points: float = 0.0  # points of hidden questions (0 when one question was asked for)
    hidden_questions: int = 0

    @property
    def passed_points(self) -> float:
        return self.result.score

    @property
    def checked_points(self) -> float:
        return self.result.max_score

    @property
    def total(self) -> float:
        return round(self.checked_points + sum(u.points for u in self.unchecked) + self.hidden_points, 6)

    @property
    def failed(self) -> bool:
        """A public check did not pass (partial credit included), or the submission could not be read."""
        return bool(self.result.load_error) or any(q.status is not Status.PASSED for q in self.result.questions)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def __bool__(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One honest line: what passed of everything, and what only grading can tell."""
        line = f"public checks: {self.passed_points:g}/{self.total:g} points pass"
        short = round(self.checked_points - self.passed_points, 6)
        if short:
            line += f", {short:g} checked here do not"
        rest = round(self.total - self.checked_points, 6)
        if rest:
            line += f"; {rest:g} more {_points(rest)} graded only when you submit ({'; '.join(self._unseen())})"
        return line

    def _unseen(self) -> list[str]:
        parts = []
        if self.hidden_points:
            parts.append(f"{self.hidden_points:g} on hidden inputs")
        for kind in dict.fromkeys(u.kind for u in self.unchecked):
            group = [u for u in self.unchecked if u.kind == kind]
            who = _graded_by(kind)
            parts.append(f"{sum(u.points for u in group):g} {who}: {', '.join(u.qid for u in group)}")
        return parts

    def results_json(self) -> dict[str, Any]:
        """results.json (Gradescope's schema) for the checked questions; the rest in `extra_data.kit`."""
        data = gradescope(self.result)
        data["extra_data"]["kit"] = {
            "summary": self.summary(),
            "passed_points": self.passed_points,
            "checked_points": self.checked_points,
            "total": self.total,
            "hidden_points": self.hidden_points,
            "hidden_questions": self.hidden_questions,
            "not_checked": [u.serialize() for u in self.unchecked],
            "failed": self.failed,
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KitReport:
        return cls(
            result=SubmissionResult.from_dict(data["result"]),
            unchecked=tuple(Unchecked.from_dict(u) for u in data.get("unchecked", [])),
            hidden_points=float(data.get("hidden_points", 0.0)),
            hidden_questions=int(data.get("hidden_questions", 0)),
        )

    def serialize(self) -> dict[str, Any]:
        """The full record, `from_dict`'s inverse; `results_json` is what scripts and editors read."""
        return {
            "result": self.result.serialize(),
            "unchecked": [u.serialize() for u in self.unchecked],
            "hidden_points": self.hidden_points,
            "hidden_questions": self.hidden_questions,
        }

    def __str__(self) -> str:
        from grader.kit.show import text

        return text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (a terminal, or the text/plain of a notebook output) is the report, not the record."""
        printer.text(str(self))

    def _repr_html_(self) -> str:
        from grader.kit.show import html

        return html(self)


def _graded_by(kind: str) -> str:
    """Who scores a question the kit does not check: a TA (its kind's entry says so), else the grading's checks."""
    spec = find_kind(kind)
    return "by a TA" if spec is not None and spec.ta_graded else "by checks that need the reference"


def _points(n: float) -> str:
    return "point is" if n == 1 else "points are"
