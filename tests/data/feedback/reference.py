"""Reference for tests/feedback/test_feedback.py: small functions whose common mistakes the grader should name."""
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


def cases_sort_order(gen: torch.Generator) -> list[dict]:
    return [{"x": torch.randn(6, 8, generator=gen, dtype=torch.float64)}]


def sorts_each_row(inputs: dict, answer) -> tuple[bool, str]:  # noqa: ANN001 - grader.checks.property.Answer
    """Any order that sorts each row ascending is right (ties may come in either order)."""
    x, order = inputs["x"], answer.value
    if not isinstance(order, torch.Tensor) or tuple(order.shape) != tuple(x.shape):
        return False, f"expected a tensor of indices of shape {tuple(x.shape)}"
    order = order.long()
    if not torch.equal(torch.sort(order, dim=1).values, torch.arange(x.shape[1]).expand_as(order)):
        return False, "a row of your indices is not a permutation of 0, 1, …, n-1"
    picked = torch.gather(x, 1, order)
    bad = (picked[:, 1:] < picked[:, :-1]).nonzero()
    if len(bad):
        i, j = (int(v) for v in bad[0])
        return False, f"row {i} is not ascending: in your order {picked[i, j].item():g} comes before {picked[i, j + 1].item():g}"
    return True, "every row is sorted"
