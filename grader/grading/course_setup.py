"""A class-wide setup problem: most of a batch failing the same import, file or name is the course's setup, not
the students' work.

When more than half of a class (and at least `MIN_STUDENTS`) fails the same way (a module that does not
import, a data file that is not there, a name that nobody's notebook defines), the likely cause is a helper
the rubric's `handout:` lacks or a package its `requires:` lacks.  `grader grade` lists such problems first
under "Needs a TA" in `index.html`, in `grader status` and on stderr, and exits 1: a class of silent zeros is
never the outcome of a missing file.  Read from stored results only (no student code runs here).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from grader.results import SubmissionResult
from grader.sources.cells import NAME_ERROR

__all__ = ["MIN_STUDENTS", "SetupProblem", "setup_problems"]

MIN_STUDENTS = 3

_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([\w.]{1,200})'")
_IMPORT_NAME = re.compile(r"ImportError: cannot import name '(\w{1,200})' from '([\w.]{1,200})'")
_FILE = re.compile(r"FileNotFoundError: (.{1,300}?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SetupProblem:
    """One failure shared by `count` of `total` submissions, with its likely cause in words."""

    cause: str  # "ModuleNotFoundError: No module named 'dnn_utils'"
    count: int
    total: int
    hint: str
    students: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        return f"{self.count} of {self.total} submissions fail with {self.cause}: {self.hint}"

    def serialize(self) -> dict[str, object]:
        return {"cause": self.cause, "count": self.count, "total": self.total, "hint": self.hint,
                "students": list(self.students)}


def _import_keys(r: SubmissionResult) -> dict[str, str]:
    """cause -> hint, for the failed cells of one submission."""
    keys: dict[str, str] = {}
    for f in r.cell_failures:
        if m := _MODULE.search(f.message):
            top = m.group(1).split(".")[0]
            keys[f"ModuleNotFoundError: No module named '{m.group(1)}'"] = (
                f"`{top}` is neither installed here nor in the rubric's handout: if the course hands it out, put it "
                f"in the rubric's `handout:` folder; if it is a package from PyPI, add it to `requires:` and install it"
            )
        elif m := _IMPORT_NAME.search(f.message):
            keys[f"ImportError: cannot import name '{m.group(1)}' from '{m.group(2)}'"] = (
                f"the `{m.group(2)}` that grading sees lacks `{m.group(1)}`: is the rubric's `handout:` (or the "
                "installed package) the version the course hands out?"
            )
        elif m := _FILE.search(f.message):
            keys[f"FileNotFoundError: {m.group(1).rstrip('.')}"] = (
                "if the course hands out this file, put it in the rubric's `handout:` folder at the path the "
                "notebooks use"
            )
    return keys


def _name_keys(r: SubmissionResult) -> dict[str, str]:
    keys: dict[str, str] = {}
    for q in r.questions:
        if m := NAME_ERROR.search(q.message):
            keys[f"NameError: name '{m.group(1)}' is not defined"] = (
                f"most of the class uses `{m.group(1)}` without defining it: a course helper missing from the "
                "rubric's `handout:`?"
            )
    return keys


def setup_problems(results: Iterable[SubmissionResult]) -> tuple[SetupProblem, ...]:
    """The failures shared by more than half of `results` (at least MIN_STUDENTS): failed imports and missing
    files first; names nobody defines only where no import explains them."""
    results = [r for r in results if not r.load_error]
    total = len(results)

    def shared(keys_of: dict[str, dict[str, str]]) -> list[SetupProblem]:
        who: dict[str, list[str]] = {}
        hints: dict[str, str] = {}
        for student, keys in keys_of.items():
            for cause, hint in keys.items():
                who.setdefault(cause, []).append(student)
                hints[cause] = hint
        return [
            SetupProblem(cause, len(names), total, hints[cause], tuple(sorted(names)))
            for cause, names in sorted(who.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            if len(names) >= MIN_STUDENTS and len(names) * 2 > total
        ]

    found = shared({r.student: _import_keys(r) for r in results})
    return tuple(found or shared({r.student: _name_keys(r) for r in results}))
