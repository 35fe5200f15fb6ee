"""The fork server: one process, outside any sandbox, that has imported torch once and forks a worker per
submission; each fork builds its own sandbox the way bubblewrap builds one (docs/forkserver.md).

The server never runs student code, never runs a torch operation and stays single-threaded (as the zygote,
grader/worker/zygote.py, whose launcher child, init and worker this mirrors).  It serves every grading process
of a batch at once: each connects to its listening socket (a path in a folder only the grading user can enter;
a connection from another user is closed unread) and sends a JSON request with descriptors (SCM_RIGHTS): the
worker's two pipe ends, its log, the submission's own monitor socket and its cgroup's cgroup.procs files.  The
request holds the arguments `BwrapLauncher.mounts` gives bubblewrap, and the child carries them out itself; an
argument it does not know is an error, never skipped.  For each request it forks:

- a launcher child, which joins the submission's cgroup, makes new user, mount, PID, IPC, UTS, network and
  cgroup namespaces (bubblewrap's --unshare-all; the user namespace maps the grading user to root, as
  bubblewrap's first one does, so that devpts can be mounted) and forks
- the init (PID 1 of the new PID namespace), which builds the root (a tmpfs with the binds, tmpfs mounts, a
  fresh /proc and a minimal /dev, then pivot_root), makes the second user namespace that maps uid and gid 1000
  to the first one's root (bubblewrap's --uid/--gid), forks the worker and reports its exit status, and
- the worker, which closes what it inherited, sets its rlimits, drops every capability, sets no-new-privileges,
  reseeds the random generators and serves the grader's requests (`grader.worker.main.serve_student`).

Messages on the submission's monitor socket are the zygote's: b"R" (ready), b"S" + the worker's wait status,
b"E" + an error; any byte (or the end of the stream) from the grader kills the submission's processes.
"""
from __future__ import annotations

import fcntl
import gc
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from grader.worker.zygote import (
    CLONE_NEWIPC,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MAX_FDS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    STAGE,
    check,
    close_all_but,
    drop_privileges,
    libc,
    mount,
    only_worker_fds,
    prctl,
    preload,
    preload_late,
    reaped,
    report_error,
    reseed,
    serve_forked,
    supervise,
)

CLONE_NEWCGROUP, CLONE_NEWNET = 0x02000000, 0x40000000
MS_SILENT, MS_SLAVE = 1 << 15, 1 << 19
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # glibc has no wrapper
PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
KEPT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | 16 | 64 | 1024 | 2048 | 4096  # see zygote.KEPT_FLAGS
BASE = "/tmp"  # bubblewrap's base_path: where the temporary root is mounted, in the child's own mount namespace
# /proc entries bubblewrap covers read-only in its fresh /proc, and the device nodes its --dev binds.
COVER_PROC = ("sys", "sysrq-trigger", "irq", "bus")
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET


@dataclass
class Plan:
    """What bubblewrap's arguments ask for, read by `parse`."""

    namespaces: int = 0
    cgroup_namespace: bool = False
    uid: int | None = None
    gid: int | None = None
    hostname: str | None = None
    new_session: bool = False
    die_with_parent: bool = False
    chdir: str = "/"
    ops: list[tuple[str, ...]] = field(default_factory=list)  # (op, *arguments), in order


# bubblewrap's options this server carries out, and how many arguments each takes.
ARITY = {
    "--unshare-all": 0, "--unshare-user": 0, "--uid": 1, "--gid": 1, "--hostname": 1, "--die-with-parent": 0,
    "--new-session": 0, "--ro-bind": 2, "--ro-bind-try": 2, "--dev-bind-try": 2, "--symlink": 2, "--size": 1,
    "--tmpfs": 1, "--proc": 1, "--dev": 1, "--remount-ro": 1, "--chdir": 1,
}


def parse(args: list[str]) -> Plan:
    """The plan for bubblewrap's arguments `args`; ValueError on one this server does not carry out."""
    plan = Plan()
    size: str | None = None
    i = 0
    while i < len(args):
        flag = args[i]
        if flag not in ARITY:
            raise ValueError(f"the fork server does not know bubblewrap's {flag}")
        values = args[i + 1:i + 1 + ARITY[flag]]
        if len(values) != ARITY[flag]:
            raise ValueError(f"{flag} needs {ARITY[flag]} arguments")
        i += 1 + ARITY[flag]
        if size is not None and flag != "--tmpfs":
            raise ValueError(f"--size must come right before --tmpfs, not {flag}")
        if flag == "--size":
            size = values[0]
        elif flag == "--tmpfs":
            plan.ops.append(("--tmpfs", values[0], size or ""))
            size = None
        elif flag in ("--ro-bind", "--ro-bind-try", "--dev-bind-try"):
            # Resolved here, on the host's view, as bubblewrap's resolve_symlinks_in_ops; read under /oldroot.
            plan.ops.append((flag, os.path.realpath(values[0]), values[1]))
        elif flag in ("--symlink", "--proc", "--dev", "--remount-ro"):
            plan.ops.append((flag, *values))
        else:
            _set_option(plan, flag, values)
    if size is not None:
        raise ValueError("--size must come right before --tmpfs, not last")
    if plan.namespaces != NAMESPACES:
        raise ValueError("the fork server builds only a sandbox with every namespace (--unshare-all)")
    return plan


