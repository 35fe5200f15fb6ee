"""Grading one submission: load → run cells in a worker → run each question's check → a result.

Everything here is per submission and returns a plain, serialisable `SubmissionResult`, so submissions can
be graded in any order, in any process, on any machine.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from grader import __version__
from grader.checks import CheckContext, get_kind
from grader.errors import GraderError, SubmissionUnreadable
from grader.execution import WorkerSession
from grader.results import Outcome, QuestionResult, Status, SubmissionResult
from grader.rubric import Question, Rubric
from grader.sandbox import Launcher
from grader.submission import Submission, load_submission, student_name

log = logging.getLogger(__name__)


def grade_submission(
    rubric: Rubric,
    path: Path,
    *,
    launcher: Launcher | None = None,
    device: str = "cpu",
    public_only: bool = False,
    log_path: Path | None = None,
) -> SubmissionResult:
    start = time.perf_counter()
    questions = [q for q in rubric.questions if not public_only or q.spec.visibility == "public"]
    base = dict(
        student=student_name(path),
        path=str(path),
        assignment=rubric.assignment,
        rubric_sha256=rubric.sha256,
        grader_version=__version__,
        sandbox=getattr(launcher, "name", "none"),
    )
    try:
        submission = load_submission(path)
    except SubmissionUnreadable as exc:
        results = tuple(_unanswered(q, f"not graded: {exc}") for q in questions)
        return SubmissionResult(**base, questions=results, load_error=str(exc), execution_time=time.perf_counter() - start)  # type: ignore[arg-type]
    reference = rubric.load_reference()
    with WorkerSession(submission, rubric.limits, launcher, log_path) as session:
        failures = tuple(session.run_cells())
        results = tuple(
            run_question(CheckContext(rubric, q, submission, session, reference, device)) for q in questions
        )
        worker_device = session.device
    return SubmissionResult(
        **base,  # type: ignore[arg-type]
        questions=results,
        cell_failures=failures,
        execution_time=time.perf_counter() - start,
        submission_sha256=submission.sha256,
        device=worker_device,
    )


def run_question(ctx: CheckContext) -> QuestionResult:
    q = ctx.question
    start = time.perf_counter()
    outcome = None
    if q.spec.forbid and q.spec.answer:
        from grader.checks.forbid import forbid_outcome

        outcome = forbid_outcome(ctx, q.spec.forbid)
    if outcome is None:
        try:
            outcome = get_kind(q.spec.kind).run(ctx)
        except GraderError:
            raise
        except Exception as exc:  # a crash in a checker is the grader's own failure, never a student's
            log.exception("check %s crashed on %s", q.id, ctx.submission.path)
            raise GraderError(f"the {q.spec.kind} check of {q.id} crashed on {ctx.submission.path.name}: {exc!r}") from exc
    return to_result(q, outcome, time.perf_counter() - start)


def to_result(q: Question, outcome: Outcome, duration: float = 0.0) -> QuestionResult:
    fraction = min(max(outcome.fraction, 0.0), 1.0)
    return QuestionResult(
        qid=q.id,
        title=q.spec.title,
        kind=q.spec.kind,
        score=round(q.spec.points * fraction, 4),
        max_score=q.spec.points,
        status=outcome.resolved_status,
        message=outcome.message,
        visibility=q.spec.visibility,
        details=outcome.details,
        duration=round(duration, 4),
    )


def _unanswered(q: Question, message: str) -> QuestionResult:
    return to_result(q, Outcome(0.0, message, status=Status.ERROR))


__all__ = ["grade_submission", "run_question", "Submission"]
