"""Reference for `backprop-optim`: answers, reference functions and the input generators of the rubric's checks.

Loaded only by the grader process, never by a student's worker.
"""
from __future__ import annotations

import torch

Case = dict[str, object]


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


# -- Q1 backprop for an MLP ---------------------------------------------------------------------------------
def mlp_forward(A_list: list[torch.Tensor], b_list: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    y = x
    for l, (A, b) in enumerate(zip(A_list, b_list), 1):
        z = A @ y + b
        y = z if l == len(A_list) else torch.sigmoid(z)
    return y


def mlp_gradients(
    A_list: list[torch.Tensor], b_list: list[torch.Tensor], x: torch.Tensor, Y: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The rubric's expected answer: autograd through the forward, so the hand-written answer meets an
    independent computation rather than a second hand-written one."""
    A_vars = [A.detach().clone().requires_grad_(True) for A in A_list]
    b_vars = [b.detach().clone().requires_grad_(True) for b in b_list]
    loss = 0.5 * ((mlp_forward(A_vars, b_vars, x) - Y) ** 2).sum()
    grads = torch.autograd.grad(loss, [*A_vars, *b_vars])
    L = len(A_list)
    return list(grads[:L]), list(grads[L:])


def mlp_backprop(
    A_list: list[torch.Tensor], b_list: list[torch.Tensor], x: torch.Tensor, Y: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Backprop by hand; tests check it against `mlp_gradients` (the rubric grades against autograd)."""
    ys = [x]
    for l, (A, b) in enumerate(zip(A_list, b_list), 1):
        z = A @ ys[-1] + b
        ys.append(z if l == len(A_list) else torch.sigmoid(z))
    delta = ys[-1] - Y  # dloss/dz_L: the last layer is linear
    dA, db = [], []
    for l in range(len(A_list), 0, -1):
        dA.append(delta @ ys[l - 1].T)
        db.append(delta)
        if l > 1:
            delta = (A_list[l - 1].T @ delta) * ys[l - 1] * (1 - ys[l - 1])
    return dA[::-1], db[::-1]


# Widths d_0 .. d_L: L = 1, widths of 1, growing and shrinking layers, a deeper stack.
_MLP_WIDTHS = [(3, 2), (1, 1), (4, 5, 3), (2, 1, 3), (5, 4, 6, 2), (3, 7, 2, 4, 1), (6, 3, 3, 3, 3, 2)]


def cases_mlp_backprop(gen: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for widths in _MLP_WIDTHS:
        pairs = list(zip(widths[:-1], widths[1:]))
        cases.append(
            {
                "A_list": [_randn(gen, d_out, d_in) for d_in, d_out in pairs],
                "b_list": [_randn(gen, d_out, 1) for _, d_out in pairs],
                "x": _randn(gen, widths[0], 1),
                "Y": _randn(gen, widths[-1], 1),
            }
        )
    return cases


# -- Q2 momentum --------------------------------------------------------------------------------------------
def momentum_form1(
    theta0: torch.Tensor, grads: list[torch.Tensor], alpha: float, beta: float
) -> list[torch.Tensor]:
    prev, theta, out = theta0, theta0, []
    for g in grads:
        prev, theta = theta, theta - alpha * g + beta * (theta - prev)
        out.append(theta)
    return out


def momentum_form2(
    theta0: torch.Tensor, grads: list[torch.Tensor], alpha: float, beta: float
) -> list[torch.Tensor]:
    v, theta, out = torch.zeros_like(theta0), theta0, []
    for g in grads:
        v = g + beta * v
        theta = theta - alpha * v
        out.append(theta)
    return out


# (shape of theta, N, alpha, beta): one step, beta = 0, heavy momentum, matrices and a 3-D tensor.
_MOMENTUM = [
    ((4,), 1, 0.1, 0.9),
    ((5,), 6, 0.05, 0.0),
    ((3, 4), 8, 0.1, 0.9),
    ((2, 3, 2), 5, 0.2, 0.5),
    ((7,), 12, 0.01, 0.99),
]


def cases_momentum(gen: torch.Generator) -> list[Case]:
    return [
        {
            "theta0": _randn(gen, *shape),
            "grads": [_randn(gen, *shape) for _ in range(n)],
            "alpha": alpha,
            "beta": beta,
        }
        for shape, n, alpha, beta in _MOMENTUM
    ]


# -- Q3 receptive field -------------------------------------------------------------------------------------
receptive_field_recurrence = "s*(r - 1) + k"


def receptive_field(kernels: list[int], strides: list[int]) -> int:
    r = 1
    for k, s in zip(reversed(kernels), reversed(strides)):
        r = s * (r - 1) + k
    return r


_RECEPTIVE = [
    ([3], [1]),
    ([1], [4]),
    ([3, 3], [1, 1]),
    ([7, 3, 3], [2, 2, 1]),
    ([5, 1, 3, 2], [3, 1, 2, 2]),
    ([2, 2, 2, 2, 2], [2, 2, 2, 2, 2]),
]


def cases_receptive_field(gen: torch.Generator) -> list[Case]:
    # Hand-picked stacks (strides that are not last, kernels of 1) plus a few random ones.
    cases: list[Case] = [{"kernels": list(k), "strides": list(s)} for k, s in _RECEPTIVE]
    for L in (2, 4, 6):
        cases.append(
            {
                "kernels": torch.randint(1, 8, (L,), generator=gen).tolist(),
                "strides": torch.randint(1, 4, (L,), generator=gen).tolist(),
            }
        )
    return cases


# -- Q4 the cost of a convolution ----------------------------------------------------------------------------
conv_params = "k**2*C_in*C_out + C_out"
conv_mults = "H*W*k**2*C_in*C_out"


def _params(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


inception_params = (
    _params(1, 256, 128) + _params(3, 256, 192) + _params(5, 256, 96),
    _params(1, 256, 128) + _params(1, 256, 64) + _params(3, 64, 192) + _params(1, 256, 64) + _params(5, 64, 96),
)


# -- Q5 memorising random labels (reference solution; the training check needs no reference) -----------------
def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def train(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int) -> list[float]:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen).to(images.device)
        total = 0.0
        for batch in order.split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        losses.append(total / len(images))
    return losses
