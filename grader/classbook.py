"""Reading a finished class folder: its results and who each student is, from OUT/gradebook.sqlite only.

`grader show`, `grader status` and `grader export` read here and never write the results.  Who each student
is (an `Entry` of `grader.sources`: identity, files, group members) lives in an `entries` table of the same
database, written by `record_entries` as the class is graded; a class graded before that table existed is
identified again from each result's original path (`grader.sources.identify`).
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from grader.errors import GraderError
from grader.gradebook import FILENAME
from grader.results import SubmissionResult
from grader.sources import Entry

__all__ = ["read_results", "read_entries", "record_entries", "find_result", "gradebook_path"]

_ENTRIES_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (name TEXT PRIMARY KEY, entry TEXT NOT NULL)"


def gradebook_path(out: Path) -> Path:
    path = out / FILENAME
    if not path.is_file():
        raise GraderError(f"{out} has no {FILENAME}: is it a folder `grader grade --out` wrote?")
    return path


def _connect(out: Path) -> sqlite3.Connection:
    path = gradebook_path(out)
    try:
        # Read-only: showing a result must never change the gradebook a running batch is writing.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        return db
    except sqlite3.DatabaseError as exc:
        raise GraderError(f"cannot open the gradebook {path}: {exc}") from exc


def read_results(out: Path) -> list[SubmissionResult]:
    """Every result of the class, sorted by student folder name."""
    with closing(_connect(out)) as db:
        try:
            rows = db.execute("SELECT name, result FROM results ORDER BY name").fetchall()
        except sqlite3.DatabaseError as exc:
            raise GraderError(f"{out / FILENAME}: cannot read its results: {exc}") from exc
    results = []
    for name, text in rows:
        try:
            results.append(SubmissionResult.from_dict(json.loads(text)))
        except (ValueError, KeyError, TypeError) as exc:
            raise GraderError(f"{out / FILENAME}: the result of {name!r} cannot be read ({exc!r}); grade it again") from exc
    return results


def read_entries(out: Path) -> dict[str, Entry]:
    """Student folder name -> its entry, where `record_entries` stored them (else empty)."""
    with closing(_connect(out)) as db:
        try:
            rows = db.execute("SELECT name, entry FROM entries").fetchall()
        except sqlite3.OperationalError:
            return {}  # graded before entries were recorded: callers identify students from their paths
    found = {}
    for name, text in rows:
        try:
            found[name] = Entry.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError):
            continue  # an entry this version cannot read is as good as absent: the path still identifies it
    return found


def record_entries(gradebook: Path, entries: dict[str, Entry]) -> None:
    """Store who each student folder is (call with OUT/gradebook.sqlite and {folder name: entry}); one
    transaction, replacing earlier rows of the same names."""
    with closing(sqlite3.connect(gradebook, timeout=60, isolation_level=None)) as db:
        db.execute(_ENTRIES_SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?)",
                [(name, json.dumps(e.serialize(), sort_keys=True)) for name, e in entries.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def find_result(out: Path, student: str) -> SubmissionResult:
    """One student's result: by folder name (exact, then ignoring case), else by the recorded identity's key,
    sid, email or name.  An unknown or ambiguous name is an error listing what would have matched."""
    results = read_results(out)
    by_name = {r.student: r for r in results}
    if student in by_name:
        return by_name[student]
    folded = [r for r in results if r.student.casefold() == student.casefold()]
    if len(folded) == 1:
        return folded[0]
    want = student.casefold()
    entries = read_entries(out)
    hits = [
        by_name[name] for name, e in entries.items() if name in by_name
        and want in {v.casefold() for v in (e.student.key, e.student.sid, e.student.email, e.student.name) if v}
    ]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise GraderError(f"{student!r} names {len(hits)} students: {', '.join(r.student for r in hits)}")
    close = [r.student for r in results if want in r.student.casefold()][:10]
    hint = f"; did you mean {', '.join(close)}?" if close else f" (`grader status {out}` lists them)"
    raise GraderError(f"no student {student!r} in {out}{hint}")
