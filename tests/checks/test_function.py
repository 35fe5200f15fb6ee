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


# -- side effects in the student's words ------------------------------------------------------------------------

SGD_REFERENCE = '''
import torch

def sgd_step(params, grads, lr):
    return {k: params[k] - lr * grads[k] for k in params}

def cases_sgd(gen):
    params = {"W1": torch.randn(2, 3, generator=gen, dtype=torch.float64), "b1": torch.randn(3, generator=gen, dtype=torch.float64)}
    grads = {"W1": torch.randn(2, 3, generator=gen, dtype=torch.float64), "b1": torch.randn(3, generator=gen, dtype=torch.float64)}
    return [{"params": params, "grads": grads, "lr": 0.1}]
'''

SGD_RUBRIC = """
assignment: sgd
reference: reference.py
limits: {cell_timeout: 5, call_timeout: 5}
questions:
  - {id: q1.1, title: sgd step, points: 1, kind: function, answer: sgd_step, cases: cases_sgd, pure: true}
"""


@pytest.mark.parametrize(
    "body, said",
    [
        ("def sgd_step(parameters, gradients, lr):\n    for k in parameters:\n"
         "        parameters[k] = parameters[k] - lr * gradients[k]\n    return parameters",
         "`parameters['W1']` was rebound: your function assigns to a key of the dict `parameters` it was given, "
         "which is the caller's dict (copy it first)"),
        ("def sgd_step(p, g, lr):\n    for k in p:\n        p[k] -= lr * g[k]\n    return dict(p)",
         "`p['W1']` was changed in place"),
    ],
)
def test_a_side_effect_names_the_students_argument_and_what_happened(tmp_path, body, said):
    import contextlib
    import io

    import torch

    from grader.grading.submission import grade_submission
    from grader.rubric.schema import load_rubric

    (tmp_path / "reference.py").write_text(SGD_REFERENCE)
    (tmp_path / "rubric.yaml").write_text(SGD_RUBRIC)
    (tmp_path / "student.py").write_text("import torch\n\n" + body + "\n")
    (q,) = grade_submission(load_rubric(tmp_path / "rubric.yaml"), tmp_path / "student.py").questions
    assert q.score == 0
    assert f"{said}; the handout requires inputs to be left unchanged" in q.message
    snippet = q.details["reproduce"]["snippet"]
    assert "    print('params', 'after the call:', params)" in snippet  # the mutation, not only the return value
    namespace: dict[str, object] = {"torch": torch}
    exec(body, namespace)  # noqa: S102 - the test's own student code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(snippet, namespace)  # noqa: S102 - the grader's own snippet, pasted as a student would
    assert printed.getvalue().startswith("params after the call: {'W1': tensor(")
