"""The smallest failing input: a failing case made smaller while the student's code still fails on it.

A test input of shape (2, 3, 7) is too big to follow by hand; the same mistake usually shows on a batch of
one, a sequence of two, a single channel, with whole-number values.  `shrink` tries such smaller cases
(fewer batch items, shorter sequences, smaller sizes, simpler values), keeps each one on which the failure
persists, and stops within a budget of calls and seconds.  A smaller case is never an input the function
could not get: it is rebuilt from smaller sizes by the author's generator, or cut along one size everywhere at
once, and tried only where the reference takes it (`Contract`).  Whether a candidate "still fails" is the
caller's question, answered in the grader: the reference computes the expected values, the student's process
only runs the student's function on the grader-made input.

`snippet` turns a case into Python a student pastes into their notebook to see the failure themselves,
`reproduction` puts the two together into the `Reproduction` record a question's details carry (and drops a
diagnosis a smaller input contradicts), `roll_up_reproduced` grades a question's cases and reproduces the first
that fails, and `as_held` shows a failing input as it is where nothing can be shrunk (the kit).
"""
from __future__ import annotations

import hashlib
import math
import re
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import numpy as np
import torch

from grader.checks.support.cases import PASSED, CaseVerdict, label, roll_up, same_kind, sizes_of
from grader.checks.support.compare import is_array, to_numpy
from grader.checks.support.diagnose import format_array
from grader.explain import Around, Reproduction, bounded
from grader.results import Outcome

__all__ = ["Budget", "Contract", "Shrunk", "as_held", "confirmed", "is_small", "reproduction", "roll_up_reproduced", "show_inputs", "shrink", "size_map", "size_of", "snippet"]

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


def shrink(
    case: Case, still_fails: Callable[[Case], bool], budget: Budget = Budget(), contract: Contract | None = None
) -> Shrunk:
    """Greedy shrinking: the first smaller candidate that keeps the contract and still fails is kept, and
    shrinking starts over from it.

    A case built from sizes (`grader.checks.support.cases.sized`) with a `contract.rebuild` is made again from smaller sizes;
    any other case is cut only along sizes, every axis of that size in every argument together (inside dicts,
    lists and tuples too), so the arguments keep fitting one another.  A candidate the contract refuses (the
    reference cannot take it or returns something of another structure, or the check's or author's own
    condition fails) is never given to `still_fails`, which is asked only whether the student's code fails on
    it the same way.
    """
    contract = contract or Contract()
    deadline = time.monotonic() + budget.seconds
    rebuilding = bool(sizes_of(case)) and contract.rebuild is not None
    accepts = contract.acceptor(case, rebuilding)
    current, calls, progress, seen = case, 0, True, {_key(case)}
    while progress:
        progress = False
        for candidate in _candidates(current, contract.rebuild if rebuilding else None):
            if calls >= budget.calls or time.monotonic() > deadline:
                return Shrunk(current, calls, current is not case)
            key = _key(candidate)
            if key in seen:
                continue
            seen.add(key)
            if not accepts(candidate):
                continue
            calls += 1
            if still_fails(candidate):
                current, progress = candidate, True
                break
    return Shrunk(current, calls, current is not case)


Rebuild = Callable[[dict[str, int]], "Case | None"]


@dataclass(frozen=True)
class Contract:
    """What every input shown to a student keeps, whatever the shrinking tried.

    `reference(case)` is the reference's result on a case (it raises where the reference cannot take it);
    a candidate's result must have the original's structure (types, keys, lengths, numbers of axes) and, for a
    cut case, its sizes changed as the inputs' were.  `valid(case)` is the check's or the author's own
    condition (an upstream gradient of the forward output's shape).  `rebuild(sizes)` makes a case from sizes.
    """

    reference: Callable[[Case], Any] | None = None
    valid: Callable[[Case], bool] | None = None
    rebuild: Rebuild | None = None

    def acceptor(self, original: Case, rebuilding: bool) -> Callable[[Case], bool]:
        expected = _safely(self.reference, original) if self.reference is not None else None

        def accepts(candidate: Case) -> bool:
            sizes: dict[int, int] | None = {}
            if not rebuilding:  # a cut case: its sizes follow the original's, axis by axis, everywhere
                sizes = size_map(original, candidate)
                if sizes is None:
                    return False
            try:
                if self.valid is not None and not self.valid(candidate):
                    return False
                if self.reference is None or expected is _FAILED:
                    return True
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the reference on an input it may not take: asked, not told
                    got = self.reference(candidate)
            except Exception:  # noqa: BLE001 - the reference cannot take it: not a valid input
                return False
            if _finite(expected) and not _finite(got):
                return False  # a log of 0, a division by 0: an input outside the function's domain
            return size_map(expected, got, None if rebuilding else sizes, free=False) is not None

        return accepts


