"""Registry of check kinds: one module per kind (grader/checks/), one line here per kind.

Entries are "module:attr" strings imported on first use, so that loading a rubric pays only for the kinds it
uses (and no torch), and so that this table, which the rubric stage reads, imports nothing above it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.checks.base import Check
    from grader.explain import DetailsReader
    from grader.rubric.options import Options

KINDS: dict[str, str] = {
    # kind name -> "module:Class"; imported lazily so that a rubric pays only for the kinds it uses.
    "formula": "grader.checks.formula:FormulaCheck",
    "value": "grader.checks.value:ValueCheck",
    "function": "grader.checks.function:FunctionCheck",
    "gradient": "grader.checks.gradient:GradientCheck",
    "forbid": "grader.checks.forbid:ForbidCheck",
    "training": "grader.checks.training:TrainingCheck",
    "property": "grader.checks.property:PropertyCheck",
    "manual": "grader.checks.manual:ManualCheck",
}


# kind name -> its rubric keys (a pydantic model in grader.rubric.options): loading a rubric validates every
# question's options without importing the kinds' modules (and torch, which most of them need to run).
OPTIONS: dict[str, str] = {kind: f"grader.rubric.options:{kind.capitalize()}Options" for kind in KINDS}


# kind name -> "module:Class" of its `Details` record (grader.explain.Details), next to the kind: the record
# reads a stored result's details (old ones too) and explains them for each audience.
DETAILS: dict[str, str] = {
    "formula": "grader.checks.formula:FormulaDetails",
    "value": "grader.checks.value:ValueDetails",
    "function": "grader.checks.function:FunctionDetails",
    "gradient": "grader.checks.gradient:GradientDetails",
    "forbid": "grader.checks.forbid:ForbidDetails",
    "training": "grader.checks.training:TrainingDetails",
    "property": "grader.checks.property:PropertyDetails",
    "manual": "grader.checks.manual:ManualDetails",
}


def details_class(kind: str) -> DetailsReader | None:
    """The Details class of `kind` (with `from_dict`), or None for a kind this grader does not know (a stored
    result of a kind since removed: its message, traceback and forbid violations are still shown)."""
    target = DETAILS.get(kind)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def options_class(kind: str) -> type[Options]:
    """The Options model of `kind`; KeyError (naming the known kinds) for an unknown one."""
    try:
        target = OPTIONS[kind]
    except KeyError:
        raise KeyError(f"unknown check kind '{kind}' (known: {', '.join(sorted(KINDS))})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def get_kind(name: str) -> Check:
    try:
        target = KINDS[name]
    except KeyError:
        raise KeyError(f"unknown check kind '{name}' (known: {', '.join(sorted(KINDS))})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)()  # type: ignore[no-any-return]
