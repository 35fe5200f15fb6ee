from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.export import export_canvas, export_moodle
from grader.cli.main import main
from grader.grading.submission import grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import load_rubric
from grader.sources.discover import discover, folder_names
from tests.lms_helpers import PEND, F, P, result, write_class

LMS = Path(__file__).resolve().parents[1] / "data" / "lms"
ROSTER = LMS / "roster.csv"
MINI = Path(__file__).resolve().parents[1] / "data" / "mini" / "rubric.yaml"


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def canvas_class(out: Path, *extra: SubmissionResult) -> Path:
    """Alice 10/10, Bob (late) 0/10, a stranger; Carol and Dan did not submit.  No entries recorded: each
    result is identified from its original Canvas file name."""
    return write_class(out, [
        result("alice", str(LMS / "canvas" / "smithalice_1001_5_hw2.ipynb"), {"q1": (5, P), "q2": (5, P)}),
        result("bob", str(LMS / "canvas" / "jonesbob_LATE_1002_7_hw2.py"), {"q1": (0, F), "q2": (0, F)}),
        result("zed", "/x/stranger_9999_1_hw2.py", {"q1": (5, P), "q2": (0, F)}),
        *extra,
    ])


# -- Canvas ----------------------------------------------------------------------------------------------------

def test_canvas_csv_follows_the_importers_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = canvas_class(tmp_path / "out")
    to = tmp_path / "canvas.csv"
    assert export_canvas(out, ROSTER, to, title="HW 2", assignment_id="4242") == 0
    header, *body = rows(to)
    # gradebook_importer.rb: row[0] includes "Student", row[1] "ID"; SIS User ID and SIS Login ID as a pair,
    # the last student column includes "Section"; then `Title (id)` as Assignment.title_and_id parses it.
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW 2 (4242)"]
    assert re.fullmatch(r"(.*)\s\((\d+)\)", header[5]).groups() == ("HW 2", "4242")  # type: ignore[union-attr]
    assert body[0][0] != "Points Possible"  # an existing assignment's points are left alone
    assert body == [
        ["Alice Smith", "1001", "", "asmith", "L01", "10"],
        ["Bob Jones", "1002", "", "bjones", "L01", "0"],
        ["Carol Diaz", "1003", "", "cdiaz", "L02", ""],  # no submission: an empty cell, not 0
        ["Dan Park", "1004", "", "dpark", "L02", ""],
    ]
    assert all(r[1].isdigit() for r in body)  # Canvas reads ID with to_i: the numeric user id
    err = capsys.readouterr().err
    assert "1 submission(s) not in" in err and "zed: /x/stranger_9999_1_hw2.py" in err
    assert "2 roster student(s) without a submission get an empty cell" in err


def test_canvas_new_assignment_gets_points_possible(tmp_path: Path) -> None:
    out = canvas_class(tmp_path / "out")
    to = tmp_path / "canvas.csv"
    export_canvas(out, ROSTER, to)
    header, points, *_ = rows(to)
    assert header[5] == "mini"  # the rubric's assignment, no id: Canvas creates the assignment
    assert points == ["Points Possible", "", "", "", "", "10"]


def test_canvas_best_of_several_and_pending_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    again = result("alice2", str(LMS / "canvas" / "smithalice_1001_8_hw2.py"), {"q1": (5, P), "q2": (0, PEND)})
    out = canvas_class(tmp_path / "out", again)
    to = tmp_path / "c.csv"
    export_canvas(out, ROSTER, to, assignment_id="1")
    assert rows(to)[1][5] == "10"
    err = capsys.readouterr().err
    assert "Alice Smith (s001) has 2 graded submissions; exporting the best, alice (10), not alice2" in err


def test_recorded_entries_carry_group_members(tmp_path: Path) -> None:
    d = discover([LMS / "gradescope"], assignment="hw2")
    alice, bob = d.entries
    out = write_class(tmp_path / "out", [
        result("a", str(alice.main), {"q1": (5, P), "q2": (5, P)}),
        result("b", str(bob.main), {"q1": (2.5, P), "q2": (0, F)}),
    ])
    with Gradebook(out / FILENAME) as book:
        book.record_entries({"a": alice, "b": bob})
    to = tmp_path / "c.csv"
    export_canvas(out, ROSTER, to, assignment_id="7")
    assert [r[5] for r in rows(to)[1:]] == ["10", "2.5", "", "2.5"]  # Dan shares Bob's group score


