"""A tiny reference for the engine's own tests."""
from __future__ import annotations

import torch

answer = 42
pair = (5, 2)
flag = False
ratio = 0.25


def scale(x: torch.Tensor, k: int) -> torch.Tensor:
    return x * k


def cases_scale(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, 4, generator=gen, dtype=torch.float64), "k": k} for k in (1, 2, 3)]


def cube(x: torch.Tensor) -> torch.Tensor:
    return x**3


def cases_cube_grad(gen: torch.Generator) -> list[dict]:
    return [
        {"x": torch.randn(n, generator=gen, dtype=torch.float64), "g": torch.randn(n, generator=gen, dtype=torch.float64)}
        for n in (1, 4)
    ]


def cases_cube_jac(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, generator=gen, dtype=torch.float64)}]
