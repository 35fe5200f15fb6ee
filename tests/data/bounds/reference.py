"""The reference of tests/grading/test_grader_bounds.py."""
from __future__ import annotations

import torch

answer = 42


def double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def cases_double(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, generator=gen, dtype=torch.float64)}]
