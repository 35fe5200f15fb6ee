"""Reference for tests/checks/test_shrink.py's softmax with a temperature: a missing 1/T must not be "a bias added twice"."""
from __future__ import annotations

import torch

from grader.checks.support.cases import case


def softmax_t(z: torch.Tensor, T: float) -> torch.Tensor:
    return torch.softmax(z / T, dim=1)


def softmax_t_grad_z(z: torch.Tensor, T: float, grad_y: torch.Tensor) -> torch.Tensor:
    s = softmax_t(z, T)
    return s * (grad_y - (grad_y * s).sum(dim=1, keepdim=True)) / T


def cases_softmax_t(gen: torch.Generator) -> list[dict]:
    return [case("T=2", z=torch.randn(2, 3, generator=gen, dtype=torch.float64), T=2.0,
                 grad_y=torch.randn(2, 3, generator=gen, dtype=torch.float64))]
