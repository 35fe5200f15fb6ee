"""`grader validate RUBRIC [--examples DIR]`: the rubric author's CI check (see `grader.authoring.validate`).

Prints each stage as it ends, then a mutation score per question and every surviving mutant as a diff.
Exit status: 0 when every check holds, 1 when the rubric is weak (a survivor, a wrong score), 2 when it cannot be
validated (a bad rubric, reference, allow-list or expected.yaml: one line, as every verb).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from grader.authoring.hidden import shared_with_hidden
from grader.authoring.mutants import AllowEntry, Verdict, allow_list_path, load_allow_list
from grader.authoring.starter import starter_stage
from grader.authoring.validate import (
    Finding,
    Mutation,
    QuestionMutation,
    Stage,
    Validation,
    check_rubric,
    grade_known,
    mutation_analysis,
    read_examples,
)
from grader.errors import GraderError
from grader.execution.sandbox import Launcher, hiding
from grader.feedback.terminal import Column, format_duration, is_live, one_line, print_table
from grader.palette import STATUS_COLOURS
from grader.results import Status
from grader.rubric.schema import load_rubric


def validate(
    rubric_path: Path,
    examples: Path | None = None,
    *,
    allow: Path | None = None,
    launcher: Launcher | None = None,
    device: str = "cpu",
    jobs: int = 2,
    mutants: bool = True,
    as_json: bool = False,
    stream: TextIO | None = None,
) -> int:
    out = stream if stream is not None else sys.stdout
    echo = _Echo(out, quiet=as_json)
    start = time.perf_counter()
    rubric = load_rubric(rubric_path)
    problems = check_rubric(rubric)
    if problems:
        for extra in problems[1:]:
            print(f"grader: error: {extra}", file=sys.stderr)
        raise problems[0]
    for leak in shared_with_hidden(rubric):
        print(f"grader: warning: {leak.describe()}: a report of {leak.public} may show them to a student "
              f"(give {leak.hidden} a case generator of its own)", file=sys.stderr)
    if allow is not None and not allow.is_file():
        raise GraderError(f"no such allow-list: {allow}")
    allow_path = allow if allow is not None else allow_list_path(rubric)
    allowed = load_allow_list(allow_path, rubric)
    example_set = read_examples(examples, rubric) if examples is not None else None
    echo.line(f"validating {rubric_path} ({len(rubric.questions)} questions, {rubric.max_score:g} points)")
    echo.line(f"rubric: names, signatures, forbid entries and keys agree with {rubric.reference_path.name}")
    # The reference and rubric stay out of the worker's sight, as when grading (the reference is copied in).
    launcher = hiding(launcher, [rubric.reference_path, rubric.path.parent]) if launcher else None
    known = grade_known(rubric, example_set, launcher=launcher, device=device, jobs=jobs)
    starter = starter_stage(rubric, launcher=launcher, device=device)  # the handout's starter notebook loads here
    stages = [s for s in (known.reference, known.blank, starter, known.examples) if s is not None]
    for stage in stages:
        echo.stage(stage)
    if example_set is None:
        echo.line("examples: none given (--examples DIR with an expected.yaml)")
    mutation = None
    if mutants:
        with echo.progress() as on_done:
            mutation = mutation_analysis(rubric, allowed, baseline=known.baseline, launcher=launcher, device=device,
                                         jobs=jobs, on_done=on_done)
        echo.mutation(mutation, allow_path)
    result = Validation(str(rubric_path), tuple(stages), mutation, time.perf_counter() - start)
    if as_json:
        print(json.dumps(result.serialize(), indent=2), file=out)
    else:
        echo.verdict(result)
    return result.exit_code


class _Echo:
    """Plain lines off a terminal (CI logs), a table and a progress bar on one; nothing with --json."""

    def __init__(self, stream: TextIO, *, quiet: bool) -> None:
        self.stream, self.quiet = stream, quiet
        self.live = not quiet and is_live(stream)

    def line(self, text: str = "") -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def stage(self, stage: Stage) -> None:
        last = stage.findings[-1] if stage.findings else Finding(True, "")
        self.line(f"{stage.name}: {_mark(bool(stage))} {last.text if stage.name != 'examples' else _count(stage)} "
                  f"({stage.seconds:.1f}s)")
        for f in stage.findings if stage.name == "examples" else stage.findings[:-1]:
            self.line(f"  {_mark(f.ok)} {one_line(f.text)}")

    def progress(self) -> _Progress:
        return _Progress(self.stream if self.live else None)

    def mutation(self, m: Mutation, allow_path: Path) -> None:
        if self.quiet:
            return
        self.line(f"mutants: {m.mutants} graded in {format_duration(m.seconds)} ({m.jobs} worker processes)")
        columns = [Column("question"), Column("kind"), Column("mutants", True), Column("killed", True),
                   Column("by a sibling", True), Column("equivalent", True), Column("allowed", True),
                   Column("survived", True), Column("score", True)]
        rows = [_row(q) for q in m.questions]
        styles = [None if q.note else STATUS_COLOURS[Status.PASSED if q else Status.FAILED].terminal for q in m.questions]
        print_table(self.stream, columns, rows, styles=styles, styled_column=8)
        for q in m.questions:
            for r in q.survivors:
                self.line(f"\nsurvivor of {q.qid}: {r.mutant.id}  ({r.mutant.digest})")
                for line in r.mutant.diff():
                    self.line(f"    {one_line(line)}")
        if any(q.survivors for q in m.questions):
            self.line(f"\nA survivor is a wrong answer this question gives full points: add a case that tells it apart, "
                      f"or, if it is no wrong answer, add it with a reason to {allow_path}")
        for entry in m.stale:
            self.line(f"note: {allow_path}: {entry.question} {entry.mutant} justifies no survivor (killed, or no "
                      "longer made): remove it")

    def verdict(self, v: Validation) -> None:
        weak = [s.name for s in v.stages if not s]
        if v.mutation is not None and not v.mutation:
            weak.append("survivors in " + ", ".join(q.qid for q in v.mutation.questions if not q))
        text = "OK" if v else "WEAK: " + "; ".join(weak)
        self.line(f"\nvalidate: {text} (exit {v.exit_code}) in {format_duration(v.seconds)}")


def _mark(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def _count(stage: Stage) -> str:
    scored = [f for f in stage.findings if "not scored" not in f.text]
    return f"{sum(f.ok for f in scored)} of {len(scored)} scored as expected"


def _row(q: QuestionMutation) -> list[str]:
    if q.note and not q.results:
        return [f"{q.qid} {q.title}", q.kind, "-", "", "", "", "", "", q.note]
    counts = [q.count(v) for v in (Verdict.KILLED, Verdict.SIBLING, Verdict.EQUIVALENT, Verdict.ALLOWED, Verdict.SURVIVED)]
    score = "-" if q.score is None else f"{100 * q.score:.0f}%"
    return [f"{q.qid} {q.title}", q.kind, str(len(q.results)), *map(str, counts), score]


class _Progress:
    """A bar with the mutants graded on a terminal; off one, silence until the table."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Progress:
        if self.stream is not None:
            self._bar = Progress(TextColumn("mutants"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(file=self.stream), transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            return
        if self._task is None:
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done)


__all__ = ["AllowEntry", "validate"]
