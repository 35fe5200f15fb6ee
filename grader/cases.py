"""The helpers a rubric's reference module uses to write its cases: `from grader.cases import case, sized, randn`.

This is the authors' public API (docs/rubrics.md, For authors); the helpers live with the checks that use them, in
`grader.checks.support.cases` and `grader.checks.support.compare`.
"""
from __future__ import annotations

from grader.checks.support.cases import Case, OutputOf, as_numpy, case, grid, output_of, randn, sized, with_ties
from grader.checks.support.compare import describe, is_array

__all__ = ["Case", "OutputOf", "as_numpy", "case", "describe", "grid", "is_array", "output_of", "randn", "sized", "with_ties"]
