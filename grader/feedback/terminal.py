"""What `grader grade` and `grader check` print: a progress bar, a class summary, a student's table.

On a terminal this uses rich (colours, a live bar with ETA, boxed tables).  When the stream is not a TTY
(CI logs, pipes, files) every view degrades to plain aligned text with no control codes, one line per event, so
logs stay greppable.  Both modes print the same facts; the rows are built once and laid out twice.
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Iterable, Iterator, Sequence, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from grader.feedback.report import Audience, Explanation, explain, summarize
from grader.palette import STATUS_COLOURS
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.schema import Rubric

__all__ = ["GradeProgress", "format_duration", "is_live", "one_line", "print_check", "print_summary", "printable"]

# Marks readable without colour (plain mode, screen readers, colour-blind students).
MARKS = {
    Status.PASSED: "ok",
    Status.PARTIAL: "part",
    Status.FAILED: "wrong",
    Status.ERROR: "error",
    Status.PENDING: "TA",
    Status.GRADER_ERROR: "needs TA",
}
STYLES = {status: colour.terminal for status, colour in STATUS_COLOURS.items()}


def is_live(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal (rich's rules: TTY, TERM, FORCE_COLOR, NO_COLOR...)."""
    return Console(file=stream).is_terminal


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# ---------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    """A table column: its header, and whether its cells align right (numbers)."""

    header: str
    right: bool = False  # numbers align right


def _plain_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns with no box drawing; the last column is free-width (long messages wrap naturally)."""
    widths = [max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    widths[-1] = 0

    def line(cells: Sequence[str]) -> str:
        parts = [cell.rjust(w) if col.right else cell.ljust(w) for cell, w, col in zip(cells, widths, columns)]
        return "  ".join(parts).rstrip()

    return "\n".join([line([c.header for c in columns]), *(line(r) for r in rows)])


def print_table(
    stream: TextIO,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    styles: Sequence[str | None] = (),
    title: str | None = None,
    styled_column: int = 1,
) -> None:
    """A table on `stream`: boxed and coloured where it is a live terminal, plain aligned columns elsewhere.
    `styles[i]` colours row i's `styled_column` (the result mark), not the whole row."""
    if not is_live(stream):
        if title:
            print(title, file=stream)
        print(_plain_table(columns, rows), file=stream)
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        table.add_column(c.header, justify="right" if c.right else "left", overflow="fold")
    for i, row in enumerate(rows):
        # Text objects: student-derived text must never be read as rich markup ("[red]" in a message).
        style = styles[i] if i < len(styles) else None
        table.add_row(*(Text(cell, style=style or "" if j == styled_column else "") for j, cell in enumerate(row)))
    Console(file=stream).print(table)


# -------------------------------------------------------------------------------------------- progress


