# Variants of student answers for tests/checks/test_property.py: right ones in other styles, and near misses.
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def _split(model):
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                (no_decay if name == "bias" or isinstance(module, NORMS) else decay).append(p)
    return decay, no_decay


def groups_by_module_type(model, weight_decay):
    decay, no_decay = _split(model)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def groups_generators_int_zero(model, weight_decay):
    # Three groups, generators for params, an int 0 decay: all accepted by SGD and by the handout.
    decay, no_decay = _split(model)
    half = len(no_decay) // 2
    return [
        {"params": (p for p in decay), "weight_decay": weight_decay},
        {"params": no_decay[:half], "weight_decay": 0},
        {"params": iter(no_decay[half:]), "weight_decay": 0.0, "lr": 0.01},
    ]


def groups_with_frozen(model, weight_decay):
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (not n.endswith("bias") and p.dim() > 1)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def groups_duplicate(model, weight_decay):
    decay, no_decay = _split(model)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay + decay[:1], "weight_decay": 0.0}]


def groups_copied_tensor(model, weight_decay):
    decay, no_decay = _split(model)
    return [{"params": [p.detach().clone() for p in decay], "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def groups_no_decay_key(model, weight_decay):
    decay, no_decay = _split(model)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay}]


def groups_bias_only(model, weight_decay):
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    bias = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": bias, "weight_decay": 0.0}]


def groups_as_sets(model, weight_decay):
    decay, no_decay = _split(model)
    return [{"params": set(decay), "weight_decay": weight_decay}, {"params": set(no_decay), "weight_decay": 0.0}]


def groups_not_a_list(model, weight_decay):
    decay, no_decay = _split(model)
    return {"decay": decay, "no_decay": no_decay}


def transform_v2():
    import torchvision.transforms.v2 as T

    return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToDtype(torch.float32, scale=True)])


def transform_fixed():
    return lambda img: img.float() / 255


def transform_own_generator():
    gen = torch.Generator().manual_seed(time.time_ns() % 2**31)  # random, but no global seed reaches it

    def transform(img):
        i, j = torch.randint(0, 9, (2,), generator=gen).tolist()
        return F.pad(img.float() / 255, (4, 4, 4, 4))[:, i : i + 32, j : j + 32]

    return transform


def transform_uint8():
    return lambda img: img.flip(-1) if torch.rand(()) < 0.5 else img


def transform_not_callable():
    return None


def transform_unscaled():
    return lambda img: img.float().flip(-1) if torch.rand(()) < 0.5 else img.float()


def _grad(model, x, y):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return g


def fgsm_ok(model, x, y, eps):
    return (x + eps * _grad(model, x, y).sign()).clamp(0, 1)


def fgsm_in_place(model, x, y, eps):
    g = _grad(model, x, y)
    return x.add_(eps * g.sign()).clamp_(0, 1)


def fgsm_train_mode(model, x, y, eps):
    model.train()
    out = fgsm_ok(model.eval(), x, y, eps)
    model.train()
    return out


def fgsm_moves_weights(model, x, y, eps):
    with torch.no_grad():
        next(model.parameters()).mul_(1.0001)
    return fgsm_ok(model, x, y, eps)


def fgsm_no_clamp(model, x, y, eps):
    return x + eps * _grad(model, x, y).sign()
