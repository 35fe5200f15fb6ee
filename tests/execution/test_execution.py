"""Running student code apart: failing, hanging and worker-killing cells cost only themselves."""
from __future__ import annotations

import pytest

from tests.conftest import by_id, scores

CORRECT = """
import torch
answer = 42
pair = (5, 2)
flag = False
ratio = 0.25
def scale(x, k):
    return x * k
def cube_vjp(x, g):
    return 3 * x**2 * g
def cube_jac(x):
    return torch.diag(3 * x**2)
"""


def test_correct_submission_gets_full_marks(write_py, grade_mini):
    result = grade_mini(write_py(CORRECT))
    assert result.score == 10
    assert result.cell_failures == ()


@pytest.mark.parametrize(
    "bad_cell, reason",
    [
        ("raise ValueError('boom')", "error"),
        ("import sys; sys.exit(3)", "error"),
        ("while True: pass", "timeout"),
        ("import time\ntry:\n    time.sleep(60)\nexcept BaseException:\n    time.sleep(60)", "timeout"),
        ("import os; os._exit(1)", "died"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "died"),
        ("def broken(:\n    pass", "syntax"),
    ],
)
def test_a_bad_cell_costs_only_itself(write_nb, grade_mini, bad_cell, reason):
    cells = ["import torch\nanswer = 42", bad_cell, "pair = (5, 2)\nflag = False\nratio = 0.25",
             "def scale(x, k):\n    return x * k"]
    result = grade_mini(write_nb(*cells))
    assert [(c.index, c.reason) for c in result.cell_failures] == [(1, reason)]
    got = scores(result)
    assert got["q1.1"] == 1 and got["q1.2"] == 1 and got["q2.1"] == 2 and got["q2.2"] == 1
    assert result.score == 7  # everything but the two gradients, which the notebook lacks: a hanging cell was stopped


def test_failed_cell_traceback_shows_only_student_lines(write_nb, grade_mini):
    result = grade_mini(write_nb("def f():\n    return 1 / 0", "f()"))
    (failure,) = result.cell_failures
    assert failure.message == "ZeroDivisionError: division by zero"
    text = "\n".join(failure.traceback)
    assert '<cell 2>' in text and '<cell 1>' in text  # named as everywhere else: code cells counted from 1
    assert "grader" not in text and "site-packages" not in text


def test_a_function_that_kills_the_worker_loses_only_its_question(write_py, grade_mini):
    source = CORRECT.replace("return x * k", "import os; os._exit(0)")
    result = grade_mini(write_py(source))
    assert by_id(result, "q2.1").score == 0
    assert "ended the worker" in by_id(result, "q2.1").message
    assert result.score == 10 - 3  # q2.1 and q2.2 lost, the rest graded in a fresh worker


def test_a_hanging_function_is_stopped(write_py, grade_mini):
    source = CORRECT.replace("return x * k", "while True: pass")
    result = grade_mini(write_py(source))
    assert "time limit" in by_id(result, "q2.1").message
    assert result.score == 7


def test_python_file_runs_statement_by_statement(write_py, grade_mini):
    source = CORRECT.replace("pair = (5, 2)", "pair = undefined_name")
    result = grade_mini(write_py(source))
    assert scores(result)["q1.2"] == 0
    assert result.score == 9
    (failure,) = result.cell_failures
    assert "NameError" in failure.message
    assert 'line 4' in "\n".join(failure.traceback)  # the line number of the student's file


def test_magics_and_shell_lines_are_skipped(write_nb, grade_mini):
    result = grade_mini(write_nb("%matplotlib inline\n!pip install nothing\nanswer = 42"))
    assert scores(result)["q1.1"] == 1
    assert result.cell_failures == ()


def test_the_whole_submission_has_a_wall_clock_limit(tmp_path):
    from grader.execution.session import WorkerSession
    from grader.rubric.schema import Limits
    from grader.sources.load import load_submission

    path = tmp_path / "slow.py"
    # The limit counts from the worker's start, which takes seconds on a busy machine (the suite runs several at
    # once): where the limit falls depends on that start, but cell 3 (8 s of sleep after it) never ends inside
    # it, and once it is reached every later cell fails with it, the last one (`answer = 42`) included.
    path.write_text("import time\n# %%\ntime.sleep(4)\n# %%\ntime.sleep(4)\n# %%\ntime.sleep(4)\n# %%\nanswer = 42\n")
    with WorkerSession(load_submission(path), Limits(cell_timeout=10, wall_seconds=8)) as session:
        failures = session.run_cells()
        got = session.get("answer")
    stopped = [f.index for f in failures]
    assert stopped and stopped[0] <= 3 and stopped == list(range(stopped[0], 5))
    assert all("total time limit (8 s)" in f.message for f in failures)
    assert not got.exists
