"""Late work: the LMS's late flag or its submission time against --due, the late policy's penalty (raw score,
penalty and final score all kept), extensions, and every view that shows it."""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from grader.classroom.classbook import find_result
from grader.cli.export import export_canvas, export_moodle
from grader.cli.grade import grade
from grader.cli.show import show
from grader.cli.status import status
from grader.errors import GraderError
from grader.execution.launchers import choose_launcher
from grader.sources.late import LatePolicy, assess, parse_duration, parse_policy, parse_time
from tests.conftest import DATA

RUBRIC = DATA / "mini" / "rubric.yaml"
LMS = DATA / "lms"
HONEST = (DATA / "hostile" / "class" / "zed_honest.py").read_text()
DAY = 86400.0
POLICY = LatePolicy(grace_s=900, per_day=0.1, max_days=3)


@pytest.mark.parametrize("text, seconds", [("15min", 900), ("2h", 7200), ("3d", 3 * DAY), ("1d12h", 1.5 * DAY), ("2", 2 * DAY)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "3 fortnights", "-2d", ""])
def test_bad_durations_are_one_clear_error(text: str) -> None:
    with pytest.raises(GraderError, match="is not a duration"):
        parse_duration(text)


def test_policy_and_times() -> None:
    assert parse_policy("grace=15min, per_day=10%, max_days=3") == POLICY
    assert parse_policy("per_day=25%") == LatePolicy(0.0, 0.25, None)
    with pytest.raises(GraderError, match="--late-policy"):
        parse_policy("per_week=10%")
    assert parse_time("2024-03-01T18:00Z") == parse_time("2024-03-01 13:00:00.123 -0500") == 1709316000.0


@pytest.mark.parametrize(
    "late_by, flagged, extension, days, fraction",
    [
        (None, False, 0, None, None),  # nothing says it is late
        (-60, False, 0, None, None),  # on time
        (600, False, 0, 0, 0.0),  # within the grace: late, nothing taken
        (901, False, 0, 1, 0.1),
        (DAY + 900, False, 0, 1, 0.1),  # the grace is not a day of its own
        (DAY + 901, False, 0, 2, 0.2),
        (3 * DAY + 901, False, 0, 4, 1.0),  # past max_days: no credit
        (3600, False, 2 * DAY, None, None),  # the extension covers it
        (None, True, 0, 1, 0.1),  # Canvas's flag, how late unknown: one day
        (None, True, 2 * DAY, 0, 0.0),  # ... covered by any extension
    ],
)
def test_assess(late_by: float | None, flagged: bool, extension: float, days: int | None, fraction: float | None) -> None:
    due = 1_700_000_000.0
    late = assess(flagged=flagged, submitted_at=None if late_by is None else due + late_by, due=due,
                  extension_s=extension, extension="2d" if extension else "", policy=POLICY)
    assert (late.days, late.fraction) == (days, fraction) if late else days is None


def _canvas(tmp_path: Path) -> Path:
    klass = tmp_path / "canvas"
    klass.mkdir()
    (klass / "smithalice_1001_5_hw2.py").write_text(HONEST)
    (klass / "jonesbob_LATE_1002_7_hw2.py").write_text(HONEST)
    return klass


def _gradebook(out: Path) -> dict[str, tuple[str, str, str, str]]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {r["student"]: (r["total"], r["raw_total"], r["penalty"], r["late"]) for r in csv.DictReader(fh)}


def test_canvas_late_flag_policy_penalty_everywhere_and_an_extension_removes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    klass, out, roster = _canvas(tmp_path), tmp_path / "out", LMS / "roster.csv"
    launcher = choose_launcher("auto")
    assert grade(RUBRIC, [klass], out, launcher=launcher, roster=roster, late_policy="per_day=10%") == 0
    why = "late: Canvas marked it LATE (how late is not known: one day charged); 1 day at 10%: 10% taken off"
    assert _gradebook(out) == {"s001": ("10", "10", "0", ""), "s002": ("9", "10", "1", why)}
    assert f"{why} (score 10 - 1 = 9)" in (out / "s002" / "results.json").read_text()
    assert "score 10 − penalty 1 = 9" in (out / "s002" / "report.html").read_text()
    assert "score 10 − penalty 1 = 9" in (out / "s002" / "report.md").read_text()
    assert "<strong>late</strong> (−1 of 10)" in (out / "index.html").read_text()
    text = io.StringIO()
    status(out, text)
    assert f"late:\n  Bob Jones (s002): {why} (score 10 - 1 = 9)\n" in text.getvalue()
    text = io.StringIO()
    show(out, "bob jones", text)
    assert f"\n{why} (score 10 - 1 = 9)\n" in text.getvalue()
    moodle = tmp_path / "moodle.csv"
    assert export_moodle(out, roster, moodle) == 0
    rows = list(csv.reader(moodle.read_text().splitlines()))
    assert rows[0][-1] == "Feedback" and rows[2] == ["Bob Jones", "s002", "bob@example.edu", "9", f"{why} (score 10 - 1 = 9)"]
    assert export_canvas(out, roster, tmp_path / "canvas.csv") == 0
    assert f"grader: Bob Jones (s002): {why}" in capsys.readouterr().err

    # An extension: the same results (nothing graded again), the penalty gone, the lateness still said.
    assert grade(RUBRIC, [klass], out, launcher=launcher, roster=roster, late_policy="per_day=10%",
                 extensions=["jonesbob=2d"]) == 0
    covered = "late: Canvas marked it LATE; covered by the extension (2d): nothing taken"
    assert _gradebook(out) == {"s001": ("10", "10", "0", ""), "s002": ("10", "10", "0", covered)}
    assert find_result(out, "s002").score == 10


def test_gradescope_times_against_due(tmp_path: Path) -> None:
    klass = tmp_path / "gradescope"
    shutil.copytree(LMS / "gradescope", klass)
    out = tmp_path / "out"
    # Alice submitted 17:34, Bob (with Dan) 18:00; due 16:00 with 15 min of grace: Alice 1 day, Bob 1 day.
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), roster=LMS / "roster.csv",
                 due="2024-03-01T16:00Z", late_policy="grace=15min,per_day=10%,max_days=3") == 0
    book = _gradebook(out)
    assert book["s001"][:3] == ("9", "10", "1")
    assert book["s001"][3] == "late: submitted 1.6h after the due time; 1 day at 10%: 10% taken off"
    assert book["s002"][:3] == ("0", "0", "0") and book["s002"][3].startswith("late: submitted 2h after")
    # Due a day later: nobody is late.
    assert grade(RUBRIC, [klass], out, launcher=choose_launcher("auto"), roster=LMS / "roster.csv",
                 due="2024-03-02T16:00Z", late_policy="grace=15min,per_day=10%,max_days=3") == 0
    assert {k: v[3] for k, v in _gradebook(out).items()} == {"s001": "", "s002": ""}
