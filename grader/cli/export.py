"""`grader export canvas|moodle OUT --roster R --to FILE`, `grader export gradescope RUBRIC --out ZIP`.

Canvas and Moodle: the finished class folder's results (OUT/gradebook.sqlite), matched to the roster, as the
LMS's gradebook import file.  A roster student who did not submit gets an empty cell (the LMS leaves their
grade alone), never a 0; submissions the roster does not know, students with several results and scores still
waiting for a TA are listed on stderr.  Gradescope: the autograder zip of a rubric (`grader.classroom.autograder`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from grader.atomic import atomic_write
from grader.classroom.classbook import read_entries, read_results
from grader.classroom.lms_export import MOODLE_KEYS, Matched, canvas_csv, match_results, moodle_csv
from grader.errors import GraderError
from grader.sources.roster import Identity, Roster


def _matched(folder: Path, roster_path: Path, stderr: TextIO) -> tuple[Matched, str, float]:
    roster = Roster.load(roster_path)
    for s in roster.left_out:
        print(f"grader: {roster_path}: Canvas's Test Student ({s.label}) is left out of the export", file=stderr)
    results = read_results(folder)
    if not results:
        raise GraderError(f"{folder} holds no graded submissions yet")
    matched = match_results(results, roster, read_entries(folder))
    _report(matched, roster_path, stderr)
    return matched, results[0].assignment, max(r.max_score for r in results)


def _report(matched: Matched, roster_path: Path, stderr: TextIO) -> None:
    if matched.unmatched:
        print(f"grader: {len(matched.unmatched)} submission(s) not in {roster_path}, left out of the export:", file=stderr)
        for r in matched.unmatched:
            print(f"  {r.student}: {r.path} ({r.score:g}/{r.max_score:g})", file=stderr)
    for student, results in matched.duplicates:
        others = ", ".join(r.student for r in results[1:])
        print(f"grader: {student.label} has {len(results)} graded submissions; exporting the best, "
              f"{results[0].student} ({results[0].score:g}), not {others}", file=stderr)
    for m in matched.marks:
        if m.result is not None and m.result.late:
            print(f"grader: {m.student.label}: {m.result.late_note}", file=stderr)
    attention = [m for m in matched.marks if m.attention]
    for m in attention:
        print(f"grader: {m.student.label}: {m.attention}; the exported score may change", file=stderr)
    missing = matched.missing
    if missing:
        names = ", ".join(s.label for s in missing[:20]) + (" ..." if len(missing) > 20 else "")
        print(f"grader: {len(missing)} roster student(s) without a submission get an empty cell: {names}", file=stderr)


def export_canvas(
    folder: Path, roster_path: Path, to: Path, *, title: str | None = None, assignment_id: str | None = None,
    stderr: TextIO | None = None,
) -> int:
    stderr = stderr or sys.stderr
    if assignment_id is not None and not assignment_id.isdigit():
        raise GraderError(f"--assignment-id must be Canvas's number for the assignment (the URL's), not {assignment_id!r}")
    matched, assignment, points = _matched(folder, roster_path, stderr)
    if not any(s.lms_ids.get("canvas_id") for s in (m.student for m in matched.marks)):
        print(f"grader: {roster_path} has no canvas_id column; Canvas will find students by SIS ids or by name",
              file=stderr)
    scored = sum(m.result is not None for m in matched.marks)
    if not scored:
        return _nothing(folder, roster_path, to, matched, stderr)
    atomic_write(to, canvas_csv(matched, title or assignment, assignment_id, points))
    print(f"wrote {to}: {scored} scores for {len(matched.marks)} students")
    return 0


def export_moodle(
    folder: Path, roster_path: Path, to: Path, *, title: str | None = None, key: str = "email",
    stderr: TextIO | None = None,
) -> int:
    stderr = stderr or sys.stderr
    if key not in MOODLE_KEYS:
        raise GraderError(f"--key must be one of {', '.join(MOODLE_KEYS)}, not {key!r}")
    matched, assignment, _ = _matched(folder, roster_path, stderr)
    text, skipped = moodle_csv(matched, title or assignment, key)
    _skipped(skipped, key, stderr)
    left_out = {id(s) for s in skipped}
    scored = sum(m.result is not None and id(m.student) not in left_out for m in matched.marks)
    if not scored:
        why = f"; none has an {MOODLE_KEYS[key]!r} in the roster (try --key)" if skipped else ""
        return _nothing(folder, roster_path, to, matched, stderr, why)
    atomic_write(to, text)
    print(f"wrote {to}: {scored} scores for {len(matched.marks)} students; identify users by "
          f"{MOODLE_KEYS[key]!r} when importing it in Moodle")
    return 0


EXIT_NOTHING_EXPORTED = 1


def _nothing(folder: Path, roster_path: Path, to: Path, matched: Matched, stderr: TextIO, why: str = "") -> int:
    """An export that would hold no score is not written: a header-only file would import as "all done"."""
    reason = why or (f"; none of the {len(matched.unmatched)} graded submissions is on the roster"
                     if matched.unmatched else "")
    print(f"grader: error: no roster student of {roster_path} has a score in {folder}{reason}; {to} not written",
          file=stderr)
    return EXIT_NOTHING_EXPORTED


def _skipped(skipped: tuple[Identity, ...], key: str, stderr: TextIO) -> None:
    if skipped:
        names = ", ".join(s.label for s in skipped)
        print(f"grader: {len(skipped)} student(s) have no {MOODLE_KEYS[key]} in the roster and are left out: {names}",
              file=stderr)


def export_gradescope(rubric: Path, zip_path: Path) -> int:
    from grader.classroom.autograder import build_autograder

    build_autograder(rubric, zip_path)
    print(f"wrote {zip_path}: upload it as the assignment's autograder (Gradescope: Configure Autograder, zip file)")
    return 0
