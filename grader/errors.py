"""The two kinds of failure, kept apart.

`GraderError` is the toolkit's own failure (bad rubric, missing file, broken reference): the CLI prints one
line, logs the rest and exits non-zero.  A student's broken notebook is *not* an exception of this module:
it is a graded result with a message (see `grader.results`).
"""
from __future__ import annotations


class GraderError(Exception):
    """The grader itself cannot go on."""


class RubricError(GraderError):
    """A rubric is invalid; the message names the file, the question and the key."""

    def __init__(self, path: str, message: str, question: str | None = None, key: str | None = None) -> None:
        self.path, self.question, self.key, self.detail = path, question, key, message
        where = path
        if question:
            where += f": {question}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class ReferenceError_(GraderError):
    """The reference implementation failed or disagrees with itself (an authoring bug, not a student's)."""


class SubmissionUnreadable(Exception):
    """A submission file cannot be read as a notebook or a Python file; it becomes a 0-point result."""
