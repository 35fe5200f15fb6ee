"""Reference for `cnn-rnn`: answers, reference functions and the input generators of the rubric's checks.

Loaded only by the grader process, never by a student's worker.
"""
from __future__ import annotations

import torch

from grader.cases import sized

# -- Q1 convolutions ----------------------------------------------------------------------------------------
conv_output_size = "floor((H + 2*P - D*(K - 1) - 1)/S) + 1"
conv_example_output = (5, 2)


def conv1d_forward(x: torch.Tensor, W: torch.Tensor, stride: int) -> torch.Tensor:
    F, C, K = W.shape
    patches = x.unfold(1, K, stride)  # (C, N_out, K)
    return torch.einsum("crk,fck->fr", patches, W)


def conv1d_grad_W(x: torch.Tensor, W: torch.Tensor, stride: int, grad_y: torch.Tensor) -> torch.Tensor:
    K = W.shape[2]
    patches = x.unfold(1, K, stride)
    return torch.einsum("crk,fr->fck", patches, grad_y)


def conv1d_grad_x(x: torch.Tensor, W: torch.Tensor, stride: int, grad_y: torch.Tensor) -> torch.Tensor:
    K = W.shape[2]
    grad_x = torch.zeros_like(x)
    contrib = torch.einsum("fck,fr->crk", W, grad_y)  # (C, N_out, K)
    for r in range(grad_y.shape[1]):
        grad_x[:, r * stride : r * stride + K] += contrib[:, r, :]
    return grad_x


def _conv_shapes(gen: torch.Generator) -> list[tuple[int, int, int, int, int]]:
    # (C, N, F, K, stride): stride > 1, K = 1, K = N, uneven tails, one channel.
    return [(2, 10, 3, 3, 1), (3, 11, 2, 4, 2), (1, 7, 1, 1, 1), (2, 9, 4, 2, 3), (3, 5, 2, 5, 1), (4, 16, 3, 3, 5)]


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def cases_conv1d_forward(gen: torch.Generator) -> list[dict]:
    return [
        {"x": _randn(gen, C, N), "W": _randn(gen, F, C, K), "stride": s} for C, N, F, K, s in _conv_shapes(gen)
    ]


def cases_conv1d_backward(gen: torch.Generator, sizes: dict[str, int] | None = None) -> list[dict]:
    # With `sizes`, the case of those sizes: a failing case is shrunk by building it again from smaller sizes,
    # so the input a student is shown always has matching channels and a `grad_y` of the output's shape.
    shapes = [(sizes["C"], sizes["N"], sizes["F"], sizes["K"], sizes["stride"])] if sizes else _conv_shapes(gen)
    cases = []
    for C, N, F, K, s in shapes:
        if not (1 <= K <= N and s >= 1 and C >= 1 and F >= 1):
            raise ValueError(f"no conv1d input with C={C}, N={N}, F={F}, K={K}, stride={s}")
        n_out = (N - K) // s + 1
        args = {"x": _randn(gen, C, N), "W": _randn(gen, F, C, K), "stride": s, "grad_y": _randn(gen, F, n_out)}
        cases.append(sized({"C": C, "N": N, "F": F, "K": K, "stride": s}, args))
    return cases


# -- Q2 gated RNN -----------------------------------------------------------------------------------------------
gated_state_dim = "m"


def gated_rnn_forward(x: torch.Tensor, Wc: torch.Tensor, Wh: torch.Tensor, Wx: torch.Tensor) -> torch.Tensor:
    h = torch.zeros(Wh.shape[0], dtype=x.dtype)
    rows = []
    for t in range(x.shape[0]):
        c = torch.sigmoid(Wc @ x[t] + Wh @ h)
        h = c * h + (1 - c) * (Wx @ x[t])
        rows.append(h)
    return torch.stack(rows)


def gated_rnn_grad_Wx(x: torch.Tensor, Wc: torch.Tensor, Wh: torch.Tensor, Wx: torch.Tensor, grad_H: torch.Tensor) -> torch.Tensor:
    """Backprop through time by hand (the reference must not lean on autograd either: it is checked against it)."""
    T = x.shape[0]
    m = Wh.shape[0]
    hs, cs, us = [torch.zeros(m, dtype=x.dtype)], [], []
    for t in range(T):
        c = torch.sigmoid(Wc @ x[t] + Wh @ hs[-1])
        u = Wx @ x[t]
        hs.append(c * hs[-1] + (1 - c) * u)
        cs.append(c)
        us.append(u)
    grad_Wx = torch.zeros_like(Wx)
    dh = torch.zeros(m, dtype=x.dtype)
    for t in reversed(range(T)):
        dh = dh + grad_H[t]
        c, u, h_prev = cs[t], us[t], hs[t]
        dc = dh * (h_prev - u)
        da = dc * c * (1 - c)
        grad_Wx += torch.outer(dh * (1 - c), x[t])
        dh = dh * c + Wh.T @ da
    return grad_Wx


def _rnn_shapes() -> list[tuple[int, int, int]]:
    return [(5, 3, 4), (1, 2, 3), (7, 4, 2), (3, 1, 1)]  # (T, n, m): T = 1 and scalar states included


