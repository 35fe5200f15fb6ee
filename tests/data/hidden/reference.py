"""The reference of tests/authoring/test_hidden.py: one generator that draws from its seed, one that ignores it."""
from __future__ import annotations

import torch


def scale(x: torch.Tensor, k: int) -> torch.Tensor:
    return x * k


def cases_random(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, 4, generator=gen, dtype=torch.float64), "k": k} for k in (1, 2, 3)]


def cases_fixed(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.arange(12, dtype=torch.float64).reshape(3, 4), "k": k} for k in (2, 3)]
