"""The check kinds: one module per kind (`function`, `gradient`, ...), each a `Check` (grader.checks.base).

Which kinds exist, and where each one's parts live, is the registry in grader.rubric.kinds.
"""
from __future__ import annotations

from grader.checks.base import Check, CheckContext
from grader.rubric.kinds import DETAILS, KINDS, OPTIONS, details_class, get_kind, options_class
from grader.rubric.options import Options

__all__ = ["DETAILS", "KINDS", "OPTIONS", "Check", "CheckContext", "Options", "details_class", "get_kind", "options_class"]
