"""`grader status OUT`: where a class stands: how many are graded, waiting for TA scores, unreadable, timed out,
or need a TA because the grader failed on them.  Reads OUT/gradebook.sqlite only."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from grader.classroom.classbook import read_results
from grader.classroom.tawork import stale_overrides
from grader.feedback.terminal import one_line
from grader.grading.course_setup import setup_problems
from grader.results import Status, SubmissionResult


@dataclass(frozen=True)
class ClassStatus:
    """Each category: (student folder, why) pairs.  A submission may be in several (pending and timed out)."""

    total: int
    graded: tuple[str, ...]  # nothing left to do: no pending question, readable, no grader error
    pending: tuple[tuple[str, str], ...]
    unreadable: tuple[tuple[str, str], ...]
    timed_out: tuple[tuple[str, str], ...]
    needs_ta: tuple[tuple[str, str], ...]
    overridden: tuple[tuple[str, str], ...] = ()  # TA overrides in force (grader override)
    review: tuple[tuple[str, str], ...] = ()  # TA work made on a question (or answer) that has since changed
    late: tuple[tuple[str, str], ...] = ()  # late work and what the policy took

    def serialize(self) -> dict[str, object]:
        return {
            "total": self.total, "graded": list(self.graded),
            **{k: [list(p) for p in getattr(self, k)]
               for k in ("pending", "unreadable", "timed_out", "needs_ta", "overridden", "review", "late")},
        }


def classify(results: list[SubmissionResult]) -> ClassStatus:
    pending, unreadable, timed_out, needs_ta, graded = [], [], [], [], []
    overridden, review, late = [], [], []
    # First: a class-wide failure (a helper the handout lacks) explains many zeros at once.
    needs_ta += [("course setup", problem.line) for problem in setup_problems(results)]
    for r in results:
        if r.late:
            late.append((r.who, r.late_note))
        for q in r.questions:
            o = q.details.get("override")
            if isinstance(o, dict):
                overridden.append((r.who, f"{q.qid} {q.score:g}/{q.max_score:g} by {o.get('ta') or 'a TA'}: "
                                              f"{o.get('reason', '')}"))
        stale = stale_overrides(r)
        if stale:
            review.append((r.who, f"TA work on a changed question or answer: {', '.join(stale)}"))
        waiting = [q.qid for q in r.questions if q.status is Status.PENDING]
        if waiting:
            pending.append((r.who, ", ".join(waiting)))
        if r.load_error:
            unreadable.append((r.who, r.load_error))
        slow = [f"{c.name} {c.reason}" for c in r.cell_failures if c.reason in ("timeout", "died")]
        slow += [q.qid for q in r.questions if q.status is Status.ERROR and "time limit" in q.message]
        if slow:
            timed_out.append((r.who, ", ".join(slow)))
        if r.needs_ta:
            broken = [q.qid for q in r.questions if q.status is Status.GRADER_ERROR]
            needs_ta.append((r.who, f"grader error ({', '.join(broken) or 'whole submission'})"))
        if r.flags:  # as index.html's "Needs a TA" lists them: the score stands, a person looks at the code
            needs_ta.append((r.who, f"flagged (the score stands; look at the code): {'; '.join(r.flags)}"))
        if not (waiting or r.load_error or r.needs_ta or r.flags):
            graded.append(r.who)
    return ClassStatus(len(results), tuple(graded), tuple(pending), tuple(unreadable), tuple(timed_out),
                       tuple(needs_ta), tuple(overridden), tuple(review), tuple(late))


def status(folder: Path, stream: TextIO | None = None) -> int:
    stream = stream or sys.stdout
    s = classify(read_results(folder))
    print(f"{folder}: {s.total} submissions", file=stream)
    rows = [("graded", [(n, "") for n in s.graded]), ("pending TA scores", list(s.pending)),
            ("unreadable", list(s.unreadable)), ("timed out", list(s.timed_out)), ("needs a TA", list(s.needs_ta)),
            ("TA overrides", list(s.overridden)), ("to review", list(s.review)), ("late", list(s.late))]
    for label, items in rows:
        print(f"  {label + ':':<19}{len(items):>5}", file=stream)
    for label, items in rows[1:]:
        if items:
            print(f"\n{label}:", file=stream)
            for name, why in items:
                print(f"  {one_line(name)}: {one_line(why)}", file=stream)
    return 0
