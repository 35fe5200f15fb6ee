"""Grading one submission: load → run cells in a worker → run each question's check → a result.

Everything here is per submission and returns a plain, serialisable `SubmissionResult`, so submissions can
be graded in any order, in any process, on any machine.
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from grader import __version__
from grader.checks import CheckContext, get_kind, kind_spec
from grader.errors import RubricError, SubmissionUnreadable
from grader.execution.sandbox import Launcher
from grader.execution.session import WorkerSession
from grader.results import (
    GRADER_ERROR_MESSAGE,
    CellFailure,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
    scrub_text,
)
from grader.rubric.handout import require
from grader.rubric.schema import Question, Rubric
from grader.sources.cells import blame, name_failures, rename_frames
from grader.sources.load import Submission, load_submission, student_name

log = logging.getLogger(__name__)


def grade_submission(
    rubric: Rubric,
    path: Path,
    *,
    launcher: Launcher | None = None,
    device: str = "cpu",
    public_only: bool = False,
    log_path: Path | None = None,
    helpers: Sequence[tuple[str, str]] = (),
) -> SubmissionResult:
    """`helpers`: files graded with the submission, as (the name the student gave it, its path)."""
    start = time.perf_counter()
    questions = [q for q in rubric.questions if not public_only or q.spec.visibility == "public"]
    base = dict(
        student=scrub_text(student_name(path)),
        path=scrub_text(str(path)),
        assignment=rubric.assignment,
        rubric_sha256=rubric.sha256,
        grader_version=__version__,
        sandbox=getattr(launcher, "name", "none"),
    )
    try:
        submission = load_submission(path)
    except SubmissionUnreadable as exc:
        # The reason is said once, at the top of every report (load_error); each question only points there.
        results = tuple(_unanswered(q, UNREAD_MESSAGE) for q in questions)
        return SubmissionResult(**base, questions=results, load_error=str(exc), execution_time=time.perf_counter() - start)  # type: ignore[arg-type]
    reference = rubric.load_reference()
    with WorkerSession(submission, rubric.limits, launcher, log_path, helpers, rubric.handout.files) as session:
        failures = name_failures(submission, session.run_cells())
        results = tuple(
            name_cells(submission, failures, run_question_settled(
                CheckContext(rubric, q, submission, session, reference, device, reproduce_failures=True)
            ))
            for q in questions
        )
        worker_device = session.device
        flags = _integrity(session)
        notes = submission.notes + session.staged.notes
    kept, cut = bounded_failures(failures)
    return SubmissionResult(
        **base,  # type: ignore[arg-type]
        questions=results,
        cell_failures=kept,
        execution_time=time.perf_counter() - start,
        submission_sha256=submission.sha256,
        device=worker_device,
        notes=notes + cut,
        flags=flags,
    )


# What a result keeps of its failed cells: every one becomes results.json, grading.json, two reports and a
# gradebook row, so 1,990 tiny failing cells once made a 50 MB student folder and 6 MB of gradebook.sqlite.
MAX_CELL_FAILURES = 100
MAX_CELL_TRACEBACKS = 20  # failures shown with their traceback; the others with their message


def bounded_failures(failures: tuple[CellFailure, ...]) -> tuple[tuple[CellFailure, ...], tuple[str, ...]]:
    """The failures a result keeps, and a note for the report where some were cut."""
    shown = failures[:MAX_CELL_FAILURES]
    kept = tuple(f if i < MAX_CELL_TRACEBACKS else replace(f, traceback=[]) for i, f in enumerate(shown))
    if kept == failures:
        return failures, ()
    cut = []
    if len(failures) > len(kept):
        cut.append(f"{len(failures):,} cells failed; only the first {len(kept):,} are shown")
    if any(f.traceback for f in shown[MAX_CELL_TRACEBACKS:]):
        cut.append(f"tracebacks are shown for the first {MAX_CELL_TRACEBACKS} failed cells only")
    return kept, ("; ".join(cut) + " (cut by the grader)",)


def name_cells(submission: Submission, failures: tuple[CellFailure, ...], q: QuestionResult) -> QuestionResult:
    """Cells named as everywhere else in the question's traceback, and a failed cell named as the cause of a
    missing answer."""
    trace = q.details.get("traceback") if isinstance(q.details, dict) else None
    if isinstance(trace, list) and trace:
        q = replace(q, details={**q.details, "traceback": rename_frames(submission, trace)})
    return blame(submission, failures, q)


def _integrity(session: WorkerSession) -> tuple[str, ...]:
    try:
        return session.integrity()
    except Exception:
        log.exception("could not collect integrity flags")
        return ()


Check = Callable[[CheckContext], Outcome]
Crash = Callable[[CheckContext, Exception], Outcome]  # called while the check's exception is handled


def recorded_crash(ctx: CheckContext, exc: Exception) -> Outcome:
    """A check that crashed while grading: logged, and this question's result needs a TA (`grader_error_outcome`)."""
    log.exception("the %s check of %s crashed on %s", ctx.question.spec.kind, ctx.question.id, ctx.submission.path)
    return grader_error_outcome(traceback.format_exc())


