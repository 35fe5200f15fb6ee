"""Which launcher a command's workers run under: the fork server where it can build its sandboxes (unless
GRADER_FORKSERVER=0), else bubblewrap where it can start (warm, through a zygote, unless GRADER_WARM=0), else plain
processes with a warning, or a refusal where the sandbox is required.

Above grader/execution/sandbox.py (the launchers), zygote.py (the warm one) and forkserver.py, so none of them
imports another back."""
from __future__ import annotations

import functools
import os
import sys

from grader.errors import GraderError
from grader.execution import forkserver, sandbox
from grader.execution.sandbox import Launcher
from grader.execution.zygote import WarmLauncher


def choose_launcher(mode: str) -> Launcher:
    if mode not in sandbox.SANDBOX_MODES:
        raise GraderError(f"--sandbox must be one of {', '.join(sandbox.SANDBOX_MODES)}, not {mode!r}")
    if mode == "off":
        return sandbox.PlainLauncher()
    if forkserver.wanted() and forkserver.forkserver_problem() is None:
        # Started now: the server imports torch while the command reads the rubric and the submissions.
        return forkserver.start(sandbox.BwrapLauncher())
    problem = sandbox.bwrap_problem()  # looked up on the module, so a test can stand in for it
    if problem is None:
        return warm(sandbox.BwrapLauncher())
    if mode == "required":
        raise GraderError(f"no OS sandbox: {problem}; install bubblewrap or pass --sandbox=auto to grade without it")
    _warn_once(problem)
    return sandbox.PlainLauncher()


def warm(launcher: sandbox.BwrapLauncher) -> Launcher:
    """The launcher with a warm zygote per grading process (grader/execution/zygote.py), unless GRADER_WARM=0 asks
    for a fresh worker per submission."""
    if os.environ.get("GRADER_WARM", "1") == "0":
        return launcher
    return WarmLauncher(launcher)


def forget_warnings() -> None:
    """Say the once-only warnings of choosing a launcher and of making a worker's cgroup again, as a fresh process
    would: the check daemon answers each check as the cold command would have."""
    _warn_once.cache_clear()
    sandbox.forget_warnings()


@functools.cache
def _warn_once(problem: str) -> None:
    print(
        f"grader: warning: no OS sandbox ({problem}); student code runs with resource limits only and can read "
        "your files and use the network",
        file=sys.stderr,
    )
