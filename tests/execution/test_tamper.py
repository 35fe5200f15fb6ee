"""Tamper-proof verdicts: a class of hostile submissions earns nothing from its tricks and harms no one.

The class (tests/data/hostile/class) is graded once, in this process and in the sandbox, with the real
`grade` command: if a submission could kill the grader, this test process would die with it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.grade import grade
from grader.execution.sandbox import PlainLauncher
from grader.grading.submission import grade_submission
from grader.rubric.schema import load_rubric
from tests.conftest import DATA, SANDBOXES, sandboxed

CLASS = DATA / "hostile" / "class"
RUBRIC = DATA / "mini" / "rubric.yaml"
HOSTILE = sorted(p.stem for p in CLASS.glob("*.py") if p.stem != "zed_honest")
HARMLESS_WITHOUT_SANDBOX = [name for name in HOSTILE if not name.endswith("_sandboxed")]
MARKERS = [Path("/tmp/grader-pwned-by-pickle"), Path("/tmp/grader-pwned-by-repr")]



@pytest.fixture(scope="module", params=SANDBOXES)
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The class graded under one of the sandboxes: its name (as results record it) and the output folder."""
    for marker in MARKERS:
        marker.unlink(missing_ok=True)
    folder = tmp_path_factory.mktemp("hostile") / "out"
    launcher = sandboxed(request.param)
    assert grade(RUBRIC, [CLASS], folder, launcher=launcher) == 0
    return launcher.name, folder


@pytest.fixture(scope="module")
def out(graded: tuple[str, Path]) -> Path:
    return graded[1]


def _results(out: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((out / name / "results.json").read_text())


@pytest.mark.parametrize("name", HOSTILE)
def test_tricks_earn_nothing(out, name):
    results = _results(out, name)
    assert results["score"] == 0
    assert [t["score"] for t in results["tests"]] == [0] * len(results["tests"])
    with Gradebook(out / FILENAME) as book:
        assert book.db.execute("SELECT score FROM results WHERE name = ?", (name,)).fetchone() == (0.0,)


def test_the_honest_classmate_keeps_every_point(out):
    assert _results(out, "zed_honest")["score"] == 10
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == sorted([*HOSTILE, "zed_honest"])  # everyone was graded


def test_the_output_folder_holds_only_what_the_grader_wrote(graded, out):
    expected = {p.name for p in (out / "zed_honest").iterdir()}
    assert {"results.json", "grading.json"} <= expected
    for name in HOSTILE:
        assert {p.name for p in (out / name).iterdir()} == expected, name
        grading = json.loads((out / name / "grading.json").read_text())
        assert grading["student"] == name and grading["sandbox"] == graded[0]
    top = {p.name for p in out.iterdir()} - {*HOSTILE, "zed_honest"}
    assert top <= {"gradebook.csv", FILENAME, f"{FILENAME}-wal", f"{FILENAME}-shm", "index.html", "logs", "grader.log", "rubric-path",
                   "assignment.json", "similarity.json"}
    assert {p.name for p in (out / "logs").iterdir()} <= {f"{n}.stdout.txt" for n in [*HOSTILE, "zed_honest"]}


def test_printed_fake_results_stay_in_the_students_log(out):
    log = (out / "logs" / "fake_output_sandboxed.stdout.txt").read_text()
    assert '"score": 10' in log  # it did print them ...
    assert _results(out, "fake_output_sandboxed")["score"] == 0  # ... to no effect


def test_no_student_code_ran_in_the_grader(out):
    assert [m for m in MARKERS if m.exists()] == []
    messages = " ".join(t["output"] for t in _results(out, "pickle_payload")["tests"])
    assert "Payload" in messages


def test_a_worker_that_kills_its_parent_is_recorded_not_obeyed(out):
    grading = json.loads((out / "kills_parent_sandboxed" / "grading.json").read_text())
    reasons = {c["reason"] for c in grading["cell_failures"]}
    assert "died" in reasons


@pytest.mark.parametrize("name", HARMLESS_WITHOUT_SANDBOX)
def test_tricks_earn_nothing_without_the_sandbox_too(name):
    # The verdict never depended on the sandbox: comparisons happen in the grader's process.
    for marker in MARKERS:
        marker.unlink(missing_ok=True)
    result = grade_submission(load_rubric(RUBRIC), CLASS / f"{name}.py", launcher=PlainLauncher())
    assert result.score == 0, {q.qid: q.message for q in result.questions}
    assert [m for m in MARKERS if m.exists()] == []


def test_tampering_is_flagged_for_a_ta_and_changes_no_score(tmp_path):
    """mallory_tamper.py patches comparisons and writes fake results.json files: flagged in the class summary
    and the TA's report, never in a score; an honest classmate is not flagged."""
    import shutil

    from grader.cli.grade import grade
    from grader.execution.launchers import choose_launcher
    from tests.conftest import ROOT

    klass = tmp_path / "class"
    klass.mkdir()
    for name in ("alice_correct.ipynb", "mallory_tamper.py"):
        shutil.copy(ROOT / "submissions" / "cnn-rnn" / name, klass / name)
    out = tmp_path / "out"
    assert grade(ROOT / "rubrics" / "cnn-rnn.yaml", [klass], out, launcher=choose_launcher("auto")) == 0
    mallory = json.loads((out / "mallory_tamper" / "grading.json").read_text())
    alice = json.loads((out / "alice_correct" / "grading.json").read_text())
    assert (mallory["questions"] and sum(q["score"] for q in mallory["questions"])) == 0
    assert {"replaced torch.allclose", "replaced numpy.allclose", "replaced torch.Tensor.__eq__"} <= set(mallory["flags"])
    assert any(f.startswith("tried to write") and "results.json" in f for f in mallory["flags"])
    assert alice["flags"] == [] and sum(q["score"] for q in alice["questions"]) == 30
    needs_ta = (out / "index.html").read_text().split("Needs a TA")[1].split("</ul>")[0]
    assert "mallory_tamper" in needs_ta and "replaced torch.allclose" in needs_ta and "alice_correct" not in needs_ta
    assert "Flagged for a TA" in (out / "mallory_tamper" / "report-ta.html").read_text()
    assert "Flagged" not in (out / "mallory_tamper" / "report.html").read_text()
