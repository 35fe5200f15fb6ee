# Dave's homework: frozen parameters in the groups, the wrong end of the spectrum, an input gradient that
# leaves the model in train() mode, and a float64 transform.
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def resnet18_layer_params():
    model = torchvision.models.resnet18(num_classes=1000)
    return [(type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False)))
            for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]


resnet18_total_params = 11689512


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):  # frozen parameters are kept: wrong
            (no_decay if name == "bias" or isinstance(module, NORMS) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


is_convex = False


def best_rank_r(X, r):
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return U[:, -r:] * S[-r:], Vh[-r:]  # the smallest singular values: not optimal


def another_optimum(A, B):
    return -A, -B


def input_gradient(model, x, y):
    model.train()  # a side effect: the caller's model is no longer in eval() mode
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return x.grad


def _grad(model, x, y):
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return x.grad


def fgsm(model, x, y, eps):
    return (x + eps * _grad(model, x, y).sign()).clamp(0, 1)


def pgd(model, x, y, eps, alpha, steps):
    xt = x.clone()
    for _ in range(steps):
        xt = (xt + alpha * _grad(model, xt, y).sign()).clamp(min=x - eps, max=x + eps).clamp(0, 1)
    return xt


def clip_grad_norm(grads, max_norm):
    total = sum(float((g * g).sum()) for g in grads) ** 0.5
    return [g * (max_norm / total) if total > max_norm else g.clone() for g in grads]


def train_transform():
    def transform(img):
        x = img.double() / 255  # float64, not float32
        return x.flip(-1) if torch.rand(()) < 0.5 else x

    return transform
