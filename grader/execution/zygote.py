"""Warm workers: a zygote per grading process that has imported torch once, inside bubblewrap, and forks a
worker per submission (`grader/worker/zygote.py` is its side).

`WarmLauncher` wraps a `BwrapLauncher`: sessions call `spawn` for a worker forked by this process's zygote, and
`launch` (a fresh worker) where no zygote can run.  Each submission still gets its own cgroup, its own PID,
mount, IPC and UTS namespaces, a fresh tmpfs home, /tmp and /dev/shm, a read-only view of everything else, and
no capabilities; the zygote's slot runs one submission at a time (each is killed and reaped before the next).

Why a zygote per grading process, not one shared by a batch's slots (which would save ~400 MB per extra slot):
submissions forked by one zygote at the same time would see each other's processes, since they share the
zygote's /proc (its PID namespace holds theirs), and a /proc of their own cannot be mounted under bubblewrap's
read-only covers of /proc/irq and the like (EPERM, `subset=pid` included; nor can a zygote given
CAP_SYS_ADMIN by `bwrap --cap-add` unmount those covers: tried with bubblewrap 0.8 on Linux 6.18).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Iterable, Mapping, Protocol, Self

from grader.execution.sandbox import BwrapLauncher, Launch, Launcher, WorkerCgroup, compile_grader, last_line
from grader.execution.workdir import tree_size
from grader.rubric.schema import Limits
from grader.worker.protocol import MiB

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0  # a zygote's imports
SPAWN_TIMEOUT = 30.0
KILL_WAIT = 10.0


class ZygoteError(RuntimeError):
    """The zygote could not start or fork; the session falls back to a fresh worker."""


def cpu_share(jobs: int) -> int:
    """Threads per worker when `jobs` submissions are graded at once: an equal share of this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


@dataclass(frozen=True)
class BwrapForking:
    """What the launchers of forked workers (a zygote's, the fork server's) share: bubblewrap's arguments, which
    each forked worker's sandbox is built from and a worker that cannot be forked is launched with, and each
    worker's torch threads.  Plain data, so that it pickles into a process pool."""

    base: BwrapLauncher
    threads: int = 1

    forks: ClassVar[bool] = True
    hides: ClassVar[bool] = True
    sets_threads: ClassVar[bool] = True

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        """A fresh bubblewrap worker, where none can be forked."""
        return self.base.launch(worker_argv, scratch, limits)

    def hiding(self, paths: Iterable[Path]) -> Self:
        return replace(self, base=self.base.hiding(paths))

    def with_threads(self, threads: int) -> Self:
        return replace(self, threads=threads)


@dataclass(frozen=True)
class WarmLauncher(BwrapForking):
    """Bubblewrap with a warm zygote."""

    name: ClassVar[str] = "bwrap"  # the same sandbox as a fresh worker's, recorded alike

    def spawn(
        self, scratch: Path, limits: Limits, log_path: Path | None, rfd: int, wfd: int
    ) -> tuple[WarmProcess, Launch]:
        """A worker for the submission staged in `scratch`, forked by this process's zygote (started, or
        restarted after a death, on demand)."""
        key = (self.base, limits, threading.current_thread())
        with _ZYGOTES_LOCK:
            zygote = _ZYGOTES.pop(key, None)  # re-inserted last: the dict is in order of use
        if zygote is None or zygote.dead or zygote.owner != os.getpid():
            if zygote is not None and zygote.owner == os.getpid():
                zygote.close()
            _evict(MAX_ZYGOTES - 1)
            zygote = Zygote(self.base, limits)
        with _ZYGOTES_LOCK:
            _ZYGOTES[key] = zygote
        try:
            return zygote.spawn(scratch, limits, log_path, rfd, wfd, self.threads)
        except ZygoteError:
            zygote.close()
            with _ZYGOTES_LOCK:
                _ZYGOTES.pop(key, None)
            raise


# What a submission's code imports that the warm process imports only when asked (grader.worker.zygote.LATE):
# torch._dynamo, which building any optimiser imports (about 1.2 s), and torchvision.  A working folder whose
# Python mentions none of these words does not make its worker wait for them; one that uses them another way
# (a name built at run time) imports them itself, in its own time.
LATE_WORDS = re.compile(
    rb"optim|torchvision|compile|dynamo|functorch|torch\.func\b|import func\b|export|lightning|torch\.fx|inductor"
    rb"|timm|transformers"
)
LATE_SCAN = 16 * MiB  # bytes read of each file


def may_import_late(folder: Path) -> bool:
    """Whether the Python (modules and notebooks) of a working folder may import a module of LATE."""
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".py", ".ipynb") and path.is_file() and not path.is_symlink():
            try:
                with path.open("rb") as fh:
                    if LATE_WORDS.search(fh.read(LATE_SCAN)):
                        return True
            except OSError:
                return True  # unread: the safe side is to import them
    return False


