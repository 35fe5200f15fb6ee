"""The `forbid` check: static detection of forbidden APIs in an answer and the helpers it reaches."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from grader.checks import get_kind
from grader.checks.base import CheckContext
from grader.checks.forbid import (
    DYNAMIC,
    PRESETS,
    ForbidCheck,
    FunctionNotFound,
    Violation,
    find_violations,
    forbid_outcome,
)
from grader.results import Status
from grader.rubric.schema import Question, QuestionSpec
from grader.sources.load import Cell, Submission, load_submission

AUTOGRAD = ["autograd"]


def py_submission(tmp_path: Path, source: str) -> Submission:
    """A .py submission as the loader makes it: one cell per statement, line numbers those of the file."""
    path = tmp_path / "student.py"
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return load_submission(path)


def notebook(tmp_path: Path, cells: list[tuple[str, str]]) -> Submission:
    """A notebook of (cell_type, source) cells, written to disk and loaded."""
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": textwrap.dedent(src).lstrip("\n"),
             **({"outputs": [], "execution_count": None} if kind == "code" else {})}
            for i, (kind, src) in enumerate(cells)
        ],
    }
    path = tmp_path / "student.ipynb"
    path.write_text(json.dumps(nb))
    return load_submission(path)


def summary(violations: list[Violation]) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(v.line, v.api, v.via) for v in violations]


# Each row: id, .py source, analysed function, expected [(line, api, via)] in report order.
VIOLATIONS = [
    (
        "direct call",
        """
        import torch

        def conv1d_grad_W(x, W, stride, grad_y):
            y = conv1d_forward(x, W, stride)
            return torch.autograd.grad(y, W, grad_y)[0]
        """,
        "conv1d_grad_W",
        [(5, "torch.autograd.grad", ("conv1d_grad_W",))],
    ),
    (
        "through a helper",
        """
        import torch

        def _grad(y, W, g):
            return torch.autograd.grad(y, W, g)

        def conv1d_grad_W(x, W, stride, grad_y):
            return _grad(x @ W, W, grad_y)[0]
        """,
        "conv1d_grad_W",
        [(4, "torch.autograd.grad", ("conv1d_grad_W", "_grad"))],
    ),
    (
        "through two helpers",
        """
        import torch

        def conv1d_grad_W(x, W, stride, grad_y):
            return outer(x, W, grad_y)

        def outer(x, W, g):
            y = x * W
            return inner(y, W, g)

        def inner(y, W, g):
            y.backward(g)
            return W.grad
        """,
        "conv1d_grad_W",
        [(11, ".backward", ("conv1d_grad_W", "outer", "inner")), (12, ".grad", ("conv1d_grad_W", "outer", "inner"))],
    ),
    (
        "aliased from-import",
        """
        from torch.autograd.functional import jacobian as j

        def attention_rnn_jacobian(x, Q, K, V, t):
            return j(lambda h: step(x, h), x[t - 2])
        """,
        "attention_rnn_jacobian",
        [(4, "torch.autograd.functional.jacobian", ("attention_rnn_jacobian",))],
    ),
    (
        "functional as F",
        """
        import torch
        import torch.nn.functional as F

        def conv1d_forward(x, W, stride):
            h = F.relu(x)
            return F.conv1d(h[None], W, stride=stride)[0]
        """,
        "conv1d_forward",
        [(6, "torch.nn.functional.conv1d", ("conv1d_forward",))],
    ),
    (
        "from torch.nn import functional as F",
        """
        from torch.nn import functional as F

        def conv1d_forward(x, W, stride):
            return F.conv_transpose1d(x, W)
        """,
        "conv1d_forward",
        [(4, "torch.nn.functional.conv_transpose1d", ("conv1d_forward",))],
    ),
    (
        "from torch import autograd",
        """
        from torch import autograd

        def f(x):
            return autograd.grad(x.sum(), x)
        """,
        "f",
        [(4, "torch.autograd.grad", ("f",))],
    ),
    (
        "torch.func.grad imported by name",
        """
        from torch.func import grad

        def f(x):
            return grad(lambda z: z.sum())(x)
        """,
        "f",
        [(4, "torch.func.grad", ("f",))],
    ),
    (
        "import torch.autograd",
        """
        import torch.autograd

        def f(x):
            return torch.autograd.grad(x.sum(), x)
        """,
        "f",
        [(4, "torch.autograd.grad", ("f",))],
    ),
    (
        "import torch as t",
        """
        import torch as t

        def f(x):
            return t.func.jacrev(g)(x)
        """,
        "f",
        [(4, "torch.func.jacrev", ("f",))],
    ),
    (
        "torch.vmap and functorch",
        """
        import torch
        import functorch

        def f(x):
            a = torch.vmap(g)(x)
            return functorch.jacrev(g)(a)
        """,
        "f",
        [(5, "torch.vmap", ("f",)), (6, "functorch.jacrev", ("f",))],
    ),
    (
        "top-level convolution ops and modules",
        """
        import torch
        from torch import nn

        def f(x, W):
            y = torch.conv1d(x, W)
            return nn.Conv2d(1, 1, 3)(y)
        """,
        "f",
        [(5, "torch.conv1d", ("f",)), (6, "torch.nn.Conv2d", ("f",))],
    ),
    (
        ".backward() and .grad",
        """
        def f(x, W):
            W.requires_grad_(True)
            (x @ W).sum().backward()
            g = W.grad
            W.grad.zero_()
            return g
        """,
        "f",
        [(3, ".backward", ("f",)), (4, ".grad", ("f",)), (5, ".grad", ("f",))],
    ),
    (
        "torch.Tensor.backward(y)",
        """
        import torch

        def f(y):
            torch.Tensor.backward(y)
        """,
        "f",
        [(4, ".backward", ("f",))],
    ),
    (
        "getattr on a module",
        """
        import torch

        def f(y, W):
            ag = getattr(torch, "autograd")
            return ag.functional.jacobian(y, W)
        """,
        "f",
        [(4, DYNAMIC, ("f",))],
    ),
    (
        "getattr of backward",
        """
        def f(y):
            getattr(y, "backward")()
        """,
        "f",
        [(2, DYNAMIC, ("f",))],
    ),
    (
        "getattr with a computed name on torch",
        """
        import torch

        def f(y):
            return getattr(torch, "auto" + "grad")
        """,
        "f",
        [(4, DYNAMIC, ("f",))],
    ),
    (
        "eval, exec and __import__",
        """
        def f(y):
            a = eval("y.sum()")
            exec("b = 1")
            return __import__("torch")
        """,
        "f",
        [(2, DYNAMIC, ("f",)), (3, DYNAMIC, ("f",)), (4, DYNAMIC, ("f",))],
    ),
    (
        "importlib.import_module",
        """
        import importlib

        def f(y):
            return importlib.import_module("torch.func").vjp(y, y)
        """,
        "f",
        [(4, DYNAMIC, ("f",))],
    ),
    (
        "globals, vars and __builtins__ lookups",
        """
        import torch

        def f(y):
            a = globals()["torch"]
            b = vars(torch)["autograd"]
            c = __builtins__["eval"]
            return a, b, c
        """,
        "f",
        [(4, DYNAMIC, ("f",)), (5, DYNAMIC, ("f",)), (6, DYNAMIC, ("f",))],
    ),
    (
        "helper defined after the function, in a later statement",
        """
        def f(x):
            return late(x)

        import torch

        def late(x):
            return torch.func.vjp(g, x)
        """,
        "f",
        [(7, "torch.func.vjp", ("f", "late"))],
    ),
    (
        "recursion and mutual recursion",
        """
        import torch

        def f(x, n):
            return x if n == 0 else g(f(x, n - 1), n)

        def g(x, n):
            if n < 0:
                return f(x, n)
            return torch.autograd.grad(x, x)
        """,
        "f",
        [(9, "torch.autograd.grad", ("f", "g"))],
    ),
    (
        "a method of a class it instantiates",
        """
        import torch

        class Grad:
            def __init__(self, W):
                self.W = W

            def of(self, y):
                y.backward()
                return self.W.grad

        def f(x, W):
            return Grad(W).of(x @ W)
        """,
        "f",
        [(8, ".backward", ("f", "Grad.of")), (9, ".grad", ("f", "Grad.of"))],
    ),
    (
        "a class inheriting from an autograd Function",
        """
        import torch

        class MyConv(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x

        def f(x):
            return MyConv.apply(x)
        """,
        "f",
        [(3, "torch.autograd.Function", ("f", "MyConv"))],
    ),
    (
        "nested def",
        """
        import torch

        def f(x):
            def inner(z):
                return torch.func.grad(h)(z)
            return inner(x)
        """,
        "f",
        [(5, "torch.func.grad", ("f",))],
    ),
    (
        "lambda assigned to a top-level name",
        """
        import torch

        vjp = lambda fn, x: torch.func.vjp(fn, x)

        def f(x):
            return vjp(h, x)
        """,
        "f",
        [(3, "torch.func.vjp", ("f", "vjp"))],
    ),
    (
        "callback passed by name",
        """
        import torch

        def f(xs):
            return list(map(helper, xs))

        def helper(x):
            x.backward()
        """,
        "f",
        [(7, ".backward", ("f", "helper"))],
    ),
    (
        "import inside the function",
        """
        def f(x):
            import torch.nn.functional as G
            return G.conv2d(x, x)
        """,
        "f",
        [(3, "torch.nn.functional.conv2d", ("f",))],
    ),
    (
        "top-level alias of a module",
        """
        import torch

        ag = torch.autograd

        def f(y, W):
            return ag.grad(y, W)
        """,
        "f",
        [(6, "torch.autograd.grad", ("f",))],
    ),
    (
        "table of functions at top level",
        """
        import torch

        OPS = {"g": torch.autograd.grad}

        def f(y, W):
            return OPS["g"](y, W)
        """,
        "f",
        [(3, "torch.autograd.grad", ("f", "OPS"))],
    ),
    (
        "the last definition is the one graded",
        """
        import torch

        def f(x):
            return x

        def f(x):
            return torch.autograd.grad(x, x)
        """,
        "f",
        [(7, "torch.autograd.grad", ("f",))],
    ),
    (
        "the answer is itself an import",
        """
        from torch.nn.functional import conv1d as conv1d_forward
        """,
        "conv1d_forward",
        [(1, "torch.nn.functional.conv1d", ("conv1d_forward",))],
    ),
]


@pytest.mark.parametrize(("source", "function", "expected"), [r[1:] for r in VIOLATIONS], ids=[r[0] for r in VIOLATIONS])
def test_violations_are_found_with_their_lines(tmp_path: Path, source: str, function: str, expected: list) -> None:
    sub = py_submission(tmp_path, source)
    assert summary(find_violations(sub, function, AUTOGRAD)) == expected


CLEAN = [
    (
        "unfold, einsum and matmul",
        """
        import torch
        import torch.nn.functional as F

        def conv1d_forward(x, W, stride):
            F_, C, K = W.shape
            patches = x.unfold(1, K, stride)  # (C, N_out, K)
            return torch.einsum("crk,fck->fr", patches, W)

        def conv1d_grad_W(x, W, stride, grad_y):
            patches = x.unfold(1, W.shape[2], stride)
            return torch.einsum("fr,crk->fck", grad_y, patches)

        def conv1d_grad_x(x, W, stride, grad_y):
            grad = torch.zeros_like(x)  # a local variable named grad is not `.grad`
            cols = (grad_y.T @ W.reshape(W.shape[0], -1)).reshape(-1, W.shape[1], W.shape[2])
            for r in range(cols.shape[0]):
                grad[:, r * stride: r * stride + W.shape[2]] += cols[r]
            return torch.relu(grad) * 0 + grad
        """,
        ["conv1d_forward", "conv1d_grad_W", "conv1d_grad_x"],
    ),
    (
        "harmless look-alikes",
        """
        import re
        import torch
        import torch.nn.functional as F
        from torch.func import grad

        def f(x, grads):
            grad = x * 2  # shadows the import: a local variable
            cache = {"grad": grad, "backward": 1}
            y = torch.zeros(3, requires_grad=False)
            with torch.no_grad():
                z = F.relu(x) + F.unfold(x[None, None], 2).sum()
            act = getattr(F, "relu")
            pat = re.compile("grad")
            return cache["grad"] + grads.grad_fn_name + act(z) + y.requires_grad
        """,
        ["f"],
    ),
    (
        "a helper that is never called",
        """
        import torch

        def check_with_autograd(x):
            return torch.autograd.grad(x, x)

        def f(x):
            return x * 2

        f(torch.ones(2)).backward()  # top-level code is not part of the answer
        """,
        ["f"],
    ),
    (
        "only the last definition counts",
        """
        import torch

        def f(x):
            return torch.autograd.grad(x, x)

        def f(x):
            return x
        """,
        ["f"],
    ),
]


@pytest.mark.parametrize(("source", "functions"), [r[1:] for r in CLEAN], ids=[r[0] for r in CLEAN])
def test_clean_solutions_pass(tmp_path: Path, source: str, functions: list[str]) -> None:
    sub = py_submission(tmp_path, source)
    for name in functions:
        assert find_violations(sub, name, AUTOGRAD) == [], name


def test_notebook_cells_lines_and_imports_in_another_cell(tmp_path: Path) -> None:
    sub = notebook(
        tmp_path,
        [
            ("markdown", "# Homework"),
            ("code", "import torch\nfrom torch.autograd.functional import jacobian as jac\n"),
            ("markdown", "Answer q1.4: see below"),
            ("code", "def conv1d_grad_W(x, W, stride, grad_y):\n    return _helper(x, W)\n"),
            ("code", "this is not python (\n"),  # skipped: it does not parse
            ("code", "%matplotlib inline\n\ndef _helper(x, W):\n    J = jac(f, W)\n    return J\n"),
        ],
    )
    violations = find_violations(sub, "conv1d_grad_W", AUTOGRAD)
    assert [(v.cell, v.line, v.col, v.api, v.text, v.via) for v in violations] == [
        (3, 4, 8, "torch.autograd.functional.jacobian", "J = jac(f, W)", ("conv1d_grad_W", "_helper")),
    ]


def test_rubric_authors_can_name_their_own_apis(tmp_path: Path) -> None:
    sub = py_submission(
        tmp_path,
        """
        import torch

        def f(A, b):
            x = torch.linalg.solve(A, b)
            x.backward()
            return torch.autograd.grad(x, A)
        """,
    )
    assert summary(find_violations(sub, "f", ["torch.linalg.solve"])) == [(4, "torch.linalg.solve", ("f",))]
    assert summary(find_violations(sub, "f", [".backward"])) == [(5, ".backward", ("f",))]
    assert find_violations(sub, "f", ["torch.linalg.solver"]) == []  # prefixes match whole components


def test_preset_spells_attribute_bans_like_rubric_entries() -> None:
    assert {".backward", ".grad", "torch.autograd", "torch.func"} <= set(PRESETS["autograd"])
    assert "torch.nn.functional.unfold" not in PRESETS["autograd"]


def test_missing_function_raises(tmp_path: Path) -> None:
    sub = py_submission(tmp_path, "def g():\n    pass\n")
    with pytest.raises(FunctionNotFound):
        find_violations(sub, "f", AUTOGRAD)


# ---------------------------------------------------------------------------------------------- the check


def context(sub: Submission, answer: str | None = "conv1d_grad_W", **options: object) -> CheckContext:
    spec = QuestionSpec(id="q1.4", title="grad W", points=3, kind="forbid", answer=answer, **options)
    question = Question(spec, ForbidCheck.Options.model_validate(spec.options))
    return CheckContext(rubric=None, question=question, submission=sub, session=None, reference=None)  # type: ignore[arg-type]


HELPER_SOURCE = """
import torch

def _grad(y, W):
    g = torch.autograd.grad(y, W)
    return g

def conv1d_grad_W(x, W, stride, grad_y):
    return _grad(x @ W, W)
"""


def test_check_fails_with_a_message_naming_the_line(tmp_path: Path) -> None:
    sub = py_submission(tmp_path, HELPER_SOURCE)
    outcome = get_kind("forbid").run(context(sub))
    assert outcome.resolved_status is Status.FAILED
    assert outcome.message == (
        "conv1d_grad_W calls torch.autograd.grad via helper `_grad` (line 4: `g = torch.autograd.grad(y, W)`); "
        "the handout forbids autograd here"
    )
    assert outcome.details["violations"] == [
        {"cell": 1, "line": 4, "col": 8, "api": "torch.autograd.grad", "text": "g = torch.autograd.grad(y, W)",
         "via": ["conv1d_grad_W", "_grad"], "called": True, "note": ""}
    ]
    json.dumps(outcome.details)  # plain data


def test_check_message_in_a_notebook_names_the_cell() -> None:
    sub = Submission(
        Path("s.ipynb"), "s",
        (Cell(0, "import torch"), Cell(1, "def f(y):\n    y.backward()\n    z = 1\n    return getattr(z, 'grad')\n")),
    )
    outcome = ForbidCheck().run(context(sub, answer="f"))
    assert outcome.message == (
        "f calls .backward() (cell 1, line 2: `y.backward()`); the handout forbids autograd here "
        "(1 more use in the details)"
    )
    assert [v["api"] for v in outcome.details["violations"]] == [".backward", DYNAMIC]


def test_check_passes_and_reports_missing_functions(tmp_path: Path) -> None:
    sub = py_submission(tmp_path, "import torch\n\ndef conv1d_grad_W(x, W, stride, grad_y):\n    return x.unfold(0, 2, 1)\n")
    check = ForbidCheck()
    assert check.run(context(sub)).message == "uses none of the forbidden APIs"
    assert check.run(context(sub)).resolved_status is Status.PASSED
    missing = check.run(context(sub, function="conv1d_grad_x"))
    assert missing.resolved_status is Status.ERROR and missing.message == "`conv1d_grad_x` is not defined"


def test_check_options() -> None:
    assert ForbidCheck.Options().apis == ["autograd"]
    assert ForbidCheck.Options(apis=["torch.linalg"], function="g").function == "g"
    with pytest.raises(ValueError):
        ForbidCheck.Options.model_validate({"api": ["autograd"]})  # typo'd key
    with pytest.raises(ValueError):
        ForbidCheck.Options.model_validate({"apis": []})


def test_forbid_outcome_gate(tmp_path: Path) -> None:
    bad = py_submission(tmp_path, HELPER_SOURCE)
    gate = forbid_outcome(context(bad), ["autograd"])
    assert gate is not None and gate.resolved_status is Status.FAILED and "line 4" in gate.message
    assert forbid_outcome(context(bad), []) is None
    assert forbid_outcome(context(bad, answer="conv1d_grad_x"), ["autograd"]) is None  # left to the question's check
    clean = py_submission(tmp_path, "def conv1d_grad_W(x, W, stride, grad_y):\n    return x\n")
    assert forbid_outcome(context(clean), ["autograd"]) is None


def test_star_imports_resolve_only_names_the_module_exports(tmp_path: Path) -> None:
    sub = py_submission(
        tmp_path,
        """
        from torch.autograd import *
        from torch import *

        def f(x, model):
            a = grad(x, x)
            b = conv2d(x, x)
            c = relu(x) + len(range(3))
            return model.eval()
        """,
    )
    assert summary(find_violations(sub, "f", AUTOGRAD)) == [(5, "torch.autograd.grad", ("f",)), (6, "torch.conv2d", ("f",))]
