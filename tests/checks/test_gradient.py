"""The gradient kind: hand-written gradients against autograd through the reference forward."""
from __future__ import annotations

import pytest

from tests.conftest import by_id

BASE = "import torch\n"


@pytest.mark.parametrize(
    "body, points, message",
    [
        ("def cube_vjp(x, g):\n    return 3 * x**2 * g", 2, "matches autograd on all 2 test inputs"),
        ("def cube_vjp(x, g):\n    return (3 * x**2 * g).float()", 2, "matches autograd"),
        ("def cube_vjp(x, g):\n    return 3 * x**2", 0, "relative error"),
        ("def cube_vjp(x, g):\n    return (3 * x**2 * g)[None]", 0, "expected shape (1,), got shape (1, 1)"),
        ("def cube_vjp(x, g):\n    return float('nan') * x", 0, "non-finite"),
    ],
)
def test_vector_jacobian_products(write_py, grade_mini, body, points, message):
    q = by_id(grade_mini(write_py(BASE + body)), "q3.1")
    assert q.score == points
    assert message in q.message


@pytest.mark.parametrize(
    "body, points",
    [
        ("def cube_jac(x):\n    return torch.diag(3 * x**2)", 1),
        ("def cube_jac(x):\n    return 3 * x**2", 0),
        ("def cube_jac(x):\n    return torch.diag(3 * x**2).T + 1e-3", 0),
    ],
)
def test_full_jacobians(write_py, grade_mini, body, points):
    assert by_id(grade_mini(write_py(BASE + body)), "q3.2").score == points


def test_a_wrong_reference_is_caught_by_finite_differences(tmp_path, write_py):
    from grader.errors import GraderError
    from grader.grading.submission import grade_submission
    from grader.rubric.schema import load_rubric

    (tmp_path / "ref.py").write_text(
        "import torch\n"
        "class Cube(torch.autograd.Function):\n"
        "    @staticmethod\n    def forward(ctx, x):\n        ctx.save_for_backward(x)\n        return x**3\n"
        "    @staticmethod\n    def backward(ctx, g):\n        (x,) = ctx.saved_tensors\n        return 2 * x**2 * g\n"
        "def cube(x):\n    return Cube.apply(x)\n"
        "def cases(gen):\n    return [{'x': torch.randn(3, generator=gen, dtype=torch.float64), 'g': torch.ones(3, dtype=torch.float64)}]\n"
    )
    (tmp_path / "r.yaml").write_text(
        "assignment: wrongref\nreference: ref.py\nquestions:\n"
        "  - {id: q1.1, title: t, points: 1, kind: gradient, answer: f, cases: cases, forward: cube, wrt: x, upstream: g}\n"
    )
    from grader.grading.submission import preflight
    from grader.results import Status

    rubric = load_rubric(tmp_path / "r.yaml")
    with pytest.raises(GraderError, match="r.yaml: q1.1: the reference's autograd gradient disagrees with finite differences"):
        preflight(rubric)  # `grader grade` stops here, before any student code runs
    # Graded anyway (grade_submission does not preflight), the question is the grader's failure, not the student's.
    result = grade_submission(rubric, write_py("def f(x, g):\n    return x"))
    assert [q.status for q in result.questions] == [Status.GRADER_ERROR]


def test_the_reference_gradients_are_computed_once_per_process(write_py, grade_mini, monkeypatch):
    # Every student of a question gets the same seeded cases: autograd and the finite-difference check on them run
    # for the first student only; the others compare against copies (a shrunk case is computed on its own).
    from grader.checks import gradient

    calls = []
    real = gradient.expected_gradient
    monkeypatch.setattr(gradient, "expected_gradient", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(gradient, "_GRADIENTS", type(gradient._GRADIENTS)())
    wrong = write_py(BASE + "def cube_vjp(x, g):\n    return 3 * x**2")
    assert by_id(grade_mini(wrong), "q3.1").score == 0  # seeded cases computed, then its failing case shrunk
    first = len(calls)
    right = write_py(BASE + "def cube_vjp(x, g):\n    return 3 * x**2 * g\n"
                            "def cube_jac(x):\n    return torch.diag(3 * x**2)\n")
    for _ in range(2):
        result = grade_mini(right)
        assert (by_id(result, "q3.1").score, by_id(result, "q3.2").score) == (2, 1)
    assert len(calls) == first