def test_cli_export_canvas(tmp_path: Path) -> None:
    out = canvas_class(tmp_path / "out")
    to = tmp_path / "c.csv"
    argv = ["export", "canvas", str(out), "--roster", str(ROSTER), "--to", str(to)]
    assert main([*argv, "--assignment-id", "12", "--assignment-title", "Homework 2"]) == 0
    assert rows(to)[0][5] == "Homework 2 (12)"
    assert main([*argv, "--assignment-id", "hw2"]) == 2
    assert main(["export", "canvas", str(tmp_path / "none"), "--roster", str(ROSTER), "--to", str(to)]) == 2


# -- Moodle ----------------------------------------------------------------------------------------------------

def test_moodle_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = write_class(tmp_path / "out", [
        result("a", str(LMS / "moodle" / "Alice Smith_1001_assignsubmission_file_" / "hw2.ipynb"), {"q1": (5, P), "q2": (5, P)}),
        result("b", str(LMS / "moodle" / "Bob Jones_1002_assignsubmission_file_" / "hw2.py"), {"q1": (1.25, P), "q2": (0, F)}),
    ])
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER.read_text() + "s005,Eve Stone,,1005,1005,estone,L02\n")
    to = tmp_path / "moodle.csv"
    assert export_moodle(out, roster, to, key="email") == 0
    assert rows(to) == [
        ["Full name", "ID number", "Email address", "mini"],
        ["Alice Smith", "s001", "alice@example.edu", "10"],
        ["Bob Jones", "s002", "bob@example.edu", "1.25"],
        ["Carol Diaz", "s003", "carol@example.edu", ""],
        ["Dan Park", "s004", "dan@example.edu", ""],
    ]
    assert "have no Email address in the roster and are left out: Eve Stone (s005)" in capsys.readouterr().err
    assert main(["export", "moodle", str(out), "--roster", str(roster), "--to", str(to), "--key", "idnumber"]) == 0
    assert rows(to)[-1] == ["Eve Stone", "s005", "", ""]


def test_an_export_that_scores_nobody_exits_1_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = canvas_class(tmp_path / "out")
    no_emails = tmp_path / "roster.csv"
    no_emails.write_text("Student ID,Name,canvas_id\ns001,Alice Smith,1001\ns002,Bob Jones,1002\n")
    to = tmp_path / "moodle.csv"
    assert main(["export", "moodle", str(out), "--roster", str(no_emails), "--to", str(to)]) == 1
    err = capsys.readouterr().err
    assert f"no roster student of {no_emails} has a score in {out}; none has an 'Email address' in the roster" in err
    assert not to.exists()
    strangers = tmp_path / "strangers.csv"
    strangers.write_text("sid,name,email\nx1,Xavier Yu,x@example.edu\n")
    assert main(["export", "canvas", str(out), "--roster", str(strangers), "--to", str(to)]) == 1
    assert "none of the 3 graded submissions is on the roster" in capsys.readouterr().err and not to.exists()


def test_moodle_grade_export_works_as_a_roster(tmp_path: Path) -> None:
    out = write_class(tmp_path / "out", [
        result("a", str(LMS / "moodle" / "Alice Smith_1001_assignsubmission_file_" / "hw2.ipynb"), {"q1": (5, P), "q2": (5, P)}),
    ])
    roster = tmp_path / "moodle-grades.csv"
    roster.write_text("First name,Last name,ID number,Institution,Department,Email address,Assignment: HW 2 (Real),"
                      "Last downloaded from this course\nAlice,Smith,s001,,,alice@example.edu,-,1700000000\n"
                      "Bob,Jones,s002,,,bob@example.edu,-,1700000000\n")
    to = tmp_path / "moodle.csv"
    assert export_moodle(out, roster, to) == 0
    assert rows(to)[1:] == [["Alice Smith", "s001", "alice@example.edu", "10"], ["Bob Jones", "s002", "bob@example.edu", ""]]


