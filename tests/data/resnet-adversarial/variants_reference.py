"""Test reference: the real predicates of resnet-adversarial on small models only, so tests stay fast."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from grader.rubric.schema import load_module

_ref = load_module(Path(__file__).resolve().parents[3] / "reference" / "resnet_adversarial.py", "_test_resnet_adversarial_ref")

check_param_groups = _ref.check_param_groups
check_train_transform = _ref.check_train_transform
check_fgsm = _ref.check_fgsm
cases_train_transform = _ref.cases_train_transform


def cases_small_models(gen: torch.Generator) -> list[dict[str, Any]]:
    return [c for c in _ref.cases_param_groups(gen) if c["model"].builder != "resnet18"]


def cases_small_fgsm(gen: torch.Generator) -> list[dict[str, Any]]:
    return [c for c in _ref.cases_fgsm(gen) if c["model"].builder != "resnet18"]
