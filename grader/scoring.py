"""From results to what graders and gradebooks read: Gradescope's results.json and the class CSV."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric import Rubric
from grader.spreadsheet import Cell, csv_text

GRADESCOPE_VISIBILITY = {"public": "visible", "hidden": "after_published"}


def student_output(q: QuestionResult) -> str:
    """What a student may read of a question: hidden checks say only whether they passed."""
    if q.visibility == "hidden":
        return f"hidden test: {'passed' if q.status == Status.PASSED else 'failed'}"
    if q.status is Status.PASSED or not isinstance(q.details, dict):
        return q.message
    from grader.report import explain  # the failing input, expected against yours, a snippet (report imports us)

    more = "\n\n".join(f"{b.title}:\n{b.text}" for b in explain(q).blocks)
    return f"{q.message}\n\n{more}" if more else q.message


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


def atomic_write(path: Path, text: str) -> None:
    """Write then rename, so a kill never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