def _set_option(plan: Plan, flag: str, values: list[str]) -> None:
    """One of bubblewrap's options that is not a mount."""
    if flag == "--unshare-all":
        plan.namespaces |= NAMESPACES
        plan.cgroup_namespace = True  # --unshare-cgroup-try
    elif flag == "--unshare-user":
        plan.namespaces |= CLONE_NEWUSER
    elif flag == "--uid":
        plan.uid = int(values[0])
    elif flag == "--gid":
        plan.gid = int(values[0])
    elif flag == "--hostname":
        plan.hostname = values[0]
    elif flag == "--chdir":
        plan.chdir = values[0]
    elif flag == "--new-session":
        plan.new_session = True
    else:  # --die-with-parent, the last of ARITY's
        plan.die_with_parent = True


# -- the server ----------------------------------------------------------------------------------------------
def serve(listener: socket.socket, owner: int) -> None:
    """Accept the grading processes' connections and serve their requests until `owner` (a pipe) closes."""
    clients: dict[int, socket.socket] = {}
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    poller.register(owner, select.POLLIN)
    while True:
        for fd, _ in poller.poll(1000):
            if fd == owner:
                return  # the grader that started the server is gone
            if fd == listener.fileno():
                client = accept(listener)
                if client is not None:
                    clients[client.fileno()] = client
                    poller.register(client, select.POLLIN)
            elif not answer(clients[fd]):
                poller.unregister(fd)
                clients.pop(fd).close()
        for _ in reaped():  # launcher children, and the inits orphaned to this subreaper
            pass


def accept(listener: socket.socket) -> socket.socket | None:
    try:
        client, _ = listener.accept()
    except OSError:
        return None
    creds = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid != os.getuid():  # the folder is the grading user's alone; this is the second lock
        client.close()
        return None
    return client


def answer(client: socket.socket) -> bool:
    """Serve one request; False when the client is gone."""
    try:
        message, fds, _, _ = socket.recv_fds(client, 1 << 20, MAX_FDS)
    except OSError:
        return False
    if not message:
        return False
    try:
        request = json.loads(message)
        if request.get("preload"):
            preload_late()
        plan = parse(list(request["bwrap"]))
        if len(fds) < 4:
            raise ValueError(f"{len(fds)} descriptors, not at least 4")
        pid = os.fork()
        if pid == 0:
            _launcher_child(plan, request, fds)  # never returns
        reply: dict[str, Any] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the grader, which falls back to a fresh worker
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        for fd in fds:
            os.close(fd)
    try:
        client.send(json.dumps(reply).encode())
    except OSError:
        return False
    return True


def _launcher_child(plan: Plan, request: dict[str, Any], fds: list[int]) -> None:
    rfd, wfd, logfd, monfd, *cgroup_fds = fds
    monitor = socket.socket(fileno=monfd)
    try:
        close_all_but({rfd, wfd, logfd, monfd, *cgroup_fds, 2})
        for fd in cgroup_fds:  # first: everything forked from here on is born in the submission's cgroup
            os.write(fd, b"0")
            os.close(fd)
        make_namespaces(plan)
        if os.fork() == 0:
            _init(plan, request, rfd, wfd, logfd, monitor)
    except BaseException as exc:  # noqa: BLE001
        report_error(monitor, exc)
    os._exit(0)


def make_namespaces(plan: Plan) -> None:
    """bubblewrap's clone flags, by unshare; the grading user becomes root of the new user namespace."""
    uid, gid = os.getuid(), os.getgid()  # after the unshare these read as the overflow id
    flags = plan.namespaces | (CLONE_NEWCGROUP if plan.cgroup_namespace and os.path.exists("/proc/self/ns/cgroup") else 0)
    check(libc.unshare(flags), "unshare")
    write_maps(0, uid, 0, gid)


