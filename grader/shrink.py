"""The smallest failing input: a failing case made smaller while the student's code still fails on it.

A test input of shape (2, 3, 7) is too big to follow by hand; the same mistake usually shows on a batch of
one, a sequence of two, a single channel, with whole-number values.  `shrink` tries such smaller cases
(fewer batch items, shorter sequences, smaller sizes, simpler values), keeps each one on which the failure
persists, and stops within a budget of calls and seconds.  Whether a candidate "still fails" is the caller's
question, answered in the grader: the reference computes the expected values, the student's process only runs
the student's function on the grader-made input.

`snippet` turns a case into Python a student pastes into their notebook to see the failure themselves,
`reproduction` puts the two together into the `Reproduction` record a question's details carry, and
`roll_up_reproduced` grades a question's cases and reproduces the first that fails.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from grader.cases import label, roll_up
from grader.compare import is_array, to_numpy
from grader.diagnose import format_array
from grader.explain import Around, Reproduction, bounded
from grader.results import Outcome

__all__ = ["Budget", "Shrunk", "shrink", "snippet", "show_inputs", "size_of", "is_small", "reproduction", "roll_up_reproduced"]

Case = dict[str, Any]


@dataclass(frozen=True)
class Budget:
    calls: int = 30  # student calls, at most
    seconds: float = 4.0  # wall-clock, at most (checked before each call)


@dataclass(frozen=True)
class Shrunk:
    case: Case
    calls: int
    smaller: bool  # False: nothing smaller failed the same way, the case is the original


def size_of(case: Case) -> int:
    """Elements of all arrays in a case (lists and dicts of arrays included)."""
    return sum(int(to_numpy(v).size) for v in _arrays(case))


def is_small(case: Case, limit: int = 40) -> bool:
    return size_of(case) <= limit


def _arrays(value: Any) -> Iterator[Any]:
    if is_array(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)


def shrink(case: Case, still_fails: Callable[[Case], bool], budget: Budget = Budget()) -> Shrunk:
    """Greedy shrinking: the first smaller candidate that still fails is kept, and shrinking starts over from it.

    Only top-level array arguments are narrowed (parameter dicts and other values are kept as they are), so
    every candidate has the case's own keys and types; `still_fails` must return False for any candidate the
    reference itself cannot take.
    """
    deadline = time.monotonic() + budget.seconds
    current, calls, progress = case, 0, True
    while progress:
        progress = False
        for candidate in _candidates(current):
            if calls >= budget.calls or time.monotonic() > deadline:
                return Shrunk(current, calls, current is not case)
            calls += 1
            if still_fails(candidate):
                current, progress = candidate, True
                break
    return Shrunk(current, calls, current is not case)


def _candidates(case: Case) -> Iterator[Case]:
    """Smaller cases, the most promising first: every axis of one size cut together (a batch size shared by
    inputs and upstream gradients), then one argument's axis alone, then simpler values."""
    shapes = {name: tuple(to_numpy(v).shape) for name, v in case.items() if is_array(v)}
    sizes = sorted({s for shape in shapes.values() for s in shape if s > 1}, reverse=True)
    for size in sizes:
        for target in _targets(size):
            yield {name: _cut_all(v, size, target) if name in shapes else v for name, v in case.items()}
    for name, shape in shapes.items():
        for axis, size in enumerate(shape):
            for target in _targets(size):
                yield {**case, name: _narrow(case[name], axis, target)}
    for name in shapes:
        simpler = _simpler(case[name])
        if simpler is not None:
            yield {**case, name: simpler}