_FAILED = object()


def _safely(fn: Callable[[Case], Any], case: Case) -> Any:
    try:
        return fn(case)
    except Exception:  # noqa: BLE001 - checked again, and refused, on each candidate
        return _FAILED


def size_map(before: Any, after: Any, sizes: dict[int, int] | None = None, *, free: bool = True) -> dict[int, int] | None:
    """How `after`'s sizes follow `before`'s: {old size: new size}, the same for every axis of that size in
    every array (nested in dicts, lists and tuples), or None where they do not or the structure differs
    (types, keys, lengths, numbers of axes).

    `sizes` is a map to extend (an output's axes follow its inputs'); with `free=False` a size it does not
    hold must stay as it was (an output size derived from the inputs, `(N - K) // stride + 1`, cannot be
    vouched for).  `sizes=None, free=False` compares the structure only.
    """
    found: dict[int, int] = dict(sizes or {})
    structure_only = sizes is None and not free

    def walk(a: Any, b: Any) -> bool:
        if is_array(a) or is_array(b):
            if not (is_array(a) and is_array(b)):
                return False
            sa, sb = to_numpy(a).shape, to_numpy(b).shape
            if len(sa) != len(sb):
                return False
            if structure_only:
                return True
            for x, y in zip(sa, sb):
                if x not in found and (free or x == y):
                    found[x] = y
                elif found.get(x) != y:
                    return False
            return True
        if isinstance(a, dict):
            return isinstance(b, dict) and list(a) == list(b) and all(walk(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(walk(x, y) for x, y in zip(a, b))
        return type(a) is type(b)

    return found if walk(before, after) else None


def _key(case: Case) -> tuple[Any, ...]:
    """What a candidate is, to try each one once: its arrays' shapes and bytes, and its other values."""
    digest = hashlib.sha256()
    for value in _leaves(case):
        if is_array(value):
            a = np.ascontiguousarray(to_numpy(value))
            digest.update(repr((a.shape, a.dtype.str)).encode())
            digest.update(a.tobytes())
        else:
            digest.update(repr(value).encode())
    return (tuple(case), digest.hexdigest())


def _finite(value: Any) -> bool:
    """Whether every number in `value` (arrays, scalars, nested in lists, tuples and dicts) is finite."""
    for leaf in _leaves(value):
        if is_array(leaf):
            a = to_numpy(leaf)
            if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
                return False
        elif isinstance(leaf, float) and not math.isfinite(leaf):
            return False
    return True


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)) and not is_array(value):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _candidates(case: Case, rebuild: Rebuild | None) -> Iterator[Case]:
    """Smaller cases, the most promising first: smaller sizes (rebuilt by the author's generator, or every axis
    of one size cut together), then simpler values."""
    if rebuild is not None:
        for smaller in _smaller_sizes(sizes_of(case)):
            made = rebuild(smaller)
            if made is not None:
                yield made
    else:
        present = {n for a in _arrays(case) for n in to_numpy(a).shape if n > 1}
        for size in sorted(present, reverse=True):
            # A size cut to another one present (3 -> 2 beside a batch of 2) could never be told apart from it.
            for target in (t for t in _targets(size) if t not in present):
                yield same_kind(case, {k: _cut_everywhere(v, size, target) for k, v in case.items()})
    for path in _float_paths(case):
        simpler = _simpler(_at(case, path))
        if simpler is not None:
            yield same_kind(case, _replaced(case, path, simpler))


