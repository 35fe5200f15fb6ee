"""How a worker process is started: the command line and the limits around it.

Two launchers, one protocol.  `PlainLauncher` gives rlimits and a new session only: the student's code can
read whatever the grading user can read and can use the network.  `BwrapLauncher` runs the worker inside
bubblewrap: a read-only view of the system, the Python installation and the `grader` package, the submission's
scratch folder as its only writable place, no network, its own PID namespace (every process it starts dies
with it), and the same rlimits.  `choose_launcher` picks one for the CLI's `--sandbox` option.
"""
from __future__ import annotations

import functools
import glob
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Protocol

from grader.errors import GraderError
from grader.rubric import Limits

SANDBOX_MODES = ("auto", "required", "off")
SANDBOX_HOME = "/home/student"  # where the scratch folder appears inside the sandbox


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None] | None


class Launcher(Protocol):
    name: str

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch: ...


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


def set_rlimits(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    os.setsid()
    for which, value in rlimit_pairs(limits):
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


class PlainLauncher:
    """No OS isolation: rlimits, a scratch directory as working directory, a new session for clean-up."""

    name = "none"

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        return Launch(worker_argv, worker_env(scratch), str(scratch), lambda: set_rlimits(limits))


def worker_argv(rfd: int, wfd: int) -> list[str]:
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

# Run inside the sandbox before the worker: RLIMIT_NPROC set after the user namespace exists counts only
# the sandbox's processes, not every process of the grading user on the machine.
_NPROC_TRAMPOLINE = (
    "import os,resource,sys;n=int(sys.argv[1]);resource.setrlimit(resource.RLIMIT_NPROC,(n,n));"
    "os.execv(sys.argv[2],sys.argv[2:])"
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
    bwrap: str = "bwrap"
    roots: tuple[str, ...] = field(default_factory=lambda: tuple(map(str, python_roots())))
    hidden: tuple[str, ...] = ()  # files or folders under `roots` the worker must not see (a reference, rubrics)

    def hiding(self, paths: Iterable[Path]) -> BwrapLauncher:
        return replace(self, hidden=tuple(dict.fromkeys([*self.hidden, *(str(Path(p).resolve()) for p in paths)])))

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        tmp = scratch / ".tmp"
        tmp.mkdir(exist_ok=True)
        env = {**worker_env(scratch), "HOME": SANDBOX_HOME, "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student"}
        argv = [self.bwrap, *self.mounts(scratch, limits), "--", *self._limited(worker_argv, limits)]
        return Launch(argv, env, str(scratch), lambda: set_rlimits(limits))

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
        # The scratch folder is on disk, so files the student writes count against no one's memory.  It is
        # mounted before the roots so that a root under /tmp (a CI's interpreter, say) stays visible.
        args += ["--bind", str(scratch), SANDBOX_HOME, "--bind", str(scratch / ".tmp"), "/tmp"]
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
        return [argv[0], "-I", "-c", _NPROC_TRAMPOLINE, str(limits.processes), *argv]


@functools.lru_cache(maxsize=None)
def bwrap_problem(bwrap: str = "bwrap") -> str | None:
    """Why bubblewrap cannot isolate a worker here, or None when it can (checked once per process)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which(bwrap) is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    launcher = BwrapLauncher(bwrap)
    scratch = Path(__import__("tempfile").mkdtemp(prefix="grader-probe-"))
    try:
        launch = launcher.launch([sys.executable, "-I", "-c", "pass"], scratch, Limits())
        proc = subprocess.run(launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap failed to start: {exc}"
    finally:
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


def choose_launcher(mode: str) -> Launcher:
    if mode not in SANDBOX_MODES:
        raise GraderError(f"--sandbox must be one of {', '.join(SANDBOX_MODES)}, not {mode!r}")
    if mode == "off":
        return PlainLauncher()
    problem = bwrap_problem()
    if problem is None:
        return BwrapLauncher()
    if mode == "required":
        raise GraderError(f"no OS sandbox: {problem}; install bubblewrap or pass --sandbox=auto to grade without it")
    _warn_once(problem)
    return PlainLauncher()


@functools.lru_cache(maxsize=None)
def _warn_once(problem: str) -> None:
    print(
        f"grader: warning: no OS sandbox ({problem}); student code runs with resource limits only and can read "
        "your files and use the network",
        file=sys.stderr,
    )


def hiding(launcher: Launcher, paths: Iterable[Path]) -> Launcher:
    """The launcher with `paths` made invisible to the worker, where it can hide anything."""
    hide = getattr(launcher, "hiding", None)
    return hide(paths) if callable(hide) else launcher
