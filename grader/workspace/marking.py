"""Grading in the workspace: answers grouped by their normalised text, scores computed from rubric items, and
the one narrow adjust (override) of any question.

Every score reaches the class folder as `grader manual` writes it (`apply_scores`, then `save`): the
stored results, reports, gradebook.csv, gradebook.sqlite and index.html.  Writes hold an exclusive lock on
OUT/.workspace.lock and read the results afresh, so two TAs (two browsers, or two `serve` processes on one
shared disk) never write over each other's students with a stale copy: per student and question the last
write wins.
"""
from __future__ import annotations

import fcntl
import getpass
import re
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from grader.classroom.gradebook import FILENAME, Gradebook
from grader.classroom.ta_scores import TAScore, apply_scores, load_results, manual_ids, resolve_rubric, save
from grader.classroom.tawork import Override, carry_over
from grader.errors import GraderError
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.schema import Rubric
from grader.workspace.store import RubricItem, Store

__all__ = ["AnswerGroup", "ClassFilter", "Progress", "StudentRow", "Workspace", "item_comment", "item_score", "normalise"]

LOCK_FILE = ".workspace.lock"


@dataclass(frozen=True)
class AnswerGroup:
    """Answers to one question whose normalised text is the same: graded once, for every member."""

    key: str
    text: str | None  # one member's answer as written (None: no answer cell)
    students: tuple[str, ...]
    items: tuple[int, ...]  # items applied to every member
    partly: tuple[int, ...]  # items applied to some members only
    comment: str
    graded: int  # members with a TA score
    scores: tuple[float, ...]  # the distinct scores of the members


@dataclass(frozen=True)
class Progress:
    qid: str
    title: str
    max_score: float
    graded: int
    total: int

    @property
    def label(self) -> str:
        return f"{self.qid}: {self.graded}/{self.total} graded"


@dataclass(frozen=True)
class StudentRow:
    """One student of the class at a glance."""

    student: str
    score: float
    max_score: float
    pending_points: float
    needs_ta: bool
    flags: tuple[str, ...]
    late: bool


@dataclass(frozen=True)
class ClassFilter:
    """Which students the class view lists: every condition set must hold."""

    needs_ta: bool = False
    pending: bool = False
    flagged: bool = False
    late: bool = False
    min_score: float | None = None
    max_score: float | None = None

    def keeps(self, row: StudentRow) -> bool:
        return all((
            row.needs_ta or not self.needs_ta,
            row.pending_points > 0 or not self.pending,
            bool(row.flags) or not self.flagged,
            row.late or not self.late,
            self.min_score is None or row.score >= self.min_score,
            self.max_score is None or row.score <= self.max_score,
        ))


def normalise(text: str | None) -> str:
    """Case, accents, punctuation and spacing ignored: "Dropout is on in train()." ~ "dropout is ON in train"."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFKD", text).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.findall(r"\w+", text))


def item_score(items: list[RubricItem], max_score: float) -> float:
    """Negative scoring, as Gradescope's default: full marks plus the items' points, floored at 0 and
    capped at the question's points (a `0: correct` item grades a correct answer)."""
    return round(min(max_score, max(0.0, max_score + sum(i.points for i in items))), 4)


def item_comment(items: list[RubricItem], comment: str) -> str:
    """What the student reads as the TA's comment: one line per applied item, then the TA's own words."""
    return "\n".join([*(i.label for i in items), *([comment.strip()] if comment.strip() else [])])


