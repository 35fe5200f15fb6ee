"""`manual`: a free-text answer kept for a TA; the question scores 0 and is pending until a TA score arrives.

The answer is the Markdown after `Answer qX.Y:` (see `grader.sources.load`); nothing of the student's runs.
TA scores are applied later to the stored result by `with_ta_score` (see `grader manual`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from grader.checks.base import CheckContext
from grader.explain import View
from grader.results import Outcome, QuestionResult, Status
from grader.rubric.options import ManualOptions

PENDING_MESSAGE = "awaiting grading by a TA"


@dataclass(frozen=True)
class ManualDetails:
    """A free-text answer as graded: the student's text, the grading guide (TAs only), the TA's score."""

    answer: str | None = None
    missing_answer: bool = False
    cut: bool = False  # the loader kept only the first MAX_ANSWER characters
    guide: str = ""  # the rubric's grading guide: TA audience only
    ta_score: float | None = None
    ta_comment: str = ""
    ta: str = ""

    def serialize(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManualDetails:
        score = data.get("ta_score")
        return cls(
            answer=data["answer"] if isinstance(data.get("answer"), str) else None,
            missing_answer=bool(data.get("missing_answer", False)),
            cut=bool(data.get("cut", False)),
            guide=str(data.get("guide") or ""),
            ta_score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
            ta_comment=str(data.get("ta_comment") or ""),
            ta=str(data.get("ta") or ""),
        )

    def explain(self, view: View) -> None:
        view.answer = self.answer
        if self.ta_comment.strip():
            view.comment = self.ta_comment
        view.fact("graded by", self.ta)
        if view.ta:
            view.fact("grading guide (TA only)", self.guide or "(the rubric gives none)")


class ManualCheck:
    Options = ManualOptions

    def run(self, ctx: CheckContext) -> Outcome:
        text = ctx.submission.answers.get(ctx.question.id)
        guide = getattr(ctx.question.options, "guide", "")
        if text is None:
            # Flagged, still pending: the TA may find the answer elsewhere in the notebook and score it.
            message = f"no Markdown cell starting with `Answer {ctx.question.id}:` was found; {PENDING_MESSAGE}"
            details = ManualDetails(None, missing_answer=True, guide=guide)
            return Outcome(0.0, message, details.serialize(), Status.PENDING)
        # The loader keeps at most MAX_ANSWER characters of an answer and notes the cut; the TA is told too.
        prefix = f"the `Answer {ctx.question.id}:` cell is "
        cut = [n for n in getattr(ctx.submission, "notes", ()) if n.startswith(prefix)]
        message = f"{PENDING_MESSAGE} ({cut[0]})" if cut else PENDING_MESSAGE
        return Outcome(0.0, message, ManualDetails(text, cut=bool(cut), guide=guide).serialize(), Status.PENDING)


def with_ta_score(result: QuestionResult, score: float, comment: str, ta: str = "") -> QuestionResult:
    """The question's result once a TA has scored it; the answer stays in the details."""
    if not 0 <= score <= result.max_score:
        raise ValueError(f"{result.qid}: score {score:g} is outside 0..{result.max_score:g}")
    status = Status.PASSED if score >= result.max_score else Status.PARTIAL if score > 0 else Status.FAILED
    message = f"graded by a TA: {comment}" if comment else "graded by a TA"
    # Other keys a stored result may hold are kept: the record's fields are updated over them.
    record = replace(ManualDetails.from_dict(result.details), ta_score=score, ta_comment=comment, ta=ta)
    details = {**result.details, **record.serialize()}
    return replace(result, score=round(score, 4), status=status, message=message, details=details)
