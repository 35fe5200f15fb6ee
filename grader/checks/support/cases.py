"""Inputs for function checks: generated in the grader from a reference generator and a seed."""
from __future__ import annotations

import copy
import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from grader.checks.support.compare import is_array, to_numpy
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


def rebuilder(generator: Callable[..., Any], seed: int) -> Callable[[dict[str, int]], Case | None] | None:
    """The case of given sizes, from a generator that takes them (`def cases_x(gen, sizes=None)`), or None for
    a generator that does not.  Sizes it refuses (it raises, or returns no case) give None: not a valid input."""
    try:
        takes_sizes = "sizes" in inspect.signature(generator).parameters
    except (TypeError, ValueError):
        takes_sizes = False
    if not takes_sizes:
        return None

    def rebuild(sizes: dict[str, int]) -> Case | None:
        try:
            made = generator(torch.Generator().manual_seed(seed), sizes=dict(sizes))
        except Exception:  # noqa: BLE001 - the author's generator says these sizes make no valid input
            return None
        if not isinstance(made, list) or not made or not isinstance(made[0], dict):
            return None
        return sized(sizes, made[0])

    return rebuild


def clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return copy.deepcopy(value)


def label(case: dict[str, Any]) -> str:
    """A short description of a case for messages: shapes of tensors, values of scalars, and the author's
    label first where the case has one (`[tied maxima] x=<2x3x4x4>, pool_param={...}`)."""
    parts = []
    for name, value in case.items():
        parts.append(f"{name}={_short(value)}")
    text = ", ".join(parts)
    name = case.label if isinstance(case, Case) else ""
    return f"[{name}] {text}" if name else text


def _short(value: Any) -> str:
    if isinstance(value, OutputOf):
        return value.describe()
    if is_array(value):
        return f"<{'x'.join(map(str, to_numpy(value).shape)) or 'scalar'}>"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_short(v) for v in value[:4]) + (", …" if len(value) > 4 else "")
        return f"[{inner}]"
    if isinstance(value, dict):
        # A parameter dict (`bn_param`) may hold arrays: their shapes, not their numbers, keep a message short.
        inner = ", ".join(f"{k!r}: {_short(v)}" for k, v in list(value.items())[:6]) + (", …" if len(value) > 6 else "")
        return f"{{{inner}}}"
    return repr(value)


@dataclass(frozen=True)
class CaseVerdict:
    """One case graded: passed where `problem` is None, else failed, `problem` saying how; `details` for the
    report and the shrinker either way.  `unanswered`: no case can be checked (the answer is not defined, or the
    submission used up its total time), so the question ends at once as an error with `problem` as its message."""

    problem: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    unanswered: bool = False

    @property
    def passed(self) -> bool:
        return self.problem is None

    @classmethod
    def failed(cls, problem: str, details: dict[str, Any] | None = None) -> CaseVerdict:
        return cls(problem, dict(details or {}))

    @classmethod
    def stop(cls, problem: str) -> CaseVerdict:
        """The question cannot be checked at all: an error, not a wrong answer."""
        return cls(problem, {}, unanswered=True)


PASSED = CaseVerdict()


@dataclass(frozen=True)
class Failure:
    """The first case that failed: its index among the cases, the problem and its details."""

    index: int
    problem: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Tally:
    """A question's cases as `tally` judged them: how many passed, each judged case's details in order, the
    first failure, and `error` where the question ended at once (the answer is missing or not checked)."""

    total: int
    passed: int
    judged: tuple[dict[str, Any], ...]
    failure: Failure | None = None
    error: str | None = None


def tally(cases: list[dict[str, Any]], one: Callable[[dict[str, Any]], CaseVerdict], partial: bool) -> Tally:
    """Run `one` on each case.  All or nothing stops at the first failure; `partial` goes on to count the cases
    passed.  An unanswered case (the answer is not defined, or the submission used up its total time) stops at
    once: `error`."""
    passed, judged, failure = 0, [], None
    for i, case in enumerate(cases):
        verdict = one(case)
        judged.append(verdict.details)
        if verdict.unanswered:
            return Tally(len(cases), passed, tuple(judged), failure, error=verdict.problem or "")
        if verdict.problem is None:
            passed += 1
        elif failure is None:
            failure = Failure(i, verdict.problem, verdict.details)
            if not partial:
                break
    return Tally(len(cases), passed, tuple(judged), failure)


def roll_up(cases: list[dict[str, Any]], one: Callable[[dict[str, Any]], CaseVerdict], partial: bool) -> Outcome:
    """One outcome of the cases as `tally` judges them: all or nothing, or with `partial` the share of cases
    passed; a missing answer or one not checked is an error."""
    t = tally(cases, one, partial)
    if t.error is not None:
        return Outcome.error(t.error)
    if t.failure is None:
        return Outcome.passed(f"correct on all {t.total} test inputs" if t.total > 1 else "correct on the test input")
    fraction = t.passed / t.total if partial else 0.0
    summary = f"{t.passed} of {t.total} test inputs correct. " if partial else ""
    return Outcome(fraction, summary + t.failure.problem, {**t.failure.details, "case": label(cases[t.failure.index])})


