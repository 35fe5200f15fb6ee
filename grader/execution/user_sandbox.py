"""An unprivileged user as the sandbox, where bubblewrap cannot start but the grader is root (Gradescope).

Gradescope runs its autograder as root in a container that usually has no user namespaces, so bubblewrap
cannot start there; grading with the plain launcher would run the student's code with the grader's rights: it
read the reference into a visible test output, and a `setsid` daemon rewrote `results.json` after grading.
Instead, each worker runs as a user of its own (`STUDENT_UID`, a uid no file and no other process has):

* `lock_down` makes the autograder's files (the reference, the rubric, the dl-grader source, the submission's
  metadata, the results folder) readable and writable by root only, before any student code runs;
* the worker's scratch folder (a copy of the submission) is given to that user; the worker gets the grader's
  rlimits, `RLIMIT_NPROC` (which holds, the user not being root), and a cgroup where there is one, and then
  drops to the user, with no supplementary groups and so no capabilities;
* `kill_user` kills every process of that user (from a child that takes its uid and sends SIGKILL to -1, until
  /proc shows none), after each worker and before `results.json` is written, by the grader alone.
"""
from __future__ import annotations

import os
import signal
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from grader.execution.sandbox import Launch, WorkerCgroup, set_rlimits, worker_env
from grader.rubric.schema import Limits

STUDENT_UID = int(os.environ.get("GRADER_STUDENT_UID", "64011"))  # no name, no files, no processes of its own
KILL_SECONDS = 10.0


@dataclass(frozen=True)
class UserLauncher:
    """Workers run as `uid`, which cannot read what `lock_down` closed; see the module's docstring."""

    uid: int = STUDENT_UID
    name: str = "user"
    forks: ClassVar[bool] = False
    hides: ClassVar[bool] = False
    sets_threads: ClassVar[bool] = False

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        _give(scratch, self.uid)
        cgroup = WorkerCgroup.create(limits)

        def preexec() -> None:  # in the child, between fork and exec
            set_rlimits(limits, cgroup)
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)  # last: from here the child has no capability and the student's uid
            _limit_processes(limits.processes)

        def cleanup() -> None:
            kill_user(self.uid)
            if cgroup is not None:
                cgroup.cleanup()

        return Launch(worker_argv, worker_env(scratch), str(scratch), preexec, cleanup, cgroup)


def _limit_processes(count: int) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (count, count))
    except (ValueError, OSError):
        pass


def _give(folder: Path, uid: int) -> None:
    """The scratch folder and its files, to the student's user: the worker writes there (its home too)."""
    os.chown(folder, uid, uid)
    os.chmod(folder, 0o700)
    for path in folder.rglob("*"):
        os.chown(path, uid, uid, follow_symlinks=False)


def lock_down(paths: list[Path]) -> None:
    """Each path (a folder with everything in it, or a file) readable and writable by root alone."""
    for top in paths:
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")] if top.is_dir() and not top.is_symlink() else [top]:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            os.chown(path, 0, 0)
            os.chmod(path, stat.S_IMODE(mode) & 0o700)


def user_processes(uid: int) -> list[int]:
    """The processes whose real or effective uid is `uid`, from /proc (zombies, already dead, left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        uids = fields.get("Uid", "").split()
        if uid in {int(u) for u in uids[:2] if u.isdigit()} and not fields.get("State", "").startswith("Z"):
            found.append(int(entry.name))
    return found


def kill_user(uid: int) -> bool:
    """Kill every process of `uid` (setsid daemons included); whether none is left."""
    deadline = time.monotonic() + KILL_SECONDS
    while user_processes(uid):
        if time.monotonic() >= deadline:
            return False
        pid = os.fork()
        if pid == 0:  # a child that is that user can signal exactly that user's processes: kill(-1) takes them all
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.01)
    return True
