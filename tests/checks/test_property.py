"""The `property` kind: answers that are not unique, judged by the property that defines a right one."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest
import torch

from grader.checks.property import Answer
from grader.grading.submission import grade_submission
from grader.results import Status, SubmissionResult
from grader.rubric.schema import load_rubric

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "resnet-adversarial"


@pytest.fixture(scope="module")
def ref() -> ModuleType:
    return load_rubric(ROOT / "rubrics" / "resnet-adversarial.yaml").load_reference()


def _svd(X: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return U[:, :r], S[:r], Vh[:r]


def _reflect(A: torch.Tensor) -> torch.Tensor:
    Q = torch.eye(A.shape[1], dtype=A.dtype)
    Q[0, 0] = -1.0
    return Q


def _rotate(A: torch.Tensor) -> torch.Tensor:
    r = A.shape[1]
    Q, _ = torch.linalg.qr(torch.randn(r, r, generator=torch.Generator().manual_seed(3), dtype=A.dtype))
    return Q if r > 1 else -torch.eye(1, dtype=A.dtype)


BEST_RANK_R: list[tuple[str, Callable[[torch.Tensor, int], Any], bool, str]] = [
    ("U*S, V", lambda X, r: (lambda U, S, V: (U * S, V))(*_svd(X, r)), True, ""),
    ("U, S*V", lambda X, r: (lambda U, S, V: (U, S[:, None] * V))(*_svd(X, r)), True, ""),
    ("sqrt(S) both sides, float32", lambda X, r: (lambda U, S, V: ((U * S.sqrt()).float(), (S.sqrt()[:, None] * V).float()))(*_svd(X, r)), True, ""),
    ("one singular value short", lambda X, r: (lambda U, S, V: (U * torch.cat([S[:-1], S[-1:] * 0]), V))(*_svd(X, r)), False, "the minimum is"),
    ("U*S only", lambda X, r: (lambda U, S, V: U * S)(*_svd(X, r)), False, "expected a pair"),
    ("A transposed", lambda X, r: (lambda U, S, V: ((U * S).T, V))(*_svd(X, r)), False, "should have shape"),
]


@pytest.mark.parametrize(("name", "answer", "ok", "fragment"), BEST_RANK_R, ids=[row[0] for row in BEST_RANK_R])
def test_best_rank_r(ref: ModuleType, name: str, answer: Callable[..., Any], ok: bool, fragment: str) -> None:
    verdicts = [
        ref.check_best_rank_r(case, Answer(answer(case["X"], case["r"]), None, 1.0))  # type: ignore[arg-type]
        for case in ref.cases_best_rank_r(torch.Generator().manual_seed(0))
    ]
    assert all(v[0] for v in verdicts) is ok
    assert fragment in " ".join(v[1] for v in verdicts)


ANOTHER_OPTIMUM: list[tuple[str, Callable[[torch.Tensor, torch.Tensor], Any], bool, str]] = [
    ("scaling", lambda A, B: (2 * A, B / 2), True, ""),
    ("negation", lambda A, B: (-A, -B), True, ""),
    ("reflection", lambda A, B: (A @ _reflect(A), _reflect(A).T @ B), True, ""),
    ("rotation", lambda A, B: (A @ _rotate(A), _rotate(A).T @ B), True, ""),
    ("unchanged", lambda A, B: (A, B), False, "C is A again"),
    ("barely moved", lambda A, B: (A * (1 + 1e-5), B / (1 + 1e-5)), False, "C is A again"),
    ("product changed", lambda A, B: (2 * A, B), False, "differs from A @ B"),
    ("a list of three", lambda A, B: [A, B, A], False, "expected a pair"),
]


@pytest.mark.parametrize(("name", "answer", "ok", "fragment"), ANOTHER_OPTIMUM, ids=[row[0] for row in ANOTHER_OPTIMUM])
def test_another_optimum(ref: ModuleType, name: str, answer: Callable[..., Any], ok: bool, fragment: str) -> None:
    verdicts = [
        ref.check_another_optimum(case, Answer(answer(case["A"], case["B"]), None, 1.0))  # type: ignore[arg-type]
        for case in ref.cases_another_optimum(torch.Generator().manual_seed(0))
    ]
    assert all(v[0] for v in verdicts) is ok
    assert fragment in " ".join(v[1] for v in verdicts)


# -- through the worker: one submission of variants, one question per variant (tests/data/resnet-adversarial) --
@pytest.fixture(scope="module")
def variants() -> dict[str, Any]:
    result: SubmissionResult = grade_submission(load_rubric(DATA / "variants.yaml"), DATA / "variants.py")
    return {q.title: q for q in result.questions}


VARIANTS = [
    # param_groups on LayerNorm, GroupNorm, BatchNorm1d, bias-free and frozen models
    ("groups_by_module_type", Status.PASSED, "correct on all 4"),
    ("groups_generators_int_zero", Status.PASSED, "correct on all 4"),
    ("groups_with_frozen", Status.FAILED, "`bn.bias` does not require gradients"),
    ("groups_duplicate", Status.FAILED, "appears more than once"),
    ("groups_copied_tensor", Status.FAILED, "not a parameter of the model"),
    ("groups_no_decay_key", Status.FAILED, "has no 'weight_decay' key"),
    ("groups_bias_only", Status.FAILED, "`2.weight` gets weight_decay 0.1; it should get 0.0"),
    ("groups_as_sets", Status.FAILED, "torch.optim.SGD rejects the groups"),
    ("groups_not_a_list", Status.FAILED, "returned a dict, not a list"),
    # train_transform: the callable stays in the worker and is called through its handle
    ("transform_v2", Status.PASSED, "correct"),
    ("transform_fixed", Status.FAILED, "not random"),
    ("transform_own_generator", Status.FAILED, "not reproducible"),
    ("transform_uint8", Status.FAILED, "float32, got torch.uint8"),
    ("transform_not_callable", Status.FAILED, "'NoneType' object is not callable"),
    ("transform_unscaled", Status.FAILED, "should lie in [0, 1]"),
    # attacks: side effects on x and on the model are caught
    ("fgsm_ok", Status.PASSED, "correct on all 2"),
    ("fgsm_in_place", Status.FAILED, "`x` was changed in place"),
    ("fgsm_train_mode", Status.FAILED, "switched to train() mode"),
    ("fgsm_moves_weights", Status.FAILED, "`0.weight` changed"),
    ("fgsm_no_clamp", Status.FAILED, "values differ"),
    ("fgsm_missing", Status.ERROR, "`fgsm_missing` is not defined"),
]


@pytest.mark.parametrize(("title", "status", "fragment"), VARIANTS, ids=[row[0] for row in VARIANTS])
def test_variant(variants: dict[str, Any], title: str, status: Status, fragment: str) -> None:
    q = variants[title]
    assert q.status == status, q.message
    assert fragment in q.message
    assert q.score == (1.0 if status == Status.PASSED else 0.0)