class Workspace:
    def __init__(self, out: Path, rubric_path: Path | None = None) -> None:
        self.out = out
        self.rubric: Rubric = resolve_rubric(out, rubric_path, load_results(out).values())
        self.store = Store(out)

    def close(self) -> None:
        self.store.close()

    # -- reading ----------------------------------------------------------------------------------------------
    def results(self) -> dict[str, SubmissionResult]:
        return load_results(self.out)

    def manual_questions(self) -> list[str]:
        return manual_ids(self.rubric)

    def progress(self, results: dict[str, SubmissionResult] | None = None) -> list[Progress]:
        results = results if results is not None else self.results()
        found = []
        manual = set(manual_ids(self.rubric))
        for q in self.rubric.questions:
            if q.id not in manual:
                continue
            answers = [a for r in results.values() for a in r.questions if a.qid == q.id]
            graded = sum(a.status is not Status.PENDING for a in answers)
            found.append(Progress(q.id, q.spec.title, float(q.spec.points), graded, len(answers)))
        return found

    def students(self, keep: ClassFilter = ClassFilter()) -> list[StudentRow]:
        from grader.classroom.classbook import read_entries

        entries = read_entries(self.out)
        rows = [
            StudentRow(name, r.score, r.max_score, r.pending_points, r.needs_ta, r.flags,
                       bool(entries[name].late) if name in entries else False)
            for name, r in sorted(self.results().items())
        ]
        return [row for row in rows if keep.keeps(row)]

    def groups(self, qid: str) -> list[AnswerGroup]:
        self._check_manual(qid)
        applied = self.store.applied(qid)
        comments = self.store.comments(qid)
        members: dict[str, list[tuple[str, QuestionResult]]] = {}
        for name, r in sorted(self.results().items()):
            for q in r.questions:
                if q.qid == qid:
                    members.setdefault(normalise(q.details.get("answer")), []).append((name, q))
        groups = []
        for key, answers in members.items():
            names = [name for name, _ in answers]
            sets = [{i.id for i in applied.get(name, [])} for name in names]
            everyone = set.intersection(*sets)
            some = set.union(*sets) - everyone
            texts = {comments.get(name, "") for name in names}
            groups.append(AnswerGroup(
                key=key,
                text=answers[0][1].details.get("answer"),
                students=tuple(names),
                items=tuple(sorted(everyone)),
                partly=tuple(sorted(some)),
                comment=texts.pop() if len(texts) == 1 else "",
                graded=sum(q.status is not Status.PENDING for _, q in answers),
                scores=tuple(sorted({q.score for _, q in answers if q.status is not Status.PENDING})),
            ))
        # The largest groups first: grading them settles the most students.
        return sorted(groups, key=lambda g: (-len(g.students), g.key))

    def group(self, qid: str, key: str) -> AnswerGroup:
        for g in self.groups(qid):
            if g.key == key:
                return g
        raise GraderError(f"no group of answers to {qid} reads {key!r} any more")

    # -- grading ----------------------------------------------------------------------------------------------
    def add_item(self, qid: str, points: float, text: str, ta: str = "") -> RubricItem:
        self._check_manual(qid)
        return self.store.add_item(qid, points, _item_text(text), ta)

    def edit_item(self, item_id: int, points: float, text: str, ta: str = "") -> list[str]:
        """Change an item; every student it is applied to is scored again.  Returns those students."""
        item = self.store.edit_item(item_id, points, _item_text(text))
        students = self.store.students_with(item_id)
        self.rescore(item.qid, students, ta)
        return students

    def apply(self, qid: str, students: list[str], item_id: int, on: bool = True, ta: str = "") -> None:
        self._check_manual(qid)
        if self.store.item(item_id).qid != qid:
            raise GraderError(f"rubric item {item_id} belongs to another question")
        self.store.set_applied(students, qid, item_id, on, ta)
        self.rescore(qid, students, ta)

    def comment(self, qid: str, students: list[str], text: str, ta: str = "") -> None:
        self._check_manual(qid)
        self.store.set_comment(students, qid, text.strip(), ta)
        self.rescore(qid, students, ta)

    def unwritten(self, qid: str) -> list[str]:
        """Students with items applied to `qid` whose stored answer waits for a TA again (graded again since)."""
        applied = self.store.applied(qid)
        return sorted(
            name for name, r in self.results().items() if name in applied
            for q in r.questions if q.qid == qid and q.status is Status.PENDING
        )

    def rescore(self, qid: str, students: list[str], ta: str = "") -> None:
        """Write the item-made score of each student's answer (students with no item applied stay as they are)."""
        with self._locked():
            # Read under the lock: another process's item change lands before or after this whole write.
            applied = self.store.applied(qid)
            comments = self.store.comments(qid)
            results = self.results()
            max_score = {q.id: float(q.spec.points) for q in self.rubric.questions}[qid]
            scores = [
                TAScore(name, qid, item_score(applied[name], max_score), item_comment(applied[name], comments.get(name, "")),
                        f"workspace: {name} {qid}")
                for name in sorted(set(students)) if name in applied and name in results
            ]
            if scores:
                updated = apply_scores(self.rubric, results, scores, ta)
                save(self.out, self.rubric, updated, [s.student for s in scores])

    def adjust(self, student: str, qid: str, score: float, reason: str, ta: str = "") -> SubmissionResult:
        """A TA's score for any question of one student, with a reason (a regrade request, say).

        An auto-graded question gets the gradebook's `override` record (`grader override`'s: who, when, kept
        through re-grading); a TA-graded one a TA score.  This function alone writes adjustments."""
        if not reason.strip():
            raise GraderError("an adjustment needs a reason")
        with self._locked():
            results = self.results()
            if student not in results:
                raise GraderError(f"no student {student!r} in {self.out}")
            question = next((q for q in results[student].questions if q.qid == qid), None)
            if question is None:
                raise GraderError(f"{student} has no result for {qid}")
            if not 0 <= score <= question.max_score:
                raise GraderError(f"score {score:g} for {qid} is outside 0..{question.max_score:g}")
            if qid in self.manual_questions():
                updated = apply_scores(self.rubric, results, [TAScore(student, qid, score, reason.strip())], ta)
            else:
                # The same record as `grader override`: kept with who and when, and through re-grading.
                entry = Override(student, qid, score, reason.strip(), ta or getpass.getuser(), time.time(),
                                 question.title, question.max_score)
                with Gradebook(self.out / FILENAME) as book:
                    adjusted = carry_over(results[student], None, [*book.overrides(student), entry])
                    book.add_override(entry, adjusted)
                updated = {**results, student: adjusted}
            self.store.add_adjustment(student, qid, score, reason.strip(), ta)
            save(self.out, self.rubric, updated, [student])
            return updated[student]

    # -- helpers ----------------------------------------------------------------------------------------------
    def _check_manual(self, qid: str) -> None:
        if qid not in self.manual_questions():
            raise GraderError(f"{qid!r} is not a TA-graded question (those are: {', '.join(self.manual_questions())})")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.out / LOCK_FILE, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _item_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise GraderError("a rubric item needs a text")
    return text

