"""The workspace's own rows in OUT/gradebook.sqlite: rubric items, where they are applied, TA comments,
adjustments, and a version per question so that a page can tell when someone else changed it.  The tables
themselves are declared, with the rest of the schema, in grader.classroom.gradebook.

Nothing here is ever deleted: an item is edited in place (every student it is applied to follows), an
application is switched off by a flag and keeps who did it and when.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from grader.classroom.classbook import gradebook_path
from grader.classroom.gradebook import connect
from grader.errors import GraderError

__all__ = ["Adjustment", "RubricItem", "Store"]

@dataclass(frozen=True)
class RubricItem:
    id: int
    qid: str
    points: float
    text: str

    @property
    def label(self) -> str:
        return f"{self.points:+g}: {self.text}"


@dataclass(frozen=True)
class Adjustment:
    name: str
    qid: str
    score: float
    reason: str
    ta: str
    at: float


class Store:
    """One connection to OUT/gradebook.sqlite; each write is its own transaction and bumps the question's version."""

    def __init__(self, out: Path) -> None:
        self.db = connect(gradebook_path(out), check_same_thread=False)  # the tables are grader.classroom.gradebook's

    def close(self) -> None:
        self.db.close()

    def _write(self, qid: str, statements: list[tuple[str, tuple[object, ...]]]) -> int:
        """Run the statements and bump `qid`'s version in one transaction; the id of the last insert."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            last = 0
            for sql, params in statements:
                last = self.db.execute(sql, params).lastrowid or last
            self.db.execute(
                "INSERT INTO question_versions VALUES (?, 1) ON CONFLICT(qid) DO UPDATE SET version = version + 1",
                (qid,),
            )
            self.db.execute("COMMIT")
            return last
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # -- items ------------------------------------------------------------------------------------------------
    def add_item(self, qid: str, points: float, text: str, ta: str = "") -> RubricItem:
        item_id = self._write(qid, [(
            "INSERT INTO rubric_items (qid, points, text, created_by, updated_at) VALUES (?, ?, ?, ?, ?)",
            (qid, points, text, ta, time.time()),
        )])
        return RubricItem(item_id, qid, points, text)

    def edit_item(self, item_id: int, points: float, text: str) -> RubricItem:
        item = self.item(item_id)
        self._write(item.qid, [(
            "UPDATE rubric_items SET points = ?, text = ?, updated_at = ? WHERE id = ?",
            (points, text, time.time(), item_id),
        )])
        return RubricItem(item_id, item.qid, points, text)

    def item(self, item_id: int) -> RubricItem:
        row = self.db.execute("SELECT id, qid, points, text FROM rubric_items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise GraderError(f"no rubric item {item_id}")
        return RubricItem(*row)

    def items(self, qid: str) -> list[RubricItem]:
        rows = self.db.execute("SELECT id, qid, points, text FROM rubric_items WHERE qid = ? ORDER BY id", (qid,))
        return [RubricItem(*row) for row in rows]

    # -- applications -----------------------------------------------------------------------------------------
    def set_applied(self, names: list[str], qid: str, item_id: int, applied: bool, ta: str = "") -> None:
        now = time.time()
        self._write(qid, [(
            "INSERT INTO item_applications VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name, qid, item_id) "
            "DO UPDATE SET applied = excluded.applied, ta = excluded.ta, updated_at = excluded.updated_at",
            (name, qid, item_id, int(applied), ta, now),
        ) for name in names])

    def applied(self, qid: str) -> dict[str, list[RubricItem]]:
        """Student folder -> the items applied to their answer to `qid` (only students with a row at all)."""
        rows = self.db.execute(
            "SELECT a.name, a.applied, i.id, i.qid, i.points, i.text FROM item_applications a "
            "JOIN rubric_items i ON i.id = a.item_id WHERE a.qid = ? ORDER BY a.name, i.id",
            (qid,),
        )
        found: dict[str, list[RubricItem]] = {}
        for name, on, *item in rows:
            found.setdefault(name, [])
            if on:
                found[name].append(RubricItem(*item))
        return found

    def students_with(self, item_id: int) -> list[str]:
        rows = self.db.execute("SELECT name FROM item_applications WHERE item_id = ? AND applied = 1", (item_id,))
        return [row[0] for row in rows]

    # -- comments ---------------------------------------------------------------------------------------------
    def set_comment(self, names: list[str], qid: str, comment: str, ta: str = "") -> None:
        now = time.time()
        self._write(qid, [(
            "INSERT OR REPLACE INTO item_comments VALUES (?, ?, ?, ?, ?)", (name, qid, comment, ta, now),
        ) for name in names])

    def comments(self, qid: str) -> dict[str, str]:
        rows = self.db.execute("SELECT name, comment FROM item_comments WHERE qid = ?", (qid,))
        return dict(rows.fetchall())

    # -- adjustments ------------------------------------------------------------------------------------------
    def add_adjustment(self, name: str, qid: str, score: float, reason: str, ta: str = "") -> Adjustment:
        adjustment = Adjustment(name, qid, score, reason, ta, time.time())
        self._write(qid, [(
            "INSERT INTO workspace_adjustments (name, qid, score, reason, ta, at) VALUES (?, ?, ?, ?, ?, ?)",
            (name, qid, score, reason, ta, adjustment.at),
        )])
        return adjustment

    def adjustments(self, name: str) -> list[Adjustment]:
        rows = self.db.execute(
            "SELECT name, qid, score, reason, ta, at FROM workspace_adjustments WHERE name = ? ORDER BY id", (name,)
        )
        return [Adjustment(*row) for row in rows]

    # -- versions ---------------------------------------------------------------------------------------------
    def version(self, qid: str) -> int:
        row = self.db.execute("SELECT version FROM question_versions WHERE qid = ?", (qid,)).fetchone()
        return int(row[0]) if row else 0
