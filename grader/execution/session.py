"""Running a student's code apart from the grader: one worker process per submission.

The session runs the code cells top to bottom, then answers the checks' calls.  A cell that raises or runs
past its limit is recorded and the next one runs; a worker that dies (os._exit, a signal, a hard timeout)
is replaced by a fresh one that replays the cells that worked, skipping the ones that killed it.
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, cast

from grader.execution.sandbox import Launch, Launcher, PlainLauncher, worker_argv
from grader.execution.workdir import StagedFolder, stage_workdir
from grader.hints import library_hint
from grader.results import CellFailure
from grader.rubric.handout import HandoutFile
from grader.rubric.schema import Limits
from grader.sources.load import Submission
from grader.worker import codec, protocol
from grader.worker.protocol import ChannelClosed, GarbledStream, MalformedReply, MiB, Reply

if TYPE_CHECKING:
    from grader.execution.zygote import ForkingLauncher, WarmProcess

log = logging.getLogger(__name__)

GRACE = 3.0  # seconds past a soft limit before the worker is killed from outside
START_TIMEOUT = 120.0
MAX_RESTARTS = 20
KILL_WAIT = 10.0  # seconds a SIGKILLed worker is waited for
CHUNK = 1 << 20  # bytes read at a time from the reply pipe


class WorkerDied(RuntimeError):
    pass


class WorkerTimeout(RuntimeError):
    pass


class WorkerStoppedReading(WorkerTimeout):
    """A request could not be written within its deadline: student code stopped the worker reading its pipe."""


class ReplyTooLarge(RuntimeError):
    """A reply over the bound the grader set for its request; the worker was killed before it was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a reply of {megabytes(size)}, over the limit of {megabytes(limit)}")
        self.size, self.limit = size, limit


def megabytes(size: int) -> str:
    """A size as a student reads it: 16 MB, 26.7 MB, 3.2 KB, 100 bytes."""
    if size < 1024:
        return f"{size} bytes"
    unit, scale = ("KB", 1024) if size < MiB else ("MB", MiB)
    return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"