def run_question(ctx: CheckContext, check: Check | None = None, on_crash: Crash = recorded_crash) -> QuestionResult:
    """One question: the forbid gate first, then `check` (by default the kind's own).  A check that raises is the
    grader's own failure on this answer, never the student's: `on_crash` makes it the question's outcome (or
    raises)."""
    q = ctx.question
    start = time.perf_counter()
    outcome = None
    if q.spec.forbid and q.spec.answer:
        from grader.checks.forbid import forbid_outcome

        outcome = forbid_outcome(ctx, q.spec.forbid)
    if outcome is None:
        try:
            outcome = (check or get_kind(q.spec.kind).run)(ctx)
        except Exception as exc:  # noqa: BLE001 - the grader's own failure on this answer; on_crash logs it
            outcome = on_crash(ctx, exc)
    return to_result(q, outcome, time.perf_counter() - start)


RUN_AGAIN_NOTE = (
    "graded a second time, because its first run reached a wall-clock time limit (which a busy machine can "
    "cause): this is the second run's verdict"
)


def run_question_settled(ctx: CheckContext) -> QuestionResult:
    """`run_question`, run once more where a cell or call of it was stopped by the wall-clock backstop rather than
    its CPU time: a loaded machine may be what stopped it, so that verdict does not stand until it is repeated.
    The second run's verdict stands, whatever it is, with a note saying so."""
    hits = ctx.session.backstop_hits
    result = run_question(ctx)
    if ctx.session.backstop_hits == hits or ctx.session.out_of_time:
        return result
    log.info("%s of %s reached the wall-clock backstop: graded again", ctx.question.id, ctx.submission.path)
    again = run_question(ctx)
    return replace(again, message=f"{again.message} ({RUN_AGAIN_NOTE})", details={**again.details, "run_again": True})


def grader_error_outcome(trace: str) -> Outcome:
    """A check that crashed: 0 points until a TA looks; the traceback is kept for the TA, never the student."""
    return Outcome(0.0, GRADER_ERROR_MESSAGE, {"grader_error": trace[-MAX_TRACE:]}, Status.GRADER_ERROR)


def failed_submission(rubric: Rubric, path: Path, trace: str, *, public_only: bool = False) -> SubmissionResult:
    """The result of a submission the grader itself failed on outside any one check (loading, the worker
    session, the codec): every question needs a TA.  Built from the rubric alone, so it cannot fail again."""
    questions = tuple(
        to_result(q, grader_error_outcome(trace))
        for q in rubric.questions
        if not public_only or q.spec.visibility == "public"
    )
    return SubmissionResult(
        student=scrub_text(student_name(path)),
        path=scrub_text(str(path)),
        assignment=rubric.assignment,
        questions=questions,
        rubric_sha256=rubric.sha256,
        grader_version=__version__,
        grader_error=trace[-MAX_TRACE:],
    )


def preflight(rubric: Rubric) -> None:
    """What must hold before any student code runs: the reference imports, has every name the rubric points
    at, and passes each kind's self-check (gradients against finite differences).  A failure here is the
    rubric's or the reference's (GraderError), and stops the run.  First, the packages the rubric requires."""
    check_requirements(rubric)
    reference = rubric.load_reference()
    for q in rubric.questions:
        for key, name in _reference_names(q):
            if not hasattr(reference, name):
                raise RubricError(str(rubric.path), f"the reference {rubric.reference_path.name} has no {name!r}", q.id, key)
    for q in rubric.questions:
        check = getattr(get_kind(q.spec.kind), "preflight", None)  # a kind's own self-check of the reference
        if check is not None:
            check(rubric, q, reference)


def check_requirements(rubric: Rubric) -> None:
    """Stop (GraderError: exit 2) when this environment lacks a package the rubric's `requires:` lists."""
    require(rubric.requires)


def _reference_names(q: Question) -> list[tuple[str, str]]:
    """(key, name) of every attribute of the reference the question's options name (its kind's entry says which)."""
    opts, kind = q.options, kind_spec(q.spec.kind)
    names = [(key, getattr(opts, key)) for key in kind.reference_keys if getattr(opts, key, None)]
    unnamed = not getattr(opts, "reference", None) and getattr(opts, "expected", None) is None
    if kind.answer_in_reference and q.spec.answer and unnamed:
        names.append(("answer", q.spec.answer))
    return [(k, str(v)) for k, v in names if isinstance(v, str)]


MAX_TRACE = 20_000  # characters of a grader traceback kept in a result
UNREAD_MESSAGE = "not graded: the submission could not be read (the reason is at the top)"


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


__all__ = [
    "Submission",
    "check_requirements",
    "failed_submission",
    "grade_submission",
    "preflight",
    "run_question",
    "run_question_settled",
]
