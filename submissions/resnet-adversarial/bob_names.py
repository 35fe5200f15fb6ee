# Bob's homework: correct except q1.3, whose name-based rule misses ResNet-18's downsample BatchNorms
# (`layer2.0.downsample.1.weight` has neither "bn" nor "norm" in its name).
import torch
import torch.nn.functional as F
from torchvision.models import resnet18


def resnet18_layer_params():
    rows = []
    for m in resnet18().modules():
        if type(m).__name__ in ("Conv2d", "BatchNorm2d", "Linear"):
            rows.append((type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False))))
    return rows


resnet18_total_params = 11689512


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith("bias") or "bn" in name or "norm" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


is_convex = False


def best_rank_r(X, r):
    # The singular values go with B this time: A = U_r, B = S_r V_r^T.
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return U[:, :r], S[:r, None] * Vh[:r]


def another_optimum(A, B):
    # A reflection Q (orthogonal, Q Q^T = I): C D = A Q Q^T B = A B.
    Q = torch.eye(A.shape[1], dtype=A.dtype)
    Q[0, 0] = -1.0
    return A @ Q, Q.T @ B


def input_gradient(model, x, y):
    x = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), [x])
    return g


def fgsm(model, x, y, eps):
    return (x + eps * torch.sign(input_gradient(model, x, y))).clamp(0.0, 1.0)


def pgd(model, x, y, eps, alpha, steps):
    xt = x
    for _ in range(steps):
        xt = xt + alpha * torch.sign(input_gradient(model, xt, y))
        xt = torch.clamp(xt, x - eps, x + eps).clamp(0.0, 1.0)
    return xt


def clip_grad_norm(grads, max_norm):
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    factor = max_norm / total if total > max_norm else 1.0
    return [g * factor for g in grads]


def train_transform():
    def transform(img):
        x = img.to(torch.float32) / 255.0
        if torch.rand(1).item() < 0.5:
            x = torch.flip(x, dims=[2])
        dx, dy = torch.randint(-3, 4, (2,)).tolist()
        return torch.roll(x, shifts=(dy, dx), dims=(1, 2))

    return transform