STOPPED_READING = "your code stopped the worker from reading the grader's requests, so it was stopped"
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

    def explain(self) -> str:
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
    def __init__(
        self,
        submission: Submission,
        limits: Limits,
        launcher: Launcher | None = None,
        log_path: Path | None = None,
        helpers: Sequence[tuple[str, str]] = (),
        handout: Sequence[HandoutFile] = (),
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
        self.proc: subprocess.Popen[bytes] | WarmProcess | None = None
        self.launch: Launch | None = None
        self.rfd = self.wfd = -1
        self.scratch: Path | None = None
        self.failures: dict[int, CellFailure] = {}
        self.replay: list[int] = []  # cells that may run again in a fresh worker
        self.restarts = 0
        self.device = "cpu"
        self._next_id = 0
        self.wall_deadline: float | None = None  # the whole submission's time (limits.wall_seconds)
        self._issued: set[bytes] = set()  # every nonce sent: a frame with another one was forged
        self.flags: set[str] = set()  # signs of tampering, for a TA: never a verdict
        # Cells and calls stopped by the wall-clock backstop (not their CPU time): a question that adds to it is
        # graded once more (grading.run_question_settled), since a loaded machine may be what stopped it.
        self.backstop_hits = 0

    # -- lifecycle --------------------------------------------------------------------------------------
    def __enter__(self) -> WorkerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self.restarts > MAX_RESTARTS:
            raise WorkerDied("the worker died too many times")
        if self.wall_deadline is None:
            self.wall_deadline = time.monotonic() + self.limits.wall_seconds
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-scratch-"))
        self.staged = stage_workdir(self.scratch, self.submission.path, self.helpers, self.handout)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        if not self._spawn_warm(req_r, req_w, resp_r, resp_w):
            self._popen(req_r, req_w, resp_r, resp_w)
        # Writes wait in poll with the request's deadline: a worker that stops reading cannot block the grader.
        os.set_blocking(req_w, False)
        self.wfd, self.rfd = req_w, resp_r
        try:
            hello = self.request({"op": "hello"}, START_TIMEOUT)
        except (ReplyTooLarge, MalformedReply) as exc:
            self._kill()
            raise WorkerDied(f"the worker's first reply was unusable: {exc}") from None
        self.device = hello.device
        for index in list(self.replay):
            self._exec(index, replaying=True)

    def _spawn_warm(self, req_r: int, req_w: int, resp_r: int, resp_w: int) -> bool:
        """A worker forked by a warm process (this process's zygote, or the batch's fork server: zygote.py,
        forkserver.py), where the launcher forks; False where it does not or the fork failed (logged), and a fresh
        worker is started instead."""
        if not self.launcher.forks or self.scratch is None:
            return False
        from grader.execution.zygote import ZygoteError

        launcher = cast("ForkingLauncher", self.launcher)
        try:
            self.proc, self.launch = launcher.spawn(self.scratch, self.limits, self.log_path, req_r, resp_w)
        except ZygoteError as exc:
            log.warning("no warm worker for %s, starting a fresh one: %s", self.submission.path, exc)
            return False
        except BaseException:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            raise
        os.close(req_r)
        os.close(resp_w)
        return True

    def _popen(self, req_r: int, req_w: int, resp_r: int, resp_w: int) -> None:
        assert self.scratch is not None
        # Kept so that _kill can undo what the launcher set up for this worker (a cgroup, say).
        self.launch = launch = self.launcher.launch(worker_argv(req_r, resp_w), self.scratch, self.limits)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 (closed in _kill, with the worker)
        try:
            self.proc = subprocess.Popen(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=launch.cwd,
                env=launch.env,
                pass_fds=(req_r, resp_w),
                preexec_fn=launch.preexec,
            )
        except BaseException:
            os.close(req_w)
            os.close(resp_r)
            raise
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
            os.close(req_r)
            os.close(resp_w)

    def alive(self) -> bool:
        """Whether the worker process is running now (a session not yet started, or whose worker died, is not)."""
        return self.proc is not None and self.proc.poll() is None

    def _ensure(self) -> None:
        if not self.alive():
            if self.proc is not None:
                self._kill()
                self.restarts += 1
            self._start()

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and not isinstance(proc, subprocess.Popen):
            # A warm worker: its zygote (or the fork server) reaps it, and its cgroup is removed, before the next.
            proc.retire()
            self.launch = None
            proc = None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:  # stuck in the kernel (a dead NFS mount, say): not worth a hang
                log.warning("worker %d did not exit %g s after SIGKILL", proc.pid, KILL_WAIT)
        cleanup = getattr(self.launch, "cleanup", None)
        self.launch = None
        if cleanup is not None:
            try:
                cleanup()
            except Exception:
                log.warning("cleaning up after a worker failed", exc_info=True)
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def close(self) -> None:
        self._kill()
        self.proc = None

    # -- transport --------------------------------------------------------------------------------------
    def request(self, message: dict[str, Any], timeout: float, reply_limit: int | None = None) -> Reply:
        """Send one request and wait for its reply, all within the request's deadline.

        A request that carries a `timeout` (CPU seconds for the student's code) gets its wall-clock backstop,
        `wall`, and the deadline is that backstop; other requests have `timeout` wall-clock seconds.

        Kills the worker on a deadline passed (WorkerTimeout), a broken channel (WorkerDied) or a reply over
        its size bound (ReplyTooLarge); a reply that fails the schema raises MalformedReply, the worker alive.
        """
        if self.out_of_time:
            self._kill()
            raise WorkerTimeout(self.time_up_message)
        self._next_id += 1
        # The nonce is unknowable before the request is sent, so replies forged in advance by student code
        # (which shares the worker process and could find the channel) are recognised and skipped unparsed.
        request_id, nonce = self._next_id, secrets.token_bytes(protocol.NONCE_SIZE)
        self._issued.add(nonce)
        if "timeout" in message:
            timeout = self.backstop(float(message["timeout"]))
            message = {**message, "wall": timeout}
        payload = codec.dumps(message)
        limit = reply_limit or protocol.reply_limit(str(message.get("op")), len(payload))
        deadline = time.monotonic() + timeout + GRACE
        if self.wall_deadline is not None:
            deadline = min(deadline, self.wall_deadline)
        try:
            self._send(protocol.frame(payload, request_id, nonce, limit), deadline)
            header = self._reply_header(request_id, nonce, deadline)
            if header.size > limit:
                raise ReplyTooLarge(header.size, limit)
            data = self._read_exactly(header.size, deadline)
        except (WorkerTimeout, ReplyTooLarge):
            self._kill()
            raise
        except GarbledStream as exc:
            self._kill()
            raise WorkerDied(f"garbled reply: {exc}") from exc
        except (ChannelClosed, OSError) as exc:
            reason = self._death_reason()
            self._kill()
            raise WorkerDied(reason) from exc
        reply = protocol.parse_reply(data)
        if reply.too_large is not None:
            # An honest worker sends only the size of a value over the bound; the worker lives on.
            raise ReplyTooLarge(reply.too_large, limit)
        return reply

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

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(self.wfd, select.POLLOUT, deadline, writing=True)
            try:
                n = os.write(self.wfd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def _reply_header(self, request_id: int, nonce: bytes, deadline: float) -> protocol.Header:
        """The header of the reply to this request; frames with another id or nonce are dropped unread."""
        while True:
            header = protocol.Header.unpack(self._read_exactly(protocol.HEADER.size, deadline))
            if header.request_id == request_id and hmac.compare_digest(header.nonce, nonce):
                return header
            if header.nonce not in self._issued:  # not a late reply to an earlier request: made up
                self.flags.add("its code wrote a forged reply on the grader's channel (ignored)")
            self._discard(header.size, deadline)

    def _read_exactly(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            self._wait(self.rfd, select.POLLIN, deadline)
            chunk = os.read(self.rfd, min(n - got, CHUNK))
            if not chunk:
                raise ChannelClosed()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _discard(self, n: int, deadline: float) -> None:
        while n > 0:
            self._wait(self.rfd, select.POLLIN, deadline)
            chunk = os.read(self.rfd, min(n, CHUNK))
            if not chunk:
                raise ChannelClosed()
            n -= len(chunk)

    @staticmethod
    def _wait(fd: int, event: int, deadline: float, writing: bool = False) -> None:
        remaining = deadline - time.monotonic()
        poller = select.poll()  # not select(): the grader may hold more than FD_SETSIZE descriptors
        poller.register(fd, event)
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise WorkerStoppedReading(STOPPED_READING) if writing else WorkerTimeout()

    def _death_reason(self) -> str:
        proc = self.proc
        if proc is None:
            return "worker not running"
        try:
            code = proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

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
            reply = self.request({"op": "exec", "index": index, "source": source, "timeout": timeout}, timeout)
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
            reply = self.request({"op": "get", "name": name}, 30)
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
        request: dict[str, Any] = {
            "op": "call",
            "args": [codec.encode(a) for a in args],
            "kwargs": {k: codec.encode(v) for k, v in (kwargs or {}).items()},
            "timeout": timeout,
            "echo_args": echo_args,
            "seed": seed,
            "keep": keep,
        }
        if isinstance(name, codec.Handle):
            request["handle"] = name.id
        else:
            request["name"] = name
        return self.request_call(request, timeout, reply_limit)

    def request_call(self, request: dict[str, Any], timeout: float, reply_limit: int | None = None) -> CallResult:
        """Send a call-like request (also used by extension ops) and decode its reply.

        `reply_limit` bounds the reply in bytes; by default `protocol.reply_limit` of the request, which allows
        a value of a few MB plus twice the request's size.
        """
        try:
            self.ensure_replayed()
            reply = self.request(request, timeout, reply_limit)
        except WorkerTimeout as exc:
            if self.out_of_time:
                return CallResult(False, error=self.not_checked_message, timed_out=True, time_up=True)
            if isinstance(exc, WorkerStoppedReading):
                return CallResult(False, error=STOPPED_READING)
            if "timeout" not in request:  # the grader's own request (integrity, say): its wall-clock seconds
                return CallResult(False, error="time limit reached", timed_out=True)
            return self._timed_out(request, "wall", timeout)
        except WorkerDied as exc:
            return CallResult(False, error=str(exc), died=True)
        except ReplyTooLarge as exc:
            error = f"your function returned {megabytes(exc.size)}; the limit for this question is {megabytes(exc.limit)}"
            return CallResult(False, error=error)
        except MalformedReply as exc:
            return CallResult(False, error=self._failure(exc))
        if reply.ok is False and reply.timed_out and "timeout" in request:
            return self._timed_out(request, reply.limit or "wall", timeout)
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

    def _timed_out(self, request: dict[str, Any], limit: str, timeout: float) -> CallResult:
        cpu_seconds = float(request.get("timeout", timeout))
        self.backstop_hits += limit != "cpu"
        error = limit_reached("your code", limit, cpu_seconds, self.backstop(cpu_seconds))
        return CallResult(False, error=error, timed_out=True, limit=limit)

    def integrity(self) -> tuple[str, ...]:
        """Signs of tampering: what the grader saw on the channel, and what the worker's audit noticed (which
        the student's code could silence: a hint for a TA, never proof, never a score)."""
        seen = set(self.flags)
        if not self.out_of_time:
            result = self.request_call({"op": "integrity"}, 10)
            if result.ok and isinstance(result.value, list):
                seen.update(str(flag)[:300] for flag in result.value[:20])
        return tuple(sorted(seen))

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
