"""`grader override OUT STUDENT QUESTION SCORE --reason WHY`: a TA's score for any question of one student.

The override is recorded in OUT/gradebook.sqlite with who and when (every one is kept: the audit trail), the
student's result and files are written again ("adjusted by a TA: WHY" in the reports), and the class files
too.  Re-grading keeps it (`grader.classroom.tawork`).  `grader remove OUT STUDENT` takes a student out of the class
folder: the result moves to the gradebook's `removed` table and the student's folder to OUT/.removed/; the
exports no longer see them.
"""
from __future__ import annotations

import getpass
import shutil
import sys
import time
from pathlib import Path

from grader.classroom.classbook import label, people, read_results, resolve
from grader.classroom.gradebook import FILENAME, Gradebook
from grader.classroom.outdir import OutDir, finish
from grader.classroom.ta_scores import resolve_rubric
from grader.classroom.tawork import Override, carry_over
from grader.errors import GraderError

REMOVED = ".removed"  # OUT/.removed/<student>: the folders of removed students, kept


def override(out: Path, student: str, qid: str, score: float, reason: str, ta: str = "") -> int:
    results = read_results(out)
    who = people(out, results)
    name = resolve(student, who, str(out))
    result = next(r for r in results if r.student == name)
    rubric = resolve_rubric(out, None, [result])
    question = next((q for q in result.questions if q.qid == qid.strip().lower()), None)
    if question is None:
        raise GraderError(f"{name} has no question {qid!r} (its questions: {', '.join(q.qid for q in result.questions)})")
    if not 0 <= score <= question.max_score:
        raise GraderError(f"score {score:g} for {question.qid} is outside 0..{question.max_score:g}")
    if not reason.strip():
        raise GraderError("an override needs a --reason (it is shown to the student and kept in the gradebook)")
    entry = Override(name, question.qid, score, reason.strip(), ta or getpass.getuser(), time.time(),
                     question.title, question.max_score)
    with Gradebook(out / FILENAME) as book:
        updated = carry_over(result, None, [*book.overrides(name), entry])
        book.add_override(entry, updated)
        finish(updated, rubric).write(out / name)
        OutDir(out).write_class(rubric, book)
    print(f"{label(name, who[name])}: {question.qid} is now {score:g}/{question.max_score:g} "
          f"(total {updated.score:g}/{updated.max_score:g}); kept through re-grading")
    return 0


def remove(out: Path, student: str, reason: str = "") -> int:
    results = read_results(out)
    who = people(out, results)
    name = resolve(student, who, str(out))
    rubric = resolve_rubric(out, None, [])
    with Gradebook(out / FILENAME) as book:
        book.remove(name, reason or "removed by a TA")
        folder = out / name
        if folder.is_dir():
            keep = out / REMOVED / name
            n = 1
            while keep.exists():
                n += 1
                keep = out / REMOVED / f"{name}.{n}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(keep))
        OutDir(out).write_class(rubric, book)
    print(f"removed {label(name, who[name])} from {out}: no longer in gradebook.csv, index.html or the exports; "
          f"the result is kept in the gradebook's history and the folder in {out / REMOVED}", file=sys.stderr)
    print(f"grader: grading {who[name].main} into {out} again brings them back", file=sys.stderr)
    return 0
