"""`CheckContext.reference_attr`: a reference's function is called under one lock (slots of a batch are threads of
one process, sharing the reference module); every other value is given as it is."""
from __future__ import annotations

import functools
import inspect
import threading
from types import ModuleType
from typing import Any, cast

import torch

from grader.checks.base import REFERENCE, CheckContext
from grader.rubric.schema import load_rubric
from tests.conftest import DATA


def _context(reference: ModuleType) -> CheckContext:
    rubric = load_rubric(DATA / "mini" / "rubric.yaml")
    return CheckContext(rubric, rubric.questions[0], cast(Any, None), cast(Any, None), reference)


def test_a_reference_function_runs_under_the_lock_and_keeps_its_name_and_signature() -> None:
    seen: list[bool] = []

    def scale(x: torch.Tensor, k: float = 2.0) -> torch.Tensor:
        """Scale x."""
        others_blocked = []
        thread = threading.Thread(target=lambda: others_blocked.append(not REFERENCE.acquire(blocking=False)))
        thread.start()
        thread.join()
        seen.extend(others_blocked)
        return x * k

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    module = ModuleType("reference")
    module.scale = scale  # type: ignore[attr-defined]
    module.half = functools.partial(scale, k=0.5)  # type: ignore[attr-defined]
    module.net = Net()  # type: ignore[attr-defined]
    module.Net = Net  # type: ignore[attr-defined]
    module.weights = torch.ones(2)  # type: ignore[attr-defined]
    ctx = _context(module)

    wrapped = ctx.reference_attr("scale")
    assert wrapped is not scale and wrapped.__name__ == "scale" and wrapped.__doc__ == "Scale x."
    assert torch.equal(wrapped(torch.ones(2)), torch.full((2,), 2.0))
    assert torch.equal(ctx.reference_attr("half")(torch.ones(2)), torch.full((2,), 0.5))
    assert seen == [True, True]  # another thread could not take the lock while the reference ran
    assert list(inspect.signature(wrapped).parameters) == ["x", "k"]  # a case generator's `sizes` is still seen
    # Values the rubric compares are the reference's own objects.
    assert ctx.reference_attr("net") is module.net and ctx.reference_attr("Net") is Net
    assert ctx.reference_attr("weights") is module.weights
