"""The reference of tests/classroom/test_autograder_user.py: what a student who cannot read this file gets."""
from __future__ import annotations

import torch

stolen = "PermissionError"  # the student's code reads this file: only an error if it cannot


def double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def cases_double(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(3, generator=gen, dtype=torch.float64)}]
