"""Reference for `layers` (submissions/layers/HANDOUT.md): modular layers in NumPy, CS231n style.

Every forward pass returns `(out, cache)` and every backward pass takes the cache its own forward made, so a
student's cache may hold anything: the rubric compares only `out` (`output: 0`) and gives each backward the
student's own cache (`output_of(...)` in the cases).  Batch normalisation in training mode updates
`bn_param`'s running statistics, checked after the call (`after:`).

Loaded only by the grader process, never by a student's worker.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grader.cases import Case, as_numpy, case, output_of, randn, with_ties

Array = np.ndarray


# -- Q1 affine ------------------------------------------------------------------------------------------------
def affine_forward(x: Array, w: Array, b: Array) -> tuple[Array, Any]:
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


_AFFINE = [((2, 4), 3), ((3, 2, 3), 5), ((2, 3, 2, 2), 4), ((1, 6), 1)]  # x's shape, M; a batch of one last


def cases_affine_forward(gen: torch.Generator) -> list[Case]:
    cases = []
    for shape, m in _AFFINE:
        d = int(np.prod(shape[1:]))
        cases.append(case(f"x of shape {shape}", x=randn(gen, *shape), w=randn(gen, d, m), b=randn(gen, m)))
    return as_numpy(cases)


def cases_affine_backward(gen: torch.Generator) -> list[Case]:
    # The upstream gradient, then the student's own cache from their own affine_forward on the same inputs.
    return [
        case(c.label, dout=as_numpy(randn(gen, c["x"].shape[0], c["w"].shape[1])),
             cache=output_of("affine_forward", c["x"], c["w"], c["b"], item=1))
        for c in cases_affine_forward(gen)
    ]


# -- Q2 ReLU --------------------------------------------------------------------------------------------------
def relu_forward(x: Array) -> tuple[Array, Any]:
    return np.maximum(x, 0), x


def relu_backward(dout: Array, cache: Any) -> Array:
    return dout * (cache > 0)


def cases_relu_forward(gen: torch.Generator) -> list[Case]:
    exact_zeros = randn(gen, 3, 4)
    exact_zeros[0, :2] = 0.0  # ReLU'(0) is taken as 0, as in the handout
    return as_numpy([case("4x5", x=randn(gen, 4, 5)), case("exact zeros", x=exact_zeros), case("2x3x2", x=randn(gen, 2, 3, 2))])


def cases_relu_backward(gen: torch.Generator) -> list[Case]:
    return [
        case(c.label, dout=as_numpy(randn(gen, *c["x"].shape)), cache=output_of("relu_forward", c["x"], item=1))
        for c in cases_relu_forward(gen)
    ]


# -- Q3 batch normalisation, training mode ----------------------------------------------------------------------
def batchnorm_forward(x: Array, gamma: Array, beta: Array, bn_param: dict[str, Any]) -> tuple[Array, Any]:
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    d = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))
    mean, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mean) / np.sqrt(var + eps)
    bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
    bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    return gamma * xhat + beta, (xhat, gamma, var + eps)


def batchnorm_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    xhat, gamma, var_eps = cache
    n = dout.shape[0]
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    dxhat = dout * gamma
    dx = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (n * np.sqrt(var_eps))
    return dx, dgamma, dbeta


def _bn_case(gen: torch.Generator, name: str, n: int, d: int, **param: Any) -> Case:
    x = 3.0 * randn(gen, n, d) + 1.5  # a mean and scale far from 0 and 1, so that a skipped step shows
    return case(name, x=x, gamma=randn(gen, d), beta=randn(gen, d), bn_param={"mode": "train", **param})


def cases_batchnorm(gen: torch.Generator) -> list[Case]:
    return as_numpy([
        _bn_case(gen, "first step: no running statistics yet", 8, 3),
        _bn_case(gen, "momentum 0.8, running statistics given", 6, 4, momentum=0.8,
                 running_mean=randn(gen, 4), running_var=randn(gen, 4).abs() + 0.5),
        _bn_case(gen, "eps 0.1, default momentum", 5, 2, eps=0.1,
                 running_mean=randn(gen, 2), running_var=randn(gen, 2).abs() + 0.5),
    ])


def cases_batchnorm_backward(gen: torch.Generator) -> list[Case]:
    return [
        case(c.label, dout=as_numpy(randn(gen, *c["x"].shape)),
             cache=output_of("batchnorm_forward", c["x"], c["gamma"], c["beta"], c["bn_param"], item=1))
        for c in cases_batchnorm(gen)
    ]


# -- Q4 max pooling ---------------------------------------------------------------------------------------------
def max_pool_forward(x: Array, pool_param: dict[str, int]) -> tuple[Array, Any]:
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, h, w = x.shape
    ho, wo = (h - ph) // s + 1, (w - pw) // s + 1
    out = np.zeros((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward(dout: Array, cache: Any) -> Array:
    """The gradient goes to the first maximum of each window in row-major order (what `np.argmax` picks)."""
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, ho, wo = dout.shape
    dx = np.zeros_like(x)
    for b in range(n):
        for k in range(c):
            for i in range(ho):
                for j in range(wo):
                    window = x[b, k, i * s:i * s + ph, j * s:j * s + pw]
                    r, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[b, k, i * s + r, j * s + q] += dout[b, k, i, j]
    return dx


def cases_max_pool(gen: torch.Generator) -> list[Case]:
    pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    return as_numpy([
        case("2x2 pool, stride 2", x=randn(gen, 2, 3, 4, 4), pool_param=dict(pool)),
        case("5x5 input: the last row and column are in no window", x=randn(gen, 1, 2, 5, 5), pool_param=dict(pool)),
        case("3x3 pool, stride 1: overlapping windows", x=randn(gen, 1, 2, 5, 4),
             pool_param={"pool_height": 3, "pool_width": 3, "stride": 1}),
        case("tied maxima", x=with_ties(gen, 2, 2, 4, 4, levels=2), pool_param=dict(pool)),
    ])


def cases_max_pool_backward(gen: torch.Generator) -> list[Case]:
    cases = []
    for c in cases_max_pool(gen):
        x, pool = c["x"], c["pool_param"]
        ho, wo = (x.shape[2] - pool["pool_height"]) // pool["stride"] + 1, (x.shape[3] - pool["pool_width"]) // pool["stride"] + 1
        dout = as_numpy(randn(gen, x.shape[0], x.shape[1], ho, wo))
        cases.append(case(c.label, dout=dout, cache=output_of("max_pool_forward", x, pool, item=1)))
    return cases
