"""A wall-clock limit on grader-side work that runs on a student's data (a report render, a parse).

SIGALRM interrupts pure-Python loops and most C calls that hold no lock; it works only in the main thread, so
elsewhere `time_limit` does nothing and the work relies on its inputs being bounded (they always are).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class TimeLimit(Exception):
    """The work ran past its limit."""


@contextmanager
def time_limit(seconds: float, what: str = "the work") -> Iterator[None]:
    usable = (
        seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    # An outer timer (a caller's own limit) keeps running: it is restored, minus the time spent here.
    outer_remaining, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_remaining and outer_remaining < seconds:
        seconds = outer_remaining

    def expire(signum: int, frame: object) -> None:
        raise TimeLimit(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining:
            spent = seconds - left
            signal.setitimer(signal.ITIMER_REAL, max(outer_remaining - spent, 1e-3), outer_interval)