class ForkingLauncher(Launcher, Protocol):
    """A launcher whose `forks` is true: a worker forked by a warm process (a zygote, the fork server)."""

    def spawn(
        self, scratch: Path, limits: Limits, log_path: Path | None, rfd: int, wfd: int
    ) -> tuple[WarmProcess, Launch]: ...


class WarmProcess:
    """The grader's view of a forked worker, shaped like `subprocess.Popen` where the session uses one."""

    pid = 0  # not addressable from here (another PID namespace): killed through its init or its cgroup

    def __init__(self, monitor: socket.socket, retired: list[WarmProcess], launch: Launch) -> None:
        self.monitor = monitor
        self.returncode: int | None = None
        self.launch = launch
        self.retired_into = retired  # where its zygote or connection finds it, to reap it before the next
        self.retired = False

    def retire(self) -> None:
        """Kill the worker and everything it started; its zygote reaps it and removes its cgroup before it
        forks the next one (or closes), so the grader need not wait for the teardown here."""
        if not self.retired:
            self.retired = True
            self.kill()
            self.retired_into.append(self)

    def finish(self) -> None:
        try:
            self.wait(KILL_WAIT)
        except subprocess.TimeoutExpired:
            log.warning("a warm worker did not exit %g s after it was killed", KILL_WAIT)
            self.monitor.close()
        _cleanup(self.launch)

    def poll(self) -> int | None:
        code = self._read(0.0)
        return -9 if code is None and self.retired else code

    def wait(self, timeout: float | None = None) -> int:
        code = self._read(timeout)
        if code is None:
            raise subprocess.TimeoutExpired("worker", timeout or 0.0)
        return code

    def kill(self) -> None:
        try:
            self.monitor.send(b"K")
        except OSError:
            pass

    def _read(self, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.monitor], [], [], remaining)
            if not ready:
                return None
            try:
                message = self.monitor.recv(4096)
            except OSError:
                message = b""
            if not message:  # the init is gone without a status: it was killed, and so was the worker
                self.returncode = -9
            elif message[:1] == b"S" and len(message) == 5:
                self.returncode = os.waitstatus_to_exitcode(struct.unpack("i", message[1:])[0])
        if self.returncode is not None:
            self.monitor.close()
        return self.returncode


class Zygote:
    """One warm process inside bubblewrap, owned by the grading process that started it."""

    def __init__(self, base: BwrapLauncher, limits: Limits) -> None:
        self.owner = os.getpid()
        self.retired: list[WarmProcess] = []
        self.stage = Path(tempfile.mkdtemp(prefix="grader-zygote-"))
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (the zygote's stderr, kept for its lifetime)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        compile_grader()
        argv = [sys.executable, "-s", "-P", "-m", "grader.worker.zygote", str(theirs.fileno())]
        self.launch = base.launch(argv, self.stage, limits)
        self.ctl = ours
        try:
            self.proc = subprocess.Popen(
                self.launch.argv, stdin=subprocess.DEVNULL, stdout=self.errors, stderr=self.errors,
                cwd=self.launch.cwd, env=self.launch.env, pass_fds=(theirs.fileno(),), preexec_fn=self.launch.preexec,
            )
        except OSError as exc:
            self.close()
            raise ZygoteError(f"the zygote did not start: {exc}") from exc
        finally:
            theirs.close()
        _LIVE.append(self)
        hello = self._receive(READY_TIMEOUT)
        if hello != b"Z":
            self.close()
            raise ZygoteError(f"the zygote did not start: {hello[1:].decode(errors='replace') or last_line(self.errors) or 'no message'}")

    @property
    def dead(self) -> bool:
        return self.proc.poll() is not None

    def spawn(
        self, scratch: Path, limits: Limits, log_path: Path | None, rfd: int, wfd: int, threads: int
    ) -> tuple[WarmProcess, Launch]:
        while self.retired:  # the slot's previous worker is dead, reaped and its cgroup gone before the next
            self.retired.pop().finish()
        for old in self.stage.iterdir():  # the slot's previous submission, if any: never seen by this one
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        shutil.copytree(scratch, self.stage, dirs_exist_ok=True)  # the working folder's tree (grader.execution.workdir)
        quota = limits.disk_mb * MiB
        request = {
            "home_size": quota + tree_size(self.stage), "tmp_size": quota, "shm_size": limits.file_size_mb * MiB,
            "threads": threads, "preload": may_import_late(scratch),
        }
        cgroup = WorkerCgroup.create(limits)
        return fork_worker(self.ctl, request, cgroup, log_path, rfd, wfd, self.retired, SPAWN_TIMEOUT)

    def _receive(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.ctl], [], [], timeout)
        if not ready:
            raise ZygoteError(f"the zygote did not answer within {timeout:g} s")
        return self.ctl.recv(1 << 16)

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        while self.retired:
            self.retired.pop().finish()
        self.ctl.close()
        proc = getattr(self, "proc", None)
        if proc is not None:
            proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("the zygote %d did not exit after SIGKILL", proc.pid)
        _cleanup(self.launch)
        self.errors.close()
        shutil.rmtree(self.stage, ignore_errors=True)
        if self in _LIVE:
            _LIVE.remove(self)


