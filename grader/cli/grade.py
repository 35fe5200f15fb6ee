"""`grader grade RUBRIC SUBMISSION_OR_DIR... --out DIR`: grade a class, write results, reports, gradebook.

The grading is `grader.classroom.pipeline.grade_class`; this prints what it says as it runs (notices and the
progress on stderr) and what it did (the class summary, counts and the hints for a TA), and picks the exit status.
"""
from __future__ import annotations

import sys
from pathlib import Path

from grader.classroom.pipeline import (
    ClassOptions,
    ClassRun,
    Event,
    GradingEnded,
    GradingStarted,
    Notice,
    Reused,
    SubmissionGraded,
    grade_class,
)
from grader.classroom.similarity import REPORT
from grader.execution.sandbox import Launcher
from grader.feedback.terminal import GradeProgress, print_summary
from grader.grading.batch import Executor

EXIT_NEEDS_TA = 1  # grading finished, every file was written, and some submissions need a person
EXIT_INTERRUPTED = 130


def grade(
    rubric_path: Path,
    targets: list[Path],
    out: Path,
    *,
    jobs: int = 1,
    launcher: Launcher | None = None,
    device: str = "cpu",
    force: bool = False,
    only: list[str] | None = None,
    layout: str = "auto",
    roster: Path | None = None,
    executor: Executor | None = None,
    due: str | None = None,
    late_policy: str | None = None,
    extensions: list[str] | None = None,
) -> int:
    """`grader grade`; the arguments are `ClassOptions`'s."""
    options = ClassOptions(
        rubric_path, tuple(targets), out, jobs=jobs, launcher=launcher, device=device, force=force,
        only=tuple(only or ()), layout=layout, roster=roster, executor=executor, due=due, late_policy=late_policy,
        extensions=tuple(extensions or ()),
    )
    run = grade_class(options, Printer())
    say_run(run)
    return exit_status(run)


class Printer:
    """The events of a run as `grader grade` prints them: notices on stderr, the progress bar or lines."""

    def __init__(self) -> None:
        self.bar: GradeProgress | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            print(f"grader: {event.text}", file=sys.stderr)
        elif isinstance(event, Reused):
            print(event.text, file=sys.stderr)
        elif isinstance(event, GradingStarted):
            self.bar = GradeProgress(event.total)
            self.bar.__enter__()
        elif isinstance(event, SubmissionGraded) and self.bar is not None:
            self.bar.advance(event.result)
        elif isinstance(event, GradingEnded) and self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def say_run(run: ClassRun) -> None:
    """What the run did: counts, the class at a glance, and what a TA should look at."""
    out = run.out
    if run.interrupted:
        print(f"grader: interrupted: {run.finished} of {run.total} submissions are graded and in {run.index} and "
              f"gradebook.csv; run the same command again to grade the other {run.total - run.finished}",
              file=sys.stderr)
        return
    print_summary(run.results, run.rubric)
    print(f"graded {run.graded} submissions, {run.reused} unchanged; {len(run.results)} in the class "
          f"folder; class summary: {run.index}")
    if run.similarity_error is not None:
        print(f"grader: similar code not computed: {run.similarity_error}", file=sys.stderr)
    elif run.similar:
        print(f"similar code: {len(run.similar)} pair(s) to look at, a hint for a TA (grader similarity {out}; "
              f"{out / REPORT}; grader serve {out})")
    for problem in run.setup_problems:  # first: it explains many zeros at once
        print(f"grader: needs a TA: course setup: {problem.line}", file=sys.stderr)
    flagged = run.needs_ta
    if flagged:
        print(f"grader: {len(flagged)} submission{'s' if len(flagged) > 1 else ''} need a TA (grader error; "
              f"details in {out / 'grader.log'} and their report-ta.html): {', '.join(flagged)}", file=sys.stderr)


def exit_status(run: ClassRun) -> int:
    if run.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_NEEDS_TA if run.needs_ta or run.setup_problems else 0
