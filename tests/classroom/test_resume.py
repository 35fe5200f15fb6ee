"""A gradebook that loses nothing: kill a batch with SIGKILL, run it again, every submission graded once."""
from __future__ import annotations

import json
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
from grader.cli.grade import grade
from grader.execution.launchers import choose_launcher
from tests.conftest import DATA, ROOT

RUBRIC = DATA / "mini" / "rubric.yaml"
CLASS = DATA / "hostile" / "class"
# Quick submissions only (about 1.5 s each): the honest one and one whose lies cost only itself.
ROSTER = {"ann": "zed_honest", "ben": "liar_objects", "cat": "zed_honest", "dan": "liar_objects", "eve": "zed_honest"}


def _class(folder: Path, roster: dict[str, str]) -> Path:
    folder.mkdir()
    for name, source in roster.items():
        shutil.copy(CLASS / f"{source}.py", folder / f"{name}.py")
    return folder


def _command(submissions: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli.main", "grade", str(RUBRIC), str(submissions), "--out", str(out), "--sandbox=auto", *extra]


def _rows(out: Path) -> int:
    try:
        with sqlite3.connect(out / FILENAME, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet


def _gradings(out: Path) -> dict[str, int]:
    with Gradebook(out / FILENAME) as book:
        return book.gradings()


def test_a_killed_batch_resumes_and_grades_each_submission_once(tmp_path):
    submissions, out = _class(tmp_path / "class", ROSTER), tmp_path / "out"
    proc = subprocess.Popen(_command(submissions, out), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while _rows(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch, mid-submission, no clean-up of any kind
        proc.wait()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind, so the machine stays clean
        except ProcessLookupError:
            pass
    finished = _gradings(out)
    assert 2 <= len(finished) < len(ROSTER), "the kill did not land mid-batch"
    with Gradebook(out / FILENAME) as book:  # the truth; the newest one's files may not be written yet
        assert {r.student: r.score for r in book.results()} == {
            name: 10 if ROSTER[name] == "zed_honest" else 0 for name in finished}

    rerun = subprocess.run(_command(submissions, out), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} of {len(ROSTER)} submissions unchanged" in rerun.stderr
    assert _gradings(out) == {name: 1 for name in ROSTER}  # the finished ones were not graded again
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == sorted(ROSTER)
    expected = {name: 10 if source == "zed_honest" else 0 for name, source in ROSTER.items()}
    assert {n: json.loads((out / n / "results.json").read_text())["score"] for n in ROSTER} == expected


@pytest.fixture
def small_batch(tmp_path: Path) -> tuple[Path, Path]:
    submissions, out = _class(tmp_path / "class", {"ann": "zed_honest", "ben": "liar_objects"}), tmp_path / "out"
    assert grade(RUBRIC, [submissions], out, launcher=choose_launcher("auto")) == 0
    return submissions, out


@pytest.mark.parametrize(
    "change, force, gradings",
    [
        (None, False, {"ann": 1, "ben": 1}),  # nothing changed: both served from the gradebook
        (None, True, {"ann": 2, "ben": 2}),  # --force grades everything again
        ("ben", False, {"ann": 1, "ben": 2}),  # a resubmission is graded again, its classmate is not
        ("rubric", False, {"ann": 2, "ben": 2}),  # a changed rubric invalidates every result
        ("reference", False, {"ann": 2, "ben": 2}),  # so does a fix to the reference
        ("grader", False, {"ann": 2, "ben": 2}),  # and a change to the grader's own code
    ],
)
def test_cache_hits_only_when_nothing_changed(small_batch, tmp_path, monkeypatch, change, force, gradings):
    submissions, out = small_batch
    rubric = RUBRIC
    if change == "reference":
        shutil.copytree(RUBRIC.parent, tmp_path / "mini")
        rubric = tmp_path / "mini" / "rubric.yaml"
        reference = tmp_path / "mini" / "reference.py"
        reference.write_text(reference.read_text() + "\n# a fixed bug\n")
    elif change == "grader":
        import grader.grading.verdict_key

        monkeypatch.setattr(grader.grading.verdict_key, "grader_fingerprint", lambda: "0.1.0+another-build")
    if change == "ben":
        (submissions / "ben.py").write_text((CLASS / "zed_honest.py").read_text())
    elif change == "rubric":
        shutil.copytree(RUBRIC.parent, tmp_path / "mini")
        rubric = tmp_path / "mini" / "rubric.yaml"
        rubric.write_text(rubric.read_text() + "\n# a TA's comment changes the hash\n")
    assert grade(rubric, [submissions], out, launcher=choose_launcher("auto"), force=force) == 0
    assert _gradings(out) == gradings
    scores = {n: json.loads((out / n / "results.json").read_text())["score"] for n in ("ann", "ben")}
    assert scores == {"ann": 10, "ben": 10 if change == "ben" else 0}


def test_cached_results_heal_missing_outputs(small_batch):
    submissions, out = small_batch
    shutil.rmtree(out / "ann")  # as if a kill had landed between the gradebook's commit and the files
    (out / "gradebook.csv").unlink()
    assert grade(RUBRIC, [submissions], out, launcher=choose_launcher("auto")) == 0
    assert _gradings(out) == {"ann": 1, "ben": 1}
    assert json.loads((out / "ann" / "results.json").read_text())["score"] == 10
    assert len((out / "gradebook.csv").read_text().splitlines()) == 3


def test_a_corrupt_gradebook_is_a_grader_error(tmp_path):
    from grader.errors import GraderError

    (tmp_path / FILENAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(GraderError, match="cannot open the gradebook"):
        Gradebook(tmp_path / FILENAME)


def test_the_course_modules_a_reference_imports_are_in_the_cache_key(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(RUBRIC.parent, course)
    (course / "course_utils").mkdir()
    (course / "course_utils" / "__init__.py").write_text("")
    (course / "course_utils" / "shapes.py").write_text("FACTOR = 1\n")
    reference = course / "reference.py"
    reference.write_text(reference.read_text() + "\nfrom course_utils.shapes import FACTOR  # noqa: E402,F401\n")
    submissions, out = _class(tmp_path / "class", {"ann": "zed_honest"}), tmp_path / "out"
    rubric = course / "rubric.yaml"
    for edit, gradings in ((None, 1), (None, 1), ("FACTOR = 1  # same value, new bytes\n", 2)):
        if edit:
            (course / "course_utils" / "shapes.py").write_text(edit)
        assert grade(rubric, [submissions], out, launcher=choose_launcher("auto")) == 0
        assert _gradings(out) == {"ann": gradings}
