"""Inputs for function checks: generated in the grader from a reference generator and a seed."""
from __future__ import annotations

import copy
import inspect
from typing import Any, Callable

import torch

from grader.compare import is_array, to_numpy
from grader.errors import GraderError


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


def call_reference(fn: Callable[..., Any], case: dict[str, Any], where: str) -> Any:
    try:
        return fn(**{k: clone(v) for k, v in case.items()})
    except Exception as exc:
        raise GraderError(f"{where}: the reference failed on {label(case)}: {exc!r}") from exc


def accepts(fn: Callable[..., Any], names: list[str]) -> dict[str, bool]:
    params = inspect.signature(fn).parameters
    return {n: n in params for n in names}
