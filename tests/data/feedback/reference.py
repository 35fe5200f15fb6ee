"""Reference for tests/test_feedback.py: small functions whose common mistakes the grader should name."""
from __future__ import annotations

import torch


def linear(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    return x @ W


def running_sum(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x, dim=1)


def square_map(A: torch.Tensor) -> torch.Tensor:
    return A * 2 + 1


def linear_grad_x(x: torch.Tensor, W: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return g @ W.T


def cases_linear(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(6, 5, generator=gen, dtype=torch.float64),
             "W": torch.randn(5, 4, generator=gen, dtype=torch.float64)}]


def cases_running_sum(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, 6, generator=gen, dtype=torch.float64)}]


def cases_square(gen: torch.Generator) -> list[dict]:
    return [{"A": torch.randn(4, 4, generator=gen, dtype=torch.float64)}]


def cases_linear_grad(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, 4, generator=gen, dtype=torch.float64),
             "W": torch.randn(4, 4, generator=gen, dtype=torch.float64),
             "g": torch.randn(3, 4, generator=gen, dtype=torch.float64)}]
