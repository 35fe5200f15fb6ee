"""`grader check SUBMISSION --rubric RUBRIC`: a student's self-check on the public questions only."""
from __future__ import annotations

from pathlib import Path

from grader.grading import grade_submission
from grader.rubric import load_rubric
from grader.sandbox import Launcher
from grader.terminal import print_check


def check(submission: Path, rubric_path: Path, *, launcher: Launcher | None = None) -> int:
    rubric = load_rubric(rubric_path)
    result = grade_submission(rubric, submission, launcher=launcher, public_only=True)
    print_check(result)
    return 0
