"""What a `training` question's result holds, and how it is explained (a loss curve, an accuracy meter): no
torch, so reports and `grader show` import it without the check."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from markupsafe import Markup

from grader import svg
from grader.explain import View, listed, num


@dataclass(frozen=True)
class TrainingDetails:
    """A training run as graded: the losses `train` returned, the accuracy the grader measured, the tiers."""

    tiers: list[dict[str, float]] = field(default_factory=list)  # best first, as {"min": 0.95, "credit": 1.0}
    device: str = ""
    train_seconds: float | None = None
    losses: list[float | None] | None = None  # None where a loss was not a finite number
    accuracy: float | None = None
    classes: int | None = None  # for the chance level, ln(classes)
    losses_problem: str | None = None
    diagnosis: str | None = None
    timed_out: bool = False
    traceback: list[str] = field(default_factory=list)

    def serialize(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != [] and v is not False}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingDetails:
        tiers = [t for t in listed(data.get("tiers")) if isinstance(t, dict) and _real(t.get("min"))]
        losses = data.get("losses")
        accuracy: Any = data.get("accuracy")
        seconds: Any = data.get("train_seconds")
        classes = data.get("classes")
        return cls(
            tiers=[{"min": float(t["min"]), "credit": float(t["credit"]) if _real(t.get("credit")) else 0.0} for t in tiers],
            device=str(data.get("device") or ""),
            train_seconds=float(seconds) if _real(seconds) else None,
            losses=[float(x) if _real(x) else None for x in losses] if isinstance(losses, list) else None,
            accuracy=float(accuracy) if _real(accuracy) else None,
            classes=int(classes) if isinstance(classes, int) and not isinstance(classes, bool) else None,
            losses_problem=str(data["losses_problem"]) if data.get("losses_problem") else None,
            diagnosis=str(data["diagnosis"]) if data.get("diagnosis") else None,
            timed_out=bool(data.get("timed_out", False)),
            traceback=[x for x in listed(data.get("traceback")) if isinstance(x, str)],
        )

    def marks(self) -> list[svg.Mark]:
        return [svg.Mark(f"{num(t['min'], 3)} → {100 * t['credit']:.0f}%", t["min"]) for t in self.tiers]

    def explain(self, view: View) -> None:
        view.fact("diagnosis", view.unsaid(self.diagnosis))  # the message says it already, when graded here
        if self.losses:
            # Gaps (a non-float or non-finite loss) are drawn as nan, which svg marks on the axis.
            curve = [math.nan if x is None else x for x in self.losses]
            chance = [svg.Mark(f"chance, ln {self.classes}", math.log(self.classes))] if self.classes else []
            view.charts.append(Markup(svg.loss_curve(
                curve, chance, title="your training loss per epoch", x_label="epoch", y_label="training loss",
            )))
            view.fact("loss, first → last epoch", f"{num(curve[0], 4)} → {num(curve[-1], 4)}")
        view.fact("loss list problem", self.losses_problem)
        if self.accuracy is not None:
            view.fact("accuracy measured by the grader", f"{self.accuracy:.4f}")
            view.charts.append(Markup(svg.meter(self.accuracy, self.marks(), title="training accuracy")))
        view.fact("credit tiers", ", ".join(m.label for m in self.marks()) or None)
        view.fact("device", self.device)
        view.fact("training time", self.train_seconds, lambda s: f"{s:.1f} s")


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
