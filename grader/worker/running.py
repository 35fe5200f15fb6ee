"""How the worker runs the student's code: the time limits of a cell or call, the seeding, and what a failure
says (the exception in one line, the traceback lines in the student's cells).

Shared by the worker's loop (grader/worker/main.py), its extra operations (ops_*.py) and the kit's in-notebook
worker; imports nothing of the worker but the protocol's limits.
"""
from __future__ import annotations

import _thread
import random
import signal
import threading
import time
import traceback
from typing import Any

from grader.worker import protocol
from grader.worker.messages import Timed


class CellTimeout(BaseException):
    """Raised by `time_limit`; a BaseException so `except Exception` in student code does not eat it.

    Its argument is the limit reached: "cpu" (the CPU budget) or "wall" (the wall-clock backstop).
    """

    @property
    def limit(self) -> str:
        return str(self.args[0]) if self.args else "wall"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators from `seed`."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class time_limit:
    """A cell's or call's limits: `cpu_seconds` of CPU time of the thread that runs the student's code, and a
    wall-clock backstop (`wall_seconds`) for code that waits instead of computing (a sleep, a join, a lock).

    CPU time is what makes the verdict independent of the machine's load: a function that needs 0.6 s of CPU
    takes 0.6 s of it on a quiet laptop and on a server kept busy by other processes.  The thread's own clock
    counts what it computes itself, torch's kernels included (its intra-op threads share the work with it), not
    what other threads or processes of the student burn meanwhile: those meet the backstop.  A watchdog thread
    sleeps until the budget could be spent (a thread's CPU clock never runs faster than the wall clock), looks,
    and interrupts the student's thread with SIGALRM; the backstop is an interval timer on the same signal.
    Which limit was reached is `reached` ("cpu" or "wall"), and the raised CellTimeout carries it.
    """

    def __init__(self, cpu_seconds: float, wall_seconds: float | None = None) -> None:
        self.cpu_seconds = cpu_seconds
        self.wall_seconds = wall_seconds if wall_seconds and wall_seconds > cpu_seconds else cpu_seconds
        self.reached = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._done = False  # a signal that arrives once the block has ended is dropped
        self._watching: Any = None  # held while the watchdog runs: released when it returns

    @classmethod
    def of(cls, request: Timed) -> time_limit:
        """The limits a request asks for: its `timeout` (CPU seconds) and its `wall` backstop."""
        return cls(float(request.timeout), float(request.wall) if request.wall is not None else None)

    def __enter__(self) -> time_limit:
        target = threading.get_ident()
        clock = _thread_clock(target)
        start = time.clock_gettime(clock)
        signal.signal(signal.SIGALRM, self._on_alarm)
        wall = self.wall_seconds
        if wall > self.cpu_seconds:
            # A bare thread, not a threading.Thread: the student's code sees the threads it started, no others.
            watching = _thread.allocate_lock()
            watching.acquire()
            try:
                _thread.start_new_thread(self._watch, (target, clock, start, watching))
                self._watching = watching
            except RuntimeError:  # no thread left (the student's code used them all): the budget as wall time
                wall = self.cpu_seconds
        signal.setitimer(signal.ITIMER_REAL, wall)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            with self._lock:  # the watchdog fires under this lock: after it, it never will
                self._done = True
        finally:
            # Even where the alarm fired while the lock was awaited (the budget was spent: CellTimeout goes on),
            # nothing of this limit outlives the block.
            self._done = True
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._stop.set()
            if self._watching is not None:
                self._watching.acquire()

    def _watch(self, target: int, clock: int, start: float, watching: Any) -> None:
        try:
            while True:
                left = self.cpu_seconds - (time.clock_gettime(clock) - start)
                if left <= 0:
                    break
                if self._stop.wait(max(left, 0.005)):
                    return
            with self._lock:
                if self._done:
                    return
                self.reached = "cpu"
                signal.pthread_kill(target, signal.SIGALRM)
        finally:
            watching.release()

    def _on_alarm(self, signum: int, frame: object) -> None:
        if self._done:
            return
        if not self.reached:
            self.reached = "wall"
        raise CellTimeout(self.reached)


def _thread_clock(ident: int) -> int:
    """The CPU clock of a thread, or the process's where the platform has no per-thread clock (macOS)."""
    try:
        return time.pthread_getcpuclockid(ident)
    except (AttributeError, OSError):
        return time.CLOCK_PROCESS_CPUTIME_ID


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and message, at most 2000 characters (a `str()` that fails is left out)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:2000]


def student_frames(exc: BaseException) -> list[str]:
    """The traceback lines that point into the student's cells, none of the toolkit's."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return [_line(line) for line in lines][-40:]


def syntax_lines(exc: BaseException) -> list[str]:
    """A syntax error's own lines (where and what), each kept within the protocol's line length."""
    return [_line(line) for line in traceback.format_exception_only(type(exc), exc)][-40:]


def _line(line: str) -> str:
    # A student's source line can be any length; the grader rejects longer traceback lines as forged.
    line = line.rstrip("\n")
    return line if len(line) <= protocol.MAX_LINE else line[: protocol.MAX_LINE - 1] + "…"