def write_maps(inner_uid: int, outer_uid: int, inner_gid: int, outer_gid: int) -> None:
    for name, text in (("setgroups", "deny"), ("uid_map", f"{inner_uid} {outer_uid} 1"), ("gid_map", f"{inner_gid} {outer_gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _init(plan: Plan, request: dict[str, Any], rfd: int, wfd: int, logfd: int, monitor: socket.socket) -> None:
    """PID 1 of the submission's namespace: its root, then the worker, then its exit status for the grader."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        build_root(plan)
        if plan.hostname is not None:
            hostname = plan.hostname.encode()
            check(libc.sethostname(hostname, len(hostname)), "sethostname")
        loopback_up()
        if plan.uid is not None or plan.gid is not None:
            # bubblewrap's second user namespace: the sandbox's user is 1000 (or --uid), root is not mapped.
            check(libc.unshare(CLONE_NEWUSER), "unshare")
            write_maps(plan.uid if plan.uid is not None else 0, 0, plan.gid if plan.gid is not None else 0, 0)
        worker = os.fork()
        if worker == 0:
            monitor.close()
            _worker(plan, request, rfd, wfd, logfd)
    except BaseException as exc:  # noqa: BLE001
        report_error(monitor, exc)
        os._exit(1)
    supervise(worker, (rfd, wfd, logfd), monitor)


# -- the root ------------------------------------------------------------------------------------------------
def build_root(plan: Plan) -> None:
    """bubblewrap's pivot_root dance: a tmpfs root, the operations in order against the old root, then the old
    root detached, so that nothing of the host is reachable but what was bound."""
    proc = os.open("/proc", os.O_PATH | os.O_CLOEXEC)  # the host's /proc, read during the setup as bubblewrap does
    mount(None, "/", None, MS_SILENT | MS_SLAVE | MS_REC)
    mount("tmpfs", BASE, "tmpfs", MS_NODEV | MS_NOSUID)
    os.chdir(BASE)
    os.mkdir("newroot", 0o755)
    mount("newroot", "newroot", None, MS_SILENT | MS_BIND | MS_REC)
    os.mkdir("oldroot", 0o755)
    pivot_root(BASE, "oldroot")
    os.chdir("/")
    for op in plan.ops:
        carry_out(op, proc)
    for kind, *args in plan.ops:
        if kind == "--dev":  # populated (GPUs included): read-only from here on, its shm and pts mounts apart
            remount_readonly("/newroot" + args[0])
    mount("oldroot", "oldroot", None, MS_SILENT | MS_REC | MS_PRIVATE)
    check(libc.umount2(b"oldroot", MNT_DETACH), "umount oldroot")
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    os.chdir("/newroot")
    pivot_root(".", ".")
    os.fchdir(old)
    os.close(old)
    check(libc.umount2(b".", MNT_DETACH), "umount the temporary root")
    os.chdir("/")
    os.close(proc)
    # bubblewrap leaves its root tmpfs and /dev writable by the sandbox's user; here they are read-only, so a
    # submission writes only to its home, /tmp and /dev/shm (as in a warm zygote's worker).
    remount_readonly("/")


def pivot_root(new: str, old: str) -> None:
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root's system call number on {platform.machine()} is not known here")
    check(libc.syscall(number, new.encode(), old.encode()), f"pivot_root {new}")


def carry_out(op: tuple[str, ...], proc: int) -> None:
    kind, *args = op
    if kind in ("--ro-bind", "--ro-bind-try", "--dev-bind-try"):
        source, dest = args
        if not os.path.lexists("/oldroot" + source):
            if kind == "--ro-bind":
                raise FileNotFoundError(f"--ro-bind: {source} does not exist")
            return
        bind("/oldroot" + source, "/newroot" + dest, proc, readonly=kind != "--dev-bind-try", devices=kind == "--dev-bind-try")
    elif kind == "--symlink":
        target, dest = args
        make_parents("/newroot" + dest)
        os.symlink(target, "/newroot" + dest)
    elif kind == "--tmpfs":
        dest, size = args
        make_dir("/newroot" + dest)
        mount("tmpfs", "/newroot" + dest, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0755{',size=' + size if size else ''}")
    elif kind == "--remount-ro":
        remount_readonly("/newroot" + args[0])
    elif kind == "--proc":
        mount_proc("/newroot" + args[0], proc)
    elif kind == "--dev":
        mount_dev("/newroot" + args[0], proc)
    else:  # parse lets through only what is handled above
        raise ValueError(f"unknown operation {kind}")


def remount_readonly(target: str) -> None:
    mount(None, target, None, MS_SILENT | MS_REMOUNT | MS_BIND | MS_RDONLY | (os.statvfs(target).f_flag & KEPT_FLAGS))


def bind(source: str, dest: str, proc: int, readonly: bool, devices: bool = False) -> None:
    """A recursive bind, every mount under it made read-only (and nodev unless `devices`), as bubblewrap's
    bind_mount does."""
    if os.path.isdir(source):
        make_dir(dest)
    else:
        make_parents(dest)
        if not os.path.lexists(dest):
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT, 0o444))
    mount(source, dest, None, MS_SILENT | MS_BIND | MS_REC)
    extra = (MS_RDONLY if readonly else 0) | (0 if devices else MS_NODEV) | MS_NOSUID
    for point in [dest, *under(dest, proc)]:
        flags = os.statvfs(point).f_flag & KEPT_FLAGS
        if flags | extra != flags:
            mount(None, point, None, MS_SILENT | MS_REMOUNT | MS_BIND | flags | extra)


def mount_proc(dest: str, proc: int) -> None:
    make_dir(dest)
    mount("proc", dest, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV)
    for name in COVER_PROC:
        path = f"{dest}/{name}"
        if os.path.exists(path) and os.access(path, os.W_OK):
            bind(path, path, proc, readonly=True)


def mount_dev(dest: str, proc: int) -> None:
    make_dir(dest)
    mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for name in DEV_NODES:
        bind(f"/oldroot/dev/{name}", f"{dest}/{name}", proc, readonly=False, devices=True)
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{dest}/{name}")
    os.symlink("/proc/self/fd", f"{dest}/fd")
    os.symlink("/proc/kcore", f"{dest}/core")
    os.mkdir(f"{dest}/shm", 0o755)
    os.mkdir(f"{dest}/pts", 0o755)
    mount("devpts", f"{dest}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    os.symlink("pts/ptmx", f"{dest}/ptmx")


def loopback_up() -> None:
    """The network namespace's loopback interface up (bubblewrap's loopback_setup), and nothing else."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


def make_dir(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def make_parents(path: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)


def under(top: str, proc: int) -> list[str]:
    """Mount points strictly below `top`, from this process's mountinfo (read through the host's /proc while
    the root is being built)."""
    prefix = top.rstrip("/") + "/"
    with open(os.open("self/mountinfo", os.O_RDONLY, dir_fd=proc)) as fh:
        points = [unescape(line.split()[4]) for line in fh]
    return list(dict.fromkeys(p for p in points if p.startswith(prefix)))


def unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (a space is \\040) undone; no codec is looked up, since none
    can be imported while the root is being built."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


# -- the worker ----------------------------------------------------------------------------------------------
def _worker(plan: Plan, request: dict[str, Any], rfd: int, wfd: int, logfd: int) -> None:
    try:
        if plan.new_session:
            os.setsid()
        if plan.die_with_parent:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        only_worker_fds(rfd, wfd, logfd)
        os.chdir(plan.chdir)
        # What BwrapLauncher's trampoline does before the worker: the submission's folder into its home.
        shutil.copytree(STAGE, ".", dirs_exist_ok=True)
        set_limits(request["rlimits"])
        drop_privileges()
        prctl(PR_SET_DUMPABLE, 1)  # the server is not dumpable; the student's own process is, as usual
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["PWD"] = plan.chdir
        reseed()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        os._exit(70)
    serve_forked(request, rfd, wfd)


def set_limits(pairs: list[list[int]]) -> None:
    """The grader's rlimits (sandbox.rlimit_pairs, and RLIMIT_NPROC, which counts only this user namespace's
    processes once set inside it), each at most its current hard limit."""
    for which, value in pairs:
        _soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


# -- probing -------------------------------------------------------------------------------------------------
def probe(args: list[str]) -> None:
    """Build one sandbox from bubblewrap's arguments `args` and check it from inside: exit 0 when everything
    worked, else 1 with the reason on stderr.  No torch, so it takes a few milliseconds."""
    plan = parse(args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            make_namespaces(plan)
            init = os.fork()
            if init == 0:
                build_root(plan)
                loopback_up()
                check(libc.unshare(CLONE_NEWUSER), "unshare")
                write_maps(plan.uid or 0, 0, plan.gid or 0, 0)
                drop_privileges()
                seen = sorted(p for p in os.listdir("/proc") if p.isdigit())
                if seen != ["1"]:
                    raise RuntimeError(f"the fresh /proc shows {seen}, not this process alone")
                os.write(write, b"ok")
                os._exit(0)
            _, status = os.waitpid(init, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            os._exit(1)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    said = os.read(read, 16)
    if status != 0 or said != b"ok":
        sys.exit(1)


def main() -> None:
    if sys.argv[1] == "--probe":
        probe(json.loads(sys.argv[2]))
        return
    listener = socket.socket(fileno=int(sys.argv[1]))
    owner = int(sys.argv[2])
    os.set_inheritable(listener.fileno(), False)
    os.set_inheritable(owner, False)
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # each submission's init, orphaned by its launcher child, is reaped here
    preload()
    prctl(PR_SET_DUMPABLE, 0)  # no process of a submission may read or write the server's memory
    gc.freeze()  # the imported objects move out of the collector's reach: a child's collections copy no page
    serve(listener, owner)
    os._exit(0)


if __name__ == "__main__":
    main()
