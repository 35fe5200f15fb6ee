"""The fork server, the grader's side: one process per batch that has imported torch once and forks every
submission's worker, each in a sandbox it builds as bubblewrap would (docs/forkserver.md; the server is
grader/worker/forkserver.py).

`start` launches the server (its imports run while the rubric and the submissions are read) and returns a
`ForkServerLauncher`: plain data (the server's address), so that it pickles into the process pool, whose
processes each connect to the same server.  A session calls `spawn` for a forked worker and `launch` (a fresh
bubblewrap worker) where the server cannot fork one.  `forkserver_problem` says, once per process, why no
sandbox can be built here without bubblewrap, or None.
"""
from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from grader.execution.sandbox import BwrapLauncher, Launch, WorkerCgroup, compile_grader, last_line
from grader.execution.zygote import (
    READY_TIMEOUT,
    BwrapForking,
    WarmProcess,
    ZygoteError,
    fork_worker,
    may_import_late,
)
from grader.rubric.schema import Limits

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 30.0
SERVER_MODULE = "grader.worker.forkserver"


def wanted() -> bool:
    """Whether the fork server may be used: GRADER_FORKSERVER=0 asks for bubblewrap, as before it."""
    return os.environ.get("GRADER_FORKSERVER", "1") != "0"


@functools.cache
def forkserver_problem() -> str | None:
    """Why the fork server cannot build a sandbox here, or None when it can: a full sandbox is built from
    bubblewrap's arguments, without torch, and checked from inside (once per process)."""
    if not sys.platform.startswith("linux"):
        return f"the fork server needs Linux (this is {sys.platform})"
    scratch = Path(tempfile.mkdtemp(prefix="grader-probe-"))
    try:
        args = BwrapLauncher().mounts(scratch, Limits())
        proc = subprocess.run(
            [sys.executable, "-s", "-P", "-m", SERVER_MODULE, "--probe", json.dumps(args)], check=False,
            capture_output=True, timeout=PROBE_TIMEOUT, env=BwrapLauncher.environment(scratch), cwd="/",
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the fork server's probe did not run: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"no sandbox without bubblewrap here: {detail[-1] if detail else f'exit status {proc.returncode}'}"
    return None


class ForkServer:
    """The server process, owned by the grading process that started it (the batch's main process)."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.folder = Path(tempfile.mkdtemp(prefix="grader-forkserver-"))  # 0700: the grading user's alone
        self.address = str(self.folder / "socket")
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (the server's stderr, kept for its lifetime)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(self.address)
        listener.listen(128)  # connections wait here while the server imports torch
        owner_r, self.owner_w = os.pipe()  # the server exits when this process (the last holder) is gone
        compile_grader()
        argv = [sys.executable, "-s", "-P", "-m", SERVER_MODULE, str(listener.fileno()), str(owner_r)]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self.errors, stderr=self.errors, cwd="/",
                env=BwrapLauncher.environment(self.folder), pass_fds=(listener.fileno(), owner_r),
            )
        except OSError:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        finally:
            listener.close()
            os.close(owner_r)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        os.close(self.owner_w)
        self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("the fork server %d did not exit after SIGKILL", self.proc.pid)
        self.errors.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Connection:
    """A grading process's connection to the server; its workers are reaped (by the server) and their cgroups
    removed (here) before the next is forked."""

    def __init__(self, address: str) -> None:
        self.owner = os.getpid()
        self.retired: list[WarmProcess] = []
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.ctl.connect(address)
        except OSError as exc:
            self.ctl.close()
            raise ZygoteError(f"the fork server at {address} cannot be reached: {exc}") from exc

    def spawn(
        self, base: BwrapLauncher, scratch: Path, limits: Limits, log_path: Path | None, rfd: int, wfd: int,
        threads: int,
    ) -> tuple[WarmProcess, Launch]:
        self.settle()
        request = {
            "bwrap": base.mounts(scratch, limits), "env": BwrapLauncher.environment(scratch),
            "rlimits": base.rlimits(limits), "threads": threads, "preload": may_import_late(scratch),
        }
        cgroup = WorkerCgroup.create(limits)
        return fork_worker(self.ctl, request, cgroup, log_path, rfd, wfd, self.retired, READY_TIMEOUT)

    def settle(self) -> None:
        while self.retired and self.owner == os.getpid():
            self.retired.pop().finish()

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        self.settle()
        self.ctl.close()


@dataclass(frozen=True)
class ForkServerLauncher(BwrapForking):
    """Workers forked by the batch's fork server, at `address`."""

    address: str = field(kw_only=True)

    name: ClassVar[str] = "forkserver"

    def spawn(
        self, scratch: Path, limits: Limits, log_path: Path | None, rfd: int, wfd: int
    ) -> tuple[WarmProcess, Launch]:
        """A worker for the submission staged in `scratch`, forked by the server and sandboxed by itself."""
        key = (self.address, threading.current_thread())  # a slot's workers are forked, and reaped, one at a time
        with _CONNECTIONS_LOCK:
            connection = _CONNECTIONS.get(key)
        if connection is None or connection.owner != os.getpid():
            _close_finished()
            connection = Connection(self.address)
            with _CONNECTIONS_LOCK:
                _CONNECTIONS[key] = connection
        try:
            return connection.spawn(self.base, scratch, limits, log_path, rfd, wfd, self.threads)
        except ZygoteError:
            connection.close()
            with _CONNECTIONS_LOCK:
                _CONNECTIONS.pop(key, None)
            server = _SERVERS.get(self.address)
            if server is not None and not server.alive:
                raise ZygoteError(f"the fork server is gone: {last_line(server.errors) or 'no message'}") from None
            raise


_SERVERS: dict[str, ForkServer] = {}  # started by this process
# This process's, by server address and the thread (a batch's slot) that uses it: a connection's retired worker is
# reaped before its next fork, so two slots never share one.
_CONNECTIONS: dict[tuple[str, threading.Thread], Connection] = {}
_CONNECTIONS_LOCK = threading.Lock()  # for the dict only


def _close_finished() -> None:
    """Close the connections of threads that have ended (a finished batch's slots), their workers reaped."""
    with _CONNECTIONS_LOCK:
        closing = [_CONNECTIONS.pop(k) for k in [k for k in _CONNECTIONS if not k[1].is_alive()]]
    for connection in closing:
        connection.close()


def start(base: BwrapLauncher) -> ForkServerLauncher:
    """The launcher of this process's fork server, started now if none is running (its imports go on in the
    background: the first worker waits for them)."""
    for address, server in list(_SERVERS.items()):
        if server.alive and server.owner == os.getpid():
            return ForkServerLauncher(base, address=address)
        _SERVERS.pop(address).close()
    server = ForkServer()
    _SERVERS[server.address] = server
    return ForkServerLauncher(base, address=server.address)


def settle() -> None:
    """Reap this process's retired forked workers now and remove their cgroups (done anyway before the next
    fork and at exit), so that nothing of a finished grading is left."""
    with _CONNECTIONS_LOCK:
        settling = [c for (_, t), c in _CONNECTIONS.items() if t is threading.current_thread() or not t.is_alive()]
    for connection in settling:
        connection.settle()


def running_servers() -> list[int]:
    """The process ids of the fork servers this process started that still run (bench/ measures them)."""
    return [server.proc.pid for server in _SERVERS.values() if server.alive]


@atexit.register
def close_servers() -> None:
    with _CONNECTIONS_LOCK:
        closing = list(_CONNECTIONS.values())
        _CONNECTIONS.clear()
    for connection in closing:
        connection.close()
    for server in list(_SERVERS.values()):
        server.close()
    _SERVERS.clear()