def _targets(size: int) -> list[int]:
    return sorted({t for t in (1, 2, size // 2, size - 1) if 0 < t < size})


def _cut_all(value: Any, size: int, target: int) -> Any:
    for axis, n in enumerate(to_numpy(value).shape):
        if n == size:
            value = _narrow(value, axis, target)
    return value


def _narrow(value: Any, axis: int, n: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value.narrow(axis, 0, n).clone()
    return np.take(np.asarray(value), np.arange(n), axis=axis).copy()


def _simpler(value: Any) -> Any:
    """Float values rounded to whole numbers in [-3, 3] (None when they already are): arithmetic a person can
    redo by hand.  Zeros are kept away from where they were not, so a division stays defined."""
    a = to_numpy(value)
    if a.dtype.kind != "f" or a.size == 0:
        return None
    whole = np.clip(np.round(a), -3, 3)
    whole = np.where((whole == 0) & (a != 0), np.sign(a), whole)
    if np.array_equal(whole, a):
        return None
    if isinstance(value, torch.Tensor):
        return torch.as_tensor(whole, dtype=value.dtype)
    return whole.astype(a.dtype)


# ------------------------------------------------------------------------------------------------ showing


def _python(value: Any) -> str:
    """A value as Python source: tensors as `torch.tensor(...)`, arrays as `np.array(...)`, the rest as repr."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        return f"torch.tensor({format_array(value.detach().cpu().numpy())}, dtype=torch.{dtype})"
    if isinstance(value, np.ndarray):
        return f"np.array({format_array(value)}, dtype=np.{value.dtype.name})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_python(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_python(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_python(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def show_inputs(case: Case) -> str:
    """Every argument in full, one `name = value` per line."""
    return "\n".join(f"{name} = {_python(value)}" for name, value in case.items())


def snippet(function: str, case: Case) -> str:
    """Python that calls the student's function on `case`, to paste into their notebook.

    Everything happens inside a function of its own (`_reproduce_<function>`), so pasting it rebinds none of the
    notebook's names: the test's argument names (`x`, `W`) and the imports stay local to it.  An argument named
    like the function itself, or like an import, is renamed so that it cannot hide them.
    """
    imports = []
    if any(isinstance(v, torch.Tensor) for v in _arrays(case)):
        imports.append("import torch")
    if any(isinstance(v, np.ndarray) for v in _arrays(case)):
        imports.append("import numpy as np")
    taken = {function, "torch", "np"}
    names: dict[str, str] = {}
    for name in case:
        local = name
        while local in taken or not local.isidentifier():
            local = f"{local}_" if local.isidentifier() else "arg"
        taken.add(local)
        names[name] = local
    helper = f"_reproduce_{function}"
    body = [*imports, *(f"{names[n]} = {_python(v)}" for n, v in case.items())]
    call = f"{function}({', '.join(names.values())})"
    return "\n".join([
        f"def {helper}():  # a function, so that none of your notebook's variables is changed",
        *("    " + line.replace("\n", "\n    ") for line in body),
        f"    return {call}",
        "",
        f"print({helper}())",
    ])


# ------------------------------------------------------------------------------------ a failure, reproduced

SHOWN = 120  # elements: an input up to this size is shown in full


def failure_kind(details: dict[str, Any]) -> str:
    """What sort of failure a case's details describe; a shrunk case must fail the same way (a crash on a
    smaller input is another failure, not a smaller instance of this one)."""
    if "traceback" in details or details.get("missing") or details.get("not_checked"):
        return "crash"
    if "predicate" in details:
        return "property"
    if "mismatched" in details or "rel_error" in details:
        return "values"
    if "expected_shape" in details:
        return "shape"
    return "other"


def reproduction(
    function: str,
    case: Case,
    details: dict[str, Any],
    problem_of: Callable[[Case], tuple[str | None, dict[str, Any]]],
    label: Callable[[Case], str],
    budget: Budget = Budget(),
) -> Reproduction | None:
    """The failing input made as small as the budget allows, shown in full with its problem and a snippet.

    `problem_of(case)` grades one case as the check does: (message or None, details).  None when nothing can
    be shown (a crash, whose traceback says more; an input too large to read even after shrinking).
    """
    kind = failure_kind(details)
    if kind == "crash":
        return None
    last: dict[str, tuple[str | None, dict[str, Any]]] = {}

    def still_fails(candidate: Case) -> bool:
        try:
            problem, info = problem_of(candidate)
        except Exception:  # noqa: BLE001 - a candidate the reference cannot take is simply not smaller
            return False
        if problem is None or failure_kind(info) != kind:
            return False
        last["found"] = (problem, info)
        return True

    shrunk = shrink(case, still_fails, budget)
    if size_of(shrunk.case) > SHOWN:
        return None
    problem, info = last.get("found", (None, {})) if shrunk.smaller else (None, {})
    return Reproduction(
        inputs=show_inputs(shrunk.case),
        snippet=snippet(function, shrunk.case),
        shrunk=shrunk.smaller,
        original=label(case),
        problem=bounded(problem),
        around=Around.from_dict(info.get("around")),
        calls=shrunk.calls,
    )


def roll_up_reproduced(
    function: str,
    cases: list[Case],
    problem_of: Callable[[Case], tuple[str | None, dict[str, Any]]],
    partial: bool,
    shown: Callable[[Case], bool],
) -> tuple[Outcome, Reproduction | None]:
    """`roll_up` of the cases, and the `reproduction` of the first that fails where `shown(case)` allows it
    (never a hidden question's; never an input that cannot be pasted as a value)."""
    failing: list[tuple[Case, dict[str, Any]]] = []

    def tracked(case: Case) -> tuple[str | None, dict[str, Any]]:
        problem, info = problem_of(case)
        if problem is not None and not failing:
            failing.append((case, info))
        return problem, info

    outcome = roll_up(cases, tracked, partial)
    if not failing or not shown(failing[0][0]):
        return outcome, None
    return outcome, reproduction(function, *failing[0], problem_of, label)
