# CNN-RNN homework, Bob Example.  A plain Python file: each top-level statement runs on its own.
import torch
from torch.autograd import grad as autograd_grad

conv_output_size = "floor((H - K)/S) + 1"      # forgets padding and dilation
conv_example_output = (5, 2)


def conv1d_forward(x, W, stride):
    F, C, K = W.shape
    n_out = (x.shape[1] - K) // stride + 1
    cols = torch.stack([x[:, r * stride : r * stride + K] for r in range(n_out)], dim=1)  # (C, n_out, K)
    return torch.tensordot(W, cols, dims=([1, 2], [0, 2]))


def _vjp(x, W, stride, grad_y):
    W = W.clone().requires_grad_(True)
    y = conv1d_forward(x, W, stride)
    return autograd_grad((y * grad_y).sum(), W)[0]


def conv1d_grad_W(x, W, stride, grad_y):
    return _vjp(x, W, stride, grad_y)          # autograd through a helper: forbidden


def conv1d_grad_x(x, W, stride, grad_y):
    F, C, K = W.shape
    gx = torch.zeros_like(x)
    for r in range(grad_y.shape[1]):
        gx[:, r : r + K] += torch.einsum("fck,f->ck", W, grad_y[:, r])   # ignores the stride
    return gx


gated_state_dim = "n"


def gated_rnn_forward(x, Wc, Wh, Wx):
    h = torch.zeros(Wh.shape[0], dtype=x.dtype)
    H = []
    for t in range(x.shape[0]):
        c = torch.sigmoid(Wc @ x[t] + Wh @ h)
        h = c * h + (1 - c) * (Wx @ x[t])
        H.append(h)
    return torch.stack(H)


def gated_rnn_grad_Wx(x, Wc, Wh, Wx, grad_H):
    # Only the direct term at each step: misses the path through h[t-1] and c[t].
    H = gated_rnn_forward(x, Wc, Wh, Wx)
    h_prev = torch.cat([torch.zeros(1, Wh.shape[0], dtype=x.dtype), H[:-1]])
    c = torch.sigmoid(x @ Wc.T + h_prev @ Wh.T)
    return ((grad_H * (1 - c)).T) @ x


attention_weights_dim = "k+1"


def attention_rnn_forward(x, Q, K, V):
    T, n = x.shape
    k = len(Q) - 1
    H = torch.zeros(T, n, dtype=x.dtype)
    A = torch.zeros(T, k + 1, dtype=x.dtype)
    for t in range(T):
        z = [x[t]] + [H[t - i] if t - i >= 0 else torch.zeros(n, dtype=x.dtype) for i in range(1, k + 1)]
        w = torch.tensor([float((Q[i] @ z[i]) @ (K[i] @ z[i])) for i in range(k + 1)], dtype=x.dtype)
        a = torch.exp(w - w.max())
        a = a / a.sum()
        H[t] = sum(a[i] * (V[i] @ z[i]) for i in range(k + 1))
        A[t] = a
    return H, A


initial_loss = "-log(1/K)"
initial_accuracy = "1/K"