def call_reference(fn: Callable[..., Any], case: dict[str, Any], where: str) -> Any:
    try:
        return fn(**{k: clone(v) for k, v in case.items()})
    except Exception as exc:
        raise GraderError(f"{where}: the reference failed on {label(case)}: {exc!r}") from exc


# -- for authors: what a case may hold, and helpers for writing case generators ------------------------------------


class Case(dict[str, Any]):
    """One call's arguments (a dict, in the student's positional order) with a short label for reports, and the
    sizes it was built from where the author gave them (`sized`): a failure on it is then shrunk by building
    the case again from smaller sizes, so that the input shown keeps the handout's shape contract.

    Made with `case("tied maxima", x=..., pool_param=...)`; a plain dict is a case without a label.
    """

    label: str = ""
    sizes: dict[str, int] = {}  # noqa: RUF012  (a class default, never mutated: `sized` sets a dict of its own)


def sizes_of(value: dict[str, Any]) -> dict[str, int]:
    """The sizes a case was built from (`sized`), or {} for a case without them."""
    return dict(value.sizes) if isinstance(value, Case) else {}


def sized(sizes: dict[str, int], args: dict[str, Any]) -> Case:
    """A case that records the sizes it was built from: `sized({"C": 2, "N": 10}, {"x": randn(gen, 2, 10)})`.

    With sizes, a failing case is shrunk by calling the generator again as `generator(gen, sizes={...})` with
    smaller sizes (the generator then returns the case of those sizes first), never by slicing its arrays; a
    generator that raises or returns no case for some sizes says they are not a valid input.  A labelled case
    keeps its label.
    """
    made = Case(args)
    made.label = args.label if isinstance(args, Case) else ""
    made.sizes = {str(k): int(v) for k, v in sizes.items()}
    return made


def same_kind(like: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """`args` as a case of the same kind as `like`: its label and sizes kept (a plain dict stays plain)."""
    if not isinstance(like, Case):
        return dict(args)
    made = Case(args)
    made.label, made.sizes = like.label, dict(like.sizes)
    return made


def case(label: str, /, **args: Any) -> Case:
    """A labelled case: `case("pad=0", x=x, w=w, conv_param={"pad": 0, "stride": 1})`.

    The label is shown before the inputs wherever the case is named (`on inputs [pad=0] x=<2x3x5x5>, ...`).
    """
    made = Case(args)
    made.label = str(label)
    return made


@dataclass(frozen=True)
class OutputOf:
    """A case argument that is another function's result, for chained calls (a backward pass given its cache).

    In the student's process the *student's* function of that name is called on these arguments and its result
    (or item `item` of it) stays there, passed to the answer as it is: the grader never reads it.  In the
    grader the *reference's* function of that name gives the reference's side.  Build it with `output_of`.
    """

    function: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    item: int | str | None = None

    def describe(self) -> str:
        inner = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        pick = "" if self.item is None else f"[{self.item!r}]"
        return f"{self.function}({', '.join(inner)}){pick}"


def output_of(function: str, /, *args: Any, item: int | str | None = None, **kwargs: Any) -> OutputOf:
    """`output_of("affine_forward", x, w, b, item=1)`: item 1 (the cache) of `affine_forward(x, w, b)`.

    Its arguments may themselves be `output_of(...)`; anything else is plain data, as in any case.
    """
    return OutputOf(function, tuple(args), dict(kwargs), item)


def randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float64 values from the case generator's seeded generator."""
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def with_ties(gen: torch.Generator, *shape: int, levels: int = 3) -> torch.Tensor:
    """Float64 values drawn from only `levels` numbers (0, 1, ...), so that maxima are tied in most windows.

    A max-pool whose backward sends the gradient to every tied maximum, or to another one than the
    reference's, is caught here and nowhere else.
    """
    return torch.randint(0, levels, shape, generator=gen).to(torch.float64)


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    """Every combination of the given settings, in order: `grid(pad=[0, 1], stride=[1, 2])` gives four dicts."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def as_numpy(value: Any) -> Any:
    """The value with every tensor made a NumPy array, inside lists, tuples, dicts and cases, labels kept.

    For courses whose handout passes NumPy arrays: the student's function receives `np.ndarray`s.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, Case):
        return same_kind(value, {k: as_numpy(v) for k, v in value.items()})
    if isinstance(value, OutputOf):
        return OutputOf(value.function, as_numpy(value.args), as_numpy(value.kwargs), value.item)
    if isinstance(value, dict):
        return {k: as_numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(as_numpy(v) for v in value)
    return value

