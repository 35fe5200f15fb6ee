"""Reference for `deep-nn` (submissions/deep-nn/HANDOUT.md): a deep network step by step, in NumPy.

The course hands out helper code that students import rather than write (`rubrics/handouts/deep-nn/`, the
rubric's `handout:`): `dlai_tools/activations.py` (a package: `sigmoid`, `relu`, each returning `(A, Z)`),
`dnn_utils.py` (`relu_backward`, `sigmoid_backward`) and a small data file, `data/tiny.csv`.  This reference
has its own copies of the activations, so it loads without the handout (a reference may also import the
handout's modules: the grader puts the handout folder on its own path when it loads the reference).

Forward passes return `(out, cache)` with a cache of the student's own design: only `out` is compared, and each
backward pass gets the student's own forward's cache (`output_of`).  Loaded only by the grader process.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from grader.cases import Case, as_numpy, case, output_of, randn

Array = np.ndarray


def handout_file(name: str) -> Path:
    """A file of the course's handout: under the rubric's `handout:` folder when the grader loads this module,
    in the working folder (where the handout is laid, as for students) when `grader validate` runs it as a
    submission."""
    here = globals().get("__file__")
    return Path(here).resolve().parent.parent / "rubrics" / "handouts" / "deep-nn" / name if here else Path(name)


def sigmoid(Z: Array) -> tuple[Array, Array]:
    return 1 / (1 + np.exp(-Z)), Z


def relu(Z: Array) -> tuple[Array, Array]:
    return np.maximum(0, Z), Z


def sigmoid_backward(dA: Array, Z: Array) -> Array:
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def relu_backward(dA: Array, Z: Array) -> Array:
    return dA * (Z > 0)


# -- Q1 forward -----------------------------------------------------------------------------------------------
def linear_forward(A: Array, W: Array, b: Array) -> tuple[Array, Any]:
    return W @ A + b, (A, W, b)


def linear_activation_forward(A_prev: Array, W: Array, b: Array, activation: str) -> tuple[Array, Any]:
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = (sigmoid if activation == "sigmoid" else relu)(Z)
    return A, (linear_cache, activation_cache)


_LAYERS = [(4, 5, 3), (3, 2, 6), (1, 3, 4)]  # (units of this layer, of the previous one, examples)


def cases_linear_forward(gen: torch.Generator) -> list[Case]:
    return as_numpy([
        case(f"{n} units, {p} inputs, {m} examples", A=randn(gen, p, m), W=randn(gen, n, p), b=randn(gen, n, 1))
        for n, p, m in _LAYERS
    ])


def cases_linear_activation_forward(gen: torch.Generator) -> list[Case]:
    cases = []
    for activation in ("relu", "sigmoid"):
        for c in cases_linear_forward(gen):
            cases.append(case(f"{activation}, {c.label}", A_prev=c["A"], W=c["W"], b=c["b"], activation=activation))
    return cases


# -- Q2 cost --------------------------------------------------------------------------------------------------
def compute_cost(AL: Array, Y: Array) -> float:
    m = Y.shape[1]
    cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
    return float(np.squeeze(cost))


def cases_compute_cost(gen: torch.Generator) -> list[Case]:
    cases = []
    for m in (3, 7):
        AL = torch.rand(1, m, generator=gen, dtype=torch.float64) * 0.9 + 0.05
        Y = (torch.rand(1, m, generator=gen) > 0.5).to(torch.float64)
        cases.append(case(f"{m} examples", AL=AL, Y=Y))
    return as_numpy(cases)


# -- Q3 backward ----------------------------------------------------------------------------------------------
def linear_backward(dZ: Array, cache: Any) -> tuple[Array, Array, Array]:
    A_prev, W, _b = cache
    m = A_prev.shape[1]
    return W.T @ dZ, dZ @ A_prev.T / m, np.sum(dZ, axis=1, keepdims=True) / m


def linear_activation_backward(dA: Array, cache: Any, activation: str) -> tuple[Array, Array, Array]:
    linear_cache, activation_cache = cache
    backward = sigmoid_backward if activation == "sigmoid" else relu_backward
    return linear_backward(backward(dA, activation_cache), linear_cache)


def cases_linear_backward(gen: torch.Generator) -> list[Case]:
    return [
        case(c.label, dZ=as_numpy(randn(gen, c["W"].shape[0], c["A"].shape[1])),
             cache=output_of("linear_forward", c["A"], c["W"], c["b"], item=1))
        for c in cases_linear_forward(gen)
    ]


def cases_linear_activation_backward(gen: torch.Generator) -> list[Case]:
    return [
        case(c.label, dA=as_numpy(randn(gen, c["W"].shape[0], c["A_prev"].shape[1])),
             cache=output_of("linear_activation_forward", c["A_prev"], c["W"], c["b"], c["activation"], item=1),
             activation=c["activation"])
        for c in cases_linear_activation_forward(gen)
    ]


# -- Q4 update ------------------------------------------------------------------------------------------------
def update_parameters(parameters: dict[str, Array], grads: dict[str, Array], learning_rate: float) -> dict[str, Array]:
    L = len(parameters) // 2
    updated = {}
    for l in range(1, L + 1):
        updated[f"W{l}"] = parameters[f"W{l}"] - learning_rate * grads[f"dW{l}"]
        updated[f"b{l}"] = parameters[f"b{l}"] - learning_rate * grads[f"db{l}"]
    return updated


def cases_update_parameters(gen: torch.Generator) -> list[Case]:
    cases = []
    for dims, lr in (((3, 4, 1), 0.1), ((2, 3, 3, 1), 0.05)):
        params, grads = {}, {}
        for l in range(1, len(dims)):
            params[f"W{l}"], params[f"b{l}"] = randn(gen, dims[l], dims[l - 1]), randn(gen, dims[l], 1)
            grads[f"dW{l}"], grads[f"db{l}"] = randn(gen, dims[l], dims[l - 1]), randn(gen, dims[l], 1)
        cases.append(case(f"{len(dims) - 1} layers, learning rate {lr}", parameters=params, grads=grads, learning_rate=lr))
    return as_numpy(cases)


# -- Q5 the handout's data file -------------------------------------------------------------------------------
X_tiny = np.loadtxt(handout_file("data/tiny.csv"), delimiter=",")
X_mean = X_tiny.mean(axis=1, keepdims=True)
