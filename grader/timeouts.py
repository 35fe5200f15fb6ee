"""Limits on grader-side work that runs on a student's data (a report render, a formula's check and proof).

`deadline(seconds, Error)` raises `Error` in the calling thread once `seconds` have passed inside the block.  In
the main thread it is SIGALRM, as it always was; in any other thread (a slot of a batch graded in threads, a Dask
worker's thread) a watching thread raises it there with `PyThreadState_SetAsyncExc`.  Both interrupt pure-Python
work (SymPy, Jinja) between two bytecodes and neither interrupts one long C call, so the limit means the same
wherever the work runs.  The error is raised as its class, without arguments: give it a class of its own, and a
BaseException where the work may catch `Exception` (SymPy does).

`cpu_deadline(seconds, Error)` counts the CPU time of the calling thread instead, with a wall-clock backstop of
`backstop` times that: the limit of work whose verdict must not depend on the machine's load, or on another slot
of the batch holding the interpreter meanwhile (time spent waiting for it is not this thread's CPU time).
"""
from __future__ import annotations

import ctypes
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class TimeLimit(Exception):
    """The work ran past its limit."""


def _alarm_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def deadline(seconds: float, error: type[BaseException]) -> Iterator[None]:
    """`error` raised in this thread once the block has run `seconds` (a timer already running in the main
    thread, a caller's own limit, is shortened around this one and restored afterwards, never lost)."""
    if seconds <= 0:
        yield
        return
    with _alarm(seconds, error) if _alarm_usable() else _watched(error, cpu=math.inf, wall=seconds):
        yield


@contextmanager
def _alarm(seconds: float, error: type[BaseException]) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise error()

    outer_remaining, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_remaining > 0:
        seconds = min(seconds, outer_remaining * 0.9)  # leave the outer limit time to fire as planned
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining > 0:
            spent = seconds - left
            signal.setitimer(signal.ITIMER_REAL, max(outer_remaining - spent, 1e-3), outer_interval)


BACKSTOP = 4.0  # the wall-clock backstop of a CPU-time limit, as a multiple of it (as Limits.backstop)
POLL = 0.02  # how often a watching thread reads the clocks


class ThreadClock:
    """The CPU time a thread has used since this was made; read from any thread."""

    def __init__(self) -> None:
        self.clock = time.pthread_getcpuclockid(threading.get_ident())
        self.started = time.clock_gettime(self.clock)
        self.wall = time.monotonic()

    def cpu(self) -> float:
        return time.clock_gettime(self.clock) - self.started

    def elapsed(self) -> float:
        return time.monotonic() - self.wall


@contextmanager
def cpu_deadline(seconds: float, error: type[BaseException], backstop: float = BACKSTOP) -> Iterator[None]:
    """`error` raised in this thread once the block has used `seconds` of its CPU time, or `backstop` times as
    many seconds have passed (work that waits rather than computes)."""
    if seconds <= 0:
        yield
        return
    with _watched(error, cpu=seconds, wall=seconds * backstop):
        yield


@contextmanager
def _watched(error: type[BaseException], cpu: float, wall: float) -> Iterator[None]:
    """`error` raised in this thread by a watching thread once the block has used `cpu` seconds of this thread's
    CPU time or run `wall` seconds, whichever comes first; one set but not raised yet when the block ends (a race
    with its end) is withdrawn."""
    target = threading.get_ident()
    clock = ThreadClock()
    finished = threading.Event()
    guard = threading.Lock()
    state = {"armed": True, "fired": False}

    def watch() -> None:
        while not finished.wait(POLL):
            if clock.cpu() >= cpu or clock.elapsed() >= wall:
                with guard:
                    if state["armed"]:
                        state["fired"] = True
                        _raise_in(target, error)
                return

    watcher = threading.Thread(target=watch, name="grader-deadline", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with guard:
            state["armed"] = False
        finished.set()
        if state["fired"]:
            _raise_in(target, None)


def _raise_in(thread_id: int, error: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(error) if error is not None else None
    )


@contextmanager
def time_limit(seconds: float, what: str = "the work") -> Iterator[None]:
    """TimeLimit("`what` took longer than `seconds` s") once the block has run `seconds`."""

    class Expired(TimeLimit):
        pass

    try:
        with deadline(seconds, Expired):
            yield
    except Expired:
        raise TimeLimit(f"{what} took longer than {seconds:g} s") from None
