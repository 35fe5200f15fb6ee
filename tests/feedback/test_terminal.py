"""What `grader grade` and `grader check` print, on a terminal and in a CI log."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from grader.feedback.terminal import GradeProgress, format_duration, is_live, print_check, print_summary
from grader.results import SubmissionResult

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
ESC = "\x1b"


def load(name: str) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads((DATA / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def klass() -> list[SubmissionResult]:
    return [load(n) for n in ("alice", "bob", "carol")]


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """A non-TTY stream, as in CI, whatever the environment of the test run forces."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    return io.StringIO()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """A stream rich treats as an interactive terminal."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return io.StringIO()


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3725, "1h02m")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_stream_detection(plain: io.StringIO) -> None:
    assert not is_live(plain)


def test_progress_off_a_tty_is_one_plain_line_per_submission(plain: io.StringIO, klass: list[SubmissionResult]) -> None:
    for _ in GradeProgress(len(klass), plain).track(klass):
        pass
    lines = plain.getvalue().splitlines()
    assert lines == [
        "[1/3] alice: 7.5/30 in 14.2s (1 failed cell, 1 for a TA)",
        "[2/3] bob: 0/11 in 0.1s (unreadable, 1 for a TA)",
        "[3/3] carol <b>&: 11/14 in 61.8s (1 failed cell)",
    ]


def test_progress_counts_a_result_once_the_loop_body_has_run(plain: io.StringIO, klass: list[SubmissionResult]) -> None:
    progress = GradeProgress(len(klass), plain)
    seen = []
    for _result in progress.track(klass):
        seen.append(progress.done)  # the result in hand is not counted yet: its files are not written
    assert seen == [0, 1, 2] and progress.done == 3


def test_progress_on_a_terminal_draws_a_bar(terminal: io.StringIO, klass: list[SubmissionResult]) -> None:
    for _ in GradeProgress(len(klass), terminal).track(klass):
        pass
    out = terminal.getvalue()
    assert ESC in out and "3/3" in out and "alice: 7.5/30" in out and "━" in out


def test_summary_off_a_tty(plain: io.StringIO, klass: list[SubmissionResult]) -> None:
    print_summary(klass, None, plain)
    out = plain.getvalue()
    assert ESC not in out and "┃" not in out
    assert "q1.1 conv output size" in out and "67% (2/3)" in out
    assert "x2 on inputs x: tensor" in out  # the commonest failure of q1.4, grouped
    # Problems and answers waiting for a TA's score are counted apart, as `grader status` counts them.
    assert "needs a TA: 2\n" in out and "bob: could not be read" in out
    assert out.endswith("pending TA scores: 2 submissions (grader serve, or grader manual)\n"
                        "  alice: to grade by hand: q6.1\n  bob: to grade by hand: q6.1\n")


def test_check_table_off_a_tty(plain: io.StringIO, klass: list[SubmissionResult]) -> None:
    print_check(klass[0], plain)
    out = plain.getvalue()
    lines = out.splitlines()
    assert lines[0].split() == ["question", "result", "points", "why"]
    assert any(line.startswith("q1.2 conv example output") and " wrong " in line and "0/1" in line for line in lines)
    # every failing question is explained in full: the counterexample and both values
    assert "What to fix:" in out and "\nq2.1 gated state dimension:" in out and "your formula gives: 8" in out
    assert "\nq1.2 conv example output:" in out  # not only the first
    assert "code cell 3 failed (error): NameError" in out
    assert lines[-1] == "public questions: 7.5/30"


def test_check_redacts_hidden_questions(plain: io.StringIO, klass: list[SubmissionResult]) -> None:
    print_check(klass[0], plain)
    out = plain.getvalue()
    assert "hidden test: failed" in out and "SECRET" not in out


def test_check_on_a_terminal_prints_student_text_literally(terminal: io.StringIO) -> None:
    # rich markup in a student's message must not be interpreted (nor crash on an unbalanced tag)
    base = load("alice")
    q = base.questions[2]
    from dataclasses import replace

    odd = replace(q, message="expected [red]17[/red], got [/bold] 16")
    print_check(base.with_questions((odd,)), terminal)
    out = terminal.getvalue()
    assert ESC in out and "[red]17[/red]" in out and "[/bold]" in out


def test_check_of_an_unreadable_submission(plain: io.StringIO) -> None:
    print_check(load("bob"), plain)
    assert plain.getvalue().startswith("Your submission could not be read: not a valid notebook")
