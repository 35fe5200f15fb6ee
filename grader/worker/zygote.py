"""A warm worker: one process inside bubblewrap that has imported torch once and forks a worker per submission.

The zygote itself never runs student code, never runs a torch operation (a thread pool that exists at fork time
hangs every child's threaded operations) and stays single-threaded.  For each request from the grader it forks:

- a launcher child, which joins the submission's cgroup, makes new user, mount, PID, IPC and UTS namespaces
  (the user namespace first, so that the rest may be made without privileges) and forks
- the init (PID 1 of the new PID namespace, so every process the submission starts dies with it), which makes
  the submission's own mounts (a fresh tmpfs home holding a copy of the submission, a fresh /tmp and /dev/shm,
  everything else read-only, so nothing one submission writes is seen by the next), forks the worker and
  reports its exit status to the grader, and
- the worker, which closes what it inherited, drops every capability, sets no-new-privileges, reseeds the
  random generators, sets its share of threads and serves the grader's requests like a fresh worker
  (`grader.worker.main.serve_student`).

Messages: the grader sends a JSON request with descriptors (SCM_RIGHTS) on the control socket; the init reports
on the submission's own socket: b"R" (ready), b"S" + the worker's wait status, b"E" + an error.  Any byte (or
the end of the stream) from the grader on that socket kills the submission's processes.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import sys
import traceback
from typing import Any, Iterator, NoReturn

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
# statvfs's ST_* flags carry the MS_* values of the flags a remount must keep (locked ones cannot be cleared).
KEPT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | 16 | 64 | 1024 | 2048 | 4096
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
HOME, STAGE = "/home/student", "/run/grader/scratch"
# Mounts the submission writes to (made fresh for it), or that are per-process views; all others become read-only.
WRITABLE = (HOME, "/tmp", "/dev/shm", "/proc", "/dev/pts")
MAX_FDS = 16

libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def prctl(option: int, arg: int = 0, arg3: int = 0) -> None:
    check(libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(arg3), 0, 0), f"prctl {option}")


def drop_privileges() -> None:
    """No capabilities (bounding, ambient, effective, permitted, inheritable) and no way to gain any back."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)  # EINVAL past the kernel's last one: fine
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = ctypes.create_string_buffer(24)  # two zeroed __user_cap_data_struct
    check(libc.capset(ctypes.c_char_p(header), data), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def close_all_but(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


# -- the zygote ----------------------------------------------------------------------------------------------
def preload() -> None:
    """What every worker imports, paid once here; nothing is run."""
    import numpy  # noqa: F401
    import torch
    import torch.nn
    import torch.nn.functional
    import torch.optim
    import torch.utils.data  # noqa: F401

    from grader.worker import extensions, main  # noqa: F401


# Imported on the first request that asks (`preload`: its working folder's Python may use them, as the grader
# judges by grader.execution.zygote.LATE_WORDS), then kept for every later worker: what students' code imports
# lazily and slowly.  Building any optimiser imports torch._dynamo (about 1.2 s); torchvision imports it too.
LATE = ("torch._dynamo", "torchvision")
_late_done: list[bool] = []


def preload_late() -> None:
    if _late_done:
        return
    _late_done.append(True)
    for name in LATE:  # optional: import what is there
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - not installed, or not importable here
            pass
    gc.freeze()  # as after `preload`: what was imported stays out of the collector's reach


def serve(ctl: socket.socket) -> None:
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(ctl, 1 << 16, MAX_FDS)
        except OSError:
            return
        if not message:
            return  # the grader is gone
        try:
            request = json.loads(message)
            if request.get("preload"):
                preload_late()
            pid = os.fork()
            if pid == 0:
                ctl.close()
                _launcher_child(request, fds)  # never returns
            reply: dict[str, Any] = {"ok": True}  # the launcher child exits as soon as the init is forked; reaped below
        except Exception as exc:  # noqa: BLE001 - reported to the grader, which restarts or falls back
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            for fd in fds:
                os.close(fd)
        ctl.send(json.dumps(reply).encode())
        _reap()


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of each child that has exited, reaped, until none is left waiting."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _reap() -> None:
    for _ in reaped():
        pass


def _launcher_child(request: dict[str, Any], fds: list[int]) -> None:
    rfd, wfd, logfd, monfd, *cgroup_fds = fds
    monitor = socket.socket(fileno=monfd)
    try:
        for fd in cgroup_fds:  # first: everything forked from here on is born in the submission's cgroup
            os.write(fd, b"0")
            os.close(fd)
        uid, gid = os.getuid(), os.getgid()  # after the unshare these read as the overflow id
        check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
        if os.fork() == 0:
            _init(request, rfd, wfd, logfd, monitor)
    except BaseException as exc:  # noqa: BLE001
        report_error(monitor, exc)
    os._exit(0)


def report_error(monitor: socket.socket, exc: BaseException) -> None:
    try:
        monitor.send(b"E" + f"{type(exc).__name__}: {exc}".encode()[:2000])
    except OSError:
        pass
    traceback.print_exc()


def supervise(worker: int, fds: tuple[int, ...], monitor: socket.socket) -> None:
    """The rest of an init's life once its worker is forked (the zygote's and the fork server's alike): close
    what the worker holds, drop every capability, say "ready", then reap until the worker ends or the grader asks
    for the end, send the worker's exit status, and kill everything left in the namespace."""
    try:
        for fd in fds:
            os.close(fd)
        close_all_but({monitor.fileno()})
        drop_privileges()
        watch = os.pidfd_open(worker)
        monitor.send(b"R")
    except BaseException as exc:  # noqa: BLE001
        report_error(monitor, exc)
        os._exit(1)
    poller = select.poll()
    poller.register(monitor, select.POLLIN)
    poller.register(watch, select.POLLIN)
    status = None
    while status is None:
        events = dict(poller.poll(500))
        if monitor.fileno() in events:
            break  # the grader asked for the end (a byte) or is gone (end of stream): kill everything
        for pid, code in reaped():  # the worker and any orphan reparented to this init
            if pid == worker:
                status = code
    if status is not None:
        try:
            monitor.send(b"S" + struct.pack("i", status))
        except OSError:
            pass
    os.kill(-1, signal.SIGKILL)  # every other process of the namespace; it dies with this one anyway
    os._exit(0)


def _init(request: dict[str, Any], rfd: int, wfd: int, logfd: int, monitor: socket.socket) -> None:
    """PID 1 of the submission's namespace: its mounts, then the worker, then its exit status for the grader."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _mounts(request)
        worker = os.fork()
        if worker == 0:
            monitor.close()
            _worker(request, rfd, wfd, logfd)
    except BaseException as exc:  # noqa: BLE001
        report_error(monitor, exc)
        os._exit(1)
    supervise(worker, (rfd, wfd, logfd), monitor)


def _mounts(request: dict[str, Any]) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    uid, gid = os.getuid(), os.getgid()
    fresh = MS_NOSUID | MS_NODEV
    mount("tmpfs", HOME, "tmpfs", fresh, f"size={int(request['home_size'])},mode=0755,uid={uid},gid={gid}")
    # The submission's working folder (a tree the grader built: grader.execution.workdir, modes kept); the staging
    # folder is then hidden.
    shutil.copytree(STAGE, HOME, dirs_exist_ok=True)
    mount("tmpfs", STAGE, "tmpfs", fresh | MS_RDONLY, "size=4096,mode=0555")
    # What bubblewrap bound under /tmp (Python itself, where a CI installs it there) stays: each is held open
    # while the fresh /tmp covers the zygote's, then bound again at its place (read-only, like every root).
    held = [(point, os.open(point, os.O_PATH)) for point in _under("/tmp")]
    mount("tmpfs", "/tmp", "tmpfs", fresh, f"size={int(request['tmp_size'])},mode=1777")
    for point, fd in held:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(point, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(point), exist_ok=True)
            open(point, "a").close()
        mount(f"/proc/self/fd/{fd}", point, None, MS_BIND | MS_REC)
        os.close(fd)
    mount("tmpfs", "/dev/shm", "tmpfs", fresh, f"size={int(request['shm_size'])},mode=1777")
    # bubblewrap's root, /dev and the rest are shared by every child of this zygote: read-only from here on.
    for target in _mount_points():
        if target in WRITABLE or target.startswith(("/proc/", "/dev/pts/")):
            continue
        flags = os.statvfs(target).f_flag & KEPT_FLAGS
        if not flags & MS_RDONLY:
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def _under(top: str) -> list[str]:
    """The outermost mount points strictly below `top` (a recursive bind of each brings those below it)."""
    points = [p for p in _mount_points() if p.startswith(top.rstrip("/") + "/")]
    return [p for p in points if not any(p != q and p.startswith(q + "/") for q in points)]


def _mount_points() -> list[str]:
    points: list[str] = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")
            if point not in points:
                points.append(point)
    return points


def _worker(request: dict[str, Any], rfd: int, wfd: int, logfd: int) -> None:
    try:
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        only_worker_fds(rfd, wfd, logfd)
        drop_privileges()
        prctl(PR_SET_DUMPABLE, 1)  # the zygote is not dumpable; the student's own process is, as usual
        os.chdir(HOME)
        reseed()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        os._exit(70)
    serve_forked(request, rfd, wfd)


def only_worker_fds(rfd: int, wfd: int, logfd: int) -> None:
    """A forked worker's descriptors: /dev/null in, the submission's log out, its two pipe ends; nothing else
    it inherited stays open."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(logfd, 1)
    os.dup2(logfd, 2)
    close_all_but({0, 1, 2, rfd, wfd})


def serve_forked(request: dict[str, Any], rfd: int, wfd: int) -> NoReturn:
    """A forked worker, set up, serves the grader's requests and exits."""
    from grader.worker.main import serve_student

    serve_student(rfd, wfd, int(request.get("threads") or 1))
    os._exit(0)


def reseed() -> None:
    """The generators as a fresh process has them: random, NumPy and torch seeded from the OS."""
    import numpy as np
    import torch

    random.seed()
    np.random.seed()
    torch.seed()


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(ctl.fileno(), False)
    try:
        preload()
    except BaseException as exc:
        ctl.send(b"E" + f"{type(exc).__name__}: {exc}".encode()[:2000])
        raise
    prctl(PR_SET_DUMPABLE, 0)  # no process of a submission may read or write the zygote's memory
    ctl.send(b"Z")
    serve(ctl)
    os._exit(0)


if __name__ == "__main__":
    main()
