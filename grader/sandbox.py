"""How a worker process is started: the command line and the limits around it.

`PlainLauncher` uses rlimits and a new session only; an OS sandbox (bubblewrap) plugs in here too.
"""
from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from grader.rubric import Limits


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


def set_rlimits(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    os.setsid()
    mb = 1024 * 1024
    pairs = [
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.memory_mb:
        pairs.append((resource.RLIMIT_AS, limits.memory_mb * mb))
    for which, value in pairs:
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
    return [sys.executable, "-I", "-m", "grader.worker", str(rfd), str(wfd)]
