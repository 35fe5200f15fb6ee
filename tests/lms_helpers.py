"""Synthetic graded classes for the LMS round-trip tests: results recorded in a real gradebook, no grading."""
from __future__ import annotations

from pathlib import Path

from grader.classroom.gradebook import FILENAME, Gradebook
from grader.grading.verdict_key import CacheKey
from grader.results import CellFailure, QuestionResult, Status, SubmissionResult


def result(student: str, path: str, scores: dict[str, tuple[float, Status]], **kw: object) -> SubmissionResult:
    questions = tuple(
        QuestionResult(qid, f"question {qid}", "value", score, 5.0, status, "why" if status is not Status.PASSED else "ok",
                       "public")
        for qid, (score, status) in scores.items()
    )
    return SubmissionResult(student=student, path=path, assignment="mini", questions=questions, **kw)  # type: ignore[arg-type]


def write_class(out: Path, results: list[SubmissionResult]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with Gradebook(out / FILENAME) as book:
        for r in results:
            book.record(r, CacheKey(f"sha-{r.student}", "rubric", "v"))
    return out


P, F, PEND, ERR, GERR = Status.PASSED, Status.FAILED, Status.PENDING, Status.ERROR, Status.GRADER_ERROR
TIMEOUT = CellFailure(2, "timeout", "cell ran past 3 s")
