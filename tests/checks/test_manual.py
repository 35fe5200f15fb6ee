"""The `manual` kind and `grader manual`: TA scores applied to a graded folder without running student code."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from grader.cli.grade import grade
from grader.cli.main import main
from grader.cli.manual import enter_scores, import_scores
from grader.results import Status, SubmissionResult

DATA = Path(__file__).resolve().parents[1] / "data" / "resnet-adversarial"
RUBRIC = DATA / "manual.yaml"


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("graded")
    grade(RUBRIC, [DATA / "ta_alice.ipynb", DATA / "ta_bob.py"], out)
    return out


@pytest.fixture
def out(graded_once: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(graded_once, copy)
    return copy


def stored(out: Path, student: str) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads((out / student / "grading.json").read_text()))


def gradebook(out: Path) -> list[list[str]]:
    """gradebook.csv without the identity and late-work columns (name, sid, late, raw_total, penalty)."""
    rows = list(csv.reader((out / "gradebook.csv").read_text().splitlines()))
    keep = [i for i, h in enumerate(rows[0]) if h not in ("name", "sid", "late", "raw_total", "penalty")]
    return [[row[i] for i in keep] for row in rows]


def test_pending_until_a_ta_scores(out: Path) -> None:
    alice, bob = stored(out, "ta_alice"), stored(out, "ta_bob")
    q61 = next(q for q in alice.questions if q.qid == "q6.1")
    assert (q61.status, q61.score, q61.details["missing_answer"]) == (Status.PENDING, 0.0, False)
    assert q61.details["answer"].startswith("Dropout is on in train()")
    assert next(q for q in alice.questions if q.qid == "q6.2").details["answer"].startswith("They are few")
    bob61 = next(q for q in bob.questions if q.qid == "q6.1")
    assert (bob61.status, bob61.details["missing_answer"]) == (Status.PENDING, True)
    assert "no Markdown cell starting with `Answer q6.1:`" in bob61.message
    assert gradebook(out)[1:] == [["ta_alice", "1", "0", "0", "1", "5", "pending"], ["ta_bob", "0", "0", "0", "0", "5", "pending"]]


@pytest.mark.parametrize("scores", ["scores.csv", "scores.yaml"])
def test_import_updates_every_output(out: Path, scores: str) -> None:
    assert import_scores(DATA / scores, out, RUBRIC, ta="tess") == 0
    assert gradebook(out)[1:] == [["ta_alice", "1", "2", "1.5", "4.5", "5", "graded"], ["ta_bob", "0", "0", "0", "0", "5", "pending"]]
    q62 = next(q for q in stored(out, "ta_alice").questions if q.qid == "q6.2")
    assert (q62.status, q62.score, q62.details["ta"]) == (Status.PARTIAL, 1.5, "tess")
    assert q62.details["answer"].startswith("They are few")  # the answer stays with the score
    results = json.loads((out / "ta_alice" / "results.json").read_text())
    assert results["score"] == 4.5
    assert [t["output"] for t in results["tests"] if t["number"] == "6.2"] == ["graded by a TA: capacity argument vague, gamma point good"]
    assert "capacity argument vague" in (out / "ta_alice" / "report.html").read_text()
    assert "<strong>4.5</strong>" in (out / "index.html").read_text()
    # A later `grader grade` of the same folder reuses the stored result: it must carry the TA's scores.
    grade(RUBRIC, [DATA / "ta_alice.ipynb", DATA / "ta_bob.py"], out)
    assert gradebook(out)[1][-3] == "4.5"


BAD = [
    ("bad_range.csv", "bad_range.csv: row 3: score 2.5 for q6.2 is outside 0..2"),
    ("bad_student.csv", "unknown student 'ta_zed' (known: ta_alice, ta_bob)"),
    ("bad_question.csv", "'q2.1' is not a TA-graded question (those are: q6.1, q6.2)"),
    ("bad_unknown_question.csv", "'q9.9' is not a TA-graded question"),
    ("bad_number.csv", "row 2: score 'two' is not a number"),
    ("bad_twice.csv", "row 3: a second score for ta_alice q6.1"),
    ("bad_columns.csv", "missing column(s) question, score, student"),
    ("bad_negative.yaml", "entry 1: score -1 for q6.1 is outside 0..2"),
]


@pytest.mark.parametrize(("file", "message"), BAD, ids=[row[0] for row in BAD])
def test_bad_scores_are_clear_errors_and_change_nothing(out: Path, capsys: pytest.CaptureFixture[str], file: str, message: str) -> None:
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "grader.log"}
    assert main(["manual", "import", str(DATA / file), "--out", str(out), "--rubric", str(RUBRIC)]) == 2
    assert message in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before


def test_rubric_is_required_unless_the_folder_names_it(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `grader grade` records the rubric; a folder graded elsewhere may lack the record.
    assert (out / "rubric-path").read_text().strip() == str(RUBRIC.resolve())
    (out / "rubric-path").unlink()
    assert main(["manual", "import", str(DATA / "scores.csv"), "--out", str(out)]) == 2
    assert "pass --rubric" in capsys.readouterr().err
    (out / "rubric-path").write_text(str(RUBRIC))
    assert main(["manual", "import", str(DATA / "scores.csv"), "--out", str(out)]) == 0
    assert gradebook(out)[1][-3] == "4.5"


def test_a_changed_rubric_is_refused(out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = DATA.parents[2] / "reference" / "resnet_adversarial.py"
    changed = tmp_path / "manual.yaml"
    text = RUBRIC.read_text().replace("points: 2, kind: manual}", "points: 3, kind: manual}")
    changed.write_text(text.replace("../../../reference/resnet_adversarial.py", str(reference)))
    assert main(["manual", "import", str(DATA / "scores.csv"), "--out", str(out), "--rubric", str(changed)]) == 2
    assert "changed since ta_alice was graded" in capsys.readouterr().err


def test_prompting_a_ta(out: Path) -> None:
    replies = iter(["3", "abc", "2", "clear and complete", "", "q"])
    shown: list[str] = []
    assert enter_scores(out, RUBRIC, ask=lambda prompt: next(replies), say=shown.append) == 0
    text = "\n".join(shown)
    assert "== ta_alice · q6.1 train() and eval() (2 pts)" in text and "guide: dropout and BatchNorm" in text
    assert "Dropout is on in train()" in text
    assert "a score for q6.1 lies in 0..2" in text and "score 'abc' is not a number" in text
    assert "saved 1 score(s) for ta_alice" in text
    assert gradebook(out)[1:] == [["ta_alice", "1", "2", "0", "3", "5", "pending"], ["ta_bob", "0", "0", "0", "0", "5", "pending"]]
    # Next time only what is still pending is asked: ta_alice's q6.2 first, then ta_bob's two (no answer cell).
    shown.clear()
    replies = iter(["1", "", "0", "missing", "2", "found it in a code comment"])
    assert enter_scores(out, RUBRIC, ask=lambda prompt: next(replies), say=shown.append) == 0
    assert "(no `Answer q6.1:` cell in this submission)" in "\n".join(shown)
    assert gradebook(out)[1:] == [["ta_alice", "1", "2", "1", "4", "5", "graded"], ["ta_bob", "0", "0", "2", "2", "5", "graded"]]


def test_export_lists_what_is_pending(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "todo.csv"
    assert main(["manual", "export", str(target), "--out", str(out), "--rubric", str(RUBRIC)]) == 0
    rows = list(csv.DictReader(target.read_text().splitlines()))
    assert [(r["student"], r["question"], r["score"]) for r in rows] == [
        ("ta_alice", "q6.1", ""), ("ta_alice", "q6.2", ""), ("ta_bob", "q6.1", ""), ("ta_bob", "q6.2", ""),
    ]
    assert rows[0]["answer"].startswith("Dropout is on")
