"""Grades back to the LMS: finished results matched to the roster, written as the LMS's import file.

Canvas: the columns its gradebook importer requires (canvas-lms app/models/gradebook_importer.rb): the header
starts `Student`, `ID` (`row[0].include?("Student") && row[1].include?("ID")`); `SIS User ID` and
`SIS Login ID` follow as a pair, and the last student column must be `Section`; then one column per assignment,
`Title (id)` (`Assignment.title_and_id`: `/\\A(.*)\\s\\((\\d+)\\)\\z/`; without an id Canvas creates a new
assignment of that title).  Students are found by `ID` (the Canvas user id), then SIS User ID, SIS Login ID,
then name.  A blank cell (or `-`) is "no change": a student who did not submit gets an empty cell, never 0.  A
second row starting `Points Possible` sets the points of a new assignment; it is written only when no
assignment id is given, so an existing assignment's points are never touched.

Moodle: the CSV import (grade/import/csv, `map_user_data_with_value`) maps users by a column the TA picks:
`useremail` (Email address) or `useridnumber` (ID number); an empty grade (or `-`) imports nothing.

Both are written by `grader.spreadsheet`: names and ids that a spreadsheet would run get a leading `'`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.results import Status, SubmissionResult
from grader.sources.discover import Entry, identify
from grader.sources.roster import Identity, Roster
from grader.spreadsheet import Cell, csv_text

__all__ = [
    "CANVAS_COLUMNS",
    "MOODLE_KEYS",
    "Mark",
    "Matched",
    "canvas_csv",
    "match_results",
    "moodle_csv",
]

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_KEYS = {"email": "Email address", "idnumber": "ID number"}


@dataclass(frozen=True)
class Mark:
    """One roster student and their result (None: no submission, an empty cell)."""

    student: Identity
    result: SubmissionResult | None

    @property
    def attention(self) -> str:
        """Why this score may not be final (pending TA questions, a grader error), or ""."""
        r = self.result
        if r is None:
            return ""
        if r.needs_ta:
            return "needs a TA (grader error)"
        pending = [q.qid for q in r.questions if q.status is Status.PENDING]
        return f"TA scores pending ({', '.join(pending)})" if pending else ""


@dataclass(frozen=True)
class Matched:
    marks: tuple[Mark, ...]  # in roster order
    unmatched: tuple[SubmissionResult, ...]  # results the roster does not know
    duplicates: tuple[tuple[Identity, tuple[SubmissionResult, ...]], ...]  # students with several results

    @property
    def missing(self) -> tuple[Identity, ...]:
        return tuple(m.student for m in self.marks if m.result is None)


def match_results(
    results: list[SubmissionResult], roster: Roster, entries: dict[str, Entry] | None = None
) -> Matched:
    """Each result to its roster student(s): through the recorded entry (its student and group members) or,
    for a class graded without one, what the submission's path says.  A student with several results (two
    files, a late resubmission) keeps the highest score; the others are listed in `duplicates`."""
    entries = entries or {}
    by_key: dict[str, list[SubmissionResult]] = {}
    unmatched = []
    for r in results:
        entry = entries.get(r.student)
        people = [entry.student, *entry.members] if entry else [identify(Path(r.path))]
        found = [s for s in (roster.match(p) for p in people) if s is not None]
        if not found:
            unmatched.append(r)
        for s in {s.key: s for s in found}.values():
            by_key.setdefault(s.key, []).append(r)
    marks, duplicates = [], []
    for s in roster.students:
        got = sorted(by_key.get(s.key, []), key=lambda r: (-r.score, r.student))
        if len(got) > 1:
            duplicates.append((s, tuple(got)))
        marks.append(Mark(s, got[0] if got else None))
    return Matched(tuple(marks), tuple(unmatched), tuple(duplicates))


def number(x: float) -> str:
    """A score as the importers read it: plain decimal, at most 4 places, no exponent."""
    text = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def canvas_csv(matched: Matched, title: str, assignment_id: str | None = None, points_possible: float | None = None) -> str:
    """Canvas's import file; names and ids are text (neutralised by `grader.spreadsheet`), scores numbers."""
    column = f"{title} ({assignment_id})" if assignment_id else title
    rows: list[list[Cell]] = [[*CANVAS_COLUMNS, column]]
    if not assignment_id and points_possible is not None:
        rows.append(["Points Possible", "", "", "", "", points_possible])
    for m in matched.marks:
        s = m.student
        ids = s.lms_ids
        rows.append([
            s.name, ids.get("canvas_id", ""), ids.get("sis_user_id", ""), ids.get("sis_login_id", ""),
            ids.get("section", ""), None if m.result is None else m.result.score,
        ])
    return csv_text(rows, number)


def moodle_csv(matched: Matched, title: str, key: str = "email") -> tuple[str, tuple[Identity, ...]]:
    """The CSV and the students left out because they lack the key column's value (Moodle could not place them)."""
    # Late work: a feedback column (map it to the grade item's feedback when importing), only where one is late.
    feedback = any(m.result is not None and m.result.late for m in matched.marks)
    rows: list[list[Cell]] = [
        ["Full name", MOODLE_KEYS["idnumber"], MOODLE_KEYS["email"], title, *(["Feedback"] if feedback else [])]
    ]
    skipped = []
    for m in matched.marks:
        s = m.student
        if not (s.email if key == "email" else s.sid):
            skipped.append(s)
            continue
        comment: list[Cell] = [m.result.late_note if m.result else ""] if feedback else []
        rows.append([s.name, s.sid, s.email, None if m.result is None else m.result.score, *comment])
    return csv_text(rows, number), tuple(skipped)
