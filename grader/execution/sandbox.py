"""How a worker process is started: the command line and the limits around it.

Two launchers, one protocol.  `PlainLauncher` gives rlimits and a new session only: the student's code can
read whatever the grading user can read and can use the network.  `BwrapLauncher` runs the worker inside
bubblewrap: a read-only view of the system, the Python installation and the `grader` package, size-limited
tmpfs mounts for its home (holding a copy of the submission) and /tmp as its only writable places (a disk
quota), no network, its own PID namespace (every process it starts dies with it), and the same rlimits.  Under
both, where
cgroups can be made, the worker and everything it starts share one cgroup that bounds their memory and process
count together (`WorkerCgroup`).  `choose_launcher` picks a launcher for the CLI's `--sandbox` option.
"""
from __future__ import annotations

import atexit
import errno
import functools
import glob
import itertools
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Protocol, cast

from grader.execution.workdir import tree_size

if TYPE_CHECKING:  # annotations only: `grader check`'s client parses its options without pydantic
    from grader.rubric.schema import Limits

log = logging.getLogger(__name__)

SANDBOX_MODES = ("auto", "required", "off")
SANDBOX_HOME = "/home/student"  # the worker's home and working folder inside the sandbox
SANDBOX_STAGE = "/run/grader/scratch"  # the scratch folder, read-only, copied into SANDBOX_HOME at start


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None] | None
    # Call once the worker has been reaped: kills what is left of its processes and removes its cgroup.
    cleanup: Callable[[], None] | None = None
    cgroup: WorkerCgroup | None = None  # where the worker and its descendants are bounded together, if anywhere


class Launcher(Protocol):
    """How a session starts its worker.  What a launcher can do beyond `launch` it declares, so that no caller
    probes for methods: `hides` (a `HidingLauncher`: paths made invisible to the worker), `sets_threads` (a
    `ThreadedLauncher`: each worker's share of the cores) and `forks` (a `zygote.ForkingLauncher`: a worker
    forked by a warm process, `spawn`)."""

    # Properties, so that class attributes (ClassVars) fit.
    @property
    def name(self) -> str: ...
    @property
    def forks(self) -> bool: ...
    @property
    def hides(self) -> bool: ...
    @property
    def sets_threads(self) -> bool: ...

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch: ...


class HidingLauncher(Launcher, Protocol):
    def hiding(self, paths: Iterable[Path]) -> Launcher: ...


class ThreadedLauncher(Launcher, Protocol):
    def with_threads(self, threads: int) -> Launcher: ...


def last_line(errors: BinaryIO) -> str:
    """The last line a launched process (a worker, a zygote, the fork server) wrote to its stderr file, read from
    its last 4 KiB: what its failure says; empty where it wrote nothing."""
    errors.seek(0, os.SEEK_END)
    errors.seek(max(0, errors.tell() - 4096))
    lines = errors.read().decode(errors="replace").strip().splitlines()
    return lines[-1][:500] if lines else ""


