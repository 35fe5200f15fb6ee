"""Inputs for function checks: generated in the grader from a reference generator and a seed."""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch

from grader.compare import is_array, to_numpy
from grader.errors import GraderError
from grader.results import Outcome


def generate_cases(generator: Callable[..., Any], seed: int, where: str) -> list[dict[str, Any]]:
    """Call a reference case generator with a seeded `torch.Generator`; it returns a list of kwargs dicts.

    The dicts' order is the student's positional order: students may name their parameters as they like.
    """
    gen = torch.Generator().manual_seed(seed)
    try:
        cases = generator(gen)
    except Exception as exc:
        raise GraderError(f"{where}: the case generator failed: {exc!r}") from exc
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases) or not cases:
        raise GraderError(f"{where}: a case generator returns a non-empty list of dicts")
    return cases


def clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return copy.deepcopy(value)


def label(case: dict[str, Any]) -> str:
    """A short description of a case for messages: shapes of tensors, values of scalars."""
    parts = []
    for name, value in case.items():
        parts.append(f"{name}={_short(value)}")
    return ", ".join(parts)


def _short(value: Any) -> str:
    if is_array(value):
        return f"<{'x'.join(map(str, to_numpy(value).shape)) or 'scalar'}>"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_short(v) for v in value[:4]) + (", …" if len(value) > 4 else "")
        return f"[{inner}]"
    return repr(value)


def roll_up(
    cases: list[dict[str, Any]],
    one: Callable[[dict[str, Any]], tuple[str | None, dict[str, Any]]],
    partial: bool,
) -> Outcome:
    """Run `one` on each case (it returns a problem or None, and details) and make one outcome of them.

    All or nothing stops at the first failure; `partial` goes on and credits the share of cases passed.
    A missing answer (`details["missing"]`) or one not checked because the submission used up its total time
    (`details["not_checked"]`) ends the question at once as an error.
    """
    passed, first_failure, details = 0, None, {}
    for case in cases:
        problem, info = one(case)
        if info.get("missing") or info.get("not_checked"):
            return Outcome.error(problem or "")
        if problem is None:
            passed += 1
        elif first_failure is None:
            first_failure, details = problem, {**info, "case": label(case)}
            if not partial:
                break
    total = len(cases)
    if first_failure is None:
        return Outcome.passed(f"correct on all {total} test inputs")
    fraction = passed / total if partial else 0.0
    summary = f"{passed} of {total} test inputs correct. " if partial else ""
    return Outcome(fraction, summary + first_failure, details)


def call_reference(fn: Callable[..., Any], case: dict[str, Any], where: str) -> Any:
    try:
        return fn(**{k: clone(v) for k, v in case.items()})
    except Exception as exc:
        raise GraderError(f"{where}: the reference failed on {label(case)}: {exc!r}") from exc
