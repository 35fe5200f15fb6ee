"""The worker side of a `training` check: build the student's model, train it, return what it predicts.

Runs in the student's process, so it computes no verdict: it returns the losses the student's `train` gave and
the model's logits on the training images; the grader measures accuracy against labels it generated itself.
Everything is seeded here, end to end, so that grading the same submission twice gives the same logits.
"""
from __future__ import annotations

import os
import time
from typing import Any

from grader.worker import codec


def op_train_run(worker: Any, request: dict[str, Any]) -> dict[str, Any]:
    from grader.worker.main import CellTimeout, _describe, _student_frames, _time_limit

    factory, train = str(request["factory"]), str(request["train"])
    for name in (factory, train):
        if name not in worker.namespace:
            return {"ok": False, "missing": True, "error": f"`{name}` is not defined"}
    import torch

    device = torch.device(str(request.get("device", "cpu")))
    images = codec.decode(request["images"]).to(device)
    pristine = images.clone()  # logits are taken on these: `train` may alter the tensors it is given
    labels = codec.decode(request["labels"]).to(device)
    epochs, seed = int(request["epochs"]), int(request["seed"])
    start = time.perf_counter()
    try:
        with _time_limit(float(request["timeout"])):
            seed_all(seed)
            model = worker.namespace[factory]()
            model.to(device)
            losses = worker.namespace[train](model, images, labels, epochs, seed)
            train_seconds = time.perf_counter() - start
            model.eval()
            with torch.no_grad():
                logits = model(pristine)
    except CellTimeout:
        return {"ok": False, "timed_out": True, "error": "the training run ran past its time budget"}
    except SystemExit as exc:
        return {"ok": False, "error": f"the training run called sys.exit({exc.code!r})"}
    except BaseException as exc:  # noqa: BLE001 - the student's failure, reported as such
        return {"ok": False, "error": _describe(exc), "traceback": _student_frames(exc)}
    value = {"losses": losses, "logits": logits, "device": str(device), "train_seconds": train_seconds}
    return {"ok": True, "duration": time.perf_counter() - start, "value": codec.encode(value)}


def seed_all(seed: int) -> None:
    """Seed every generator a training run may draw from, and ask for deterministic kernels."""
    import torch

    from grader.worker.main import seed_everything

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts, needed for determinism
    seed_everything(seed)
    torch.cuda.manual_seed_all(seed)  # lazy: a no-op without CUDA
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
