"""TA scores for free-text (`manual`) questions, applied to a graded folder without running student code.

The stored results (DIR/<student>/grading.json) are updated, then results.json, report.html, gradebook.csv
and index.html are written again, all through `save`.  Every entry is checked before anything is written.
`grader manual` (grader.cli.manual) and the TA workspace (grader.workspace) both enter scores through here.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from grader.atomic import atomic_write
from grader.checks.manual import with_ta_score
from grader.classroom.outdir import finish
from grader.classroom.score_files import gradebook_csv
from grader.errors import GraderError
from grader.feedback.report import write_index
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.kinds import kind_spec
from grader.rubric.schema import Rubric, load_rubric
from grader.spreadsheet import read_csv_text, unquote

RUBRIC_POINTER = "rubric-path"  # DIR/rubric-path: the rubric a folder was graded with, if the grading run wrote it
CSV_COLUMNS = ["student", "question", "score", "comment", "answer"]


@dataclass(frozen=True)
class TAScore:
    student: str
    qid: str
    score: float
    comment: str = ""
    where: str = ""  # "scores.csv: row 3", for error messages


# -- the graded folder ------------------------------------------------------------------------------------------
def load_results(out: Path) -> dict[str, SubmissionResult]:
    if not out.is_dir():
        raise GraderError(f"no graded folder at {out}")
    results = {}
    for path in sorted(out.glob("*/grading.json")):
        try:
            result = SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise GraderError(f"{path}: not a stored grading result ({exc})") from exc
        results[path.parent.name] = result
    if not results:
        raise GraderError(f"{out} holds no graded submissions (no */grading.json)")
    return results


def resolve_rubric(out: Path, rubric_path: Path | None, results: Iterable[SubmissionResult]) -> Rubric:
    if rubric_path is None:
        pointer = out / RUBRIC_POINTER
        if not pointer.is_file():
            raise GraderError(f"which rubric was {out} graded with? pass --rubric")
        rubric_path = Path(pointer.read_text(encoding="utf-8").strip())
    rubric = load_rubric(rubric_path)
    stale = sorted(r.student for r in results if r.rubric_sha256 and r.rubric_sha256 != rubric.sha256)
    if stale:
        raise GraderError(f"{rubric_path} changed since {stale[0]} was graded; grade again before entering TA scores")
    return rubric


def save(out: Path, rubric: Rubric, results: dict[str, SubmissionResult], changed: Iterable[str]) -> None:
    """The one place a TA's scores reach disk: per-student files of the changed, then the class files."""
    changed = list(changed)
    _update_gradebook_db(out, [results[folder] for folder in changed])
    for folder in changed:
        finish(results[folder], rubric).write(out / folder)
    atomic_write(out / "gradebook.csv", gradebook_csv(rubric, results.values()))
    write_index(results.values(), rubric, out)


def _update_gradebook_db(out: Path, results: list[SubmissionResult]) -> None:
    """Keep DIR/gradebook.sqlite (the truth `grader grade` reuses on a re-run) in step with the TA's scores.

    Only the stored result and score change: the row's cache key stays, and no history line is added, since
    nothing was graded again.
    """
    from grader.classroom.gradebook import FILENAME, Gradebook

    if not (out / FILENAME).is_file():
        return
    with Gradebook(out / FILENAME) as book:
        book.update_results(results)


def named_scores(out: Path, results: dict[str, SubmissionResult], scores: list[TAScore]) -> list[TAScore]:
    """Scores whose student is named by a sid, email, LMS id or name (as `grader show` accepts) get the folder
    name; a name that matches nobody is left for `apply_scores` to refuse, listing the students."""
    from grader.classroom.classbook import label, matching, people
    from grader.classroom.gradebook import FILENAME

    if all(s.student in results for s in scores) or not (out / FILENAME).is_file():
        return scores
    who = {name: entry for name, entry in people(out).items() if name in results}
    named = []
    for s in scores:
        hits = [] if s.student in results else matching(s.student, who)
        if len(hits) > 1:
            raise GraderError(f"{s.where}: {s.student!r} names {len(hits)} students: "
                              f"{', '.join(label(h, who[h]) for h in hits)}; use a folder name or sid")
        named.append(replace(s, student=hits[0]) if hits else s)
    return named


# -- applying scores --------------------------------------------------------------------------------------------
def manual_ids(rubric: Rubric) -> list[str]:
    """The questions a TA scores (their kind's entry says `ta_graded`)."""
    return [q.id for q in rubric.questions if kind_spec(q.spec.kind).ta_graded]


