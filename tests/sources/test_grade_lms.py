"""`grader grade` on what an LMS hands a TA: each layout graded with the right identities, helper modules graded
with the notebook that imports them, and nobody silently dropped."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grader.classroom.classbook import read_entries, read_results
from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.grade import grade
from grader.execution.launchers import choose_launcher
from tests.conftest import DATA

RUBRIC = DATA / "mini" / "rubric.yaml"
LMS = DATA / "lms"
HONEST = (DATA / "hostile" / "class" / "zed_honest.py").read_text()


def _csv(out: Path) -> dict[str, str]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {row["student"]: row["total"] for row in csv.DictReader(fh)}


@pytest.mark.parametrize(
    "layout, expected",
    [
        # folder name -> (total, the student's name as the roster knows them)
        ("moodle", {"s001": ("10", "Alice Smith"), "s002": ("0", "Bob Jones")}),
        ("canvas", {"s001": ("10", "Alice Smith"), "s002": ("0", "Bob Jones")}),
        ("gradescope", {"s001": ("10", "Alice Smith"), "s002": ("0", "Bob Jones")}),
        # Folder and file names the roster cannot match ("alice" is not a name, an id or an email) are graded,
        # named by themselves, and listed as unmatched.
        ("folders", {"alice": ("10", "alice"), "bob": ("0", "bob")}),
        ("files", {"alice": ("10", "alice"), "bob": ("0", "bob")}),  # alice.IPYNB: any case
    ],
)
def test_each_lms_layout_is_graded_with_the_right_students(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str, expected: dict[str, tuple[str, str]]
) -> None:
    out = tmp_path / "out"
    assert grade(RUBRIC, [LMS / layout], out, launcher=choose_launcher("auto"), roster=LMS / "roster.csv") == 0
    assert _csv(out) == {name: total for name, (total, _) in expected.items()}
    entries = read_entries(out)
    assert {name: e.student.name for name, e in entries.items()} == {n: who for n, (_, who) in expected.items()}
    err = capsys.readouterr().err
    missing = next(line for line in err.splitlines() if "have no submission" in line)
    assert "Carol Diaz" in missing  # on the roster, nothing handed in: said, not dropped
    if layout in ("folders", "files"):
        assert "not on the roster (graded all the same)" in err


def _notebook(*cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


def test_a_notebook_and_the_helper_module_it_imports_are_graded_together(tmp_path: Path) -> None:
    # Canvas renames each file of a submission; the notebook imports `utils` by the name the student gave it.
    klass = tmp_path / "canvas"
    klass.mkdir()
    honest_but_jacobian = HONEST.replace("def cube_jac(x):\n    return torch.diag(3 * x**2)\n", "")
    (klass / "smithalice_1001_5_hw2.ipynb").write_text(_notebook(honest_but_jacobian, "from utils import cube_jac"))
    utils = klass / "smithalice_1001_6_utils.py"
    utils.write_text("import torch\n\n\ndef cube_jac(x):\n    return torch.diag(3 * x**2)\n")
    out = tmp_path / "out"
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto")) == 0
    assert _csv(out) == {"1001": "10"}
    utils.write_text("import torch\n\n\ndef cube_jac(x):\n    return torch.diag(2 * x**2)\n")  # the helper changes
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto")) == 0
    with Gradebook(out / FILENAME) as book:
        assert book.gradings() == {"1001": 2}  # the helper is in the cache key: graded again
    assert _csv(out) == {"1001": "9"}
    grading = json.loads((out / "1001" / "grading.json").read_text())
    assert grading["path"].endswith("smithalice_1001_5_hw2.ipynb")


def test_an_unknown_submission_is_graded_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    klass = tmp_path / "class"
    shutil.copytree(LMS / "files", klass)
    (klass / "zoe.py").write_text(HONEST)
    out = tmp_path / "out"
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), roster=LMS / "roster.csv") == 0
    assert "not on the roster (graded all the same)" in capsys.readouterr().err
    assert _csv(out)["zoe"] == "10"


def test_the_newest_resubmission_is_graded_said_everywhere_and_a_lone_file_joins_its_student(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    klass = tmp_path / "canvas"
    klass.mkdir()
    wrong = HONEST.replace("return torch.diag(3 * x**2)", "return torch.diag(2 * x**2)")
    assert wrong != HONEST
    (klass / "diazcarol_1003_5013_hw2.ipynb").write_text(_notebook(wrong, "# " + "x" * 2000))  # older, larger
    (klass / "diazcarol_1003_5020_hw2-1.ipynb").write_text(_notebook(HONEST))
    out = tmp_path / "out"
    roster = LMS / "roster.csv"
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), roster=roster) == 0
    assert _csv(out) == {"s003": "10"}
    choice = "graded hw2-1.ipynb (newest of 2; not graded: hw2.ipynb)"
    assert f"grader: Carol Diaz (s003): {choice}" in capsys.readouterr().err
    grading = json.loads((out / "s003" / "grading.json").read_text())
    assert grading["path"].endswith("diazcarol_1003_5020_hw2-1.ipynb") and choice in grading["notes"]
    assert choice in (out / "s003" / "report-ta.html").read_text()
    with open(out / "gradebook.csv", newline="") as fh:  # one identity everywhere: name and sid
        assert [(r["student"], r["name"], r["sid"]) for r in csv.DictReader(fh)] == [("s003", "Carol Diaz", "s003")]
    assert "Carol Diaz (s003)" in (out / "index.html").read_text()
    assert "Carol Diaz (s003)" in (out / "s003" / "report.html").read_text()

    # Grading the resubmission alone, as a TA fixing it by hand would: the same student, no new one.
    lone = klass / "diazcarol_1003_5020_hw2-1.ipynb"
    assert grade(RUBRIC, [lone], out, launcher=choose_launcher("auto"), roster=roster, force=True) == 0
    assert _csv(out) == {"s003": "10"}
    assert "not on the roster" not in capsys.readouterr().err


def test_links_and_escapes_reach_stderr_refused_and_stripped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A link is refused and said; a roster name's terminal escapes never reach the TA's terminal."""
    klass = tmp_path / "canvas"
    klass.mkdir()
    (klass / "smithalice_1001_5_hw2.py").symlink_to(RUBRIC.parent / "reference.py")
    (klass / "jonesbob_1002_7_hw2.py").write_text(HONEST)
    (klass / "jonesbob_1002_8_utils.py").symlink_to(RUBRIC.parent / "reference.py")
    roster = tmp_path / "roster.csv"
    roster.write_text("sid,name,canvas_id\ns001,Alice Smith,1001\ns002,Bob Jones,1002\n"
                      "s003,\"Eve\x1b]0;pwned\x07 Stone\x1b[2J\",1003\n")
    out = tmp_path / "out"
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), roster=roster) == 0
    err = capsys.readouterr().err
    assert not any(c in err for c in "\x1b\x07")
    assert (f"grader: {klass / 'smithalice_1001_5_hw2.py'} is a symbolic link: not followed; smithalice (1001) is "
            "graded as unreadable\n") in err
    assert "grader: jonesbob (1002): symbolic links are not followed; left out: utils.py\n" in err
    assert "grader: 1 students on the roster have no submission: Eve]0;pwned Stone[2J\n" in err
    assert _csv(out) == {"s001": "0", "s002": "10"}
    alice, bob = read_results(out)
    assert alice.load_error == "smithalice_1001_5_hw2.py is a symbolic link, not a submission file"
    assert bob.notes == ("symbolic links are not followed; left out: utils.py",)
