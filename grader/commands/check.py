"""`grader check SUBMISSION --rubric RUBRIC`: a student's self-check on the public questions only."""
from __future__ import annotations

from pathlib import Path

from grader.grading import grade_submission
from grader.results import Status
from grader.rubric import load_rubric
from grader.sandbox import Launcher
from grader.scoring import student_output


def check(submission: Path, rubric_path: Path, *, launcher: Launcher | None = None) -> int:
    rubric = load_rubric(rubric_path)
    result = grade_submission(rubric, submission, launcher=launcher, public_only=True)
    marks = {Status.PASSED: "ok", Status.PARTIAL: "part", Status.FAILED: "wrong", Status.ERROR: "error", Status.PENDING: "TA"}
    if result.load_error:
        print(f"Your submission could not be read: {result.load_error}")
    for q in result.questions:
        print(f"{q.qid:<6} {marks[q.status]:<6} {q.score:g}/{q.max_score:g}  {q.title}")
        if q.status != Status.PASSED:
            print(f"       {student_output(q)}")
    for c in result.cell_failures:
        print(f"cell {c.index + 1}: {c.message}")
    print(f"public questions: {result.score:g}/{result.max_score:g}")
    return 0
