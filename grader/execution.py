"""Running a student's code apart from the grader: one worker process per submission.

The session runs the code cells top to bottom, then answers the checks' calls.  A cell that raises or runs
past its limit is recorded and the next one runs; a worker that dies (os._exit, a signal, a hard timeout)
is replaced by a fresh one that replays the cells that worked, skipping the ones that killed it.
"""
from __future__ import annotations

import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.results import CellFailure
from grader.rubric import Limits
from grader.sandbox import Launcher, PlainLauncher, worker_argv
from grader.submission import Submission
from grader.worker import codec
from grader.worker.protocol import MAX_MESSAGE, ChannelClosed

log = logging.getLogger(__name__)

GRACE = 3.0  # seconds past a soft limit before the worker is killed from outside
START_TIMEOUT = 120.0
MAX_RESTARTS = 20


class WorkerDied(RuntimeError):
    pass


class WorkerTimeout(RuntimeError):
    pass


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

    def explain(self) -> str:
        if self.timed_out:
            if self.error.startswith("the submission used up"):
                return self.error
            return "your code ran past its time limit"
        if self.died:
            return f"your code ended the worker process ({self.error})"
        return self.error


@dataclass(frozen=True)
class GetResult:
    exists: bool
    value: Any = None
    error: str = ""


class WorkerSession:
    def __init__(
        self,
        submission: Submission,
        limits: Limits,
        launcher: Launcher | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.submission = submission
        self.limits = limits
        self.launcher = launcher or PlainLauncher()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.rfd = self.wfd = -1
        self.scratch: Path | None = None
        self.failures: dict[int, CellFailure] = {}
        self.replay: list[int] = []  # cells that may run again in a fresh worker
        self.restarts = 0
        self.device = "cpu"
        self._next_id = 0
        self.wall_deadline: float | None = None  # the whole submission's time (limits.wall_seconds)

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
        shutil.copy2(self.submission.path, self.scratch / self.submission.path.name)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        launch = self.launcher.launch(worker_argv(req_r, resp_w), self.scratch, self.limits)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
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
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
            os.close(req_r)
            os.close(resp_w)
        self.wfd, self.rfd = req_w, resp_r
        hello = self._request({"op": "hello"}, START_TIMEOUT)
        self.device = str(hello.get("device", "cpu"))
        for index in list(self.replay):
            self._exec(index, replaying=True)

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _ensure(self) -> None:
        if not self._alive():
            if self.proc is not None:
                self._kill()
                self.restarts += 1
            self._start()

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            proc.wait()
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
    def _request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its reply; kill the worker on a hard timeout or a broken channel."""
        self._next_id += 1
        # The nonce is unknowable before the request is sent, so replies forged in advance by student code
        # (which shares the worker process and could find the channel) are recognised and skipped.
        nonce = secrets.token_hex(12)
        message = {**message, "id": self._next_id, "nonce": nonce}
        from grader.worker.protocol import write_message

        if self.out_of_time:
            self._kill()
            raise WorkerTimeout(self.time_up_message)
        try:
            write_message(self.wfd, message)
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            raise WorkerDied(self._death_reason()) from exc
        deadline = time.monotonic() + timeout + GRACE
        if self.wall_deadline is not None:
            deadline = min(deadline, self.wall_deadline)
        try:
            while True:
                reply = self._read(deadline)
                if reply.get("id") == self._next_id and reply.get("nonce") == nonce:
                    return reply
                # A reply to nothing we asked (forged by student code on the channel): ignore it.
        except WorkerTimeout:
            self._kill()
            raise
        except (ChannelClosed, ValueError, codec.CodecError) as exc:
            reason = self._death_reason() if isinstance(exc, ChannelClosed) else f"garbled reply: {exc}"
            self._kill()
            raise WorkerDied(reason) from exc

    @property
    def out_of_time(self) -> bool:
        return self.wall_deadline is not None and time.monotonic() >= self.wall_deadline

    @property
    def time_up_message(self) -> str:
        return f"the submission used up its total time limit ({self.limits.wall_seconds:g} s)"

    def _read(self, deadline: float) -> dict[str, Any]:
        import struct

        header = self._read_exactly(4, deadline)
        (size,) = struct.unpack(">I", header)
        if size > MAX_MESSAGE:
            raise ValueError("reply too large")
        return codec.loads(self._read_exactly(size, deadline))

    def _read_exactly(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            ready, _, _ = select.select([self.rfd], [], [], remaining)
            if not ready:
                raise WorkerTimeout()
            chunk = os.read(self.rfd, min(n - got, 1 << 20))
            if not chunk:
                raise ChannelClosed()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

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

    # -- cells ------------------------------------------------------------------------------------------
    def run_cells(self) -> list[CellFailure]:
        for cell in self.submission.cells:
            if not cell.source.strip():
                continue
            try:
                self._exec(cell.index, replaying=False)
            except WorkerDied as exc:
                self.failures[cell.index] = CellFailure(cell.index, "died", f"not run: {exc}")
            except WorkerTimeout:
                self.failures[cell.index] = CellFailure(cell.index, "timeout", f"not run: {self.time_up_message}")
        return [self.failures[i] for i in sorted(self.failures)]

    def _exec(self, index: int, replaying: bool) -> None:
        source = self.submission.cells[index].source
        timeout = self.limits.cell_timeout
        if not replaying:
            self._ensure_replayed()
        try:
            reply = self._request({"op": "exec", "index": index, "source": source, "timeout": timeout}, timeout)
        except WorkerTimeout:
            message = self.time_up_message if self.out_of_time else f"the cell ran past its time limit ({timeout:g} s) and was stopped"
            self._fail(index, "timeout", message)
            if replaying:
                raise WorkerDied("a replayed cell timed out") from None
            return
        except WorkerDied as exc:
            self._fail(index, "died", f"the cell ended the worker process ({exc}); grading went on without it")
            if replaying:
                raise
            return
        if not replaying:
            self.replay.append(index)
        if not reply.get("ok"):
            reason = str(reply.get("reason", "error"))
            if reason == "timeout":
                self._fail(index, "timeout", f"the cell ran past its time limit ({timeout:g} s) and was stopped")
            elif not replaying:
                message = str(reply.get("error", "the cell failed"))
                tb = [str(x) for x in reply.get("traceback", [])][:60]
                self.failures[index] = CellFailure(index, reason, message, tb)

    def _fail(self, index: int, reason: str, message: str) -> None:
        self.failures[index] = CellFailure(index, reason, message)
        if index in self.replay:
            self.replay.remove(index)

    # -- questions --------------------------------------------------------------------------------------
    def get(self, name: str) -> GetResult:
        try:
            self._ensure_replayed()
            reply = self._request({"op": "get", "name": name}, 30)
        except (WorkerDied, WorkerTimeout) as exc:
            return GetResult(False, error=f"the worker could not read '{name}': {exc}")
        if not reply.get("ok"):
            return GetResult(False, error=str(reply.get("error")))
        if not reply.get("exists"):
            return GetResult(False)
        try:
            return GetResult(True, codec.decode(reply.get("value")))
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
        return self.request_call(request, timeout)

    def request_call(self, request: dict[str, Any], timeout: float) -> CallResult:
        """Send a call-like request (also used by extension ops) and decode its reply."""
        try:
            self._ensure_replayed()
            reply = self._request(request, timeout)
        except WorkerTimeout:
            error = self.time_up_message if self.out_of_time else "time limit reached"
            return CallResult(False, error=error, timed_out=True, duration=timeout)
        except WorkerDied as exc:
            return CallResult(False, error=str(exc), died=True)
        if not reply.get("ok"):
            return CallResult(
                False,
                error=str(reply.get("error", "failed")),
                traceback=[str(x) for x in reply.get("traceback", [])][:60],
                timed_out=bool(reply.get("timed_out")),
                missing=bool(reply.get("missing")),
            )
        try:
            value = codec.decode(reply.get("value"))
            args_after = [codec.decode(a) for a in reply.get("args_after", [])]
            kwargs_after = {str(k): codec.decode(v) for k, v in (reply.get("kwargs_after") or {}).items()}
        except (codec.CodecError, TypeError, ValueError) as exc:
            return CallResult(False, error=f"the value returned is not plain data ({exc})")
        return CallResult(
            True, value, duration=float(reply.get("duration", 0.0)), args_after=args_after, kwargs_after=kwargs_after
        )

    def _ensure_replayed(self) -> None:
        if self.out_of_time:
            self._kill()
            raise WorkerTimeout(self.time_up_message)
        while not self._alive():
            before = dict(self.failures)
            try:
                self._ensure()
                return
            except WorkerDied:
                # A replayed cell killed the fresh worker: it is now out of the replay list; try again.
                if self.failures == before:
                    raise