def worker_env(scratch: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # a student's prints reach the log even when the worker is killed
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": os.environ.get("GRADER_TORCH_THREADS", "1"),
        "GRADER_TORCH_THREADS": os.environ.get("GRADER_TORCH_THREADS", "1"),
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }
    for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def rlimit_pairs(limits: Limits) -> list[tuple[int, int]]:
    mb = 1024 * 1024
    pairs = [
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.memory_mb:
        # RLIMIT_DATA, not RLIMIT_AS: a CUDA build of torch reserves far more address space than it uses (it
        # needs about 4 GiB of address space just to import, and a CUDA context reserves tens of GiB), while
        # DATA counts what a submission can actually fill: heap and private anonymous mappings.
        pairs.append((resource.RLIMIT_DATA, limits.memory_mb * mb))
    return pairs


def set_rlimits(limits: Limits, cgroup: WorkerCgroup | None = None) -> None:
    """Runs in the child between fork and exec."""
    if cgroup is not None:
        cgroup.join()  # first: every process the worker starts from here on is born inside it
    os.setsid()
    for which, value in rlimit_pairs(limits):
        try:
            _soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


class PlainLauncher:
    """No OS isolation: rlimits, a scratch directory as working directory, a new session for clean-up."""

    name: ClassVar[str] = "none"
    forks: ClassVar[bool] = False
    hides: ClassVar[bool] = False
    sets_threads: ClassVar[bool] = False

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        cgroup = WorkerCgroup.create(limits)
        return Launch(
            worker_argv, worker_env(scratch), str(scratch), lambda: set_rlimits(limits, cgroup),
            cgroup.cleanup if cgroup else None, cgroup,
        )


@functools.cache
def compile_grader() -> None:
    """Byte-compile the grader's own modules, once per process, where the package folder is writable.

    Workers run with PYTHONDONTWRITEBYTECODE (a student's process writes nothing beside the grader), so without
    this each worker start compiled every grader module it imports (~0.15 s).  Python checks a .pyc against its
    source's timestamp and size before using it: an edited module is never run from old bytecode.
    """
    import compileall

    try:
        compileall.compile_dir(str(Path(__file__).resolve().parents[1]), quiet=2, workers=1)
    except OSError:  # a read-only install: the workers compile in memory, as before
        pass


def worker_argv(rfd: int, wfd: int) -> list[str]:
    compile_grader()
    # Not -I: it implies -E, which drops worker_env's PYTHONHASHSEED (string hashing, hence set order, would
    # differ run to run) and PYTHONUNBUFFERED.  The environment is ours entirely, so -s -P isolate enough.
    return [sys.executable, "-s", "-P", "-m", "grader.worker", str(rfd), str(wfd)]


# -- bubblewrap ---------------------------------------------------------------------------------------------

# The few files of /etc a Python process and its libraries read; passwd, hosts, ssh keys and the rest stay out.
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "fonts", "mime.types",
    "nsswitch.conf", "ssl/certs", "ssl/openssl.cnf", "matplotlibrc",
)
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("/dev/nvidia*", "/dev/dri")

# Run inside the sandbox before the worker.  RLIMIT_NPROC set after the user namespace exists counts only the
# sandbox's processes, not every process of the grading user on the machine.  The scratch folder (a tree:
# grader.execution.workdir) is copied into the home tmpfs, so the submission sits where it always did but every byte the
# student writes lands in a bounded tmpfs, not on the host's disk.
_TRAMPOLINE = (
    "import os,resource,shutil,sys;n=int(sys.argv[1]);resource.setrlimit(resource.RLIMIT_NPROC,(n,n));"
    "shutil.copytree(sys.argv[2],'.',dirs_exist_ok=True);"
    "os.execv(sys.argv[3],sys.argv[3:])"
)


def python_roots() -> list[Path]:
    """Folders the worker's interpreter needs: the base installation, the virtual environment, `grader`."""
    import grader

    roots = [Path(sys.base_prefix).resolve(), Path(sys.prefix), Path(grader.__file__).resolve().parent]
    exe = Path(sys.executable)
    if exe.is_symlink():
        roots.append(exe.resolve().parent.parent)
    unique: list[Path] = []
    for root in roots:
        if root.exists() and not any(root == u or root.is_relative_to(u) for u in unique):
            unique = [u for u in unique if not u.is_relative_to(root)] + [root]
    return unique