def test_canvas_test_student_is_left_out_of_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = canvas_class(tmp_path / "out")
    roster = tmp_path / "canvas-gradebook.csv"
    roster.write_text('Student,ID,SIS User ID,SIS Login ID,Section\n"Smith, Alice",1001,s001,asmith,L01\n'
                      '"Student, Test",9999,,,L01\n')
    to = tmp_path / "canvas.csv"
    assert export_canvas(out, roster, to) == 0
    assert [r[:2] for r in rows(to)[1:] if r[0] != "Points Possible"] == [["Smith, Alice", "1001"]]
    assert "Canvas's Test Student (Student, Test (9999)) is left out of the export" in capsys.readouterr().err


# -- a real class, graded ----------------------------------------------------------------------------------------

def test_graded_canvas_class_round_trip(tmp_path: Path) -> None:
    rubric = load_rubric(MINI)
    d = discover([LMS / "canvas"], assignment="hw2")
    names = folder_names(d.entries)
    graded = [
        SubmissionResult.from_dict({**grade_submission(rubric, e.main).serialize(), "student": n})
        for e, n in zip(d.entries, names)
    ]
    out = write_class(tmp_path / "out", graded)
    with Gradebook(out / FILENAME) as book:
        book.record_entries(dict(zip(names, d.entries)))
    to = tmp_path / "c.csv"
    export_canvas(out, ROSTER, to, assignment_id="3")
    assert [(r[0], r[5]) for r in rows(to)[1:]] == [
        ("Alice Smith", "10"), ("Bob Jones", "0"), ("Carol Diaz", ""), ("Dan Park", ""),
    ]


# -- Gradescope --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ag") / "autograder.zip"
    assert main(["export", "gradescope", str(MINI), "--out", str(path)]) == 0
    return path


def test_autograder_zip_layout(autograder_zip: Path) -> None:
    with zipfile.ZipFile(autograder_zip) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "assignment/rubric.yaml", "assignment/reference.py"} <= names
        assert {"dl-grader/pyproject.toml", "dl-grader/grader/__init__.py", "dl-grader/grader/worker/main.py"} <= names
        assert any(n.startswith("dl-grader/grader/feedback/templates/") for n in names)
        assert not any("__pycache__" in n for n in names)
        for script in ("setup.sh", "run_autograder"):
            mode = z.getinfo(script).external_attr >> 16
            assert stat.S_ISREG(mode) and mode & 0o111
        assert "assignment/rubric.yaml" in z.read("run_autograder").decode()


def fake_root(tmp_path: Path, autograder_zip: Path, submission: list[Path]) -> Path:
    """Gradescope's layout: the zip in source/, run_autograder copied to the root, the student's files."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder_zip) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for p in submission:
        shutil.copy(p, root / "submission" / p.name)
    meta = {"id": 1, "users": [{"email": "alice@example.edu", "id": 5, "name": "Alice Smith"}], "assignment": {"title": "hw2"}}
    (root / "submission_metadata.json").write_text(json.dumps(meta))
    return root


def run_autograder(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRADER_AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable, "GRADER_SANDBOX": "auto"}
    return subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)


def test_run_autograder_grades_the_submission(tmp_path: Path, autograder_zip: Path) -> None:
    alice = LMS / "gradescope" / "submission_501"
    root = fake_root(tmp_path, autograder_zip, [alice / "hw2.ipynb", alice / "utils.py"])
    proc = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 10
    assert data["output"].startswith("Graded hw2.ipynb for Alice Smith")
    assert sum(t["max_score"] for t in data["tests"]) == 10
    assert {t["visibility"] for t in data["tests"]} == {"visible", "after_published"}


def test_run_autograder_with_nothing_to_grade(tmp_path: Path, autograder_zip: Path) -> None:
    root = fake_root(tmp_path, autograder_zip, [LMS / "files" / "notes.txt"])
    proc = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 0 and "No .ipynb notebook or .py file" in data["output"]
