"""What a TA entered survives re-grading: TA scores of TA-graded questions, and overrides of any question.

`carry_over(new, old, overrides)` is applied to every fresh result before it is recorded (`grader grade`, with
`--force`, `--only`, or after a rubric edit):

- a TA score of a `manual` question is kept when the question (title, points, grading guide) and the student's
  answer are unchanged; otherwise the question waits for a TA again and the earlier score is kept beside it
  (`details["previous_ta"]`) with the reason, for review: never dropped.
- an override (`grader override`) replaces the question's score, with the TA's reason in its message ("adjusted
  by a TA: ...") and the automatic score kept (`details["override"]["graded_score"]`); an override made on a
  question that has since changed (title or points) is not applied but shown for review.

Overrides live in the gradebook's `overrides` table, one row per decision with who and when (the audit trail);
the newest row of a student's question is the one in force.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from grader.checks.manual import with_ta_score
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.kinds import find_kind

__all__ = ["Override", "apply_override", "carry_over", "stale_overrides"]


@dataclass(frozen=True)
class Override:
    """A TA's score for one question of one student, with why, who and when, and the question it was made on."""

    student: str  # the class folder's student name
    qid: str
    score: float
    reason: str
    ta: str = ""
    at: float = 0.0  # seconds since the epoch
    title: str = ""  # the question as it was when the override was made
    max_score: float = 0.0

    def serialize(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Override:
        return cls(
            student=str(data["student"]), qid=str(data["qid"]), score=float(data["score"]),
            reason=str(data.get("reason", "")), ta=str(data.get("ta", "")), at=float(data.get("at", 0.0)),
            title=str(data.get("title", "")), max_score=float(data.get("max_score", 0.0)),
        )

    def fits(self, q: QuestionResult) -> bool:
        """The question is still the one the TA overrode."""
        return q.qid == self.qid and q.title == self.title and abs(q.max_score - self.max_score) < 1e-9


def _status(score: float, max_score: float) -> Status:
    return Status.PASSED if score >= max_score else Status.PARTIAL if score > 0 else Status.FAILED


def _graded_score(q: QuestionResult) -> float:
    """The question's score before any override."""
    previous = q.details.get("override")
    if isinstance(previous, dict) and isinstance(previous.get("graded_score"), (int, float)):
        return float(previous["graded_score"])
    return q.score


def _graded_message(q: QuestionResult) -> str:
    previous = q.details.get("override")
    if isinstance(previous, dict) and isinstance(previous.get("graded_message"), str):
        return str(previous["graded_message"])
    return q.message


def apply_override(q: QuestionResult, o: Override) -> QuestionResult:
    """The question with the override in force; the automatic score and message stay in the details."""
    graded, message = _graded_score(q), _graded_message(q)
    record = {**o.serialize(), "graded_score": graded, "graded_message": message}
    who = f" ({o.ta})" if o.ta else ""
    text = f"adjusted by a TA{who}: {o.reason} (graded {graded:g}/{q.max_score:g}, now {o.score:g})"
    return replace(q, score=round(o.score, 4), status=_status(o.score, q.max_score), message=text,
                   details={**q.details, "override": record})


def _stale(q: QuestionResult, o: Override) -> QuestionResult:
    note = (f"a TA's override ({o.score:g}, {o.reason!r}) was made on an earlier version of this question "
            f"({o.title!r}, {o.max_score:g} points); review it and override again")
    return replace(q, message=f"{q.message}; {note}", details={**q.details, "stale_override": o.serialize()})


def _ta_graded(kind: str) -> bool:
    spec = find_kind(kind)  # None: a stored result of a kind this grader no longer has
    return spec is not None and spec.ta_graded


def _ta_scored(old: QuestionResult) -> dict[str, Any] | None:
    score = old.details.get("ta_score")
    if not _ta_graded(old.kind) or not isinstance(score, (int, float)) or isinstance(score, bool):
        return None
    return {"score": float(score), "comment": str(old.details.get("ta_comment") or ""),
            "ta": str(old.details.get("ta") or ""), "title": old.title, "max_score": old.max_score}


def _keep_ta_score(new: QuestionResult, old: QuestionResult) -> QuestionResult:
    scored = _ta_scored(old)
    if scored is None and isinstance(old.details.get("previous_ta"), dict):
        return replace(new, details={**new.details, "previous_ta": old.details["previous_ta"]},
                       message=str(old.message))  # still waiting for review: keep it
    if scored is None or not _ta_graded(new.kind):
        return new
    same_question = (new.title == old.title and abs(new.max_score - old.max_score) < 1e-9
                     and new.details.get("guide") == old.details.get("guide"))
    same_answer = new.details.get("answer") == old.details.get("answer")
    if same_question and same_answer:
        return with_ta_score(new, scored["score"], scored["comment"], scored["ta"])
    what = "the question" if not same_question else "the student's answer"
    message = (f"{new.message}; {what} changed since a TA scored it {scored['score']:g}/{old.max_score:g}"
               f"{' (' + scored['comment'] + ')' if scored['comment'] else ''}: review and score it again")
    return replace(new, message=message, details={**new.details, "previous_ta": scored})


def carry_over(new: SubmissionResult, old: SubmissionResult | None, overrides: list[Override]) -> SubmissionResult:
    """`new` with the TA's earlier work in it (see the module's docstring)."""
    before = {q.qid: q for q in old.questions} if old else {}
    latest = {o.qid: o for o in sorted(overrides, key=lambda o: o.at)}
    questions = []
    for q in new.questions:
        if q.qid in before:
            q = _keep_ta_score(q, before[q.qid])
        o = latest.get(q.qid)
        if o is not None:
            q = apply_override(q, o) if o.fits(q) else _stale(q, o)
        questions.append(q)
    return new.with_questions(tuple(questions))


def stale_overrides(result: SubmissionResult) -> list[str]:
    """Question ids whose TA work waits for review because the question or answer changed."""
    return [q.qid for q in result.questions if "stale_override" in q.details or
            ("previous_ta" in q.details and q.status is Status.PENDING)]