def _smaller_sizes(sizes: dict[str, int]) -> Iterator[dict[str, int]]:
    """All sizes at once (to 1, to 2, halved), then each size alone, the largest first."""
    big = [k for k, v in sizes.items() if v > 1]
    for cut in (lambda v: 1, lambda v: min(v, 2), lambda v: max(1, v // 2)):
        yield {k: cut(v) if k in big else v for k, v in sizes.items()}
    for k in sorted(big, key=lambda k: -sizes[k]):
        for target in _targets(sizes[k]):
            yield {**sizes, k: target}


def _targets(size: int) -> list[int]:
    return sorted({t for t in (1, 2, size // 2, size - 1) if 0 < t < size})


def _cut_everywhere(value: Any, size: int, target: int) -> Any:
    if is_array(value):
        for axis, n in enumerate(to_numpy(value).shape):
            if n == size:
                value = _narrow(value, axis, target)
        return value
    if isinstance(value, dict):
        return same_kind(value, {k: _cut_everywhere(v, size, target) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_cut_everywhere(v, size, target) for v in value)
    return value


def _narrow(value: Any, axis: int, n: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value.narrow(axis, 0, n).clone()
    return np.take(np.asarray(value), np.arange(n), axis=axis).copy()


Path = tuple[Any, ...]


def _float_paths(value: Any, path: Path = ()) -> Iterator[Path]:
    """Where the float arrays of a case are (keys and indices into it, nested)."""
    if is_array(value):
        if to_numpy(value).dtype.kind == "f":
            yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _float_paths(v, (*path, k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _float_paths(v, (*path, i))


def _at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def _replaced(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return same_kind(value, {k: _replaced(v, rest, new) if k == head else v for k, v in value.items()})
    return type(value)(_replaced(v, rest, new) if i == head else v for i, v in enumerate(value))


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


def snippet(function: str, case: Case, after: str | None = None) -> str:
    """Python that calls the student's function on `case`, to paste into their notebook.

    Everything happens inside a function of its own (`_reproduce_<function>`), so pasting it rebinds none of the
    notebook's names: the test's argument names (`x`, `W`) and the imports stay local to it.  An argument named
    like the function itself, or like an import, is renamed so that it cannot hide them.  With `after` (an
    argument the call changed, or one a post-condition reads) that argument is printed after the call too:
    the return value does not show what was done to it.
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
    if after in names:
        result = "result" if "result" not in taken else "result_"
        body += [f"{result} = {call}", f"print({after!r}, 'after the call:', {names[after]})"]
        call = result
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
    if "traceback" in details:
        return "crash"
    if "predicate" in details:
        return "property"
    if "mismatched" in details or "rel_error" in details:
        return "values"
    if "expected_shape" in details:
        return "shape"
    return "other"


def failure_signature(details: dict[str, Any]) -> tuple[Any, ...]:
    """The failure's kind and the check that saw it (which selected output, which argument after the call,
    which argument changed in place): a smaller input must fail on the same check in the same way."""
    return (failure_kind(details), details.get("output"), details.get("after"), details.get("changed"))


def reproduction(
    function: str,
    outcome: Outcome,
    case: Case,
    details: dict[str, Any],
    problem_of: Callable[[Case], CaseVerdict],
    budget: Budget = Budget(),
    contract: Contract | None = None,
) -> tuple[Outcome, Reproduction | None]:
    """The failing input `case` made as small as the budget allows, shown in full with its problem and a
    snippet; and the outcome with its diagnosis only where no smaller input contradicts it (`confirmed`).

    `problem_of(case)` grades one case as the check does.  No reproduction when nothing can be shown (a crash,
    whose traceback says more; an input too large to read even after shrinking).  Every smaller input tried keeps `contract` (see `shrink`) and must fail with the same
    `failure_signature` as `details`, the case's own (as `problem_of` gave them).
    """
    kind = failure_signature(details)
    if kind[0] == "crash":
        return outcome, None
    last: dict[str, CaseVerdict] = {}
    causes: set[str] = set()  # the causes named on the smaller inputs that failed the same way

    def still_fails(candidate: Case) -> bool:
        try:
            verdict = problem_of(candidate)
        except Exception:  # noqa: BLE001 - a candidate the reference cannot take is simply not smaller
            return False
        if verdict.problem is None or verdict.unanswered or failure_signature(verdict.details) != kind:
            return False
        last["found"] = verdict
        cause = _cause(verdict.details.get("diagnosis"))
        if cause is not None:
            causes.add(cause)
        return True

    shrunk = shrink(case, still_fails, budget, contract)
    holds = causes <= {_cause(details.get("diagnosis"))}
    outcome = confirmed(outcome, holds)
    if size_of(shrunk.case) > SHOWN:
        return outcome, None
    found = last.get("found", PASSED) if shrunk.smaller else PASSED
    problem, info = found.problem, found.details
    if problem is not None and not holds:
        problem = _without(problem, info.get("diagnosis"))
    changed = details.get("changed") or str(details.get("after") or "").split("[")[0] or None
    return outcome, Reproduction(
        inputs=show_inputs(shrunk.case),
        snippet=snippet(function, shrunk.case, changed if isinstance(changed, str) else None),
        shrunk=shrunk.smaller,
        original=label(case),
        problem=bounded(problem),
        around=Around.from_dict(info.get("around")),
        calls=shrunk.calls,
    )


PER_ARGUMENT = 48  # numbers: an argument up to this size is shown as its values where nothing is shrunk (the kit)


def as_held(function: str, case: Case, details: dict[str, Any], rebuild: list[str]) -> Reproduction | None:
    """A failing input shown as it is (a kit has no reference, so nothing is shrunk): each argument's values
    where every argument is small, else `rebuild`, lines of Python that set `args` to the same input (the
    kit's `kit.load(...).inputs(qid, n)`), in the snippet.  None for a crash (its traceback says more) and for an
    input passed through the student's other functions (`output_of`)."""
    if failure_kind(details) == "crash" or any(not _pasteable(v) for v in case.values()):
        return None
    changed = details.get("changed") or str(details.get("after") or "").split("[")[0] or None
    after = changed if isinstance(changed, str) else None
    if all(size_of({"v": v}) <= PER_ARGUMENT for v in case.values()):
        return Reproduction(inputs=show_inputs(case), snippet=snippet(function, case, after), original=label(case))
    helper = f"_reproduce_{function}"
    lines = [f"def {helper}():  # a function, so that none of your notebook's variables is changed",
             *(f"    {line}" for line in rebuild),
             f"    return {function}(*args.values())", "", f"print({helper}())"]
    shapes = f"{label(case)} (too large to show here: the snippet below loads it from the kit)"
    return Reproduction(inputs=shapes, snippet="\n".join(lines), original=label(case))


def _pasteable(value: Any) -> bool:
    if is_array(value) or value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, dict):
        return all(_pasteable(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_pasteable(v) for v in value)
    return False


def _cause(why: Any) -> str | None:
    """A diagnosis without its numbers: "1/6 of the expected ones (6 is an axis size)" on a batch of 6 and
    "1/2 …(2 is…)" on a batch of 2 name one cause; "2 times … (2 is an axis size)" and "2 times" do not."""
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "#", why) if isinstance(why, str) else None


def _without(message: str, why: Any) -> str:
    """A message without its likely cause (`. Likely cause: …` or `; …`, as the comparisons append it)."""
    if not isinstance(why, str) or not why:
        return message
    return message.replace(f". Likely cause: {why}", "").replace(f"; {why}", "")


def confirmed(outcome: Outcome, holds: bool) -> Outcome:
    """The outcome, without its diagnosis where a smaller input contradicted it.

    A diagnosis is found by undoing a mistake (un-transposing, un-scaling, un-shifting the student's values)
    and getting the expected values back.  Each smaller input on which the student's code fails the same way is
    diagnosed too; where one names another cause (a factor of 2 that was an axis size on the original and is
    not on a batch of one: a missing 1/T, not a missing mean), the original's was a coincidence and is not
    shown.  An input too small to diagnose (one number) contradicts nothing.
    """
    why = outcome.details.get("diagnosis")
    if holds or not isinstance(why, str):
        return outcome
    details = {k: v for k, v in outcome.details.items() if k != "diagnosis"}
    return replace(outcome, message=_without(outcome.message, why), details=details)


def roll_up_reproduced(
    function: str,
    cases: list[Case],
    problem_of: Callable[[Case], CaseVerdict],
    partial: bool,
    shown: Callable[[Case], bool],
    contract: Contract | None = None,
) -> tuple[Outcome, Reproduction | None]:
    """`roll_up` of the cases, and the `reproduction` of the first that fails where `shown(case)` allows it
    (never a hidden question's; never an input that cannot be pasted as a value)."""
    failing: list[tuple[Case, dict[str, Any]]] = []

    def tracked(case: Case) -> CaseVerdict:
        verdict = problem_of(case)
        if verdict.problem is not None and not verdict.unanswered and not failing:
            failing.append((case, verdict.details))
        return verdict

    outcome = roll_up(cases, tracked, partial)
    if not failing or not shown(failing[0][0]):
        return outcome, None
    return reproduction(function, outcome, *failing[0], problem_of, contract=contract)
