"""Reference for `resnet-adversarial`: answers, input generators and the predicates of non-unique answers.

Loaded only by the grader process, never by a student's worker.  Predicates receive the inputs (models are
the grader's own copies) and an `Answer`; they return `(ok, message)` with a message a TA would write.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from grader.cases import describe, is_array
from grader.checks.property import Answer, matches
from grader.worker.ops_models import ModelSpec, build_model

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)
Verdict = tuple[bool, str]


def cases_none(gen: torch.Generator) -> list[dict[str, Any]]:
    return [{}]


# -- Q1 ResNet-18 ---------------------------------------------------------------------------------------------
def resnet18_layer_params() -> list[tuple[str, int]]:
    model = build_model(ModelSpec("resnet18", kwargs={"num_classes": 1000}))
    return [
        (type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False) if p.requires_grad))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))
    ]


resnet18_total_params = 11_689_512  # asserted against the model in tests/assignments/test_resnet_adversarial.py


def no_decay(model: nn.Module) -> set[str]:
    """Names of the parameters that take no weight decay: biases and everything of a normalisation module."""
    names = set()
    for module_name, module in model.named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            if attr == "bias" or isinstance(module, NORM_TYPES):
                names.add(f"{module_name}.{attr}" if module_name else attr)
    return names


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    skip = no_decay(model)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in trainable if n not in skip], "weight_decay": weight_decay},
        {"params": [p for n, p in trainable if n in skip], "weight_decay": 0.0},
    ]


def cases_param_groups(gen: torch.Generator) -> list[dict[str, Any]]:
    # ResNet-18 first (its downsample BatchNorms defeat name-based rules), then every other kind of parameter.
    specs = [ModelSpec("resnet18", kwargs={"num_classes": 10})] + [
        ModelSpec(b) for b in ("mlp_layernorm", "cnn_groupnorm", "mlp_batchnorm1d", "frozen_mixed")
    ]
    return [{"model": spec, "weight_decay": wd} for spec, wd in zip(specs, (5e-4, 0.1, 1e-2, 3e-4, 0.05))]


def check_param_groups(inputs: dict[str, Any], answer: Answer) -> Verdict:
    model, wd = inputs["model"], inputs["weight_decay"]
    report = answer.param_groups("model")
    if report.get("error"):
        return False, str(report["error"])
    seen: dict[str, Any] = {}
    for i, group in enumerate(report.get("groups") or []):
        problem = _group_problem(i, group, seen)
        if problem:
            return False, problem
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable - set(seen))
    if missing:
        return False, f"{len(missing)} trainable parameters are in no group, e.g. `{missing[0]}`"
    frozen = sorted(set(seen) - trainable)
    if frozen:
        return False, f"`{frozen[0]}` does not require gradients and must not be in a group"
    skip = no_decay(model)
    for name in sorted(trainable):
        want = 0.0 if name in skip else wd
        if seen[name] != want:
            return False, f"`{name}` gets weight_decay {seen[name]!r}; it should get {want!r}"
    if report.get("sgd_error"):
        return False, f"torch.optim.SGD rejects the groups: {report['sgd_error']}"
    try:
        _rebuild_sgd(model, report)
    except (TypeError, ValueError) as exc:
        return False, f"torch.optim.SGD rejects the same groups of the grader's copy of the model: {exc}"
    return True, "every trainable parameter once, with the right weight decay"


def _group_problem(i: int, group: dict[str, Any], seen: dict[str, Any]) -> str | None:
    if group.get("type") != "dict":
        return f"group {i} is a {group.get('type')}, not a dict"
    if not group.get("has_weight_decay"):
        return f"group {i} has no 'weight_decay' key"
    decay = group.get("weight_decay")
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        return f"group {i}'s weight_decay is {describe(decay)}, not a float"
    for name in group.get("names") or []:
        if name == "?":
            return f"group {i} holds a tensor that is not a parameter of the model"
        if name in seen:
            return f"`{name}` appears more than once"
        seen[name] = decay
    return None


def _rebuild_sgd(model: nn.Module, report: dict[str, Any]) -> None:
    """The grader's own optimiser from the names: SGD must accept the same grouping of the grader's copy."""
    params = dict(model.named_parameters())
    groups = [{"params": [params[n] for n in g["names"]], "weight_decay": g["weight_decay"]} for g in report["groups"]]
    torch.optim.SGD(groups, lr=0.1)


# -- Q2 low-rank factorisation --------------------------------------------------------------------------------
is_convex = False


def best_rank_r(X: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return U[:, :r] * S[:r], Vh[:r]


def cases_best_rank_r(gen: torch.Generator) -> list[dict[str, Any]]:
    # Tall, wide, square, rank 1 and full rank (zero loss).
    shapes = [(6, 4, 2), (5, 7, 3), (4, 4, 1), (3, 5, 3), (8, 6, 4)]
    return [{"X": torch.randn(m, n, generator=gen, dtype=torch.float64), "r": r} for m, n, r in shapes]


def _fro(t: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(t.to(torch.float64)))


def _pair(value: Any, shapes: tuple[tuple[int, int], tuple[int, int]]) -> tuple[Any, str]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return None, f"expected a pair (A, B), got {describe(value)}"
    for name, got, want in zip("AB", value, shapes):
        if not is_array(got):
            return None, f"{name} should be a tensor of shape {want}, got {describe(got)}"
        if tuple(got.shape) != want:
            return None, f"{name} should have shape {want}, got {tuple(got.shape)}"
    return tuple(torch.as_tensor(v).to(torch.float64) for v in value), ""


def check_best_rank_r(inputs: dict[str, Any], answer: Answer) -> Verdict:
    X, r = inputs["X"], inputs["r"]
    (m, n) = X.shape
    pair, problem = _pair(answer.value, ((m, r), (r, n)))
    if pair is None:
        return False, problem
    A, B = pair
    loss = _fro(X - A @ B) ** 2
    best = float((torch.linalg.svdvals(X)[r:] ** 2).sum())
    if abs(loss - best) > 1e-6 * _fro(X) ** 2 + 1e-9:
        return False, f"‖X − AB‖² is {loss:.6g}; the minimum is {best:.6g}"
    return True, "a global minimiser"


def another_optimum(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return 2 * A, B / 2


def cases_another_optimum(gen: torch.Generator) -> list[dict[str, Any]]:
    return [dict(zip("AB", best_rank_r(case["X"], case["r"]))) for case in cases_best_rank_r(gen)]


def check_another_optimum(inputs: dict[str, Any], answer: Answer) -> Verdict:
    A, B = inputs["A"], inputs["B"]
    pair, problem = _pair(answer.value, (tuple(A.shape), tuple(B.shape)))
    if pair is None:
        return False, problem
    C, D = pair
    rel = _fro(C @ D - A @ B) / _fro(A @ B)
    if rel > 1e-6:
        return False, f"C @ D differs from A @ B (relative error {rel:.2e}, at most 1e-6 allowed)"
    moved = _fro(C - A) / _fro(A)
    if moved < 1e-3:
        return False, f"C is A again (‖C − A‖ = {moved:.1e}·‖A‖; at least 1e-3·‖A‖ is required)"
    return True, "another global minimiser"


# -- Q3 adversarial examples ----------------------------------------------------------------------------------
def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y, reduction="sum")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_loss(model, x, y), x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    return (x + eps * input_gradient(model, x, y).sign()).clamp(0, 1)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int) -> torch.Tensor:
    xt = x.clone()
    for _ in range(steps):
        step = xt + alpha * input_gradient(model, xt, y).sign()
        xt = torch.min(torch.max(step, x - eps), x + eps).clamp(0, 1)
    return xt


def _attack_case(gen: torch.Generator, spec: ModelSpec, batch: int, size: int, classes: int) -> dict[str, Any]:
    return {
        "model": spec,
        "x": torch.rand(batch, 3, size, size, generator=gen, dtype=torch.float64),
        "y": torch.randint(classes, (batch,), generator=gen),
    }


def _attack_cases(gen: torch.Generator) -> list[dict[str, Any]]:
    # Small CNNs in float64 keep signs of the gradient stable; one ResNet-18 case, the handout's model.
    return [
        _attack_case(gen, ModelSpec("tiny_cnn", seed=1, dtype="float64"), 3, 8, 5),
        _attack_case(gen, ModelSpec("tiny_cnn", seed=2, dtype="float64", kwargs={"num_classes": 3}), 1, 6, 3),
        _attack_case(gen, ModelSpec("resnet18", seed=3, dtype="float64", kwargs={"num_classes": 10}), 1, 32, 10),
    ]


def cases_input_gradient(gen: torch.Generator) -> list[dict[str, Any]]:
    return _attack_cases(gen)


def cases_fgsm(gen: torch.Generator) -> list[dict[str, Any]]:
    return [{**case, "eps": eps} for case, eps in zip(_attack_cases(gen), (0.1, 0.03, 0.05))]


def cases_pgd(gen: torch.Generator) -> list[dict[str, Any]]:
    # Few steps with alpha > eps/steps, so that both the eps-ball clip and the [0, 1] clamp matter.
    params = ((0.1, 0.04, 4), (0.05, 0.02, 3), (0.03, 0.02, 2))
    return [{**case, "eps": e, "alpha": a, "steps": s} for case, (e, a, s) in zip(_attack_cases(gen), params)]


check_input_gradient = matches(input_gradient, rtol=1e-6, atol=1e-9)
check_fgsm = matches(fgsm, rtol=1e-9, atol=1e-9)
check_pgd = matches(pgd, rtol=1e-9, atol=1e-9)


# -- Q4 gradient clipping ---------------------------------------------------------------------------------------
def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = max_norm / float(total) if float(total) > max_norm else 1.0
    return [g * scale for g in grads]


def cases_clip_grad_norm(gen: torch.Generator) -> list[dict[str, Any]]:
    # Each tensor below max_norm while the total is above it, the case that per-tensor clipping gets wrong;
    # then a total below max_norm (unchanged) and one tensor alone.
    small = [torch.randn(4, generator=gen, dtype=torch.float64) * 0.5 for _ in range(3)] + [torch.randn(2, 3, generator=gen, dtype=torch.float64) * 0.3]
    return [
        {"grads": small, "max_norm": 1.5},
        {"grads": [torch.randn(3, 2, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)], "max_norm": 100.0},
        {"grads": [torch.randn(6, generator=gen, dtype=torch.float64) * 3], "max_norm": 1.0},
    ]


# -- Q5 augmentation ------------------------------------------------------------------------------------------
def train_transform() -> Any:
    def transform(img: torch.Tensor) -> torch.Tensor:
        x = F.pad(img.float() / 255, (4, 4, 4, 4), mode="reflect")
        i, j = torch.randint(0, 9, (2,)).tolist()
        x = x[:, i : i + 32, j : j + 32]
        return x.flip(-1) if torch.rand(()) < 0.5 else x

    return transform


# 32 seeds, each called twice: a crop that is wrong for one offset in nine or ten (a bound off by one) is drawn
# with near certainty (`grader validate` found 8 seeds let such mutants through).
TRANSFORM_SEEDS = tuple(range(11, 43))


def cases_train_transform(gen: torch.Generator) -> list[dict[str, Any]]:
    return [{}]


def check_train_transform(inputs: dict[str, Any], answer: Answer) -> Verdict:
    gen = torch.Generator().manual_seed(7)
    img = torch.randint(0, 256, (3, 32, 32), generator=gen, dtype=torch.uint8)
    outputs = []
    for seed in TRANSFORM_SEEDS:
        # Twice per seed: a transform drawing from its own generator fails one of 8 pairs with near certainty.
        out, again = answer.call(img, seed=seed), answer.call(img, seed=seed)
        problem = _image_problem(out) or _image_problem(again)
        if problem:
            return False, problem
        if not torch.equal(torch.as_tensor(again), torch.as_tensor(out)):
            return False, "not reproducible: after the same torch.manual_seed the same image gave a different output"
        outputs.append(out)
    if all(torch.equal(torch.as_tensor(o), torch.as_tensor(outputs[0])) for o in outputs[1:]):
        return False, f"not random: {len(outputs)} calls on one image under different seeds gave the same output"
    return True, "float32 images in [0, 1], random and reproducible"


def _image_problem(out: Any) -> str | None:
    if not is_array(out):
        return f"the transform should return a tensor, got {describe(out)}"
    t = torch.as_tensor(out)
    if t.dtype != torch.float32:
        return f"the transform should return float32, got {t.dtype}"
    if tuple(t.shape) != (3, 32, 32):
        return f"the transform should return shape (3, 32, 32), got {tuple(t.shape)}"
    if not bool(torch.isfinite(t).all()) or float(t.min()) < 0 or float(t.max()) > 1:
        return f"values should lie in [0, 1]; they range over [{float(t.min()):.3g}, {float(t.max()):.3g}]"
    return None