@dataclass(frozen=True)
class BwrapLauncher:
    """The worker inside bubblewrap.  Plain data (paths, tuples), so it pickles into the process pool."""

    name: ClassVar[str] = "bwrap"
    forks: ClassVar[bool] = False
    hides: ClassVar[bool] = True
    sets_threads: ClassVar[bool] = False
    bwrap: str = "bwrap"
    roots: tuple[str, ...] = field(default_factory=lambda: tuple(map(str, python_roots())))
    hidden: tuple[str, ...] = ()  # files or folders under `roots` the worker must not see (a reference, rubrics)

    def hiding(self, paths: Iterable[Path]) -> BwrapLauncher:
        return replace(self, hidden=tuple(dict.fromkeys([*self.hidden, *(str(Path(p).resolve()) for p in paths)])))

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        argv = [self.bwrap, *self.mounts(scratch, limits), "--", *self._limited(worker_argv, limits)]
        cgroup = WorkerCgroup.create(limits)
        return Launch(
            argv, self.environment(scratch), str(scratch), lambda: set_rlimits(limits, cgroup),
            cgroup.cleanup if cgroup else None, cgroup,
        )

    @staticmethod
    def environment(scratch: Path) -> dict[str, str]:
        """The worker's environment inside the sandbox."""
        return {**worker_env(scratch), "HOME": SANDBOX_HOME, "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student"}

    @staticmethod
    def rlimits(limits: Limits) -> list[tuple[int, int]]:
        """Every rlimit a sandboxed worker gets: `set_rlimits`' and the trampoline's RLIMIT_NPROC."""
        return [*rlimit_pairs(limits), (resource.RLIMIT_NPROC, limits.processes)]

    def mounts(self, scratch: Path, limits: Limits) -> list[str]:
        args = [
            "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--hostname", "sandbox",
            "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr",
        ]
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for name in ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        # The disk quota: home and /tmp are tmpfs mounts of a fixed size, so a full one is ENOSPC in the
        # student's code and the host's disk never sees the bytes (they are memory, counted by the cgroup).
        # Home is sized to hold the staged submission too.  Mounted before the roots so that a root under
        # /tmp (a CI's interpreter, say) stays visible.
        from grader.worker.protocol import MiB  # here: the protocol's codec imports numpy (see TYPE_CHECKING)

        quota = limits.disk_mb * MiB
        args += ["--size", str(quota + tree_size(scratch)), "--tmpfs", SANDBOX_HOME]
        args += ["--size", str(quota), "--tmpfs", "/tmp", "--ro-bind", str(scratch), SANDBOX_STAGE]
        for root in self.roots:
            args += ["--ro-bind", root, root]
        for folder in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
            if folder and os.path.isabs(folder):
                args += ["--ro-bind-try", folder, folder]
        args += ["--proc", "/proc", "--dev", "/dev"]
        # /dev/shm is memory that no rlimit counts: keep it small.
        args += ["--size", str(limits.file_size_mb * 1024 * 1024), "--tmpfs", "/dev/shm"]
        for pattern in DEVICES:
            for device in sorted(glob.glob(pattern)):
                args += ["--dev-bind-try", device, device]
        args += self._hide()
        args += ["--chdir", SANDBOX_HOME]
        return args

    def _hide(self) -> list[str]:
        args: list[str] = []
        for path in self.hidden:
            if not any(Path(path).is_relative_to(root) for root in self.roots):
                continue  # not mounted at all, so already invisible
            if os.path.isdir(path):
                args += ["--tmpfs", path, "--remount-ro", path]
            elif os.path.exists(path):
                args += ["--ro-bind", "/dev/null", path]
        return args

    @staticmethod
    def _limited(argv: list[str], limits: Limits) -> list[str]:
        return [argv[0], "-I", "-c", _TRAMPOLINE, str(limits.processes), SANDBOX_STAGE, *argv]


# -- cgroups --------------------------------------------------------------------------------------------------
# rlimits bound each process alone: every forked child gets RLIMIT_DATA afresh, and the kernel does not apply
# RLIMIT_NPROC to root.  A cgroup bounds the worker and all its descendants together, setsid daemons included,
# and lets the grader find and kill every one of them afterwards.

CGROUP_CONTROLLERS = ("memory", "pids")
CGROUP_CLEANUP_SECONDS = 5.0
_LIMIT_FILES = {(1, "memory"): "memory.limit_in_bytes", (2, "memory"): "memory.max", (1, "pids"): "pids.max",
                (2, "pids"): "pids.max"}
# Swap would let memory over the limit escape it; these files exist only where swap is accounted.
_SWAP_FILES = {1: "memory.memsw.limit_in_bytes", 2: "memory.swap.max"}


@dataclass(frozen=True)
class CgroupParent:
    """A folder in which worker cgroups are made, and the controllers they have there."""

    folder: Path
    version: int  # 1 or 2
    controllers: tuple[str, ...]


