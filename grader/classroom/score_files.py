"""From results to what graders and gradebooks read: Gradescope's results.json and the class CSV."""
from __future__ import annotations

from typing import Any, Iterable

from grader.feedback.report import student_output
from grader.results import Status, SubmissionResult
from grader.rubric.schema import Rubric
from grader.spreadsheet import Cell, csv_text

__all__ = ["GRADESCOPE_VISIBILITY", "gradebook_csv", "gradescope", "student_output"]

GRADESCOPE_VISIBILITY = {"public": "visible", "hidden": "after_published"}


def gradescope(result: SubmissionResult) -> dict[str, Any]:
    tests = []
    for q in result.questions:
        test: dict[str, Any] = {
            "name": q.name,
            "number": q.qid.lstrip("q"),
            "score": q.score,
            "max_score": q.max_score,
            "status": "passed" if q.status == Status.PASSED else "failed",
            "output": student_output(q),
            "visibility": GRADESCOPE_VISIBILITY.get(q.visibility, "visible"),
        }
        if q.visibility == "hidden":
            test["extra_data"] = {"ta_output": q.message}
        tests.append(test)
    late = [result.late_note] if result.late else []
    output = "\n".join([*late, *(f"Note: {n}" for n in result.notes), *([result.load_error] if result.load_error else [])])
    if result.cell_failures:
        lines = [f"{c.name}: {c.message}" for c in result.cell_failures]
        output = (output + "\n" if output else "") + "Cells that failed:\n" + "\n".join(lines)
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 3),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"device": result.device, "sandbox": result.sandbox, "submission_sha256": result.submission_sha256},
    }


def gradebook_csv(rubric: Rubric, results: Iterable[SubmissionResult]) -> str:
    """The class's CSV: names and sids are student-controlled text (neutralised by `grader.spreadsheet`),
    scores are numbers."""
    qids = [q.id for q in rubric.questions]
    rows: list[list[Cell]] = [["student", "name", "sid", *qids, "total", "max", "status", "late", "raw_total", "penalty"]]
    for r in sorted(results, key=lambda r: r.student):
        scores = {q.qid: q.score for q in r.questions}
        status = (
            "needs TA" if r.needs_ta else "unreadable" if r.load_error
            else "pending" if any(q.status == Status.PENDING for q in r.questions) else "graded"
        )
        late: list[Cell] = [r.late.label if r.late else "", r.raw_score, r.penalty]
        rows.append([r.student, r.name, r.sid, *(scores.get(qid, 0.0) for qid in qids), r.score, rubric.max_score,
                     status, *late])
    return csv_text(rows, lineterminator="\r\n")
