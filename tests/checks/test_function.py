"""The function kind: student and reference called on the same seeded inputs; float32 work accepted."""
from __future__ import annotations

import pytest

from tests.conftest import by_id

BASE = "import torch\nimport numpy as np\n"


@pytest.mark.parametrize(
    "body, points, message",
    [
        ("def scale(x, k):\n    return x * k", 2, "correct on all 3 test inputs"),
        ("def scale(inp, factor):\n    return (inp * factor).float()", 2, "correct on all 3 test inputs"),
        ("def scale(x, k):\n    return (x * k).numpy()", 2, "correct on all 3 test inputs"),
        ("def scale(x, k):\n    return x * k + 1e-3", 0, "12 of 12 values differ"),
        ("def scale(x, k):\n    return (x * k).T", 0, "expected shape (3, 4), got shape (4, 3)"),
        ("def scale(x, k):\n    return (x * k).reshape(-1)", 0, "expected shape (3, 4), got shape (12,)"),
        ("def scale(x, k):\n    return float((x * k).sum())", 0, "expected a tensor of shape (3, 4), got float"),
        ("def scale(x, k):\n    return x * 2", 0, "on inputs x=<3x4>, k=1"),
        ("def scale(x, k):\n    raise RuntimeError('not done')", 0, "RuntimeError: not done"),
        ("def scale(x):\n    return x", 0, "TypeError"),
        ("def scale(x, k):\n    return (x * k).half()", 0, "differ"),
    ],
)
def test_function_answers(write_py, grade_mini, body, points, message):
    q = by_id(grade_mini(write_py(BASE + body)), "q2.1")
    assert q.score == points
    assert message in q.message


def test_mismatch_details_name_the_worst_element(write_py, grade_mini):
    source = BASE + "def scale(x, k):\n    y = x * k\n    y[2, 1] += 0.5\n    return y"
    q = by_id(grade_mini(write_py(source)), "q2.1")
    assert q.details["index"] == [2, 1]
    assert q.details["mismatched"] == 1
    assert q.details["expected"] + 0.5 == pytest.approx(q.details["got"])


def test_missing_function_is_an_error_result(write_py, grade_mini):
    q = by_id(grade_mini(write_py(BASE)), "q2.1")
    assert q.status.value == "error"
    assert q.message == "`scale` is not defined"
