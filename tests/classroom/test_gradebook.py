"""gradebook.sqlite has one owner of its schema (grader.classroom.gradebook): a gradebook written before a table
existed gains it once, and the readers (grader.classroom.classbook) read an old one as it is."""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from grader.classroom.classbook import read_entries, read_results
from grader.classroom.gradebook import FILENAME, SCHEMA_VERSION, Gradebook
from grader.sources.discover import Entry
from grader.sources.roster import Identity

# The results table as the first gradebooks had it, alone: no history of versions, no entries, no workspace.
OLD_RESULTS = """CREATE TABLE results (name TEXT PRIMARY KEY, path TEXT NOT NULL, submission_sha256 TEXT NOT NULL,
rubric_sha256 TEXT NOT NULL, grader_version TEXT NOT NULL, sandbox TEXT NOT NULL, score REAL NOT NULL,
max_score REAL NOT NULL, execution_time REAL NOT NULL, finished_at REAL NOT NULL, result TEXT NOT NULL)"""


def _tables(path: Path) -> tuple[set[str], int]:
    with closing(sqlite3.connect(path)) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return names - {"sqlite_sequence"}, int(db.execute("PRAGMA user_version").fetchone()[0])


def test_an_old_gradebook_is_read_as_it_is_and_gains_every_table_when_opened(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    with closing(sqlite3.connect(path)) as db:
        db.execute(OLD_RESULTS)
    assert read_results(tmp_path) == [] and read_entries(tmp_path) == {}  # read without a change
    assert _tables(path) == ({"results"}, 0)

    cat = Entry(tmp_path / "cat.py", (tmp_path / "cat.py",), Identity("s003", "Cat Ray", "s003"))
    with Gradebook(path) as book:
        book.record_entries({"cat": cat})

    assert _tables(path) == ({"results", "history", "overrides", "removed", "entries", "rubric_items",
                              "item_applications", "item_comments", "workspace_adjustments", "question_versions"},
                             SCHEMA_VERSION)
    assert SCHEMA_VERSION == 1
    assert read_entries(tmp_path) == {"cat": cat}
    with Gradebook(path) as book:  # opened again: nothing left to migrate, the rows stay
        book.record_entries({})
    assert read_entries(tmp_path) == {"cat": cat} and _tables(path)[1] == SCHEMA_VERSION
