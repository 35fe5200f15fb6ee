"""Models built from a spec, on both sides of the worker boundary, and the worker ops that hand them over.

A model cannot travel to the student's worker as data (no pickle), so the grader sends a `ModelSpec` (builder
name, seed, dtype, optionally a state dict as tensors); the worker builds it, keeps it and answers with a
`Handle` that a later call passes as an argument.  The grader builds the same spec in its own process to
compute expected answers.  What the worker reports back (digests of the model's state, parameter *names* of
what a student returned) is plain data; the verdicts are the grader's.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from grader.worker import codec
from grader.worker.messages import BuildModel, DescribeGroups, ModelDigest, ReplyFields

DTYPES = {"float32": torch.float32, "float64": torch.float64}


# -- builders: small models covering every kind of parameter a param-group rule must handle ---------------------
def _resnet18(num_classes: int = 1000) -> nn.Module:
    import torchvision  # imported here: the worker pays for it only when a question needs a ResNet

    model: torch.nn.Module = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    return model


def _tiny_cnn(num_classes: int = 5) -> nn.Module:
    # ReLU, a bias-free conv, BatchNorm and average pooling: enough to make attacks non-trivial, fast on a CPU.
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, num_classes),
    )


def _mlp_layernorm() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 3))


def _cnn_groupnorm() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 3, bias=False),
    )


def _mlp_batchnorm1d() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class _FrozenMixed(nn.Module):
    """A frozen embedding, BatchNorm3d, a bare parameter on the root module and a LayerNorm without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.embed.requires_grad_(False)
        self.conv = nn.Conv3d(1, 2, 1)
        self.bn = nn.BatchNorm3d(2)
        self.bn.bias.requires_grad_(False)
        self.norm = nn.LayerNorm(8, bias=False)
        self.head = nn.Linear(8, 3)
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(x))
        out: torch.Tensor = self.head(h) * self.temperature
        return out


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": _resnet18,
    "tiny_cnn": _tiny_cnn,
    "mlp_layernorm": _mlp_layernorm,
    "cnn_groupnorm": _cnn_groupnorm,
    "mlp_batchnorm1d": _mlp_batchnorm1d,
    "frozen_mixed": _FrozenMixed,
}


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model, as plain data; equal specs build equal models in any process."""

    builder: str
    seed: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    train: bool = False
    state: dict[str, torch.Tensor] | None = None

    def __repr__(self) -> str:  # case labels in messages stay short
        return f"<{self.builder} model>"

    def to_plain(self) -> dict[str, Any]:
        plain: dict[str, Any] = {
            "builder": self.builder, "seed": self.seed, "kwargs": dict(self.kwargs), "dtype": self.dtype, "train": self.train,
        }
        if self.state is not None:
            plain["state"] = dict(self.state)
        return plain

    @classmethod
    def from_plain(cls, data: Any) -> ModelSpec:
        if not isinstance(data, dict) or data.get("builder") not in BUILDERS or data.get("dtype", "float32") not in DTYPES:
            raise ValueError(f"not a model spec: {str(data)[:200]}")
        return cls(
            str(data["builder"]), int(data.get("seed", 0)), dict(data.get("kwargs") or {}), str(data.get("dtype", "float32")),
            bool(data.get("train", False)), data.get("state"),
        )


def build_model(spec: ModelSpec) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = BUILDERS[spec.builder](**spec.kwargs)
    model = model.to(DTYPES[spec.dtype])
    if spec.state is not None:
        model.load_state_dict(spec.state)
    return model.train(spec.train)


def model_digest(model: nn.Module) -> dict[str, Any]:
    """What 'the model did not change' compares: a hash per state tensor, the trainable names, the mode."""
    tensors = {}
    for name, t in model.state_dict(keep_vars=False).items():
        t = t.detach().cpu().contiguous()
        h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
        tensors[name] = h.hexdigest()
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    return {"tensors": tensors, "trainable": trainable, "training": bool(model.training)}


def digest_difference(expected: dict[str, Any], got: Any) -> str | None:
    """The first way `got` (a worker's digest) differs from `expected`, in words; None when equal."""
    if not isinstance(got, dict):
        return "its state could not be read"
    # The mode first: a switch to train() also moves BatchNorm's running stats, and the switch is the cause.
    if got.get("training") != expected["training"]:
        return f"it was switched to {'train' if got.get('training') else 'eval'}() mode"
    if got.get("trainable") != expected["trainable"]:
        return "which parameters require gradients changed"
    for name, h in expected["tensors"].items():
        if (got.get("tensors") or {}).get(name) != h:
            return f"`{name}` changed"
    if set(got.get("tensors") or {}) != set(expected["tensors"]):
        return "its set of parameters and buffers changed"
    return None


# -- parameter groups: names by identity, so the grader never needs the student's objects -----------------------
def describe_groups(groups: Any, model: nn.Module) -> dict[str, Any]:
    if not isinstance(groups, (list, tuple)):
        return {"error": f"param_groups returned a {type(groups).__name__}, not a list of dicts"}
    names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    described: list[dict[str, Any]] = []
    for_sgd: list[dict[str, Any]] = []
    for group in groups:
        if not isinstance(group, dict):
            described.append({"type": type(group).__name__})
            continue
        params = group.get("params")
        # A generator would be used up by naming it; materialise once and give SGD the same items.
        items = [params] if isinstance(params, torch.Tensor) else list(params) if params is not None else []
        for_sgd.append({**group, "params": params if isinstance(params, set) else items})
        described.append({
            "type": "dict",
            "keys": [str(k) for k in group],
            "names": [names.get(id(p), "?") for p in items],
            "has_weight_decay": "weight_decay" in group,
            "weight_decay": group.get("weight_decay"),
        })
    return {"groups": described, "sgd_error": _sgd_error(for_sgd)}


def _sgd_error(groups: list[dict[str, Any]]) -> str | None:
    try:
        torch.optim.SGD(groups, lr=0.1)
    except Exception as exc:  # noqa: BLE001 - whatever SGD says is the answer
        return f"{type(exc).__name__}: {exc}"[:500]
    return None


# -- worker ops ---------------------------------------------------------------------------------------------------
def op_build_model(worker: Any, request: BuildModel) -> ReplyFields:
    model = build_model(ModelSpec.from_plain(codec.decode(request.spec)))
    handle = worker.keep(model)
    return {"ok": True, "value": codec.encode({"handle": handle, "digest": model_digest(model)})}


def op_model_digest(worker: Any, request: ModelDigest) -> ReplyFields:
    return {"ok": True, "value": codec.encode(model_digest(worker.handles[request.model]))}


def op_describe_groups(worker: Any, request: DescribeGroups) -> ReplyFields:
    groups, model = worker.handles[request.groups], worker.handles[request.model]
    return {"ok": True, "value": codec.encode(describe_groups(groups, model))}


OPS: dict[str, Callable[[Any, Any], ReplyFields]] = {
    BuildModel.op: op_build_model,
    ModelDigest.op: op_model_digest,
    DescribeGroups.op: op_describe_groups,
}
