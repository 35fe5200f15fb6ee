"""`training`: a seeded training run of the student's model, scored by a metric the grader computes.

The grader draws the data from a fixed seed, sends it to the worker as plain tensors, and asks the worker
(`grader.worker.ops_training`) to build the model with the student's factory, train it with the student's
`train`, and return the per-epoch losses and the model's logits on the training images.  The accuracy comes
from those logits and the labels the grader generated: nothing the worker says about its own accuracy counts.
A run past its time budget is stopped (softly by an alarm in the worker, hard by the session from outside).
"""
from __future__ import annotations

import math
import time
from numbers import Real
from typing import Any

import numpy as np
import torch

from grader.checks.base import CheckContext
from grader.checks.details.training import TrainingDetails as TrainingDetails
from grader.checks.support.compare import describe, is_array, to_numpy
from grader.errors import GraderError
from grader.results import Outcome
from grader.rubric.options import DataRecipe, Tier, TrainingOptions
from grader.worker import codec
from grader.worker.messages import TrainRun


def make_data(recipe: DataRecipe, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uniform in [0, 1] (float32) and uniformly random labels (int64), drawn in the grader."""
    gen = torch.Generator().manual_seed(recipe.seed if recipe.seed is not None else seed)
    images = torch.rand(recipe.n, *recipe.shape, generator=gen, dtype=torch.float32)
    labels = torch.randint(0, recipe.classes, (recipe.n,), generator=gen, dtype=torch.int64)
    return images, labels


def resolve_device(requested: str, worker_device: str) -> str:
    """The CLI's --device ('auto', 'cpu', 'cuda') against what the worker reported it can use."""
    if requested == "auto":
        return worker_device
    if requested == "cuda" and worker_device != "cuda":
        raise GraderError("--device cuda was asked for, but the student's worker sees no CUDA device")
    if requested not in ("cpu", "cuda"):
        raise GraderError(f"unknown device '{requested}' (use auto, cpu or cuda)")
    return requested


def accuracy(logits: Any, labels: torch.Tensor, classes: int) -> tuple[float | None, str]:
    """Training accuracy from the returned logits, or why they cannot be scored."""
    want = (len(labels), classes)
    if not is_array(logits):
        return None, f"the model's output should be a tensor of shape {want}, got {describe(logits)}"
    scores = to_numpy(logits)
    if tuple(scores.shape) != want:
        return None, f"the model's output should have shape {want}, got {tuple(scores.shape)}"
    if scores.dtype.kind != "f" or not np.all(np.isfinite(scores)):
        return None, "the model's output has non-finite or non-float values"
    return float(np.mean(scores.argmax(axis=1) == labels.numpy())), ""


def losses_problem(losses: Any, epochs: int) -> str | None:
    """What is wrong with the loss list `train` returned, if anything."""
    if not isinstance(losses, (list, tuple)):
        return f"`train` should return a list of {epochs} floats, got {describe(losses)}"
    if len(losses) != epochs:
        return f"`train` returned {len(losses)} losses for {epochs} epochs"
    for i, loss in enumerate(losses):
        if isinstance(loss, bool) or not isinstance(loss, Real):
            return f"loss {i} is {describe(loss)}, not a float (use `.item()`)"
        if not _finite(loss):
            return f"loss {i} is {loss}" if isinstance(loss, float) else f"loss {i} is {describe(loss)}, too large"
    return None


def _finite(x: Real) -> bool:
    """math.isfinite, which raises OverflowError for an integer too large for a float (a student's 10**400)."""
    try:
        return math.isfinite(x)
    except (OverflowError, TypeError, ValueError):
        return False


def _curve(losses: Any) -> list[float | None] | None:
    """The loss curve for the report: numbers (and one-element tensors) kept, anything else as a gap."""
    if not isinstance(losses, (list, tuple)):
        return None
    return [_point(x) for x in losses]


def _point(x: Any) -> float | None:
    if is_array(x) and to_numpy(x).size == 1 and to_numpy(x).dtype.kind == "f":
        x = float(to_numpy(x).reshape(-1)[0])
    if isinstance(x, bool) or not isinstance(x, Real) or not _finite(x):
        return None
    return float(x)


def credit_for(value: float, tiers: list[Tier]) -> Tier | None:
    return next((t for t in tiers if value >= t.min), None)


def diagnosis(losses: list[float | None], classes: int | None, accuracy: float | None) -> str | None:
    """What the loss curve says about a run that earned little, in one line a student can act on."""
    finite = [x for x in losses if x is not None]
    if not finite:
        return None
    if len(finite) < len(losses):
        return "the loss became NaN or infinite: the learning rate is probably too high (or a log of 0 somewhere)"
    first, last = finite[0], finite[-1]
    chance = math.log(classes) if classes and classes > 1 else None
    if chance is not None and abs(last - chance) < 0.1 * chance and abs(first - last) < 0.1 * chance:
        return (f"the loss stayed at chance level (ln {classes} ≈ {chance:.2f}): the model did not learn. "
                "Check that the optimizer steps the model's parameters, that gradients are zeroed each step, "
                "and the learning rate")
    if last > first * 1.05:
        return "the loss went up: the learning rate is probably too high, or the loss's sign is wrong"
    if classes and chance is not None and accuracy is not None and last < 0.5 * chance and accuracy < 1.5 / classes:
        return ("the loss fell but the grader's accuracy is near chance: is the model in eval() mode the same "
                "model you trained, and are the labels used as given?")
    if last > 0.7 * first:
        return "the loss fell only a little: train longer, raise the learning rate, or make the model larger"
    return None


class TrainingCheck:
    Options = TrainingOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(TrainingOptions)
        images, labels = make_data(opts.data, ctx.case_seed())
        device = resolve_device(ctx.device, ctx.session.device)
        request = TrainRun(
            factory=opts.factory,
            train=opts.train,
            images=codec.encode(images),
            labels=codec.encode(labels),
            epochs=opts.epochs,
            seed=opts.train_seed,
            device=device,
            timeout=opts.budget,
        )
        start = time.perf_counter()
        result = ctx.session.request_call(request, opts.budget)
        details: dict[str, Any] = {
            "tiers": [t.model_dump() for t in opts.tiers],
            "device": device,
            "classes": opts.data.classes,
            "train_seconds": round(time.perf_counter() - start, 3),  # the grader's clock, not the worker's
        }
        if result.missing:
            return Outcome.error(result.error)
        if result.time_up:
            return Outcome.error(result.failure_message(), **details)
        if result.timed_out:
            message = f"the training run was stopped: {result.failure_message()}; no credit"
            return Outcome.failed(message, timed_out=True, **details)
        if not result.ok:
            return Outcome.failed(f"the training run failed: {result.failure_message()}", traceback=result.traceback, **details)
        return _score(opts, result.value if isinstance(result.value, dict) else {}, labels, details)


def _score(opts: TrainingOptions, reply: dict[Any, Any], labels: torch.Tensor, details: dict[str, Any]) -> Outcome:
    losses = reply.get("losses")
    details = {"losses": _curve(losses), **details}
    acc, why = accuracy(reply.get("logits"), labels, opts.data.classes)
    if acc is None:
        return Outcome.failed(why, **details)
    details["accuracy"] = acc
    tier = credit_for(acc, opts.tiers)
    credit = tier.credit if tier else 0.0
    if tier:
        verdict = f"at least {tier.min:g}, {tier.credit:.0%} of the credit"
    else:
        verdict = f"below {opts.tiers[-1].min:g}, no credit"
    message = f"training {opts.metric} {acc:.4f}: {verdict}"
    cause = diagnosis(details["losses"] or [], opts.data.classes, acc) if credit < 1 else None
    if cause:
        details["diagnosis"] = cause
        message += f"; {cause}"
    problem = losses_problem(losses, opts.epochs)
    if problem:
        # The handout grades the metric; a malformed loss list is told, and costs only what the rubric says.
        cost = min(opts.losses_penalty, credit)
        note = f"costs {cost:.0%} of the credit" if cost else "this costs no points"
        message += f". The loss list is malformed: {problem} ({note})"
        details["losses_problem"] = problem
        credit -= cost
    return Outcome(credit, message, details)
