"""The reference of tests/execution/test_time_limits.py: a function that computes for a while, then doubles."""
from __future__ import annotations

import torch


def slow_double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def cases_double(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, generator=gen, dtype=torch.float64)}]
