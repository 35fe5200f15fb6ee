"""Running a student's code apart from the grader: one worker per submission, and the questions asked of it.

The session runs the code cells top to bottom, then answers the checks' calls.  A cell that raises or runs
past its limit is recorded and the next one runs; a worker that dies (os._exit, a signal, a hard timeout)
is replaced by a fresh one that replays the cells that worked, skipping the ones that killed it.  How requests
reach the worker and come back is its transport's (grader.execution.transport); what they hold, the protocol's
records (grader.worker.messages).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from grader.execution.replies import MalformedReply, Reply
from grader.execution.sandbox import Launcher, PlainLauncher, last_line
from grader.execution.transport import (
    STOPPED_READING,
    ReplyTooLarge,
    Transport,
    WorkerDied,
    WorkerStartFailed,
    WorkerStoppedReading,
    WorkerTimeout,
    megabytes,
    start_worker,
)
from grader.execution.workdir import StagedFolder, stage_workdir
from grader.hints import library_hint
from grader.results import CellFailure
from grader.rubric.handout import HandoutFile
from grader.rubric.schema import Limits
from grader.sources.load import Submission
from grader.worker import codec
from grader.worker.messages import Call, Exec, Get, Hello, Integrity, Release, Request, Timed

GRACE = 3.0  # seconds past a soft limit before the worker is killed from outside
START_TIMEOUT = 120.0
MAX_RESTARTS = 20
CELL_RUN_AGAIN_NOTE = "run a second time, as a wall-clock limit can be a busy machine's doing"


def limit_reached(what: str, limit: str, cpu_seconds: float, wall_seconds: float) -> str:
    """Which limit `what` ("your code", "the cell") reached, in words: its CPU time or the wall-clock backstop."""
    if limit == "cpu":
        return f"{what} used up its CPU time limit ({cpu_seconds:g} s of computing)"
    return (
        f"{what} ran past its wall-clock time limit ({wall_seconds:g} s; it waited, slept or left the computing "
        f"to other threads or processes rather than using its {cpu_seconds:g} s of CPU time)"
    )


@dataclass(frozen=True)
class CallResult:
    ok: bool
    value: Any = None
    error: str = ""
    traceback: list[str] = field(default_factory=list)
    timed_out: bool = False
    died: bool = False
    missing: bool = False  # the name is not defined in the submission
    duration: float = 0.0
    args_after: list[Any] = field(default_factory=list)
    kwargs_after: dict[str, Any] = field(default_factory=dict)
    time_up: bool = False  # not run: the submission had used up its total time limit; `error` says so
    limit: str = ""  # the limit a timed-out call reached: "cpu" (its CPU seconds) or "wall" (the backstop)

    def failure_message(self) -> str:
        """Why the call returned no value, said to the student (a raise, a time limit, a dead worker...)."""
        if self.time_up:
            return self.error
        if self.timed_out:
            return self.error if self.limit else "your code ran past its time limit"
        if self.died:
            return f"your code ended the worker process ({self.error})"
        return self.error


@dataclass(frozen=True)
class GetResult:
    exists: bool
    value: Any = None
    error: str = ""
    unread: bool = False  # the worker could not be asked or its answer not used; `error` says why, in full
    time_up: bool = False  # not read: the submission had used up its total time limit


class WorkerSession:
    """One submission's worker: its cells run (and run again in a fresh worker after a death), then the checks'
    questions asked of it.  A session started with a `transport` (the kit's, in the notebook's own process)
    uses that one and never starts a worker of its own."""

    def __init__(
        self,
        submission: Submission,
        limits: Limits,
        launcher: Launcher | None = None,
        log_path: Path | None = None,
        helpers: Sequence[tuple[str, str]] = (),
        handout: Sequence[HandoutFile] = (),
        *,
        transport: Transport | None = None,
    ) -> None:
        self.submission = submission
        # Files graded with the submission (a helper module its notebook imports): (the student's name for
        # it, a relative path, and where it is), and the course's handout: the worker's working folder
        # (grader.execution.workdir), built afresh for every worker.
        self.helpers = tuple(helpers)
        self.handout = tuple(handout)
        self.staged = StagedFolder()  # what the working folder left out of the student's (grader.execution.workdir)
        self.limits = limits
        self.launcher = launcher or PlainLauncher()
        self.log_path = log_path
        self.transport: Transport | None = None  # the worker now; a dead one stays until it is replaced
        self.scratch: Path | None = None
        self.failures: dict[int, CellFailure] = {}
        self.replay: list[int] = []  # cells that may run again in a fresh worker
        self.restarts = 0
        self.device = "cpu"
        self.wall_deadline: float | None = None  # the whole submission's time (limits.wall_seconds)
        self.flags: set[str] = set()  # signs of tampering, for a TA: never a verdict
        # Cells and calls stopped by the wall-clock backstop (not their CPU time): a question that adds to it is
        # graded once more (grading.run_question_settled), since a loaded machine may be what stopped it.
        self.backstop_hits = 0
        if transport is not None:
            self.transport = transport
            self.device = self._request(Hello(), START_TIMEOUT).device

    # -- lifecycle --------------------------------------------------------------------------------------
    def __enter__(self) -> WorkerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def alive(self) -> bool:
        """Whether the worker is running now (a session not yet started, or whose worker died, is not)."""
        return self.transport is not None and self.transport.alive()

    def close(self) -> None:
        self._kill()
        self.transport = None

    def ensure_replayed(self) -> None:
        """A running worker with the student's cells replayed: started (again) where it is not alive; raises
        WorkerTimeout once the submission's time is up, WorkerDied where a fresh worker dies with nothing left to
        leave out of the replay."""
        if self.out_of_time:
            self._kill()
            raise WorkerTimeout(self.time_up_message)
        while not self.alive():
            before = dict(self.failures)
            try:
                self._ensure()
                return
            except WorkerDied:
                # A replayed cell killed the fresh worker: it is now out of the replay list; try again.
                if self.failures == before:
                    raise

    def _start(self) -> None:
        if self.restarts > MAX_RESTARTS:
            raise WorkerDied("the worker died too many times")
        if self.wall_deadline is None:
            self.wall_deadline = time.monotonic() + self.limits.wall_seconds
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-scratch-"))
        self.staged = stage_workdir(self.scratch, self.submission.path, self.helpers, self.handout)
        self.transport = start_worker(self.launcher, self.scratch, self.limits, self.log_path, self.flags.add)
        try:
            hello = self._request(Hello(), START_TIMEOUT)
        except (ReplyTooLarge, MalformedReply) as exc:
            self._kill()
            raise WorkerDied(f"the worker's first reply was unusable: {exc}") from None
        except WorkerDied as exc:  # nothing of the student's ran yet (no cell, and -P: no module of theirs)
            self._kill()
            said = self._log_tail()
            raise WorkerStartFailed(f"the grader's worker did not start ({exc}){': ' + said if said else ''}") from None
        self.device = hello.device
        for index in list(self.replay):
            self._exec(index, replaying=True)

    def _ensure(self) -> None:
        if not self.alive():
            if self.transport is not None:
                self._kill()
                self.restarts += 1
            self._start()

    def _log_tail(self) -> str:
        """The last line of this submission's worker log (its stderr), for a start that failed."""
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("rb") as fh:
                return last_line(fh)
        except OSError:
            return ""

    def _kill(self) -> None:
        """End the worker (kept as `transport`, dead, so that the next start counts as a restart) and remove
        its working folder."""
        if self.transport is not None:
            self.transport.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    # -- requests ---------------------------------------------------------------------------------------
    def _request(self, request: Request, timeout: float, reply_limit: int | None = None) -> Reply:
        """Send one request and wait for its reply, all within the request's deadline.

        A request that runs the student's code (`Timed`: CPU seconds) gets its wall-clock backstop, `wall`, and
        the deadline is that backstop; other requests have `timeout` wall-clock seconds.  The transport's
        errors pass through (see `Transport.request`).
        """
        if self.out_of_time:
            self._kill()
            raise WorkerTimeout(self.time_up_message)
        if isinstance(request, Timed):
            timeout = self.backstop(request.timeout)
            request = request.with_wall(timeout)
        deadline = time.monotonic() + timeout + GRACE
        if self.wall_deadline is not None:
            deadline = min(deadline, self.wall_deadline)
        if self.transport is None:
            raise WorkerDied("worker not running")
        return self.transport.request(request, deadline, reply_limit)

    def backstop(self, cpu_seconds: float) -> float:
        """The wall-clock backstop of a cell or call given `cpu_seconds` of CPU time."""
        return cpu_seconds * self.limits.backstop

    @property
    def out_of_time(self) -> bool:
        return self.wall_deadline is not None and time.monotonic() >= self.wall_deadline

    @property
    def time_up_message(self) -> str:
        return f"the submission used up its total time limit ({self.limits.wall_seconds:g} s)"

    @property
    def not_checked_message(self) -> str:
        """What an answer asked for after the total time limit reads."""
        return f"not checked: {self.time_up_message}"

    def _failure(self, exc: Exception) -> str:
        """A transport failure in words for the student; `exc` is one that `_request` raises."""
        if isinstance(exc, WorkerTimeout) and self.out_of_time:
            return self.not_checked_message
        if isinstance(exc, MalformedReply):
            return f"the worker's reply was malformed: {exc}"
        return str(exc)

    # -- cells ------------------------------------------------------------------------------------------
    def run_cells(self) -> list[CellFailure]:
        for cell in self.submission.cells:
            if not cell.source.strip():
                continue
            try:
                self._exec_settled(cell.index)
            except WorkerDied as exc:
                self.failures[cell.index] = CellFailure(cell.index, "died", f"not run: {exc}")
            except WorkerTimeout:
                self.failures[cell.index] = CellFailure(cell.index, "timeout", f"not run: {self.time_up_message}")
        return [self.failures[i] for i in sorted(self.failures)]

    def define(self, source: str, timeout: float, index: int) -> str | None:
        """Run `source` (a definition) in the worker after its cells, as cell `index`, outside the replay: a
        fresh worker does not run it again.  None, or what went wrong in words."""
        try:
            self.ensure_replayed()
            reply = self._request(Exec(index=index, source=source, timeout=timeout), timeout)
        except (WorkerDied, WorkerTimeout, ReplyTooLarge, MalformedReply) as exc:
            return str(exc) or type(exc).__name__
        if not reply.ok:
            return reply.error or reply.reason
        return None

    def _exec_settled(self, index: int) -> None:
        """A cell run; once more where the wall-clock backstop stopped it (a busy machine may have), as a
        question is graded again (grading.run_question_settled).  The second run's outcome stands."""
        hits = self.backstop_hits
        self._exec(index, replaying=False)
        if self.backstop_hits == hits or index not in self.failures or self.out_of_time:
            return
        del self.failures[index]
        self._exec(index, replaying=False)
        failure = self.failures.get(index)
        if failure is not None:
            self.failures[index] = replace(failure, message=f"{failure.message} ({CELL_RUN_AGAIN_NOTE})")

    def _exec(self, index: int, replaying: bool) -> None:
        source = self.submission.cells[index].source
        timeout = self.limits.cell_timeout
        if not replaying:
            self.ensure_replayed()
        try:
            reply = self._request(Exec(index=index, source=source, timeout=timeout), timeout)
        except WorkerStoppedReading:
            message = self.time_up_message if self.out_of_time else f"the cell could not be sent: {STOPPED_READING}"
            self._fail(index, "timeout", message)
            if replaying:
                raise WorkerDied("a replayed cell could not be sent") from None
            return
        except WorkerTimeout:
            if self.out_of_time:
                message = self.time_up_message
            else:
                self.backstop_hits += 1
                message = f"{limit_reached('the cell', 'wall', timeout, self.backstop(timeout))} and was stopped"
            self._fail(index, "timeout", message)
            if replaying:
                raise WorkerDied("a replayed cell timed out") from None
            return
        except WorkerDied as exc:
            self._fail(index, "died", f"the cell ended the worker process ({exc}); grading went on without it")
            if replaying:
                raise
            return
        except (ReplyTooLarge, MalformedReply) as exc:
            # Only code run in the worker changes its replies: the cell is not trusted to run again.
            self._fail(index, "error", f"the cell's reply could not be used: {self._failure(exc)}")
            if replaying:
                raise WorkerDied("a replayed cell's reply could not be used") from None
            return
        if not replaying:
            self.replay.append(index)
        if not reply.ok:
            if reply.reason == "timeout":
                self.backstop_hits += reply.limit != "cpu"
                message = limit_reached("the cell", reply.limit, timeout, self.backstop(timeout))
                self._fail(index, "timeout", f"{message} and was stopped")
            elif not replaying:
                message = reply.error if "error" in reply.model_fields_set else "the cell failed"
                hint = library_hint(message)
                message = f"{message} ({hint})" if hint else message
                self.failures[index] = CellFailure(index, reply.reason, message, reply.traceback[:60])

    def _fail(self, index: int, reason: str, message: str) -> None:
        self.failures[index] = CellFailure(index, reason, message)
        if index in self.replay:
            self.replay.remove(index)

    # -- questions --------------------------------------------------------------------------------------
    def get(self, name: str) -> GetResult:
        try:
            self.ensure_replayed()
            reply = self._request(Get(name=name), 30)
        except ReplyTooLarge as exc:
            error = f"`{name}` is {megabytes(exc.size)} as data; the limit for this question is {megabytes(exc.limit)}"
            return GetResult(False, error=error, unread=True)
        except (WorkerDied, WorkerTimeout, MalformedReply) as exc:
            if isinstance(exc, WorkerTimeout) and self.out_of_time:
                return GetResult(False, error=self.not_checked_message, unread=True, time_up=True)
            why = self._failure(exc) or "the worker did not answer in time"
            return GetResult(False, error=f"`{name}` could not be read: {why}", unread=True)
        if not reply.ok:
            return GetResult(False, error=reply.error)
        if not reply.exists:
            return GetResult(False)
        try:
            return GetResult(True, codec.decode(reply.value))
        except codec.CodecError as exc:
            return GetResult(True, codec.Opaque("malformed", str(exc)))

    def call(
        self,
        name: str | codec.Handle,
        args: list[Any] | tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float = 30.0,
        echo_args: bool = False,
        seed: int | None = None,
        keep: bool = False,
        reply_limit: int | None = None,
    ) -> CallResult:
        """Call the student's function `name` (or a value kept in the worker, by its handle) on `args`, encoded."""
        request = Call(
            name=None if isinstance(name, codec.Handle) else name,
            handle=name.id if isinstance(name, codec.Handle) else None,
            args=[codec.encode(a) for a in args],
            kwargs={k: codec.encode(v) for k, v in (kwargs or {}).items()},
            timeout=timeout,
            echo_args=echo_args,
            seed=seed,
            keep=keep,
        )
        return self.request_call(request, timeout, reply_limit)

    def request_call(self, request: Request, timeout: float, reply_limit: int | None = None) -> CallResult:
        """Send a call-like request (a call, or an op of grader.worker.extensions) and decode its reply.

        `reply_limit` bounds the reply in bytes; by default `protocol.reply_limit` of the request, which allows
        a value of a few MB plus twice the request's size.
        """
        try:
            self.ensure_replayed()
            reply = self._request(request, timeout, reply_limit)
        except WorkerTimeout as exc:
            if self.out_of_time:
                return CallResult(False, error=self.not_checked_message, timed_out=True, time_up=True)
            if isinstance(exc, WorkerStoppedReading):
                return CallResult(False, error=STOPPED_READING)
            if not isinstance(request, Timed):  # the grader's own request (integrity, say): its wall-clock seconds
                return CallResult(False, error="time limit reached", timed_out=True)
            return self._timed_out(request, "wall")
        except WorkerDied as exc:
            return CallResult(False, error=str(exc), died=True)
        except ReplyTooLarge as exc:
            error = f"your function returned {megabytes(exc.size)}; the limit for this question is {megabytes(exc.limit)}"
            return CallResult(False, error=error)
        except MalformedReply as exc:
            return CallResult(False, error=self._failure(exc))
        if reply.ok is False and reply.timed_out and isinstance(request, Timed):
            return self._timed_out(request, reply.limit or "wall")
        if not reply.ok:
            return CallResult(
                False,
                error=reply.error if "error" in reply.model_fields_set else "failed",
                traceback=reply.traceback[:60],
                timed_out=reply.timed_out,
                missing=reply.missing,
            )
        try:
            value = codec.decode(reply.value)
            args_after = [codec.decode(a) for a in reply.args_after]
            kwargs_after = {k: codec.decode(v) for k, v in reply.kwargs_after.items()}
        except (codec.CodecError, TypeError, ValueError) as exc:
            return CallResult(False, error=f"the value returned is not plain data ({exc})")
        return CallResult(True, value, duration=reply.duration, args_after=args_after, kwargs_after=kwargs_after)

    def _timed_out(self, request: Timed, limit: str) -> CallResult:
        self.backstop_hits += limit != "cpu"
        error = limit_reached("your code", limit, request.timeout, self.backstop(request.timeout))
        return CallResult(False, error=error, timed_out=True, limit=limit)

    def release(self, handles: Sequence[codec.Handle], timeout: float) -> None:
        """Let values kept in the worker go.  Not where the worker died (it took them with it: no restart just
        to let them go) or the submission's time is up."""
        if handles and self.alive() and not self.out_of_time:
            self.request_call(Release(handles=[h.id for h in handles]), timeout)

    def integrity(self) -> tuple[str, ...]:
        """Signs of tampering: what the grader saw on the channel, and what the worker's audit noticed (which
        the student's code could silence: a hint for a TA, never proof, never a score)."""
        seen = set(self.flags)
        if not self.out_of_time:
            result = self.request_call(Integrity(), 10)
            if result.ok and isinstance(result.value, list):
                seen.update(str(flag)[:300] for flag in result.value[:20])
        return tuple(sorted(seen))
