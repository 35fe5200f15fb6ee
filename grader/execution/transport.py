"""How a session's requests reach a worker and its replies come back: the `Transport`.

`PipeTransport` is a worker process of its own (started by a launcher, grader.execution.sandbox, or forked warm
by its zygote), spoken to over two private pipes: a header, then JSON (grader.worker.protocol).  Everything it
reads is checked before use (grader.execution.replies), since the student's code shares the worker's process.  `InProcessTransport` answers
in this process, with the student's own namespace: the kit's in-notebook self-check (grader.kit.notebook), which
trusts the student's code and never grades.

A transport knows nothing of cells, restarts or questions (grader.execution.session does): it sends one request,
waits for its reply until a deadline, and says how it failed.
"""
from __future__ import annotations

import dataclasses
import hmac
import logging
import os
import secrets
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, cast

from grader.execution.replies import Reply, parse_reply
from grader.execution.sandbox import Launch, Launcher, worker_argv
from grader.rubric.schema import Limits
from grader.worker import codec, protocol
from grader.worker.messages import ReplyFields, Request, Timed
from grader.worker.protocol import ChannelClosed, GarbledStream, MiB

if TYPE_CHECKING:
    from grader.execution.zygote import ForkingLauncher, WarmProcess
    from grader.worker.main import Worker

log = logging.getLogger(__name__)

KILL_WAIT = 10.0  # seconds a SIGKILLed worker is waited for
CHUNK = 1 << 20  # bytes read at a time from the reply pipe
STOPPED_READING = "your code stopped the worker from reading the grader's requests, so it was stopped"


class WorkerDied(RuntimeError):
    pass


class WorkerTimeout(RuntimeError):
    pass


class WorkerStartFailed(RuntimeError):
    """A fresh worker died before answering its first request, before any student code ran in it: the grader's
    environment failed (an import, the sandbox), which is a TA's matter, never the student's doing."""


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


class Transport(Protocol):
    """One worker, as a session sees it."""

    def request(self, request: Request, deadline: float, reply_limit: int | None = None) -> Reply:
        """Send `request` and return its reply, checked, by `deadline` (time.monotonic()).

        Raises WorkerTimeout (the deadline passed), WorkerDied (the channel broke or the worker ended) or
        ReplyTooLarge (a reply over `reply_limit`, by default protocol.reply_limit of the request), each with
        the worker killed, or MalformedReply (a reply that fails the schema) with the worker alive.
        """
        ...

    def alive(self) -> bool:
        """Whether the worker can answer now."""
        ...

    def close(self) -> None:
        """End the worker and whatever it started; the transport answers nothing afterwards."""
        ...


# -- a worker process of its own ------------------------------------------------------------------------------------


