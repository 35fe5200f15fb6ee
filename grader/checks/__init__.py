"""Registry of check kinds: one module per kind, one line here per kind."""
from __future__ import annotations

from grader.checks.base import Check, CheckContext, Options

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


def get_kind(name: str) -> Check:
    import importlib

    try:
        target = KINDS[name]
    except KeyError:
        raise KeyError(f"unknown check kind '{name}' (known: {', '.join(sorted(KINDS))})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)()  # type: ignore[no-any-return]


__all__ = ["Check", "CheckContext", "Options", "KINDS", "get_kind"]
