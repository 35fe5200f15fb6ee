"""The worker side of a `training` check: build the student's model, train it, return what it predicts.

Runs in the student's process, so it computes no verdict: it returns the losses the student's `train` gave and
the model's logits on the training images; the grader measures accuracy against labels it generated itself.
Everything is seeded here, end to end, so that grading the same submission twice gives the same logits.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from grader.worker import codec
from grader.worker.messages import ReplyFields, TrainRun
from grader.worker.running import CellTimeout, describe, seed_everything, student_frames, time_limit


def op_train_run(worker: Any, request: TrainRun) -> ReplyFields:
    factory, train = request.factory, request.train
    for name in (factory, train):
        if name not in worker.namespace:
            return {"ok": False, "missing": True, "error": f"`{name}` is not defined"}
    start = time.perf_counter()
    try:
        with time_limit.of(request), deterministic(request.seed):
            value = _train_and_predict(worker.namespace[factory], worker.namespace[train], request)
    except CellTimeout as exc:
        return {"ok": False, "timed_out": True, "limit": exc.limit, "error": "the training run ran past its time budget"}
    except SystemExit as exc:
        return {"ok": False, "error": f"the training run called sys.exit({exc.code!r})"}
    except BaseException as exc:  # noqa: BLE001 - the student's failure, reported as such
        return {"ok": False, "error": describe(exc), "traceback": student_frames(exc)}
    return {"ok": True, "duration": time.perf_counter() - start, "value": codec.encode(value)}


def _train_and_predict(factory: Any, train: Any, request: TrainRun) -> dict[str, Any]:
    import torch

    device = torch.device(request.device)
    images = codec.decode(request.images).to(device)
    labels = codec.decode(request.labels).to(device)
    pristine = images.clone()  # logits are taken on these: `train` may alter the tensors it is given
    start = time.perf_counter()
    model = factory()
    model.to(device)
    losses = train(model, images, labels, request.epochs, request.seed)
    train_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        logits = model(pristine)
    return {"losses": losses, "logits": logits, "device": str(device), "train_seconds": train_seconds}


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed every generator a training run may draw from and ask for deterministic kernels; the global
    switches go back afterwards, so the submission's other questions run as they would on their own."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts; needed on CUDA
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    seed_everything(seed)
    torch.cuda.manual_seed_all(seed)  # lazy: a no-op without CUDA
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
