"""Checking a submission against a kit: load → run cells in a worker → each question's kit check → a report.

The same pipeline as `grader.grading.submission.grade_submission`, with the kit in place of the rubric and reference.
`check_questions` is shared with the in-notebook check, which passes a session on the notebook's namespace.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from grader import __version__
from grader.checks.base import CheckContext
from grader.errors import SubmissionUnreadable
from grader.execution.sandbox import Launcher
from grader.execution.session import WorkerSession
from grader.grading.submission import name_cells, to_result
from grader.kit.checks import as_rubric, reference_for, run_kit_question
from grader.kit.result import KitReport, Unchecked
from grader.kit.schema import KitFile, KitQuestion, NotChecked, kit_handout
from grader.results import Outcome, Status, SubmissionResult
from grader.rubric.handout import require
from grader.sources.cells import name_failures
from grader.sources.load import Submission, load_submission, student_name


def selected(kit: KitFile, question: str | None) -> list[KitQuestion]:
    return [kit.question(question)] if question else list(kit.questions)


def check_submission(
    kit: KitFile,
    kit_path: Path,
    path: Path,
    *,
    launcher: Launcher | None = None,
    device: str = "cpu",
    question: str | None = None,
    helpers: Sequence[tuple[str, str]] = (),
) -> KitReport:
    """`grader check SUBMISSION --kit KIT`: the submission runs in its worker, as when graded: with the student's
    own files (`helpers`: (relative name, path)) and the course's handout, which the kit carries."""
    require(kit.requires, "this assignment")
    start = time.perf_counter()
    questions = selected(kit, question)
    empty = SubmissionResult(student_name(path), str(path), kit.assignment, (), rubric_sha256=kit.rubric_sha256,
                             grader_version=__version__, sandbox=getattr(launcher, "name", "none"))
    try:
        submission = load_submission(path)
    except SubmissionUnreadable as exc:
        unread = tuple(
            to_result(q, Outcome(0.0, f"not checked: {exc}", status=Status.ERROR))
            for q in as_rubric(kit, kit_path).questions if any(k.id == q.id for k in questions)
        )
        return report_for(kit, question, replace(empty, questions=unread, load_error=str(exc)))
    with WorkerSession(submission, kit.limits, launcher, None, helpers, kit_handout(kit, kit_path)) as session:
        failures = name_failures(submission, session.run_cells())
        result = check_questions(kit, kit_path, questions, submission, session, device)
        named = tuple(name_cells(submission, failures, q) for q in result.questions)
        notes = submission.notes + session.staged.notes
        result = replace(result, questions=named, cell_failures=failures, device=session.device, sandbox=empty.sandbox,
                         notes=notes)
    return report_for(kit, question, replace(result, execution_time=time.perf_counter() - start))


def check_questions(
    kit: KitFile,
    kit_path: Path,
    questions: list[KitQuestion],
    submission: Submission,
    session: WorkerSession,
    device: str,
) -> SubmissionResult:
    """The checked questions among `questions`, through `session` (a worker, or the notebook's own process)."""
    rubric = as_rubric(kit, kit_path)
    by_id = {q.id: q for q in questions}
    results = tuple(
        run_kit_question(CheckContext(rubric, q, submission, session, reference_for(by_id[q.id]), device))
        for q in rubric.questions if q.id in by_id
    )
    return SubmissionResult(
        student=submission.student, path=str(submission.path), assignment=kit.assignment, questions=results,
        submission_sha256=submission.sha256, rubric_sha256=kit.rubric_sha256, grader_version=__version__,
    )


def report_for(kit: KitFile, question: str | None, result: SubmissionResult) -> KitReport:
    """The checked questions' result, with what the kit leaves to grading among the questions asked for."""
    unchecked = tuple(
        Unchecked(q.id, q.title, q.points, q.kind, q.check.reason)
        for q in selected(kit, question) if isinstance(q.check, NotChecked)
    )
    whole = question is None  # one question asked for: the hidden points are not its business
    return KitReport(result, unchecked, kit.hidden_points if whole else 0.0, kit.hidden_questions if whole else 0)