def fork_worker(
    ctl: socket.socket, request: Mapping[str, object], cgroup: WorkerCgroup | None, log_path: Path | None, rfd: int,
    wfd: int, retired: list[WarmProcess], reply_timeout: float,
) -> tuple[WarmProcess, Launch]:
    """Ask a zygote or the fork server (on `ctl`) for a worker: the request, the worker's pipe ends, its log,
    its own monitor socket and its cgroup's cgroup.procs files go over SCM_RIGHTS; the worker is ready when
    its init says b"R" on the monitor socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fds = [theirs.fileno()]
    launch = Launch([], {}, "", None, cgroup.cleanup if cgroup else None, cgroup)
    try:
        logfd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if log_path else os.open(os.devnull, os.O_WRONLY)
        fds.append(logfd)
        fds += [os.open(path, os.O_WRONLY) for path in (cgroup.procs_files if cgroup else ())]
        socket.send_fds(ctl, [json.dumps(request).encode()], [rfd, wfd, logfd, theirs.fileno(), *fds[2:]])
        ready, _, _ = select.select([ctl], [], [], reply_timeout)
        if not ready:
            raise ZygoteError(f"no answer within {reply_timeout:g} s")
        reply = ctl.recv(1 << 16)
    except (OSError, ZygoteError) as exc:
        ours.close()
        _cleanup(launch)
        raise ZygoteError(f"the zygote did not answer: {exc}") from exc
    finally:
        for fd in fds[1:]:
            os.close(fd)
        theirs.close()
    try:
        answer = json.loads(reply)
    except ValueError:
        answer = {"ok": False, "error": f"unreadable reply {reply[:100]!r}"}
    if not answer.get("ok"):
        ours.close()
        _cleanup(launch)
        raise ZygoteError(f"the zygote could not fork: {answer.get('error')}")
    ready, _, _ = select.select([ours], [], [], SPAWN_TIMEOUT)
    status = ours.recv(4096) if ready else b""
    if status != b"R":
        ours.close()
        _cleanup(launch)
        raise ZygoteError(f"the worker's sandbox was not made: {status[1:].decode(errors='replace') or 'no answer'}")
    return WarmProcess(ours, retired, launch), launch


def _cleanup(launch: Launch) -> None:
    if launch.cleanup is not None:
        try:
            launch.cleanup()
        except Exception:
            log.warning("cleaning up after a zygote failed", exc_info=True)


_ZYGOTES: dict[tuple[BwrapLauncher, Limits, threading.Thread], Zygote] = {}
# A grading run has one sandbox and one set of limits, so one zygote per slot (a thread: a zygote dies with the
# thread that started it, bwrap --die-with-parent, and runs one submission at a time); a process that grades under
# many (a test suite, `grader validate`) keeps the most recently used few per thread, each holding torch (hundreds
# of MB).
MAX_ZYGOTES = 2
_ZYGOTES_LOCK = threading.Lock()  # for the dict only: a zygote starts, forks and closes outside it


def prestart(launcher: WarmLauncher, limits: Limits) -> None:
    """Start this process's zygote for `launcher` and `limits` now (it imports torch while the caller does its own
    work), so that the first `spawn` forks at once; a zygote that cannot start is started again, or given up for
    a fresh worker, by that `spawn` as usual."""
    key = (launcher.base, limits, threading.current_thread())
    with _ZYGOTES_LOCK:
        if key in _ZYGOTES:
            return
    try:
        zygote = Zygote(launcher.base, limits)
    except ZygoteError:
        log.warning("the zygote did not start ahead of the first worker", exc_info=True)
        return
    _evict(MAX_ZYGOTES - 1)
    with _ZYGOTES_LOCK:
        _ZYGOTES[key] = zygote


def _evict(keep: int) -> None:
    """Close the zygotes of threads that have ended, and this thread's least recently used ones until at most
    `keep` of its own are left (another slot's zygote is never touched: it may be forking)."""
    here = threading.current_thread()
    with _ZYGOTES_LOCK:
        ended = [k for k in _ZYGOTES if not k[2].is_alive()]
        mine = [k for k in _ZYGOTES if k[2] is here]
        closing = [_ZYGOTES.pop(k) for k in ended + mine[:max(0, len(mine) - keep)]]
    for zygote in closing:
        zygote.close()
_LIVE: list[Zygote] = []


@atexit.register
def close_zygotes() -> None:
    for zygote in list(_LIVE):
        zygote.close()
    with _ZYGOTES_LOCK:
        _ZYGOTES.clear()