def apply_scores(
    rubric: Rubric, results: dict[str, SubmissionResult], scores: list[TAScore], ta: str = ""
) -> dict[str, SubmissionResult]:
    """New results with the scores in; raises GraderError naming the first bad entry, before any change."""
    manual = manual_ids(rubric)
    seen: set[tuple[str, str]] = set()
    updated = dict(results)
    for s in scores:
        if s.student not in results:
            raise GraderError(f"{s.where}: unknown student {s.student!r} (known: {', '.join(sorted(results))})")
        if s.qid not in manual:
            raise GraderError(f"{s.where}: {s.qid!r} is not a TA-graded question (those are: {', '.join(manual)})")
        if (s.student, s.qid) in seen:
            raise GraderError(f"{s.where}: a second score for {s.student} {s.qid}")
        seen.add((s.student, s.qid))
        updated[s.student] = _scored(updated[s.student], s, ta)
    return updated


def _scored(result: SubmissionResult, s: TAScore, ta: str) -> SubmissionResult:
    questions = []
    for q in result.questions:
        if q.qid == s.qid:
            if not 0 <= s.score <= q.max_score:
                raise GraderError(f"{s.where}: score {s.score:g} for {s.qid} is outside 0..{q.max_score:g}")
            q = with_ta_score(q, s.score, s.comment, ta)
        questions.append(q)
    if not any(q.qid == s.qid for q in result.questions):
        raise GraderError(f"{s.where}: {s.student} has no result for {s.qid} (graded with --public-only?)")
    return result.with_questions(tuple(questions))


# -- reading a file of scores ------------------------------------------------------------------------------------
def read_scores(path: Path) -> list[TAScore]:
    try:
        text = read_csv_text(path)  # Excel's "CSV UTF-8" starts with a byte-order mark; YAML may too
    except OSError as exc:
        raise GraderError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise GraderError(f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_scores(path.name, text)
    if path.suffix.lower() == ".csv":
        return _csv_scores(path.name, text)
    raise GraderError(f"{path}: TA scores are a .csv or .yaml file")


def _csv_scores(name: str, text: str) -> list[TAScore]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"student", "question", "score"} - set(reader.fieldnames or [])
    if missing:
        raise GraderError(f"{name}: missing column(s) {', '.join(sorted(missing))}; expected {','.join(CSV_COLUMNS)}")
    scores = []
    for row_number, row in enumerate(reader, start=2):
        if not (row.get("score") or "").strip():
            continue  # not scored yet: an exported row the TA left blank
        where = f"{name}: row {row_number}"
        # A file written by `export` and not opened in a spreadsheet still has the `'` that kept its cells inert.
        student, qid, comment = (unquote(row.get(k) or "") for k in ("student", "question", "comment"))
        scores.append(_entry(where, student, qid, row.get("score"), comment))
    return scores


def _yaml_scores(name: str, text: str) -> list[TAScore]:
    """A list of {student, question, score, comment}, or {student: {question: score | {score, comment}}}."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GraderError(f"{name}: not valid YAML: {exc}") from exc
    if isinstance(data, list):
        return [
            _entry(f"{name}: entry {i + 1}", *(_get(e, k) for k in ("student", "question", "score", "comment")))
            for i, e in enumerate(data)
        ]
    if isinstance(data, dict):
        scores = []
        for student, answers in data.items():
            if not isinstance(answers, dict):
                raise GraderError(f"{name}: {student}: expected a mapping of question to score")
            for qid, value in answers.items():
                score, comment = (value.get("score"), value.get("comment")) if isinstance(value, dict) else (value, "")
                scores.append(_entry(f"{name}: {student}: {qid}", student, qid, score, comment))
        return scores
    raise GraderError(f"{name}: expected a list of scores or a mapping student -> question -> score")


def _get(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None


def _entry(where: str, student: Any, qid: Any, score: Any, comment: Any) -> TAScore:
    if not student or not qid:
        raise GraderError(f"{where}: needs a student and a question")
    return TAScore(str(student).strip(), str(qid).strip().lower(), parse_score(where, score), str(comment or "").strip(), where)


def parse_score(where: str, raw: Any) -> float:
    try:
        if isinstance(raw, bool):
            raise ValueError
        return float(str(raw).strip())
    except (TypeError, ValueError):
        raise GraderError(f"{where}: score {raw!r} is not a number") from None


def answers_to_score(rubric: Rubric, results: dict[str, SubmissionResult], only_pending: bool) -> list[tuple[str, QuestionResult]]:
    manual = set(manual_ids(rubric))
    return [
        (folder, q)
        for folder, r in sorted(results.items())
        for q in r.questions
        if q.qid in manual and (q.status == Status.PENDING or not only_pending)
    ]


def pending_count(results: dict[str, SubmissionResult]) -> int:
    return sum(q.status == Status.PENDING for r in results.values() for q in r.questions)
