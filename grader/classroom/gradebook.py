"""The gradebook that loses nothing: one SQLite row per graded submission, written as each one finishes.

SQLite in WAL mode, one transaction per submission: a batch killed at any moment leaves every finished
submission recorded whole and every unfinished one absent, so running the same command again grades only
what is missing.  A row is reused while the submission's bytes, the rubric's bytes and the grader version are
unchanged (a cache hit); anything else, or `--force`, grades again.  "Rubric" here means everything that decides
a verdict (`grader.grading.verdict_key`): the rubric, the reference and the course modules it imports; "grader version" the
version and a digest of the grader's own code.  `history` keeps one line per grading
so that "graded exactly once" can be checked after the fact.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from grader.classroom.tawork import Override
from grader.errors import GraderError
from grader.grading.verdict_key import CacheKey
from grader.results import SubmissionResult
from grader.sources.discover import Entry

FILENAME = "gradebook.sqlite"

# The whole schema of OUT/gradebook.sqlite, every table of it: the class's results, history, overrides and
# removals (this module), who each student folder is (`entries`, read by grader.classroom.classbook) and the TA
# workspace's rubric items, comments and adjustments (grader.workspace.store).  The other modules read and write
# rows; none creates or changes a table.
_TABLES = """
CREATE TABLE IF NOT EXISTS results (
    name TEXT PRIMARY KEY,           -- the job name: the output folder and the gradebook's student column
    path TEXT NOT NULL,
    submission_sha256 TEXT NOT NULL, -- of the file's bytes when it was handed out for grading
    rubric_sha256 TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    sandbox TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    execution_time REAL NOT NULL,
    finished_at REAL NOT NULL,
    result TEXT NOT NULL             -- SubmissionResult.serialize() as JSON
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    submission_sha256 TEXT NOT NULL,
    rubric_sha256 TEXT NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS overrides (  -- every TA override ever made, the newest per (name, qid) in force
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    qid TEXT NOT NULL,
    override TEXT NOT NULL           -- grader.classroom.tawork.Override.serialize() as JSON: score, reason, who, when
);
CREATE TABLE IF NOT EXISTS removed (    -- students a TA took out of the class (`grader remove`), kept whole
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    removed_at REAL NOT NULL,
    reason TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (    -- who each student folder is: grader.sources.discover.Entry.serialize() as JSON
    name TEXT PRIMARY KEY,
    entry TEXT NOT NULL
);
-- the TA workspace's (grader.workspace.store): rubric items and where they apply, comments, adjustments, versions
CREATE TABLE IF NOT EXISTS rubric_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    qid TEXT NOT NULL,
    points REAL NOT NULL,
    text TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS item_applications (
    name TEXT NOT NULL,          -- the student folder
    qid TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES rubric_items(id),
    applied INTEGER NOT NULL,    -- 0 once a TA took it off again; the row stays
    ta TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (name, qid, item_id)
);
CREATE TABLE IF NOT EXISTS item_comments (
    name TEXT NOT NULL,
    qid TEXT NOT NULL,
    comment TEXT NOT NULL,
    ta TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (name, qid)
);
CREATE TABLE IF NOT EXISTS workspace_adjustments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    qid TEXT NOT NULL,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    ta TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS question_versions (
    qid TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
"""

# The migrations, in order: step i takes a gradebook from version i (its PRAGMA user_version) to version i + 1.
# Version 0 is any gradebook written before versions were kept: step 0 creates whatever tables it lacks (entries,
# overrides, removals and the workspace's tables came after results), so that every reader finds them all.  A
# later change of a table is a new step at the end, never an edit of an earlier one.  Each step is safe to run
# twice (a process killed between a step and its version bump runs it again).
_MIGRATIONS: tuple[str, ...] = (_TABLES,)
SCHEMA_VERSION = len(_MIGRATIONS)


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-write connection to the gradebook at `path` (made where there is none yet) in WAL mode, with
    transactions explicit (isolation_level=None) and the schema brought up to date (`migrate`)."""
    try:
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=check_same_thread)
    except sqlite3.DatabaseError as exc:
        raise GraderError(f"cannot open the gradebook {path}: {exc}") from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise GraderError(f"cannot open the gradebook {path}: {exc}") from exc
    return db


def migrate(db: sqlite3.Connection) -> None:
    """Run the migrations a gradebook has not had yet.  One from a newer grader (a higher version) is left as it is."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for step in _MIGRATIONS[version:]:
        db.executescript(step)
    if version < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection: showing a result must never change the gradebook a running batch is writing.  It
    is not migrated: a table an old gradebook lacks is read as empty by the readers below."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        return db
    except sqlite3.DatabaseError as exc:
        raise GraderError(f"cannot open the gradebook {path}: {exc}") from exc


def stored_results(path: Path) -> list[SubmissionResult]:
    """Every result in the gradebook at `path`, sorted by student folder name, read without writing."""
    with closing(read_only(path)) as db:
        try:
            rows = db.execute("SELECT name, result FROM results ORDER BY name").fetchall()
        except sqlite3.DatabaseError as exc:
            raise GraderError(f"{path}: cannot read its results: {exc}") from exc
    results = []
    for name, text in rows:
        try:
            results.append(SubmissionResult.from_dict(json.loads(text)))
        except (ValueError, KeyError, TypeError) as exc:
            raise GraderError(f"{path}: the result of {name!r} cannot be read ({exc!r}); grade it again") from exc
    return results


def stored_entries(path: Path) -> dict[str, Entry]:
    """Student folder name -> its entry, where `Gradebook.record_entries` stored them (else empty), read without
    writing."""
    with closing(read_only(path)) as db:
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


class Gradebook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)  # transactions are explicit, one per submission
        self.db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable against a killed process

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def record_entries(self, entries: dict[str, Entry]) -> None:
        """Store who each student folder is ({folder name: entry}); one transaction, replacing earlier rows of
        the same names."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?)",
                [(name, json.dumps(e.serialize(), sort_keys=True)) for name, e in entries.items()],
            )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def cached(self, name: str, key: CacheKey) -> SubmissionResult | None:
        if not key.submission_sha256:
            return None
        row = self.db.execute(
            "SELECT result FROM results WHERE name = ? AND submission_sha256 = ? AND rubric_sha256 = ? "
            "AND grader_version = ?",
            (name, key.submission_sha256, key.rubric_sha256, key.grader_version),
        ).fetchone()
        return SubmissionResult.from_dict(json.loads(row[0])) if row else None

    def record(self, result: SubmissionResult, key: CacheKey) -> None:
        """Store one finished submission: its row and its history line commit together or not at all."""
        now = time.time()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.student, result.path, key.submission_sha256, key.rubric_sha256, key.grader_version,
                    result.sandbox, result.score, result.max_score, result.execution_time, now,
                    json.dumps(result.serialize(), sort_keys=True),
                ),
            )
            self.db.execute(
                "INSERT INTO history (name, submission_sha256, rubric_sha256, finished_at) VALUES (?, ?, ?, ?)",
                (result.student, key.submission_sha256, key.rubric_sha256, now),
            )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def update_results(self, results: list[SubmissionResult]) -> None:
        """Replace stored results without a new grading (TA scores): the cache keys and history stay."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for r in results:
                self.db.execute(
                    "UPDATE results SET score = ?, result = ? WHERE name = ?",
                    (r.score, json.dumps(r.serialize(), sort_keys=True), r.student),
                )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def result(self, name: str) -> SubmissionResult | None:
        """The stored result of one student folder, or None."""
        row = self.db.execute("SELECT result FROM results WHERE name = ?", (name,)).fetchone()
        return SubmissionResult.from_dict(json.loads(row[0])) if row else None

    def add_override(self, override: Override, result: SubmissionResult) -> None:
        """Record a TA's override and the result it gives, together (the row stays: it is the audit trail)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO overrides (name, qid, override) VALUES (?, ?, ?)",
                            (override.student, override.qid, json.dumps(override.serialize(), sort_keys=True)))
            self.db.execute("UPDATE results SET score = ?, result = ? WHERE name = ?",
                            (result.score, json.dumps(result.serialize(), sort_keys=True), result.student))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def overrides(self, name: str | None = None) -> list[Override]:
        """Every override recorded (of one student folder, if named), oldest first: the audit trail."""
        query = "SELECT override FROM overrides" + (" WHERE name = ?" if name is not None else "") + " ORDER BY id"
        rows = self.db.execute(query, (name,) if name is not None else ()).fetchall()
        return [Override.from_dict(json.loads(row[0])) for row in rows]

    def remove(self, name: str, reason: str) -> SubmissionResult:
        """Take a student folder's result out of the class; it is kept whole in `removed` (and `history`)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT result FROM results WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise GraderError(f"{self.path}: no result of {name!r} to remove")
            self.db.execute("INSERT INTO removed (name, removed_at, reason, result) VALUES (?, ?, ?, ?)",
                            (name, time.time(), reason, row[0]))
            self.db.execute("DELETE FROM results WHERE name = ?", (name,))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return SubmissionResult.from_dict(json.loads(row[0]))

    def removed(self) -> list[tuple[str, float, str]]:
        """(student folder, when, why) of every removal."""
        return [tuple(r) for r in self.db.execute("SELECT name, removed_at, reason FROM removed ORDER BY id")]

    def results(self) -> list[SubmissionResult]:
        """Every student ever graded into this folder, the latest result each, by name."""
        rows = self.db.execute("SELECT result FROM results ORDER BY name").fetchall()
        return [SubmissionResult.from_dict(json.loads(row[0])) for row in rows]

    def assignments(self) -> set[str]:
        rows = self.db.execute("SELECT DISTINCT json_extract(result, '$.assignment') FROM results").fetchall()
        return {str(row[0]) for row in rows if row[0] is not None}

    def gradings(self) -> dict[str, int]:
        """How many times each name was graded (not served from the cache) in this output folder."""
        return dict(self.db.execute("SELECT name, COUNT(*) FROM history GROUP BY name").fetchall())