class GradeProgress:
    """Progress of `grader grade`: a live bar with ETA on a terminal, one line per submission otherwise.

    Use as a context manager; call `advance(result)` as each submission finishes.
    """

    def __init__(self, total: int, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = is_live(self.stream) if live is None else live
        self._start = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> GradeProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def track(self, results: Iterable[SubmissionResult]) -> Iterator[SubmissionResult]:
        """Yield `results`, counting each once the caller has handled it (written its files); the bar is
        shown while the loop runs and removed however the loop ends."""
        with self:
            for result in results:
                yield result
                self.advance(result)

    def eta(self) -> float | None:
        """Seconds left at the mean pace so far; None before the first submission finishes."""
        if not self.done:
            return None
        return (time.monotonic() - self._start) / self.done * (self.total - self.done)

    def advance(self, result: SubmissionResult) -> None:
        self.done += 1
        line = _result_line(result)
        if self._progress is not None and self._task is not None:
            self._progress.console.print(Text(line))
            self._progress.update(self._task, advance=1, description=result.student)
            return
        eta = self.eta()
        left = f", about {format_duration(eta)} left" if eta is not None and eta >= 1 else ""
        print(f"[{self.done}/{self.total}] {line}{left}", file=self.stream, flush=True)


def _result_line(r: SubmissionResult) -> str:
    notes = []
    if r.load_error:
        notes.append("unreadable")
    if r.cell_failures:
        notes.append(f"{len(r.cell_failures)} failed cell{'s' if len(r.cell_failures) > 1 else ''}")
    pending = sum(q.status is Status.PENDING for q in r.questions)
    if pending:
        notes.append(f"{pending} for a TA")
    if r.needs_ta:
        notes.append("grader error, needs a TA")
    tail = f" ({', '.join(notes)})" if notes else ""
    return f"{r.student}: {r.score:g}/{r.max_score:g} in {r.execution_time:.1f}s{tail}"


# --------------------------------------------------------------------------------------------- summary


def _clip(text: str, width: int) -> str:
    text = one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


# C0 and C1 control characters (ESC among them) would let a student's text move the cursor, recolour or
# retitle the TA's terminal; they are shown as visible escapes instead.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """`text` safe to print on a terminal: control characters shown as `\\x1b`, newlines kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def one_line(text: object) -> str:
    """`printable(text)` on one line: a table cell or a progress line never breaks the layout."""
    return printable(" ".join(str(text).replace("\t", " ").splitlines()))


def print_summary(
    results: Sequence[SubmissionResult], rubric: Rubric | None = None, stream: TextIO | None = None
) -> None:
    """The class at a glance after `grader grade`: per question mean and pass rate, then the totals."""
    stream = stream if stream is not None else sys.stderr
    s = summarize(results, rubric)
    columns = [Column("question"), Column("points", True), Column("mean", True), Column("passed", True),
               Column("TA", True), Column("most common failure")]
    rows = []
    for q in s.questions:
        rate = "-" if q.pass_rate is None else f"{100 * q.pass_rate:.0f}% ({q.passed}/{q.graded})"
        failure = _clip(f"x{q.failures[0][1]} {q.failures[0][0]}", 90) if q.failures else ""
        rows.append([f"{q.qid} {q.title}", f"{q.max_score:g}", f"{q.mean:.2f}", rate, str(q.pending or ""), failure])
    print_table(stream, columns, rows, title=f"{s.title}: {len(s.results)} submissions")
    print(
        f"total: mean {s.mean:.2f}, median {s.median:g} of {s.max_score:g}; "
        f"grading took {format_duration(s.runtime_total)} (slowest {s.runtime_max:.1f}s)",
        file=stream,
    )
    for problem in s.setup_problems:
        print(f"needs a TA: course setup: {one_line(problem.line)}", file=stream)
    # As `grader status` keeps them apart: answers waiting for a TA's score are work, not problems.
    problems = [n for n in s.needs_ta if not n.by_hand]
    by_hand = [n for n in s.needs_ta if n.by_hand]
    if problems:
        print(f"needs a TA: {len(problems)}", file=stream)
        for n in problems:
            print(f"  {n.student}: {one_line(n.reason)}", file=stream)
    if by_hand:
        print(f"pending TA scores: {len(by_hand)} submissions (grader serve, or grader manual)", file=stream)
        for n in by_hand:
            print(f"  {n.student}: {one_line(n.reason)}", file=stream)


# ---------------------------------------------------------------------------------------------- check


def print_check(result: SubmissionResult, stream: TextIO | None = None, *, footer: str | None = None) -> None:
    """A student's self-check: one row per question, then every problem explained in full.

    `footer` replaces the closing "public questions: X/Y" line ("" for none: a caller that says more).
    """
    stream = stream if stream is not None else sys.stdout
    if result.load_error:
        from grader.feedback.report import load_advice

        print(f"Your submission could not be read: {one_line(result.load_error)}", file=stream)
        print(load_advice(result), file=stream)
    views = [(q, explain(q, Audience.STUDENT, python_file=result.path.endswith(".py"))) for q in result.questions]
    columns = [Column("question"), Column("result"), Column("points", True), Column("why")]
    rows = [
        [f"{q.qid} {q.title}", MARKS[q.status], f"{q.score:g}/{q.max_score:g}", "" if q.status is Status.PASSED else one_line(v.summary)]
        for q, v in views
    ]
    print_table(stream, columns, rows, styles=[STYLES[q.status] for q, _ in views])
    for note in result.notes:
        print(f"note: {one_line(note)}", file=stream)
    problems = [(q, v) for q, v in views if q.status in (Status.FAILED, Status.PARTIAL, Status.ERROR)]
    if problems:
        print("\nWhat to fix:", file=stream)
    for q, v in problems:
        _print_problem(q, v, stream=stream)
    for c in result.cell_failures:
        start = f", starting `{one_line(c.first_line)}`" if c.first_line else ""
        print(f"\ncode {c.name}{start} failed ({c.reason}): {one_line(c.message)}", file=stream)
        for line in c.traceback[-6:]:
            print(f"    {one_line(line)}", file=stream)
    if footer is None:
        footer = f"\npublic questions: {result.score:g}/{result.max_score:g}"
    if footer:
        print(footer, file=stream)


def _print_problem(q: QuestionResult, v: Explanation, *, stream: TextIO) -> None:
    print(f"\n{q.qid} {q.title}:", file=stream)
    print(f"  {printable(v.summary)}", file=stream)
    for f in v.facts:
        print(f"  {f.label}: {one_line(f.value)}", file=stream)
    for b in v.blocks:
        print(f"  {one_line(b.title)}:", file=stream)
        for line in b.text.splitlines():
            print(f"    {printable(line)}", file=stream)
    for line in v.code:
        print(f"  > {one_line(line)}", file=stream)
    if v.traceback:
        print("  your traceback:", file=stream)
        for entry in v.traceback:  # a frame is several lines (where, the code, the caret): kept as Python prints it
            for line in str(entry).rstrip("\n").splitlines():
                print(f"    {printable(line)}", file=stream)

