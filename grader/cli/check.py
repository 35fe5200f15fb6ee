"""`grader check SUBMISSION --rubric RUBRIC | --kit KIT`: a student's self-check on the public questions.

With `--rubric` (a TA, or a course that hands out rubric and reference) the public questions are graded as
`grader grade` grades them.  With `--kit` nothing of the reference is needed (see `grader.kit`); the exit status
is 1 when a public check fails, so a student's own CI or pre-commit hook can use it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grader.classroom.score_files import gradescope
from grader.errors import GraderError
from grader.execution.sandbox import Launcher
from grader.feedback.terminal import print_check
from grader.grading.submission import grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import load_rubric


def report_path(args: argparse.Namespace) -> Path:
    """`--report`, or `NAME.report.html` beside the submission (never over the submission itself)."""
    if args.report is not None:
        return Path(args.report)
    return Path(args.submission).with_name(Path(args.submission).stem + ".report.html")


def write_check_report(result: SubmissionResult, path: Path, *, as_json: bool) -> None:
    """The student's report.html of this check: the loss curves, the failing inputs and every explanation the
    terminal has no room for."""
    from grader.classroom.score_files import atomic_write
    from grader.feedback.report import render_report

    try:
        atomic_write(path, render_report(result))
    except OSError as exc:
        print(f"the report could not be written to {path}: {exc.strerror or exc}", file=sys.stderr)
        return
    # On stderr: stdout ends with the one honest summary line (or is the JSON), which scripts read.
    print(f"report: {path}", file=sys.stderr)


def submission_files(submission: Path, assignment: str) -> tuple[Path, tuple[tuple[str, str], ...]]:
    """The file to check and the student's other files, as grading finds them: a folder (the notebook and the
    student's own modules, packages and data) is read as a folder submission is; a file is checked alone."""
    from grader.sources.discover import read_folder

    if not submission.is_dir() or submission.is_symlink():
        return submission, ()
    found = read_folder(submission, assignment)
    if found.main is None:
        raise GraderError(f"{submission} holds no .ipynb notebook or .py file to check")
    if len(found.candidates) > 1:  # a choice among several is said, never made quietly
        print(f"checking {found.main.relative_to(submission).as_posix()} (of {len(found.candidates)} candidates: "
              f"{', '.join(found.candidates)}; give the file itself to check another)", file=sys.stderr)
    return found.main, found.helpers


def check(
    submission: Path,
    rubric_path: Path | None = None,
    *,
    kit_path: Path | None = None,
    launcher: Launcher | None = None,
    as_json: bool = False,
    question: str | None = None,
    device: str = "cpu",
    report: Path | None = None,
) -> int:
    if kit_path is not None:
        return check_kit(
            submission, kit_path, launcher=launcher, as_json=as_json, question=question, device=device, report=report
        )
    if rubric_path is None:
        raise GraderError("grader check needs --kit KIT (or, for a TA, --rubric RUBRIC)")
    if question is not None:
        raise GraderError("--question works with --kit")
    rubric = load_rubric(rubric_path)
    main, helpers = submission_files(submission, rubric.assignment)
    result = grade_submission(rubric, main, launcher=launcher, public_only=True, device=device, helpers=helpers)
    if as_json:
        print(json.dumps(gradescope(result), indent=2))
    else:
        print_check(result)
    if report is not None:
        write_check_report(result, report, as_json=as_json)
    return 0


def check_kit(
    submission: Path,
    kit_path: Path,
    *,
    launcher: Launcher | None = None,
    as_json: bool = False,
    question: str | None = None,
    device: str = "cpu",
    report: Path | None = None,
) -> int:
    from grader.kit.run import check_submission
    from grader.kit.schema import read_kit
    from grader.kit.show import print_report

    kit = read_kit(kit_path)
    if question is not None:
        kit.question(question)  # an unknown id is the user's mistake: said before any code runs
    main, helpers = submission_files(submission, kit.assignment)
    checked = check_submission(kit, kit_path, main, launcher=launcher, device=device, question=question, helpers=helpers)
    if as_json:
        print(json.dumps(checked.results_json(), indent=2))
    else:
        print_report(checked)
    if report is not None:
        write_check_report(checked.result, report, as_json=as_json)
    return checked.exit_code
