"""The output folder of a class, and what `grader grade` writes for each student inside its failure boundary.

`OutDir` owns the folder: it belongs to one assignment (recorded in `assignment.json`; another is refused), and
its class files (`gradebook.csv`, `index.html`) are always written from the whole gradebook, every student ever
graded into it, never from the current run alone.  `finish` turns a result into the files of the student's folder (results.json, grading.json, the reports).  The
result is first made plain (a JSON round trip, odd characters replaced) so that the gradebook can always store
it; a report that fails to render (or runs past its time) makes the submission "grader error, needs a TA"
and leaves a plain fallback report, never a folder that cannot be finished.
"""
from __future__ import annotations

import html
import json
import logging
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from grader.atomic import atomic_write
from grader.classroom.gradebook import FILENAME, Gradebook
from grader.classroom.score_files import gradebook_csv, gradescope
from grader.errors import GraderError
from grader.feedback.report import REPORT_FILES, Audience, render_markdown, render_report, write_index
from grader.results import SubmissionResult, scrub
from grader.rubric.schema import Rubric
from grader.timeouts import time_limit

log = logging.getLogger(__name__)

RENDER_SECONDS = 60.0  # for all of one student's files; bounded inputs render in well under a second


@dataclass(frozen=True)
class StudentFiles:
    """One student's result, ready to record, and the files of their folder (name -> text)."""

    result: SubmissionResult
    files: dict[str, str]

    def write(self, folder: Path) -> None:
        for name, text in self.files.items():
            atomic_write(folder / name, text)


def finish(result: SubmissionResult, rubric: Rubric | None) -> StudentFiles:
    result = plain(result)
    try:
        with time_limit(RENDER_SECONDS, "writing the reports"):
            return StudentFiles(result, render_files(result, rubric))
    except Exception:  # noqa: BLE001 - the boundary: this student's report, never the batch
        trace = traceback.format_exc()
        log.error("the reports of %s could not be written\n%s", result.student, trace)
        result = replace(result, grader_error=f"the reports could not be written:\n{trace}")
        return StudentFiles(result, fallback_files(result, trace))


def plain(result: SubmissionResult) -> SubmissionResult:
    """`result` as the gradebook will read it back: JSON types only, every string valid UTF-8."""
    data = json.loads(json.dumps(scrub(result.serialize())))
    return SubmissionResult.from_dict(data)


def render_files(result: SubmissionResult, rubric: Rubric | None) -> dict[str, str]:
    return {
        "results.json": json.dumps(gradescope(result), indent=2),
        "grading.json": json.dumps(result.serialize(), indent=2),
        REPORT_FILES["html"]: render_report(result, rubric),
        REPORT_FILES["markdown"]: render_markdown(result, rubric),
        REPORT_FILES["ta"]: render_report(result, rubric, audience=Audience.TA),
    }


def fallback_files(result: SubmissionResult, trace: str) -> dict[str, str]:
    """Files made without templates or student text: scores, question ids and the grader's note."""
    rows = "\n".join(
        f"<tr><td>{html.escape(q.qid)}</td><td>{q.score:g} / {q.max_score:g}</td></tr>" for q in result.questions
    )
    note = "The grader could not write your full report; a TA will look at your submission."
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>report</title></head><body>'
        f"<h1>{html.escape(result.assignment)}</h1><p>{note}</p>"
        f"<p>Total: {result.score:g} / {result.max_score:g}</p><table>{rows}</table>{{ta}}</body></html>\n"
    )
    markdown = f"## {result.assignment}\n\n{note}\n\n**Total: {result.score:g} / {result.max_score:g}**\n"
    files = {
        "results.json": json.dumps(gradescope(result), indent=2),
        "grading.json": json.dumps(result.serialize(), indent=2),
        REPORT_FILES["html"]: page.replace("{ta}", ""),
        REPORT_FILES["markdown"]: markdown,
        REPORT_FILES["ta"]: page.replace("{ta}", f"<h2>Grader error</h2><pre>{html.escape(trace)}</pre>"),
    }
    return files


OWNER = "assignment.json"  # which assignment and rubric the folder belongs to
RUBRIC_POINTER = "rubric-path"  # the rubric's path alone, for `grader manual --out DIR`


@dataclass(frozen=True)
class OutDir:
    path: Path

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def log_path(self, student: str) -> Path:
        return self.logs / f"{student}.stdout.txt"

    def gradebook(self) -> Gradebook:
        return Gradebook(self.path / FILENAME)

    def claim(self, rubric: Rubric) -> None:
        """Make the folder this assignment's, or refuse one that holds another assignment's grading."""
        owner = self.owner()
        held = {owner["assignment"]} if owner else set()
        if not held and (self.path / FILENAME).is_file():
            with self.gradebook() as book:  # a folder graded before `assignment.json` existed
                held = book.assignments()
        others = sorted(held - {rubric.assignment})
        if others:
            raise GraderError(
                f"{self.path} holds the grading of assignment {others[0]!r}, not {rubric.assignment!r}; "
                "grade into another --out folder"
            )
        self.logs.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / OWNER, json.dumps({"assignment": rubric.assignment, "rubric": str(rubric.path)}, indent=2))
        atomic_write(self.path / RUBRIC_POINTER, f"{rubric.path}\n")

    def owner(self) -> dict[str, str] | None:
        try:
            data = json.loads((self.path / OWNER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("assignment"), str) else None

    def write_class(self, rubric: Rubric, book: Gradebook) -> tuple[list[SubmissionResult], Path]:
        """gradebook.csv and index.html from every result the gradebook holds; returns them and the index."""
        results = book.results()
        atomic_write(self.path / "gradebook.csv", gradebook_csv(rubric, results))
        return results, self._write_index(results, rubric)

    def _write_index(self, results: list[SubmissionResult], rubric: Rubric) -> Path:
        try:
            with time_limit(RENDER_SECONDS * 2, "writing the class summary"):
                return write_index(results, rubric, self.path)
        except Exception:
            log.exception("the class summary could not be rendered; writing a plain one")
            rows = "".join(f"<li>{html.escape(r.student)}: {r.score:g} / {r.max_score:g}</li>" for r in results)
            path = self.path / "index.html"
            atomic_write(path, f'<!doctype html>\n<meta charset="utf-8"><title>class</title><p>The full summary '
                               f"could not be written (see grader.log).</p><ul>{rows}</ul>\n")
            return path
