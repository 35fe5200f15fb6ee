"""dl-grader: grade deep-learning homework with checks that run outside the student's process.

The public API is `__all__`; names are imported lazily so that the student-side worker, which imports
`grader.worker`, does not pay for (or see) the grader's side.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "load_rubric": "grader.rubric.schema",
    "Rubric": "grader.rubric.schema",
    "load_submission": "grader.sources.load",
    "grade_submission": "grader.grading.submission",
    "SubmissionResult": "grader.results",
    "QuestionResult": "grader.results",
    "Outcome": "grader.results",
    "Status": "grader.results",
    "GraderError": "grader.errors",
    "RubricError": "grader.errors",
    "build_kit": "grader.kit",
    "read_kit": "grader.kit",
    "write_kit": "grader.kit",
    "KitFile": "grader.kit",
    "KitReport": "grader.kit",
}
# `from grader import kit` in a notebook: `kit.load(...)`, `ok.check("q1.3")` (see grader/kit/__init__.py).
__all__ = ["__version__", "kit", *_PUBLIC]  # noqa: PLE0604 (the lazy public names are _PUBLIC's keys)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    if name == "kit":
        return import_module("grader.kit")
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
