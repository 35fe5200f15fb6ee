"""The check kinds: one module per kind (`function`, `gradient`, ...), each a `Check` (grader.checks.base).

Which kinds exist, and where each one's parts live, is the registry in grader.rubric.kinds.
"""
from __future__ import annotations

from grader.checks.base import Check, CheckContext
from grader.rubric.kinds import KindSpec, details_class, get_kind, kind_names, kind_spec, options_class, register_kind
from grader.rubric.options import Options

__all__ = [
    "Check", "CheckContext", "KindSpec", "Options", "details_class", "get_kind", "kind_names", "kind_spec",
    "options_class", "register_kind",
]
