"""A graded class folder for the TA workspace's tests, written as `grader grade` writes one, without running
any code: every student answers q1.1 right and gives the free-text answers the test chooses."""
from __future__ import annotations

from pathlib import Path

from grader.atomic import atomic_write
from grader.checks.manual import PENDING_MESSAGE, ManualDetails
from grader.classroom.gradebook import FILENAME, Gradebook
from grader.classroom.outdir import finish
from grader.classroom.score_files import gradebook_csv
from grader.feedback.report import write_index
from grader.grading.verdict_key import CacheKey
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.schema import Rubric, load_rubric

RUBRIC = Path(__file__).parent / "data" / "workspace" / "rubric.yaml"


def make_class(out: Path, answers: dict[str, tuple[str | None, str | None]]) -> Rubric:
    """`answers`: student -> (answer to q2.1, answer to q2.2)."""
    rubric = load_rubric(RUBRIC)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with Gradebook(out / FILENAME) as book:
        for student, texts in answers.items():
            questions = [QuestionResult("q1.1", "the answer", "value", 1.0, 1.0, Status.PASSED, "correct", "public")]
            for qid, text in zip(("q2.1", "q2.2"), texts):
                details = ManualDetails(text, missing_answer=text is None).serialize()
                questions.append(QuestionResult(qid, qid, "manual", 0.0, 2.0, Status.PENDING, PENDING_MESSAGE, "public", details))
            result = SubmissionResult(student, str(out / f"{student}.py"), "workspace", tuple(questions),
                                      rubric_sha256=rubric.sha256)
            book.record(result, CacheKey(student, rubric.sha256, "test"))
            finish(result, rubric).write(out / student)
            results.append(result)
    atomic_write(out / "gradebook.csv", gradebook_csv(rubric, results))
    write_index(results, rubric, out)
    (out / "rubric-path").write_text(str(RUBRIC), encoding="utf-8")
    return rubric