@dataclass(frozen=True)
class CgroupSupport:
    parents: tuple[CgroupParent, ...]
    problem: str | None = None  # what cannot be bounded here, and why; None when everything can

    @property
    def controllers(self) -> set[str]:
        return {c for parent in self.parents for c in parent.controllers}


def _cgroup_mounts() -> list[tuple[str, Path, int, set[str]]]:
    """(mount root, mount point, version, controllers) of the cgroup mounts, from /proc/self/mountinfo."""
    mounts = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        version = 2 if tail[0] == "cgroup2" else 1
        options = set(tail[2].split(",")) if version == 1 else set()
        mounts.append((fields[3], Path(fields[4]), version, options))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        for name in names.split(",") if names else ([""] if hierarchy == "0" else []):
            paths[name] = path
    return paths


def _candidates(mount_root: str, mount_point: Path, own: str) -> list[Path]:
    """This process's own cgroup folder, then its ancestors up to the mount point: nearest first, so that a
    worker stays inside the grader's own cgroup (and its limits) wherever it is allowed to."""
    relative = os.path.relpath(own, mount_root) if own.startswith(mount_root) else "."
    folder = (mount_point / relative).resolve() if relative != "." else mount_point
    chain = [folder, *folder.parents]
    return [f for f in chain if f == mount_point or f.is_relative_to(mount_point)]


def _can_make_children(folder: Path, version: int, controllers: tuple[str, ...]) -> bool:
    probe = folder / f"grader-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        files = [probe / _LIMIT_FILES[version, c] for c in controllers] + [probe / "cgroup.procs"]
        return all(os.access(f, os.W_OK) for f in files)
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


def _v2_parent(mount_root: str, mount_point: Path, own: str) -> CgroupParent | None:
    # A v2 process is in one cgroup only, so the controllers must come from one folder: the nearest that
    # offers them all (enabled in its cgroup.subtree_control), else the nearest that offers some.  Nothing is
    # enabled here: a subtree_control write changes the machine's cgroup layout, which is the admin's call.
    partial: CgroupParent | None = None
    for folder in _candidates(mount_root, mount_point, own):
        try:
            enabled = set((folder / "cgroup.subtree_control").read_text().split())
        except OSError:
            continue
        offered = tuple(c for c in CGROUP_CONTROLLERS if c in enabled)
        if offered and _can_make_children(folder, 2, offered):
            if len(offered) == len(CGROUP_CONTROLLERS):
                return CgroupParent(folder, 2, offered)
            partial = partial or CgroupParent(folder, 2, offered)
    return partial


@functools.cache
def cgroup_support() -> CgroupSupport:
    """Where this process can make worker cgroups, for each of memory and pids (detected once per process)."""
    if not sys.platform.startswith("linux"):
        return CgroupSupport((), f"no cgroups on {sys.platform}")
    own = _own_cgroups()
    parents: list[CgroupParent] = []
    for mount_root, mount_point, version, options in _cgroup_mounts():
        if version == 1:
            # A hierarchy can be mounted twice (a container's bind mounts): the first usable mount wins.
            covered = {c for parent in parents for c in parent.controllers}
            wanted = tuple(c for c in CGROUP_CONTROLLERS if c in options and c in own and c not in covered)
            for folder in _candidates(mount_root, mount_point, own[wanted[0]]) if wanted else []:
                if _can_make_children(folder, 1, wanted):
                    parents.append(CgroupParent(folder, 1, wanted))
                    break
    covered = {c for parent in parents for c in parent.controllers}
    v2 = [m for m in _cgroup_mounts() if m[2] == 2]
    if len(covered) < len(CGROUP_CONTROLLERS) and v2 and "" in own:
        # A controller lives in one hierarchy only: whatever v1 does not have, v2 may.
        parent = _v2_parent(v2[0][0], v2[0][1], own[""])
        if parent is not None:
            extra = tuple(c for c in parent.controllers if c not in covered)
            if extra:
                parents.append(replace(parent, controllers=extra))
    missing = [c for c in CGROUP_CONTROLLERS if c not in {c for p in parents for c in p.controllers}]
    problem = None
    if missing:
        problem = f"no writable cgroup (v1 or v2) with the {' and '.join(missing)} controller{'s' * (len(missing) > 1)}"
    return CgroupSupport(tuple(parents), problem)


