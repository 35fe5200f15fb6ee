"""The Gradescope autograder where bubblewrap cannot start and the grader is root (Gradescope's container).

The student's code runs as an unprivileged user: it cannot read the reference (a value question that checks
what reading it gives scores only if the read fails), and the `setsid` daemon it leaves, which would rewrite
`results.json` to full marks after grading, is killed before the grader writes it.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.classroom.autograder import run_autograder
from grader.execution import sandbox
from grader.execution.user_sandbox import STUDENT_UID, lock_down, user_processes

DATA = Path(__file__).resolve().parents[1] / "data" / "autograder_user"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the autograder drops to a user of its own only as root")

STUDENT = '''
import subprocess, sys

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        return type(exc).__name__

stolen = _read({reference!r})

def double(x):
    return x * 2

DAEMON = """
import json, time
for _ in range(200):
    time.sleep(0.05)
    try:
        with open({results!r}, "w") as f:
            json.dump({{"score": 30, "tests": []}}, f)
    except OSError:
        pass
"""
subprocess.Popen([sys.executable, "-c", DAEMON], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


def _as_student() -> None:
    os.setgroups([])
    os.setgid(STUDENT_UID)
    os.setuid(STUDENT_UID)


def _student_can_enter(folder: Path) -> bool:
    """Whether the student's user may reach `folder` (every folder above it lets others through)."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [folder, *folder.parents])


@pytest.fixture(scope="module")
def student_python() -> Iterator[str]:
    """A Python the student's user can run: this one, or (where it lives in a folder only root may enter, as
    pyenv's under /root) a venv of the system's Python that reads this one's packages."""
    try:
        subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_as_student, check=True, cwd="/")
        yield sys.executable
        return
    except PermissionError:
        pass
    system = shutil.which("python3.11", path="/usr/bin:/usr/local/bin")
    if system is None:
        pytest.skip(f"the student's user cannot run {sys.executable}, and there is no system python3.11")
    base = Path(tempfile.mkdtemp(prefix="grader-ag-python-"))
    subprocess.run([system, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    site, source = Path(sysconfig.get_paths()["purelib"]), ROOT
    if not _student_can_enter(site) or not _student_can_enter(ROOT):
        # A checkout in a folder only root may enter (`mktemp -d` makes 0700 ones): the packages are linked
        # (hard links, no copy of torch's bytes) and the grader copied where the student's user can read them, as
        # Gradescope's /autograder/venv holds them.
        try:
            subprocess.run(["cp", "-al", str(site), str(base / "site")], check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"the student's user cannot read {site}, and it cannot be linked elsewhere: {exc.stderr!r}")
        shutil.copytree(ROOT / "grader", base / "source" / "grader", ignore=shutil.ignore_patterns("__pycache__"))
        site, source = base / "site", base / "source"
    (base / "venv" / "lib" / "python3.11" / "site-packages" / "dlgrader.pth").write_text(f"{site}\n{source}\n")
    linked = base / "site"  # hard links: their modes are the originals', left alone
    for path in [base, *(p for p in base.rglob("*") if not p.is_relative_to(linked))]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o644)
    yield str(base / "venv" / "bin" / "python")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def autograder_root(student_python: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(sys, "executable", student_python)  # the worker's interpreter (grader.execution.sandbox.worker_argv)
    base = Path(tempfile.mkdtemp(prefix="grader-ag-"))  # under /tmp, reachable by any user, as /autograder is
    base.chmod(0o755)
    root = base / "autograder"
    assignment = root / "source" / "assignment"
    assignment.mkdir(parents=True)
    for name in ("rubric.yaml", "reference.py"):
        shutil.copy(DATA / name, assignment / name)
    for folder in (root, root / "source", assignment):
        folder.chmod(0o755)
    (root / "results").mkdir(mode=0o755)
    submission = root / "submission"
    submission.mkdir(mode=0o755)
    reference, results = assignment / "reference.py", root / "results" / "results.json"
    (submission / "student.py").write_text(STUDENT.format(reference=str(reference), results=str(results)))
    yield root
    shutil.rmtree(base, ignore_errors=True)


def test_without_bubblewrap_as_root_the_student_runs_as_a_user_that_cannot_read_the_reference_nor_stay(
    autograder_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = autograder_root / "source" / "assignment" / "reference.py"
    assert os.stat(reference).st_mode & stat.S_IROTH  # as unpacked: anyone could read it, until the lock
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "no user namespaces (as in Gradescope's container)")
    monkeypatch.setenv("GRADER_SANDBOX", "auto")
    assert run_autograder(autograder_root, reference.parent / "rubric.yaml") == 0
    assert user_processes(STUDENT_UID) == []  # the daemon is gone, killed before results.json was written
    written = (autograder_root / "results" / "results.json").read_text()
    time.sleep(1.0)  # the daemon's rewrites were every 50 ms: none comes any more
    assert (autograder_root / "results" / "results.json").read_text() == written
    results = json.loads(written)
    assert results["score"] == 2.0, results
    assert [t["score"] for t in results["tests"]] == [1.0, 1.0]
    assert "Note for instructors" not in results["output"]


def test_without_bubblewrap_and_not_root_the_results_say_the_code_ran_with_the_autograders_rights(
    autograder_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "no user namespaces")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("GRADER_SANDBOX", "auto")
    (autograder_root / "submission" / "student.py").write_text("def double(x):\n    return x * 2\nstolen = 'no'\n")
    assert run_autograder(autograder_root, autograder_root / "source" / "assignment" / "rubric.yaml") == 0
    results = json.loads((autograder_root / "results" / "results.json").read_text())
    assert results["score"] == 1.0
    assert ("Note for instructors: the student's code ran with the autograder's own rights (no user namespaces; "
            "not root): it could read the reference and the rubric and change these results.") in results["output"]


def test_lock_down_leaves_files_to_root_alone(tmp_path: Path) -> None:
    folder = tmp_path / "source"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "reference.py").write_text("x = 1\n")
    (folder / "sub" / "reference.py").chmod(0o644)
    lock_down([folder, tmp_path / "absent"])
    assert {stat.S_IMODE(os.stat(p).st_mode) & 0o077 for p in (folder, folder / "sub", folder / "sub" / "reference.py")} == {0}
