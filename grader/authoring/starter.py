"""`grader validate`'s starter stage: the handout's starter notebook (the rubric's `starter:`) graded as a
student's would be, failing when its imports or its data files do not load in the grading environment.

A starter's stubs fail the questions, and a cell that calls a stub may raise: that is expected.  What must not
fail is setting up: a `ModuleNotFoundError`, an `ImportError` or a `FileNotFoundError` in the starter means every
student's notebook would fail the same way (a helper missing from `handout:`, a package missing from
`requires:`), which is the class of silent zeros this stage exists to prevent.
"""
from __future__ import annotations

import re
import time

from grader.authoring.validate import Finding, Stage
from grader.execution.sandbox import Launcher
from grader.grading.submission import grade_submission
from grader.rubric.schema import Rubric

__all__ = ["SETUP_ERRORS", "starter_stage"]

SETUP_ERRORS = re.compile(r"\b(ModuleNotFoundError|ImportError|FileNotFoundError)\b")


def starter_stage(rubric: Rubric, launcher: Launcher | None = None, device: str = "cpu") -> Stage | None:
    """None where the rubric names no starter."""
    path = rubric.starter_path
    if path is None:
        return None
    start = time.perf_counter()
    result = grade_submission(rubric, path, launcher=launcher, device=device)
    name = path.name
    if result.load_error:
        return Stage("starter", (Finding(False, f"{name} cannot be read: {result.load_error}"),), time.perf_counter() - start)
    broken = [c for c in result.cell_failures if SETUP_ERRORS.search(c.message)]
    findings = [Finding(False, f"{name}: {c.name} (`{c.first_line}`) fails here: {c.message}") for c in broken]
    if not broken:
        others = len(result.cell_failures)
        findings.append(Finding(True, f"{name}: its imports and data files load here"
                                + (f" ({others} other cell{'s' if others != 1 else ''} failed, as stubs do)" if others else "")))
    return Stage("starter", tuple(findings), time.perf_counter() - start)
