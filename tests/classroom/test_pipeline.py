"""Grading a class through the library (grader.classroom.pipeline), without the command line: the results and
the events a caller receives, in order."""
from __future__ import annotations

from pathlib import Path

from grader.classroom.pipeline import (
    ClassOptions,
    Event,
    GradingEnded,
    GradingStarted,
    Notice,
    NoticeKind,
    Reused,
    SubmissionGraded,
    grade_class,
)
from tests.conftest import DATA

CORRECT = "answer = 42\npair = (5, 2)\nflag = False\nratio = 0.25\n"


def test_a_tiny_class_is_graded_through_the_library_and_said_in_events(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ann.py").write_text(CORRECT)
    (subs / "ben.py").write_text("answer = 41\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("Student ID,Name\nann,Ann Lee\nben,Ben Ode\ncat,Cat Ray\n")
    options = ClassOptions(DATA / "mini" / "rubric.yaml", (subs,), tmp_path / "out", roster=roster)
    events: list[Event] = []

    run = grade_class(options, events.append)

    assert {r.student: (r.score, r.max_score) for r in run.results} == {"ann": (4.0, 10.0), "ben": (0.0, 10.0)}
    ann = next(r for r in run.results if r.student == "ann")
    assert [q.score for q in ann.questions] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert (run.total, run.reused, run.graded, run.finished, run.interrupted) == (2, 0, 2, 2, False)
    assert (run.needs_ta, run.setup_problems, run.similar, run.similarity_error) == ((), (), (), None)
    assert run.index == tmp_path / "out" / "index.html" and run.index.is_file()
    graded = [e for e in events if isinstance(e, SubmissionGraded)]
    assert events == [
        Notice(NoticeKind.MISSING, "1 students on the roster have no submission: Cat Ray"),
        GradingStarted(2),
        *graded,
        GradingEnded(),
    ]
    assert sorted((e.result.student, e.result.score) for e in graded) == [("ann", 4.0), ("ben", 0.0)]

    # Run again with nothing changed: both results come from the gradebook, nothing is graded.
    events.clear()
    again = grade_class(options, events.append)
    assert events == [
        Notice(NoticeKind.MISSING, "1 students on the roster have no submission: Cat Ray"),
        Reused(2, 2),
        GradingStarted(0),
        GradingEnded(),
    ]
    assert {r.student: r.score for r in again.results} == {"ann": 4.0, "ben": 0.0}
    assert (again.total, again.reused, again.graded) == (2, 2, 0)