def forget_warnings() -> None:
    """Say this process's once-only warnings again, as a fresh process would (the check daemon, per check)."""
    _warn_cgroups_once.cache_clear()


@functools.cache
def _warn_cgroups_once(problem: str, missing: tuple[str, ...]) -> None:
    bounds = {"memory": "total memory", "pids": "process count"}
    what = " and ".join(bounds[c] for c in missing)
    print(
        f"grader: warning: {problem}; a submission's processes together have no {what} limit, only per-process "
        "rlimits (and the kernel exempts root from the process limit)",
        file=sys.stderr,
    )


_cgroup_names = itertools.count()
_LIVE: dict[str, WorkerCgroup] = {}  # made by this process and not removed yet
_UNREMOVED: dict[str, WorkerCgroup] = {}  # cleaned up, but not removed in time (exiting processes): tried again
# A worker cgroup's name: the grader's PID namespace and pid (whose liveness means something only in that
# namespace), a counter and a random tail.
_CGROUP_NAME = re.compile(r"grader-(\d+)-(\d+)-\d+-[0-9a-f]{6}")
RETRY_SECONDS = 0.2  # what a retry of an unremoved cgroup may take, before each new worker


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def remove_orphaned_cgroups() -> tuple[Path, ...]:
    """Remove the worker cgroups of graders of this PID namespace that are gone without removing them (killed by
    the OOM killer or SIGKILL, no atexit ran), killing whatever still runs in them; once per process, before its
    first worker.  Returns the folders removed."""
    namespace = _pid_namespace()
    removed: list[Path] = []
    for parent in cgroup_support().parents:
        try:
            children = sorted(parent.folder.iterdir())
        except OSError:
            continue
        for folder in children:
            match = _CGROUP_NAME.fullmatch(folder.name)
            if match is None or int(match[1]) != namespace or _alive(int(match[2])):
                continue
            orphan = WorkerCgroup(folder.name, (folder,), (str(folder / "cgroup.procs"),), os.getpid())
            if orphan.remove(CGROUP_CLEANUP_SECONDS):
                log.info("removed the worker cgroup %s, left by grader process %s", folder, match[2])
                removed.append(folder)
    return tuple(removed)


