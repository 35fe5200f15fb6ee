"""Extra worker operations used by some check kinds (training runs, models built from a spec, items of kept
values for chained calls).

Each op is `fn(worker, request) -> reply`, its request the op's record of grader.worker.messages and, like everything in the worker, returns plain data only.
"""
from __future__ import annotations

from typing import Any, Callable

from grader.worker import ops_chain, ops_integrity, ops_models, ops_training
from grader.worker.messages import ReplyFields, TrainRun

OPS: dict[str, Callable[[Any, Any], ReplyFields]] = {
    TrainRun.op: ops_training.op_train_run,
    **ops_models.OPS,
    **ops_chain.OPS,
    **ops_integrity.OPS,
}
