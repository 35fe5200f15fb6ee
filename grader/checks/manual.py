"""`manual`: a free-text answer kept for a TA; the question scores 0 and is pending until a TA score arrives.

The answer is the Markdown after `Answer qX.Y:` (see `grader.submission`); nothing of the student's runs.
TA scores are applied later to the stored result by `with_ta_score` (see `grader manual`).
"""
from __future__ import annotations

from dataclasses import replace

from grader.checks.base import CheckContext, Options
from grader.results import Outcome, QuestionResult, Status

PENDING_MESSAGE = "awaiting grading by a TA"


class ManualOptions(Options):
    guide: str = ""  # what a TA looks for; shown to TAs, never to students


class ManualCheck:
    Options = ManualOptions

    def run(self, ctx: CheckContext) -> Outcome:
        text = ctx.submission.answers.get(ctx.question.id)
        if text is None:
            # Flagged, still pending: the TA may find the answer elsewhere in the notebook and score it.
            message = f"no Markdown cell starting with `Answer {ctx.question.id}:` was found; {PENDING_MESSAGE}"
            return Outcome(0.0, message, {"answer": None, "missing_answer": True}, Status.PENDING)
        # The loader keeps at most MAX_ANSWER characters of an answer and notes the cut; the TA is told too.
        prefix = f"the `Answer {ctx.question.id}:` cell is "
        cut = [n for n in getattr(ctx.submission, "notes", ()) if n.startswith(prefix)]
        message = f"{PENDING_MESSAGE} ({cut[0]})" if cut else PENDING_MESSAGE
        return Outcome(0.0, message, {"answer": text, "missing_answer": False, "cut": bool(cut)}, Status.PENDING)


def with_ta_score(result: QuestionResult, score: float, comment: str, ta: str = "") -> QuestionResult:
    """The question's result once a TA has scored it; the answer stays in the details."""
    if not 0 <= score <= result.max_score:
        raise ValueError(f"{result.qid}: score {score:g} is outside 0..{result.max_score:g}")
    status = Status.PASSED if score >= result.max_score else Status.PARTIAL if score > 0 else Status.FAILED
    message = f"graded by a TA: {comment}" if comment else "graded by a TA"
    details = {**result.details, "ta_score": score, "ta_comment": comment, "ta": ta}
    return replace(result, score=round(score, 4), status=status, message=message, details=details)
