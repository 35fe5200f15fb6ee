"""Grading the same folder twice gives the same scores and messages; only timings may differ."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.cli.grade import grade
from grader.execution.launchers import choose_launcher
from tests.conftest import DATA

RUBRIC = DATA / "mini" / "rubric.yaml"
CLASS = DATA / "hostile" / "class"
TIMINGS = {"execution_time", "duration"}


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _graded(out: Path) -> dict[str, Any]:
    return {p.parent.name: _without_timings(json.loads(p.read_text())) for p in sorted(out.glob("*/grading.json"))}


def _grade_twice(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    folder = tmp_path / "class"
    folder.mkdir()
    for name in names:
        (folder / f"{name}.py").write_text((CLASS / f"{name}.py").read_text())
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert grade(RUBRIC, [folder], out, launcher=choose_launcher("auto")) == 0
    assert _graded(first).keys() == set(names)
    return first, second


def test_grading_twice_gives_identical_results(tmp_path):
    first, second = _grade_twice(tmp_path, ["zed_honest", "patch_compare"])
    assert _graded(first) == _graded(second)
    assert (first / "gradebook.csv").read_text() == (second / "gradebook.csv").read_text()


def test_messages_about_opaque_values_are_identical_too(tmp_path):
    first, second = _grade_twice(tmp_path, ["liar_objects"])
    assert _graded(first) == _graded(second)