def cases_gated_rnn_forward(gen: torch.Generator) -> list[dict]:
    return [
        {"x": _randn(gen, T, n), "Wc": _randn(gen, m, n), "Wh": _randn(gen, m, m), "Wx": _randn(gen, m, n)}
        for T, n, m in _rnn_shapes()
    ]


def cases_gated_rnn_backward(gen: torch.Generator) -> list[dict]:
    return [{**case, "grad_H": _randn(gen, case["x"].shape[0], case["Wh"].shape[0])} for case in cases_gated_rnn_forward(gen)]


# -- Q3 attention RNN -------------------------------------------------------------------------------------------
attention_weights_dim = "k + 1"


def _attention_step(x_t: torch.Tensor, past: list[torch.Tensor], Q: list, K: list, V: list) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: z_0 = x[t], z_i = h[t-i]; returns (h[t], a[t])."""
    z = [x_t, *past]
    w = torch.stack([(Q[i] @ z[i]) @ (K[i] @ z[i]) for i in range(len(Q))])
    a = torch.softmax(w, dim=0)
    h = sum(a[i] * (V[i] @ z[i]) for i in range(len(Q)))
    return h, a


def attention_rnn_forward(x: torch.Tensor, Q: list, K: list, V: list) -> tuple[torch.Tensor, torch.Tensor]:
    T, n = x.shape
    k = len(Q) - 1
    hs: list[torch.Tensor] = []
    H, A = [], []
    for t in range(T):
        past = [hs[t - i] if t - i >= 0 else torch.zeros(n, dtype=x.dtype) for i in range(1, k + 1)]
        h, a = _attention_step(x[t], past, Q, K, V)
        hs.append(h)
        H.append(h)
        A.append(a)
    return torch.stack(H), torch.stack(A)


def attention_h_prev(x: torch.Tensor, Q: list, K: list, V: list, t: int) -> torch.Tensor:
    """The point of q3.3's Jacobian: h[t-1] along the forward trajectory."""
    H, _ = attention_rnn_forward(x, Q, K, V)
    return H[t - 2]


def attention_h_t(x: torch.Tensor, Q: list, K: list, V: list, t: int, h_prev: torch.Tensor) -> torch.Tensor:
    """h[t] as a function of h[t-1] alone, holding x[t] and h[t-2..t-k] at their forward values."""
    H, _ = attention_rnn_forward(x, Q, K, V)
    n = x.shape[1]
    k = len(Q) - 1
    past = [h_prev] + [H[t - 1 - i] if t - i >= 1 else torch.zeros(n, dtype=x.dtype) for i in range(2, k + 1)]
    h, _ = _attention_step(x[t - 1], past, Q, K, V)
    return h


def attention_rnn_jacobian(x: torch.Tensor, Q: list, K: list, V: list, t: int) -> torch.Tensor:
    """By hand, as the handout asks of students: only the i = 1 term of h[t] depends on h[t-1].

    With z = h[t-1], w_1 = zᵀ Q_1ᵀ K_1 z, so dw_1/dz = (Q_1ᵀ K_1 + K_1ᵀ Q_1) z; da_i/dw_1 = a_i (δ_i1 - a_1);
    h = Σ a_i v_i gives J = a_1 V_1 + (a_1 (v_1 - h)) ⊗ dw_1/dz.
    """
    H, A = attention_rnn_forward(x, Q, K, V)
    n = x.shape[1]
    z = H[t - 2]
    a = A[t - 1]
    zs = [x[t - 1]] + [H[t - 1 - i] if t - i >= 1 else torch.zeros(n, dtype=x.dtype) for i in range(1, len(Q))]
    v = torch.stack([V[i] @ zs[i] for i in range(len(Q))])
    dw = (Q[1].T @ K[1] + K[1].T @ Q[1]) @ z
    return a[1] * V[1] + torch.outer(a[1] * (v[1] - H[t - 1]), dw)


def _attention_shapes() -> list[tuple[int, int, int]]:
    return [(4, 3, 1), (5, 2, 2), (3, 4, 0), (6, 3, 3), (2, 2, 4)]  # (T, n, k): k = 0 and k >= T included


def cases_attention_rnn_forward(gen: torch.Generator) -> list[dict]:
    cases = []
    for T, n, k in _attention_shapes():
        cases.append({
            "x": _randn(gen, T, n),
            "Q": [_randn(gen, n, n) * 0.5 for _ in range(k + 1)],
            "K": [_randn(gen, n, n) * 0.5 for _ in range(k + 1)],
            "V": [_randn(gen, n, n) for _ in range(k + 1)],
        })
    return cases


def cases_attention_rnn_jacobian(gen: torch.Generator) -> list[dict]:
    cases = []
    for i, case in enumerate(cases_attention_rnn_forward(gen)):
        T = case["x"].shape[0]
        if len(case["Q"]) < 2:
            continue  # k = 0: h[t] does not depend on h[t-1]; the handout's question presumes k >= 1
        for t in sorted({2, T, 2 + (i % max(T - 1, 1))}):
            if 2 <= t <= T:
                cases.append({**case, "t": t})
    return cases


# -- Q4 loss at initialisation ----------------------------------------------------------------------------------
initial_loss = "log(K)"
initial_accuracy = "1/K"
