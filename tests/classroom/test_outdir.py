"""The class folder is always whole: late and regraded students join it, another assignment is refused, and an
interrupted batch leaves class files for what finished."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.grade import EXIT_INTERRUPTED, grade
from grader.errors import GraderError
from grader.execution.launchers import choose_launcher
from tests.conftest import DATA, ROOT

RUBRIC = DATA / "mini" / "rubric.yaml"
CLASS = DATA / "hostile" / "class"


def _students(folder: Path, **roster: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, source in roster.items():
        shutil.copy(CLASS / f"{source}.py", folder / f"{name}.py")
    return folder


def _csv(out: Path) -> dict[str, str]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {row["student"]: row["total"] for row in csv.DictReader(fh)}


def _gradings(out: Path) -> dict[str, int]:
    with Gradebook(out / FILENAME) as book:
        return book.gradings()


def test_a_late_student_and_a_regrade_keep_the_whole_class(tmp_path: Path) -> None:
    launcher = choose_launcher("auto")
    klass, out = _students(tmp_path / "class", ann="zed_honest", ben="liar_objects"), tmp_path / "out"
    assert grade(RUBRIC, [klass], out, launcher=launcher) == 0
    late = _students(tmp_path / "late", cat="zed_honest")
    assert grade(RUBRIC, [late / "cat.py"], out, launcher=launcher) == 0  # one late file, graded alone
    assert _csv(out) == {"ann": "10", "ben": "0", "cat": "10"}
    index = (out / "index.html").read_text()
    assert all(f"{n}/report.html" in index for n in ("ann", "ben", "cat"))

    shutil.copy(CLASS / "zed_honest.py", klass / "ben.py")  # ben's regrade, on purpose, with --only
    assert grade(RUBRIC, [klass], out, launcher=launcher, only=["ben"]) == 0
    assert _gradings(out) == {"ann": 1, "ben": 2, "cat": 1}
    assert _csv(out) == {"ann": "10", "ben": "10", "cat": "10"}

    with pytest.raises(GraderError, match="--only: no student .zoe. in these submissions"):
        grade(RUBRIC, [klass], out, launcher=launcher, only=["zoe"])


def test_a_folder_of_another_assignment_is_refused(tmp_path: Path) -> None:
    klass, out = _students(tmp_path / "class", ann="zed_honest"), tmp_path / "out"
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto")) == 0
    other = tmp_path / "other"
    shutil.copytree(RUBRIC.parent, other)
    (other / "rubric.yaml").write_text((other / "rubric.yaml").read_text().replace("assignment: mini", "assignment: hw9"))
    with pytest.raises(GraderError, match=r"holds the grading of assignment 'mini', not 'hw9'; grade into another"):
        grade(other / "rubric.yaml", [klass], out, launcher=choose_launcher("auto"))
    (out / "assignment.json").unlink()  # a folder from before assignment.json: the gradebook still tells
    with pytest.raises(GraderError, match="holds the grading of assignment 'mini'"):
        grade(other / "rubric.yaml", [klass], out, launcher=choose_launcher("auto"))
    assert _csv(out) == {"ann": "10"}


def _rows(out: Path) -> int:
    try:
        with sqlite3.connect(out / FILENAME, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def _sigint_default() -> None:
    """SIGINT as a terminal's foreground command has it, even where this test run ignores it (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("jobs", ["1", "2"])  # one at a time, and two slots (threads) with one still running
def test_ctrl_c_leaves_class_files_for_what_finished(tmp_path: Path, jobs: str) -> None:
    klass = _students(tmp_path / "class", **{n: "zed_honest" for n in ("ann", "ben", "cat", "dan", "eve", "fay")})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "grader.cli.main", "grade", str(RUBRIC), str(klass), "--out", str(out), "--sandbox=auto",
               "--jobs", jobs]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_default)
    deadline = time.monotonic() + 180
    while _rows(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    finished = _rows(out)
    assert 2 <= finished < 6, "the interrupt did not land mid-batch"
    assert f"{finished} of 6 submissions are graded" in err and "run the same command again" in err
    assert len(_csv(out)) == finished and set(_csv(out).values()) == {"10"}
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert len(_csv(out)) == 6


def test_a_ctrl_c_that_python_drops_still_stops_the_batch(tmp_path: Path) -> None:
    # Python drops an exception raised in some callbacks (a fork's at-fork handlers, which each worker start
    # runs: seen here as "Exception ignored in: <function _releaseLock ...> KeyboardInterrupt"); the batch loop
    # still stops after the submission in hand.
    from grader.grading.executors import SerialExecutor

    class DropsTheInterrupt(SerialExecutor):
        def grade(self, rubric, jobs, settings):  # type: ignore[no-untyped-def]
            for i, result in enumerate(super().grade(rubric, jobs, settings)):
                if i == 1:
                    try:
                        os.kill(os.getpid(), signal.SIGINT)
                        time.sleep(1)  # the handler runs here
                    except KeyboardInterrupt:
                        pass  # dropped, as in an at-fork handler
                yield result

    klass = _students(tmp_path / "class", **{n: "zed_honest" for n in ("ann", "ben", "cat", "dan")})
    out = tmp_path / "out"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even in a background job
    try:
        assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), executor=DropsTheInterrupt()) == EXIT_INTERRUPTED
        assert _rows(out) == 2 and len(_csv(out)) == 2
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_batch_started_with_sigint_ignored_keeps_ignoring_it(tmp_path: Path) -> None:
    # A script's background job (`grader grade ... &` without job control) or nohup: a Ctrl-C meant for the
    # foreground does not stop it, as it does not stop Python itself.
    from grader.grading.executors import SerialExecutor

    class SendsAnInterrupt(SerialExecutor):
        def grade(self, rubric, jobs, settings):  # type: ignore[no-untyped-def]
            for i, result in enumerate(super().grade(rubric, jobs, settings)):
                if i == 0:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.5)
                yield result

    klass = _students(tmp_path / "class", **{n: "zed_honest" for n in ("ann", "ben", "cat")})
    out = tmp_path / "out"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), executor=SendsAnInterrupt()) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert _csv(out) == {"ann": "10", "ben": "10", "cat": "10"}
