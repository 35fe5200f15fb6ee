"""Reference of the engine tests for selected outputs, chained calls and post-conditions (`tests/data/chain`)."""
from __future__ import annotations

from typing import Any

import torch

from grader.checks.support.cases import Case, case, output_of, randn


def square_forward(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    return x**2, x


def square_backward(dout: torch.Tensor, cache: Any) -> torch.Tensor:
    return 2 * cache * dout


def cases_forward(gen: torch.Generator) -> list[Case]:
    return [case("3x4", x=randn(gen, 3, 4)), case("a vector", x=randn(gen, 5))]


def cases_backward(gen: torch.Generator) -> list[Case]:
    return [
        case(c.label, dout=randn(gen, *c["x"].shape), cache=output_of("square_forward", c["x"], item=1))
        for c in cases_forward(gen)
    ]


def update_mean(x: torch.Tensor, state: dict[str, Any]) -> None:
    state["mean"] = 0.9 * state["mean"] + 0.1 * x.mean(0)
    state["steps"] = state.get("steps", 0) + 1


def cases_update(gen: torch.Generator) -> list[Case]:
    return [case("first step", x=randn(gen, 4, 3), state={"mean": torch.zeros(3, dtype=torch.float64)})]


def summary(x: torch.Tensor) -> dict[str, Any]:
    return {"loss": x.square().sum(), "count": x.numel()}


def cases_summary(gen: torch.Generator) -> list[Case]:
    return [{"x": randn(gen, 2, 3)}]


def scale_by(x: torch.Tensor, factors: Any) -> torch.Tensor:
    return x * factors


def cases_nested_chain(gen: torch.Generator) -> list[Case]:
    # `factors` is the whole result of square_forward on the result of square_forward: chains nest.
    x = randn(gen, 3)
    return [{"x": x, "factors": output_of("square_forward", output_of("square_forward", x, item=0), item=0)}]