@dataclass(frozen=True)
class WorkerCgroup:
    """One worker's cgroup, a folder per hierarchy: made by the grader, joined by the child before exec."""

    name: str
    folders: tuple[Path, ...]
    procs_files: tuple[str, ...]  # computed here, so that the child between fork and exec only writes
    owner: int  # the grader process that made it; a forked copy of the grader leaves it alone

    @classmethod
    def create(cls, limits: Limits) -> WorkerCgroup | None:
        """A fresh cgroup with the limits set, or None (after one warning) where this machine has none."""
        support = cgroup_support()
        if support.problem is not None:
            _warn_cgroups_once(support.problem, tuple(c for c in CGROUP_CONTROLLERS if c not in support.controllers))
        if not support.parents:
            return None
        remove_orphaned_cgroups()
        for unremoved in list(_UNREMOVED.values()):
            unremoved.remove(RETRY_SECONDS)
        name = f"grader-{_pid_namespace()}-{os.getpid()}-{next(_cgroup_names)}-{secrets.token_hex(3)}"
        folders = tuple(parent.folder / name for parent in support.parents)
        cgroup = cls(name, folders, tuple(str(f / "cgroup.procs") for f in folders), os.getpid())
        _LIVE[name] = cgroup
        try:
            for parent, folder in zip(support.parents, folders):
                folder.mkdir()
                for controller in parent.controllers:
                    _set_limit(folder, parent.version, controller, limits)
        except OSError:
            cgroup.cleanup()
            raise
        return cgroup

    def join(self) -> None:
        """Move the calling process into the cgroup; runs in the child between fork and exec."""
        pid = str(os.getpid()).encode()
        for path in self.procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def members(self) -> set[int]:
        pids: set[int] = set()
        for folder in self.folders:
            try:
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return pids

    def cleanup(self) -> None:
        """Kill every process left in the cgroup, then remove it.  Safe to call more than once.

        One not removed in time (a fork bomb's processes still exiting on a loaded machine) is tried again
        before each new worker of this process, and at its exit.
        """
        self.remove(CGROUP_CLEANUP_SECONDS)

    def remove(self, seconds: float) -> bool:
        """`cleanup` within `seconds`; whether the cgroup is gone."""
        if os.getpid() != self.owner:
            return False
        deadline = time.monotonic() + seconds
        for folder in self.folders:
            _write(folder / "cgroup.kill", 1, quiet=True)  # v2 (Linux 5.14+): all at once, no pid reuse race
        # Killed processes cannot fork, and pids.max bounds how many there are, so a few rounds empty it.
        while (pids := self.members()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        if all([_remove_cgroup(folder, deadline, warn=seconds >= CGROUP_CLEANUP_SECONDS) for folder in self.folders]):
            _LIVE.pop(self.name, None)
            _UNREMOVED.pop(self.name, None)
            return True
        _UNREMOVED[self.name] = self
        return False


def _set_limit(folder: Path, version: int, controller: str, limits: Limits) -> None:
    if controller == "memory":
        from grader.worker.protocol import MiB  # here: the protocol's codec imports numpy (see TYPE_CHECKING)

        total = limits.total_memory * MiB
        _write(folder / _LIMIT_FILES[version, "memory"], total)
        _write(folder / _SWAP_FILES[version], total if version == 1 else 0, quiet=True)
    else:
        _write(folder / _LIMIT_FILES[version, controller], limits.processes)


def _write(path: Path, value: int, quiet: bool = False) -> None:
    try:
        path.write_text(str(value))
    except OSError:
        if not quiet:
            raise


def _remove_cgroup(folder: Path, deadline: float, warn: bool = True) -> bool:
    # EBUSY lasts while a killed process is still exiting (or a zombie not yet reaped by its parent).
    while True:
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                if warn:
                    log.warning("could not remove the worker cgroup %s (tried again later): %s", folder, exc)
                return False
            time.sleep(0.02)


@atexit.register
def _remove_leftover_cgroups() -> None:
    for cgroup in list(_LIVE.values()):
        cgroup.cleanup()


@functools.cache
def bwrap_problem(bwrap: str = "bwrap") -> str | None:
    """Why bubblewrap cannot isolate a worker here, or None when it can (checked once per process)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which(bwrap) is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    from grader.rubric.schema import Limits  # here, not at the top: see the TYPE_CHECKING import

    launcher = BwrapLauncher(bwrap)
    scratch = Path(__import__("tempfile").mkdtemp(prefix="grader-probe-"))
    launch = launcher.launch([sys.executable, "-I", "-c", "pass"], scratch, Limits())
    try:
        proc = subprocess.run(launch.argv, check=False, env=launch.env, cwd=launch.cwd, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap failed to start: {exc}"
    finally:
        if launch.cleanup is not None:
            launch.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot create a sandbox here: {detail[-1] if detail else f'exit status {proc.returncode}'}"
    return None


def default_sandbox_mode(command: str) -> str:
    """`grade` insists on the sandbox on Linux; `check` (a student's own machine) takes what there is."""
    configured = os.environ.get("GRADER_SANDBOX")
    if configured in SANDBOX_MODES:
        return configured
    return "required" if command == "grade" and sys.platform.startswith("linux") else "auto"


def with_threads(launcher: Launcher | None, threads: int) -> Launcher | None:
    """The launcher whose workers each use `threads` threads, where it sets them after fork (a warm one)."""
    if launcher is None or not launcher.sets_threads:
        return launcher
    return cast(ThreadedLauncher, launcher).with_threads(threads)


def hiding(launcher: Launcher, paths: Iterable[Path]) -> Launcher:
    """The launcher with `paths` made invisible to the worker, where it can hide anything."""
    return cast(HidingLauncher, launcher).hiding(paths) if launcher.hides else launcher
