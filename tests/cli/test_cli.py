"""The `grader` command: outputs in Gradescope's schema, a gradebook, one-line failures with non-zero exits."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from grader.cli.main import main
from tests.conftest import DATA, ROOT

CORRECT = "answer = 42\npair = (5, 2)\nflag = False\nratio = 0.25\n"


def test_grade_writes_results_reports_and_gradebook(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ann.py").write_text(CORRECT)
    (subs / "ben.py").write_text("answer = 41\n")
    (subs / "ben.ipynb").write_text("{not json")
    (subs / "notes.txt").write_text("ignored: not a submission")
    out = tmp_path / "out"
    assert main(["grade", str(DATA / "mini" / "rubric.yaml"), str(subs), "--out", str(out)]) == 0

    ann = json.loads((out / "ann" / "results.json").read_text())
    assert ann["score"] == 4
    test = ann["tests"][0]
    assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
    assert test["name"] == "q1.1 the answer" and test["status"] == "passed" and test["visibility"] == "visible"
    hidden = next(t for t in ann["tests"] if t["name"].startswith("q2.2"))
    assert hidden["visibility"] == "after_published" and hidden["output"] == "hidden test: failed"
    assert (out / "ann" / "report.html").is_file()

    # Two files with one stem get distinct folders; the broken notebook is a 0 with a message, not a crash.
    broken = json.loads((out / "ben_ipynb" / "results.json").read_text())
    assert broken["score"] == 0 and "not valid notebook JSON" in broken["output"]
    assert json.loads((out / "ben_py" / "results.json").read_text())["score"] == 0

    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [r["student"] for r in rows] == ["ann", "ben_ipynb", "ben_py"]
    assert rows[0]["q1.1"] == "1" and rows[0]["total"] == "4" and rows[0]["max"] == "10"
    assert rows[1]["status"] == "unreadable"
    assert (out / "index.html").is_file()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["grade", "nope.yaml", "x.py", "--out", "{out}"], "cannot read rubric nope.yaml"),
        (["grade", str(DATA / "mini" / "rubric.yaml"), "missing_dir", "--out", "{out}"], "no such submission file or folder: missing_dir"),
        (["grade", str(ROOT / "rubrics" / "cnn-rnn.yaml"), "{empty}", "--out", "{out}"], "no .ipynb or .py submissions"),
    ],
)
def test_grader_failures_are_one_line_and_non_zero(tmp_path, args, fragment):
    (tmp_path / "empty").mkdir()
    args = [a.format(out=tmp_path / "out", empty=tmp_path / "empty") for a in args]
    proc = subprocess.run([sys.executable, "-m", "grader.cli.main", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grader: error:") and fragment in lines[0], proc.stderr


def test_bad_rubric_names_file_question_and_key(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text("assignment: x\nreference: r.py\nquestions:\n  - {id: q2.1, title: t, points: 1, kind: value, answer: a, tol: 1}\n")
    (tmp_path / "s.py").write_text("a = 1\n")
    proc = subprocess.run([sys.executable, "-m", "grader.cli.main", "grade", str(rubric), str(tmp_path / "s.py"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{rubric}: q2.1: tol: Extra inputs are not permitted" in proc.stderr


def test_check_shows_public_questions_only(tmp_path, capsys):
    sub = tmp_path / "me.py"
    sub.write_text(CORRECT + "def scale(x, k):\n    return x * k\n")
    assert main(["check", str(sub), "--rubric", str(DATA / "mini" / "rubric.yaml")]) == 0
    text = capsys.readouterr().out
    assert "q2.1" in text and "q2.2" not in text  # q2.2 is hidden


def test_the_command_ends_after_its_exit_handlers_with_its_own_status(tmp_path):
    """`grader` (grader.cli.main:entry) skips Python's teardown of the modules torch loaded, but not what has to
    happen at exit: every atexit handler runs, the output is flushed whole into a pipe, the status is the
    command's."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ann.py").write_text(CORRECT)
    script = ("import atexit, sys\nfrom grader.cli.main import entry\natexit.register(print, 'the handler ran')\n"
              "sys.argv = ['grader', *sys.argv[1:]]\nentry()\n")
    rubric = str(DATA / "mini" / "rubric.yaml")
    proc = subprocess.run([sys.executable, "-c", script, "grade", rubric, str(subs), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("graded 1 submissions") and proc.stdout.endswith("\nthe handler ran\n"), proc.stdout
    assert "ann: 4/10" in proc.stderr and "total: mean 4.00" in proc.stderr
    proc = subprocess.run([sys.executable, "-c", script, "status", str(tmp_path / "nowhere")], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("grader: error:"), proc.stderr
    assert proc.stdout == "the handler ran\n"
