"""Limits on student code count its CPU time, so a verdict does not depend on how busy the machine is.

A cell or a call has CPU seconds (`limits.cell_timeout`, `call_timeout`) and a wall-clock backstop
`limits.backstop` times longer, for code that waits instead of computing; a question stopped by the backstop is
graded once more, and the report says which limit was reached.  No test here asserts a wall-clock duration.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator

import pytest

from grader.checks import CheckContext
from grader.execution import forkserver
from grader.execution.sandbox import BwrapLauncher, Launcher
from grader.execution.session import CELL_RUN_AGAIN_NOTE, WorkerSession
from grader.grading.submission import RUN_AGAIN_NOTE, grade_submission, run_question_settled
from grader.results import Status
from grader.rubric.schema import Rubric, load_rubric
from grader.sources.load import load_submission
from grader.worker.main import CellTimeout, time_limit
from tests.conftest import needs_forkserver

DATA = Path(__file__).resolve().parents[1] / "data" / "load"

# Computes for `seconds` of its own thread's CPU time, whatever else the machine is doing, then doubles.
COMPUTES = """
import time

def slow_double(x):
    start = time.thread_time()
    while time.thread_time() - start < {seconds}:
        pass
    return x * 2
"""
ENDLESS = """
def slow_double(x):
    while True:
        pass
"""
SLEEPS = """
import time

def slow_double(x):
    time.sleep(60)
    return x * 2
"""
# Stopped by the backstop on its first call only, as a correct function can be on a machine that is busy for a while.
SLEEPS_ONCE = """
import time
calls = []

def slow_double(x):
    calls.append(1)
    if len(calls) == 1:
        time.sleep(60)
    return x * 2
"""


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(DATA / "rubric.yaml")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write(source: str) -> Path:
        path = tmp_path / "student.py"
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def busy_cores() -> Iterator[Callable[[], None]]:
    """Starts, when called, three spinning processes per core, at the grader's own priority; they stop with the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        for _ in range(3 * (os.cpu_count() or 1)):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


# -- the worker's side: which limit stops the code -----------------------------------------------------------------


@pytest.mark.parametrize(
    "code, limit",
    [
        ("while True: pass", "cpu"),  # computing: stopped by its CPU seconds, long before the backstop
        ("import time; time.sleep(60)", "wall"),  # waiting uses no CPU: stopped by the backstop
    ],
)
def test_the_limit_reached_is_the_one_that_stops_the_code(code: str, limit: str) -> None:
    with pytest.raises(CellTimeout) as caught, time_limit(0.2, 1.0):
        exec(code)  # noqa: S102
    assert caught.value.limit == limit


def test_code_within_its_cpu_seconds_runs_to_its_end() -> None:
    with time_limit(2.0, 8.0) as limits:
        total = sum(range(10_000))
    assert (total, limits.reached) == (49_995_000, "")


def test_a_signal_after_the_block_is_dropped() -> None:
    with time_limit(0.05, 0.1) as limits:
        pass
    limits._on_alarm(0, None)  # what a late SIGALRM would run: nothing raised once the block has ended


# -- a loaded machine ----------------------------------------------------------------------------------------------


def _grade_under_load(rubric: Rubric, path: Path, busy_cores: Callable[[], None]):  # type: ignore[no-untyped-def]
    """The question graded with every core kept busy by other processes from the first call on (the worker is
    started first: starting it is not what is measured)."""
    submission = load_submission(path)
    with WorkerSession(submission, rubric.limits) as session:
        assert session.run_cells() == []
        busy_cores()
        ctx = CheckContext(rubric, rubric.questions[0], submission, session, rubric.load_reference(), reproduce_failures=True)
        return run_question_settled(ctx)


def test_a_function_needing_0_6_cpu_seconds_under_a_2_s_limit_gets_its_point_on_a_busy_machine(
    rubric: Rubric, write: Callable[[str], Path], busy_cores: Callable[[], None]
) -> None:
    result = _grade_under_load(rubric, write(COMPUTES.format(seconds=0.6)), busy_cores)
    assert (result.score, result.status) == (1.0, Status.PASSED), result.message


def test_an_endless_loop_still_gets_0_on_a_busy_machine(
    rubric: Rubric, write: Callable[[str], Path], busy_cores: Callable[[], None]
) -> None:
    result = _grade_under_load(rubric, write(ENDLESS), busy_cores)
    assert result.score == 0
    assert "time limit" in result.message


# -- what the report says --------------------------------------------------------------------------------------------
@pytest.fixture(params=["plain", pytest.param("forkserver", marks=needs_forkserver)])
def launcher(request: pytest.FixtureRequest) -> Launcher | None:
    """The limits hold alike in a fresh worker and in one forked by the fork server (rlimits set after fork)."""
    return forkserver.start(BwrapLauncher()) if request.param == "forkserver" else None



def test_an_endless_loop_is_stopped_by_its_cpu_seconds_and_the_report_says_so(
    rubric: Rubric, write: Callable[[str], Path], launcher: Launcher | None
) -> None:
    (q,) = grade_submission(rubric, write(ENDLESS), launcher=launcher).questions
    assert q.score == 0
    assert "your code used up its CPU time limit (2 s of computing)" in q.message
    assert RUN_AGAIN_NOTE not in q.message  # its CPU seconds are not the machine's load: no second run


def test_a_function_that_waits_meets_the_backstop_and_is_graded_twice(rubric: Rubric, write: Callable[[str], Path]) -> None:
    (q,) = grade_submission(rubric, write(SLEEPS)).questions
    assert q.score == 0
    assert "your code ran past its wall-clock time limit (8 s;" in q.message
    assert q.message.endswith(f"({RUN_AGAIN_NOTE})")
    assert q.details["run_again"] is True


def test_a_question_stopped_once_by_the_backstop_gets_its_point_from_the_second_run(
    rubric: Rubric, write: Callable[[str], Path]
) -> None:
    (q,) = grade_submission(rubric, write(SLEEPS_ONCE)).questions
    assert (q.score, q.status) == (1.0, Status.PASSED)
    assert q.message.endswith(f"({RUN_AGAIN_NOTE})")


def test_a_cell_says_which_limit_stopped_it(rubric: Rubric, write: Callable[[str], Path], launcher: Launcher | None) -> None:
    source = "x = 1\n# %%\nwhile True:\n    pass\n# %%\nimport time\ntime.sleep(60)\n# %%\ny = 2\n"
    result = grade_submission(rubric, write(source), launcher=launcher)
    assert [(f.index, f.reason, f.message) for f in result.cell_failures] == [
        (1, "timeout", "the cell used up its CPU time limit (2 s of computing) and was stopped"),
        (2, "timeout", "the cell ran past its wall-clock time limit (8 s; it waited, slept or left the computing to "
                       f"other threads or processes rather than using its 2 s of CPU time) and was stopped ({CELL_RUN_AGAIN_NOTE})"),
    ]


def test_a_cell_stopped_once_by_the_backstop_runs_again_and_defines_its_names(rubric: Rubric, write: Callable[[str], Path]) -> None:
    source = (COMPUTES.format(seconds=0) + "# %%\nimport os\nif not os.path.exists('slept'):\n    open('slept', 'w').close()\n"
              "    time.sleep(60)\nready = True\n")
    result = grade_submission(rubric, write(source))
    assert result.cell_failures == ()
    assert result.score == 1
