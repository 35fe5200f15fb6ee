"""The rubric keys of every check kind: pydantic models, validated when a rubric loads.

They live apart from the kinds' modules so that loading (and validating) a rubric imports no more than it
needs: no torch, and SymPy only to read a `formula` question's expected formula.  Each kind's module uses its
own model (`FunctionCheck.Options is FunctionOptions`); the registry (grader.rubric.kinds) names it per kind.
"""
from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Options(BaseModel):
    """Base of every kind's options: unknown keys are errors (they are typos in a rubric)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Selector = int | str  # an index of a returned tuple or list, or a key of a returned dict


class SymbolDomain(BaseModel):
    """One symbol's integer range; `max: null` means unbounded (sampling stops at `sample_max`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = 0
    max: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SymbolDomain:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class FormulaOptions(Options):
    expected: str = Field(description="the reference formula, in the same grammar students use")
    symbols: dict[str, SymbolDomain] = Field(
        default_factory=dict, description="integer symbols in the order the question lists them"
    )
    constraints: list[str] = Field(default_factory=list, description="relations every point must satisfy")
    box: int = Field(6, ge=1, le=100, description="side of the exhaustive box at the domain's corner")
    random_points: int = Field(2000, ge=0, le=100_000, description="seeded random points beyond the box")
    sample_max: int = Field(60, ge=1, description="upper end of random values for a symbol without max")
    large_points: int = Field(200, ge=0, le=10_000, description="seeded points with some symbols at large values")
    large_max: int = Field(10**9, ge=1, description="upper end of large values for a symbol without max")
    time_limit: float = Field(5.0, ge=0, description="CPU seconds for the symbolic proof; 0 skips it")
    budget: float = Field(20.0, gt=0, description="CPU seconds for the whole check: reading, every point, the proof")
    rtol: float = Field(1e-9, ge=0, description="relative tolerance where a value is not exact (log, sqrt)")

    @field_validator("symbols")
    @classmethod
    def _names(cls, symbols: dict[str, SymbolDomain]) -> dict[str, SymbolDomain]:
        for name in symbols:
            if not name.isidentifier() or name in _reserved_names():
                raise ValueError(f"'{name}' cannot be a symbol name")
        return symbols

    @model_validator(mode="after")
    def _formulas(self) -> FormulaOptions:
        from grader.formula.mathparse import ParseError
        from grader.formula.problem import FormulaProblem, Unsupported  # SymPy: only a formula rubric pays

        try:
            problem = FormulaProblem(self)
        except ParseError as exc:
            raise ValueError(str(exc)) from None
        except Unsupported as exc:
            raise ValueError(f"the evaluator does not support {exc}") from None
        box = problem.points(random.Random(0), random_points=0, large_points=0)
        if not any(problem.expected_at(p) is not None for p in box):
            raise ValueError("no point of the box satisfies the constraints with the expected formula defined")
        return self


class ValueOptions(Options):
    expected: Any = None  # a literal; when absent, the reference module's attribute `reference`
    reference: str | None = None  # defaults to the question's `answer`
    rtol: float = 1e-6
    atol: float = 1e-9


class FunctionOptions(Options):
    cases: str  # reference generator: (torch.Generator) -> list of kwargs dicts, in the student's argument order
    reference: str | None = None  # reference function; defaults to the question's `answer`
    rtol: float = 1e-4
    atol: float = 1e-5
    pure: bool = False  # the inputs (tensors, lists of tensors) must be unchanged after the call
    partial: bool = False  # credit in proportion to the cases passed, instead of all or nothing
    seed: int | None = None
    # Only these items of the result are compared (tuple/list indices, dict keys); the rest is never read.
    output: Selector | list[Selector] | None = None
    # Post-conditions: argument name -> the keys (or indices) of it that must equal the reference's argument's
    # after the call; null compares the whole argument.  With `pure`, every other argument must stay unchanged.
    after: dict[str, Selector | list[Selector] | None] = Field(default_factory=dict)

    @field_validator("output", "after", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # YAML's `output: yes` would otherwise pass as the index 1.
        items = value.values() if isinstance(value, dict) else [value]
        for item in items:
            for one in item if isinstance(item, list) else [item]:
                if isinstance(one, bool):
                    raise ValueError("a selector is an index (0, 1, ...) or a key, not true/false")
            if item == []:
                raise ValueError("an empty list selects nothing; leave the key out (or null for the whole argument)")
        return value


class GradientOptions(Options):
    cases: str  # reference generator of the student's inputs, in the student's argument order
    forward: str  # reference forward function, called with keyword arguments
    wrt: str  # the variable differentiated with respect to: a case key, or the name of `at`'s result
    upstream: str | None = None  # case key of dL/d(output); without it the check expects the full Jacobian
    at: str | None = None  # reference fn(case) -> tensor: the point for `wrt` when it is not an input
    max_rel_error: float = 1e-5
    fd_coordinates: int = 12
    seed: int | None = None


class PropertyOptions(Options):
    cases: str  # reference generator: (torch.Generator) -> list of kwargs dicts in the student's argument order
    predicate: str  # reference fn(inputs, answer) -> (ok, message)
    pure: bool = False  # tensors and models given to the function must be unchanged after the call
    keep: bool = False  # the output stays in the worker (a callable, param groups); the predicate gets a handle
    partial: bool = False  # credit in proportion to the cases passed
    seed: int | None = None


class Tier(Options):
    min: float = Field(ge=0, le=1, description="the metric at or above which the credit is given")
    credit: float = Field(ge=0, le=1, description="fraction of the question's points")


class DataRecipe(Options):
    n: int = Field(512, gt=0, description="number of images")
    shape: tuple[int, ...] = Field((1, 28, 28), min_length=1, description="shape of one image")
    classes: int = Field(10, ge=2)
    seed: int | None = Field(None, description="seed of the data; defaults to the rubric's seed")


class TrainingOptions(Options):
    factory: str = "make_model"  # the student's function that builds a fresh model
    train: str = "train"  # the student's train(model, images, labels, epochs, seed) -> list of losses
    data: DataRecipe = DataRecipe()
    epochs: int = Field(30, gt=0)
    train_seed: int = 0
    metric: Literal["accuracy"] = "accuracy"
    tiers: list[Tier] = Field(min_length=1)
    budget: float = Field(
        120.0, gt=0, description="CPU seconds for building, training and evaluating the model (limits.backstop times it of wall-clock time)"
    )
    losses_penalty: float = Field(0.0, ge=0, le=1, description="credit lost when the returned losses are malformed")

    @field_validator("tiers")
    @classmethod
    def _best_first(cls, tiers: list[Tier]) -> list[Tier]:
        return sorted(tiers, key=lambda t: t.min, reverse=True)


class ManualOptions(Options):
    guide: str = ""  # what a TA looks for; shown to TAs, never to students


class ForbidOptions(Options):
    apis: list[str] = Field(default_factory=lambda: ["autograd"], min_length=1)
    function: str | None = Field(None, description="the function to analyse; default: the question's answer")


def _reserved_names() -> frozenset[str]:
    from grader.formula.mathparse import FUNCTIONS  # SymPy: only a rubric with formula symbols pays for it

    return frozenset(FUNCTIONS) | {"pi", "E"}


__all__ = [
    "DataRecipe",
    "ForbidOptions",
    "FormulaOptions",
    "FunctionOptions",
    "GradientOptions",
    "ManualOptions",
    "Options",
    "PropertyOptions",
    "Selector",
    "SymbolDomain",
    "Tier",
    "TrainingOptions",
    "ValueOptions",
]
