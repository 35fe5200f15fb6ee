"""grader.timeouts: a limit on the grader's own work on a student's data, the same in the main thread (SIGALRM)
and in any other (a slot of a batch graded in threads, a Dask worker's thread)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from grader.timeouts import TimeLimit, cpu_deadline, deadline, time_limit


class Stop(BaseException):
    pass


def in_thread(work: Callable[[], object]) -> list[object]:
    """What `work` returned or raised, run in a thread that is not the main one."""
    seen: list[object] = []

    def run() -> None:
        try:
            seen.append(work())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            seen.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    return seen


def spin(seconds: float) -> str:
    """Pure-Python work for `seconds` (far more than any limit below): 'finished' if nothing stopped it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "finished"


def stopped_spin() -> str:
    with deadline(0.2, Stop):
        return spin(60)


def quiet_after_the_block() -> str:
    with deadline(0.05, Stop):
        pass
    spin(0.3)  # the limit's time passes here, outside its block: nothing may be raised now
    return "finished"


@pytest.mark.parametrize("where", ["main thread", "another thread"])
def test_a_deadline_stops_pure_python_work(where: str) -> None:
    if where == "main thread":
        with pytest.raises(Stop):
            stopped_spin()
    else:
        [raised] = in_thread(stopped_spin)
        assert isinstance(raised, Stop)


@pytest.mark.parametrize("where", ["main thread", "another thread"])
def test_a_deadline_says_nothing_once_its_block_has_ended(where: str) -> None:
    assert (quiet_after_the_block() if where == "main thread" else in_thread(quiet_after_the_block)[0]) == "finished"


def test_time_limit_names_the_work_in_any_thread() -> None:
    def render() -> None:
        with time_limit(0.2, "writing the reports"):
            spin(60)

    [raised] = in_thread(render)
    assert isinstance(raised, TimeLimit) and str(raised) == "writing the reports took longer than 0.2 s"
    with pytest.raises(TimeLimit, match="^writing the reports took longer than 0.2 s$"):
        render()


def test_no_limit_at_zero() -> None:
    with deadline(0, Stop):
        assert spin(0.1) == "finished"


def cpu_limited(work: Callable[[], object], seconds: float = 0.3) -> object:
    with cpu_deadline(seconds, Stop):
        return work()


@pytest.mark.parametrize("where", ["main thread", "another thread"])
def test_a_cpu_deadline_counts_the_threads_own_cpu_time(where: str) -> None:
    """Computing past the limit is stopped; waiting as long (no CPU spent, as when another slot holds the
    interpreter) is not, until the wall-clock backstop (4 times the limit)."""
    def run(work: Callable[[], object]) -> object:
        if where == "main thread":
            try:
                return cpu_limited(work)
            except Stop as exc:
                return exc
        return in_thread(lambda: cpu_limited(work))[0]

    assert isinstance(run(lambda: spin(60)), Stop)
    assert run(lambda: time.sleep(0.6) or "slept") == "slept"
    # The backstop (1.2 s): raised as soon as the sleep, one C call that nothing interrupts, returns.
    assert isinstance(run(lambda: time.sleep(1.5) or "slept"), Stop)