class PipeTransport:
    """A worker process and its two pipes: requests are written to `wfd`, replies read from `rfd`."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes] | WarmProcess,
        launch: Launch | None,
        rfd: int,
        wfd: int,
        notice: Callable[[str], None] = lambda flag: None,
    ) -> None:
        self.proc, self.launch = proc, launch
        self.rfd, self.wfd = rfd, wfd
        # Writes wait in poll with the request's deadline: a worker that stops reading cannot block the grader.
        os.set_blocking(wfd, False)
        self.notice = notice  # told of signs of tampering on the channel, for a TA: never a verdict
        self._next_id = 0
        self._issued: set[bytes] = set()  # every nonce sent: a frame with another one was forged

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, request: Request, deadline: float, reply_limit: int | None = None) -> Reply:
        self._next_id += 1
        # The nonce is unknowable before the request is sent, so replies forged in advance by student code
        # (which shares the worker process and could find the channel) are recognised and skipped unparsed.
        request_id, nonce = self._next_id, secrets.token_bytes(protocol.NONCE_SIZE)
        self._issued.add(nonce)
        payload = codec.dumps(request.to_json())
        limit = reply_limit or protocol.reply_limit(request.op, len(payload))
        try:
            self._send(protocol.frame(payload, request_id, nonce, limit), deadline)
            header = self._reply_header(request_id, nonce, deadline)
            if header.size > limit:
                raise ReplyTooLarge(header.size, limit)
            data = self._read_exactly(header.size, deadline)
        except (WorkerTimeout, ReplyTooLarge):
            self.close()
            raise
        except GarbledStream as exc:
            self.close()
            raise WorkerDied(f"garbled reply: {exc}") from exc
        except (ChannelClosed, OSError) as exc:
            reason = self._death_reason()
            self.close()
            raise WorkerDied(reason) from exc
        reply = parse_reply(data)
        if reply.too_large is not None:
            # An honest worker sends only the size of a value over the bound; the worker lives on.
            raise ReplyTooLarge(reply.too_large, limit)
        return reply

    def close(self) -> None:
        proc: subprocess.Popen[bytes] | WarmProcess | None = self.proc
        if proc is not None and not isinstance(proc, subprocess.Popen):
            # A warm worker: its zygote (or the fork server) reaps it, and its cgroup is removed, before the next.
            proc.retire()
            self.launch = None
            proc = None
        if proc is not None:
            _kill_process(proc)
        cleanup = getattr(self.launch, "cleanup", None)
        self.launch = None
        if cleanup is not None:
            try:
                cleanup()
            except Exception:  # a leftover cgroup is logged, grading goes on
                log.warning("cleaning up after a worker failed", exc_info=True)
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            _wait(self.wfd, select.POLLOUT, deadline, writing=True)
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
                self.notice("its code wrote a forged reply on the grader's channel (ignored)")
            self._discard(header.size, deadline)

    def _read_exactly(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            _wait(self.rfd, select.POLLIN, deadline)
            chunk = os.read(self.rfd, min(n - got, CHUNK))
            if not chunk:
                raise ChannelClosed()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _discard(self, n: int, deadline: float) -> None:
        while n > 0:
            _wait(self.rfd, select.POLLIN, deadline)
            chunk = os.read(self.rfd, min(n, CHUNK))
            if not chunk:
                raise ChannelClosed()
            n -= len(chunk)

    def _death_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"


def _wait(fd: int, event: int, deadline: float, writing: bool = False) -> None:
    remaining = deadline - time.monotonic()
    poller = select.poll()  # not select(): the grader may hold more than FD_SETSIZE descriptors
    poller.register(fd, event)
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise WorkerStoppedReading(STOPPED_READING) if writing else WorkerTimeout()


def _kill_process(proc: subprocess.Popen[bytes] | WarmProcess) -> None:
    if isinstance(proc, subprocess.Popen):
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


# -- starting one: the seam between a session and its launcher ------------------------------------------------------


def start_worker(
    launcher: Launcher,
    scratch: Path,
    limits: Limits,
    log_path: Path | None = None,
    notice: Callable[[str], None] = lambda flag: None,
) -> PipeTransport:
    """A worker working in `scratch`, its output appended to `log_path`: forked warm by the launcher's zygote
    where it has one, else started afresh by the launcher.  `notice` is told of signs of tampering."""
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    fds = (req_r, req_w, resp_r, resp_w)
    started: tuple[subprocess.Popen[bytes] | WarmProcess, Launch] | None = _spawn_warm(launcher, scratch, limits, log_path, fds)
    if started is None:
        started = _popen(launcher, scratch, limits, log_path, fds)
    proc, launch = started
    return PipeTransport(proc, launch, resp_r, req_w, notice)


def _spawn_warm(
    launcher: Launcher, scratch: Path, limits: Limits, log_path: Path | None, fds: tuple[int, int, int, int]
) -> tuple[WarmProcess, Launch] | None:
    """A worker forked by a warm process (this process's zygote, or the batch's fork server: zygote.py,
    forkserver.py), where the launcher forks; None where it does not or the fork failed (logged), and a fresh
    worker is started instead."""
    if not launcher.forks:
        return None
    from grader.execution.zygote import ZygoteError

    req_r, resp_w = fds[0], fds[3]
    try:
        proc, launch = cast("ForkingLauncher", launcher).spawn(scratch, limits, log_path, req_r, resp_w)
    except ZygoteError as exc:
        log.warning("no warm worker for %s, starting a fresh one: %s", log_path or scratch, exc)
        return None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    os.close(req_r)
    os.close(resp_w)
    return proc, launch


def _popen(
    launcher: Launcher, scratch: Path, limits: Limits, log_path: Path | None, fds: tuple[int, int, int, int]
) -> tuple[subprocess.Popen[bytes], Launch]:
    req_r, req_w, resp_r, resp_w = fds
    try:
        launch = launcher.launch(worker_argv(req_r, resp_w), scratch, limits)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed below, once the worker holds it)
    try:
        proc = subprocess.Popen(
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
        cleanup = launch.cleanup  # kept by the session before; a launch that never ran is undone here
        if cleanup is not None:
            cleanup()
        raise
    finally:
        if out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
        os.close(req_r)
        os.close(resp_w)
    return proc, launch


# -- in this process: the kit's self-check --------------------------------------------------------------------------


class InProcessTransport:
    """Requests answered in this process by a worker whose namespace is `namespace` (the notebook's live
    globals); replies go through the wire format and its checks, so they decode as a worker's do."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        from grader.worker.main import Worker

        self.worker: Worker = Worker(-1, -1)
        self.worker.namespace = namespace  # what the student defined, as it is now

    def alive(self) -> bool:
        return True

    def request(self, request: Request, deadline: float, reply_limit: int | None = None) -> Reply:
        """The reply computed here (no deadline, no size bound: the notebook's own process and values)."""
        if isinstance(request, Timed):
            # Its budget as wall-clock time, as the self-check has always had it: no watchdog thread in the kernel.
            request = dataclasses.replace(request, wall=None)
        # Through the wire format and its checks, so that what the checks decode is what a worker would send.
        return parse_reply(codec.dumps(self._answer(request)))

    def _answer(self, request: Request) -> ReplyFields:
        from grader.worker.running import CellTimeout, describe

        previous = signal.getsignal(signal.SIGALRM)  # the worker's time limit takes SIGALRM; the notebook's comes back
        try:
            return self.worker.answer(request)
        except CellTimeout:
            return {"ok": False, "timed_out": True, "error": "time limit reached"}
        except Exception as exc:  # noqa: BLE001 - the student's failure, reported as the worker reports it
            return {"ok": False, "error": describe(exc)}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def close(self) -> None:
        """The notebook's process is not ours to end."""
