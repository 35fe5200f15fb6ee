"""The `training` kind: seeded data, accuracy from the returned logits, tiers, budget, malformed losses."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from grader.checks.training import (
    DataRecipe,
    TrainingOptions,
    accuracy,
    credit_for,
    losses_problem,
    make_data,
    resolve_device,
)
from grader.errors import GraderError
from grader.grading.submission import grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric, load_rubric

DATA = Path(__file__).resolve().parents[1] / "data" / "backprop-optim" / "training"
TIERS = [{"min": 0.95, "credit": 1.0}, {"min": 0.5, "credit": 0.5}]


@pytest.fixture(scope="module")
def rubrics() -> dict[str, Rubric]:
    return {name: load_rubric(DATA / f"{name}.yaml") for name in ("rubric", "budget3", "penalty")}


def grade(rubrics: dict[str, Rubric], rubric: str, submission: str) -> SubmissionResult:
    return grade_submission(rubrics[rubric], DATA / submission, device="cpu")


@pytest.fixture(scope="module")
def mlp_result(rubrics: dict[str, Rubric]) -> SubmissionResult:
    return grade(rubrics, "rubric", "mlp.py")


# -- end to end: one worker per scenario; q2 (a value defined after the training code) must always be graded -----
SCENARIOS = [
    # rubric, submission, q1 score, q1 status, part of q1's message
    # The sleepers compute nothing: their 3 CPU seconds never run out, the wall-clock backstop (4 x 3 s) stops
    # them (stubborn.py from outside, as it swallows the worker's alarm), and the question is graded once more.
    ("budget3", "sleeper.py", 0.0, "failed", "stopped: your code ran past its wall-clock time limit (12 s;"),
    ("budget3", "stubborn.py", 0.0, "failed", "stopped: your code ran past its wall-clock time limit (12 s;"),
    ("rubric", "losses_tensors.py", 5.0, "passed", "not a float (use `.item()`) (this costs no points)"),
    ("penalty", "losses_short.py", 3.75, "partial", "returned 29 losses for 30 epochs (costs 25% of the credit)"),
    ("rubric", "wrong_logits.py", 0.0, "failed", "the model's output should have shape (512, 10), got (512, 5)"),
    ("rubric", "no_factory.py", 0.0, "error", "`make_model` is not defined"),
]


@pytest.mark.parametrize("rubric, submission, score, status, message", SCENARIOS)
def test_scenarios(rubrics: dict[str, Rubric], rubric: str, submission: str, score: float, status: str, message: str) -> None:
    q1, q2 = grade(rubrics, rubric, submission).questions
    assert (q1.score, q1.status.value) == (score, status)
    assert message in q1.message
    assert q2.score == 1.0  # a stopped (even killed) run costs only its own question


def test_correct_model_memorises(mlp_result: SubmissionResult) -> None:
    q1 = mlp_result.questions[0]
    assert (q1.score, q1.status.value) == (5.0, "passed")
    assert q1.message == "training accuracy 1.0000: at least 0.95, 100% of the credit"
    assert q1.details["accuracy"] == 1.0
    assert q1.details["tiers"] == TIERS
    assert q1.details["device"] == "cpu"
    losses = q1.details["losses"]
    assert len(losses) == 30 and losses[-1] < losses[0] / 5
    assert q1.details["train_seconds"] > 0


def _without_timings(result: SubmissionResult) -> dict[str, Any]:
    data = result.serialize()
    data.pop("execution_time")
    for q in data["questions"]:
        q.pop("duration")
        q["details"].pop("train_seconds", None)
    return data


def test_grading_twice_gives_identical_results(rubrics: dict[str, Rubric], mlp_result: SubmissionResult) -> None:
    again = grade(rubrics, "rubric", "mlp.py")
    assert _without_timings(again) == _without_timings(mlp_result)


# -- the pieces -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "losses, problem",
    [
        ([0.5, 0.25, 0.125], None),
        ((1, 2, 3.0), None),  # ints and tuples are fine
        ([0.5, 0.25], "`train` returned 2 losses for 3 epochs"),
        ([0.5, math.nan, 0.1], "loss 1 is nan"),
        ([0.5, 0.2, math.inf], "loss 2 is inf"),
        ([0.5, True, 0.1], "loss 1 is bool True, not a float (use `.item()`)"),
        ([torch.tensor(0.5), 0.2, 0.1], "loss 0 is tensor of shape () (float32), not a float (use `.item()`)"),
        (None, "`train` should return a list of 3 floats, got None"),
        (0.5, "`train` should return a list of 3 floats, got float 0.5"),
    ],
)
def test_losses_problem(losses: Any, problem: str | None) -> None:
    assert losses_problem(losses, 3) == problem


LABELS = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize(
    "logits, expected, why",
    [
        (torch.eye(3)[[0, 1, 2, 1]], 1.0, ""),
        (torch.eye(3)[[0, 1, 2, 2]] * 5, 0.75, ""),
        (torch.zeros(4, 3, dtype=torch.float64), 0.25, ""),  # ties go to class 0, as argmax does
        (torch.zeros(4, 2), None, "the model's output should have shape (4, 3), got (4, 2)"),
        (torch.full((4, 3), math.nan), None, "the model's output has non-finite or non-float values"),
        (torch.zeros(4, 3, dtype=torch.int64), None, "the model's output has non-finite or non-float values"),
        ((torch.zeros(4, 3),), None, "the model's output should be a tensor of shape (4, 3), got a tuple of 1 items"),
    ],
)
def test_accuracy_is_computed_from_logits(logits: Any, expected: float | None, why: str) -> None:
    assert accuracy(logits, LABELS, 3) == (expected, why)


@pytest.mark.parametrize("value, credit", [(1.0, 1.0), (0.95, 1.0), (0.949, 0.5), (0.5, 0.5), (0.499, None), (0.0, None)])
def test_tiers_best_first(value: float, credit: float | None) -> None:
    tiers = TrainingOptions.model_validate({"tiers": list(reversed(TIERS))}).tiers  # given worst first
    tier = credit_for(value, tiers)
    assert (tier.credit if tier else None) == credit


@pytest.mark.parametrize(
    "requested, worker, used",
    [("auto", "cpu", "cpu"), ("auto", "cuda", "cuda"), ("cpu", "cuda", "cpu"), ("cuda", "cuda", "cuda")],
)
def test_resolve_device(requested: str, worker: str, used: str) -> None:
    assert resolve_device(requested, worker) == used


@pytest.mark.parametrize("requested, worker", [("cuda", "cpu"), ("tpu", "cpu")])
def test_resolve_device_refuses(requested: str, worker: str) -> None:
    with pytest.raises(GraderError):
        resolve_device(requested, worker)


def test_data_is_seeded_and_in_range() -> None:
    recipe = DataRecipe(n=64, shape=(1, 28, 28), classes=10, seed=7)
    images, labels = make_data(recipe, seed=0)
    again, same_labels = make_data(recipe, seed=99)  # the recipe's seed wins over the rubric's
    assert torch.equal(images, again) and torch.equal(labels, same_labels)
    assert images.shape == (64, 1, 28, 28) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert labels.dtype == torch.int64 and set(labels.tolist()) <= set(range(10))
    other, _ = make_data(DataRecipe(n=64, seed=None), seed=1)
    assert not torch.equal(images, other)


@pytest.mark.parametrize(
    "options",
    [
        {},  # tiers are required
        {"tiers": []},
        {"tiers": [{"min": 1.5, "credit": 1.0}]},
        {"tiers": TIERS, "budget": 0},
        {"tiers": TIERS, "metric": "loss"},
        {"tiers": TIERS, "epoch": 3},  # a typo
    ],
)
def test_options_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrainingOptions.model_validate(options)
