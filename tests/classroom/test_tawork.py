"""Nothing a TA entered is lost by re-grading: TA scores of TA-graded questions and overrides survive `--force`
and a rubric edit of another question, and wait for review after an edit of their own question; `grader
remove` takes a student out of the class files and the exports; every command names a student the same ways."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grader.classroom.classbook import find_result, read_results
from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.export import export_canvas
from grader.cli.grade import grade
from grader.cli.main import main
from grader.cli.manual import import_scores
from grader.cli.override import override, remove
from grader.cli.status import status
from grader.errors import GraderError
from grader.execution.launchers import choose_launcher
from grader.results import Status
from tests.conftest import DATA

MINI = DATA / "mini"
HONEST = (DATA / "hostile" / "class" / "zed_honest.py").read_text()
ROSTER = "Student,ID,SIS User ID,SIS Login ID,Section,Email\n" \
         "\"Smith, Alice\",1001,s001,asmith,L01,alice@example.edu\n" \
         "\"Jones, Bob\",1002,s002,bjones,L01,bob@example.edu\n"


def _rubric(folder: Path, q11_points: int = 1, q12_title: str = "a pair", q41_title: str = "explain") -> Path:
    folder.mkdir(exist_ok=True)
    shutil.copy(MINI / "reference.py", folder / "reference.py")
    text = (MINI / "rubric.yaml").read_text()
    text = text.replace("total: 10\n", "")
    text = text.replace("{id: q1.1, title: the answer, points: 1,", f"{{id: q1.1, title: the answer, points: {q11_points},")
    text = text.replace("title: a pair,", f"title: {q12_title},")
    text += f"  - {{id: q4.1, title: {q41_title}, points: 2, kind: manual, guide: the chain rule}}\n"
    (folder / "rubric.yaml").write_text(text)
    return folder / "rubric.yaml"


def _notebook(path: Path, answer: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(HONEST), nbformat.v4.new_markdown_cell(f"Answer q4.1: {answer}")]
    path.write_text(nbformat.writes(nb))


def _class(tmp_path: Path) -> tuple[Path, Path, Path]:
    klass = tmp_path / "canvas"
    klass.mkdir()
    _notebook(klass / "smithalice_1001_5_hw2.ipynb", "by the chain rule")
    _notebook(klass / "jonesbob_1002_7_hw2.ipynb", "it just works")
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    return klass, roster, tmp_path / "out"


def _questions(out: Path, student: str) -> dict[str, tuple[float, Status]]:
    return {q.qid: (q.score, q.status) for q in find_result(out, student).questions}


def _totals(out: Path) -> dict[str, str]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {row["student"]: row["total"] for row in csv.DictReader(fh)}


def test_ta_scores_and_overrides_survive_regrading_and_are_flagged_when_their_question_changes(tmp_path: Path) -> None:
    klass, roster, out = _class(tmp_path)
    rubric = _rubric(tmp_path / "rubric")
    launcher = choose_launcher("auto")
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster) == 0
    assert _totals(out) == {"s001": "10", "s002": "10"}  # q4.1 waits for a TA
    scores = tmp_path / "scores.csv"
    scores.write_text("student,question,score,comment\n\"Smith, Alice\",q4.1,1.5,mostly right\n")  # any key
    assert import_scores(scores, out, ta="tina") == 0
    assert override(out, "Jones, Bob", "q1.1", 0.5, "regrade request: accepted equivalent shape", ta="omar") == 0
    assert _totals(out) == {"s001": "11.5", "s002": "9.5"}

    # --force, then a rubric edit of another question: both kept.
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster, force=True) == 0
    _rubric(tmp_path / "rubric", q12_title="a pair of numbers")
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster) == 0
    with Gradebook(out / FILENAME) as book:
        assert book.gradings() == {"s001": 3, "s002": 3}
    assert _totals(out) == {"s001": "11.5", "s002": "9.5"}
    assert _questions(out, "s001")["q4.1"] == (1.5, Status.PARTIAL)
    assert _questions(out, "s002")["q1.1"] == (0.5, Status.PARTIAL)
    for report in ("report.html", "report-ta.html", "report.md"):
        text = (out / "s002" / report).read_text()
        assert "adjusted by a TA (omar): regrade request: accepted equivalent shape (graded 1/1, now 0.5)" in text
    text = io.StringIO()
    status(out, text)
    assert "Jones, Bob (s002): q1.1 0.5/1 by omar: regrade request: accepted equivalent shape" in text.getvalue()

    # Their own questions change: the automatic score again, the TA's work kept beside it, flagged for review.
    _rubric(tmp_path / "rubric", q11_points=2, q12_title="a pair of numbers", q41_title="explain why")
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster) == 0
    alice, bob = find_result(out, "s001"), find_result(out, "s002")
    q41 = next(q for q in alice.questions if q.qid == "q4.1")
    assert (q41.score, q41.status) == (0.0, Status.PENDING)
    assert q41.details["previous_ta"]["score"] == 1.5 and "review" in q41.message
    q11 = next(q for q in bob.questions if q.qid == "q1.1")
    assert q11.score == 2.0 and q11.details["stale_override"]["score"] == 0.5
    assert _totals(out) == {"s001": "11", "s002": "11"}
    text = io.StringIO()
    status(out, text)
    assert "to review:" in text.getvalue() and "Jones, Bob (s002): TA work on a changed question or answer: q1.1" in text.getvalue()
    with Gradebook(out / FILENAME) as book:  # the audit trail: who, when, why
        (trail,) = book.overrides("s002")
    assert (trail.qid, trail.score, trail.ta, trail.title) == ("q1.1", 0.5, "omar", "the answer")


def test_remove_takes_a_student_out_of_the_class_files_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    klass, roster, out = _class(tmp_path)
    rubric = _rubric(tmp_path / "rubric")
    assert grade(rubric, [klass], out, launcher=choose_launcher("auto"), roster=roster) == 0
    assert remove(out, "bob@example.edu", reason="dropped the course") == 0
    assert [r.student for r in read_results(out)] == ["s001"]
    assert _totals(out) == {"s001": "10"}
    assert not (out / "s002").exists() and (out / ".removed" / "s002" / "grading.json").is_file()
    assert export_canvas(out, roster, tmp_path / "canvas.csv") == 0
    rows = list(csv.reader((tmp_path / "canvas.csv").read_text().splitlines()))
    assert [r[-1] for r in rows[1:] if r[0] != "Points Possible"] == ["10", ""]
    with Gradebook(out / FILENAME) as book:
        assert [(n, why) for n, _, why in book.removed()] == [("s002", "dropped the course")]
    capsys.readouterr()
    assert grade(rubric, [klass], out, launcher=choose_launcher("auto"), roster=roster) == 0  # back, and said
    assert "grader: Jones, Bob (s002) was removed from this class folder (grader remove)" in capsys.readouterr().err
    assert _totals(out) == {"s001": "10", "s002": "10"}


@pytest.mark.parametrize("key", ["s002", "bob@example.edu", "BOB@example.edu", "Jones, Bob", "Bob Jones", "jonesbob",
                                 "1002", "bjones", "jonesbob_1002_7_hw2.ipynb"])
def test_every_command_names_a_student_the_same_ways(tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    klass, roster, out = _class(tmp_path)
    rubric = _rubric(tmp_path / "rubric")
    launcher = choose_launcher("auto")
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster) == 0
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster, only=[key]) == 0
    with Gradebook(out / FILENAME) as book:
        assert book.gradings() == {"s001": 1, "s002": 2}
    capsys.readouterr()
    assert main(["show", str(out), key]) == 0
    assert capsys.readouterr().out.startswith("Jones, Bob (s002): ")
    assert override(out, key, "q1.2", 0, "copied", ta="t") == 0
    assert find_result(out, "s002").score == 9
    assert remove(out, key) == 0
    assert [r.student for r in read_results(out)] == ["s001"]


def test_a_name_that_matches_nobody_lists_the_near_candidates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    klass, roster, out = _class(tmp_path)
    rubric = _rubric(tmp_path / "rubric")
    launcher = choose_launcher("auto")
    assert grade(rubric, [klass], out, launcher=launcher, roster=roster) == 0
    with pytest.raises(GraderError, match=r"--only: no student 'jonesbobb' .*did you mean Jones, Bob \(s002\)\?"):
        grade(rubric, [klass], out, launcher=launcher, roster=roster, only=["jonesbobb"])
    for argv in (["show", str(out), "s0022"], ["override", str(out), "s0022", "q1.1", "0", "--reason", "x"],
                 ["remove", str(out), "s0022"]):
        assert main(argv) == 2
        assert "no student 's0022'" in (err := capsys.readouterr().err) and "did you mean" in err and "s002" in err
    assert json.loads((out / "s002" / "grading.json").read_text())["student"] == "s002"
