"""Extra worker operations used by some check kinds (training runs, models built from a spec, items of kept
values for chained calls).

Each op is `fn(worker, request) -> reply` and, like everything in the worker, returns plain data only.
"""
from __future__ import annotations

from typing import Any, Callable

from grader.worker import ops_chain, ops_integrity, ops_models, ops_training

OPS: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "train_run": ops_training.op_train_run,
    **ops_models.OPS,
    **ops_chain.OPS,
    **ops_integrity.OPS,
}
