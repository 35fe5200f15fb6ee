from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from grader.grading import grade_submission
from grader.results import SubmissionResult
from grader.rubric import Rubric, load_rubric

# Tests that run `grader grade` use the OS sandbox where bubblewrap is installed (CI installs it) and say so
# where it is not, instead of refusing as the command does by default on Linux.
os.environ.setdefault("GRADER_SANDBOX", "auto")
# Tests grade under many sandboxes (one per temporary folder): a warm zygote per sandbox would cost more than the
# fresh worker it saves.  tests/test_warm.py builds warm launchers itself and checks them against fresh ones.
os.environ.setdefault("GRADER_WARM", "0")


def first_per_assignment(params: list[tuple[str, object]]) -> list[object]:
    """`(assignment, example)` parameters: the first example of each assignment as it is, the others marked
    `long` (run by `make test-long`), for checks whose cost is one grading per example."""
    seen: set[str] = set()
    out: list[object] = []
    for assignment, example in params:
        if assignment in seen:
            out.append(pytest.param(assignment, example, marks=pytest.mark.long))
        else:
            out.append((assignment, example))
            seen.add(assignment)
    return out

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def mini_rubric() -> Rubric:
    return load_rubric(DATA / "mini" / "rubric.yaml")


@pytest.fixture(scope="session")
def cnn_rubric() -> Rubric:
    return load_rubric(ROOT / "rubrics" / "cnn-rnn.yaml")


@pytest.fixture
def write_py(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(source: str, name: str = "student.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def write_nb(tmp_path: Path) -> Callable[..., Path]:
    def write(*cells: str, name: str = "student.ipynb") -> Path:
        nb = nbformat.v4.new_notebook()
        for cell in cells:
            cell = textwrap.dedent(cell)
            if cell.startswith("md:"):
                nb.cells.append(nbformat.v4.new_markdown_cell(cell[3:].lstrip()))
            else:
                nb.cells.append(nbformat.v4.new_code_cell(cell))
        path = tmp_path / name
        nbformat.write(nb, path)
        return path

    return write


def scores(result: SubmissionResult) -> dict[str, float]:
    return {q.qid: q.score for q in result.questions}


def by_id(result: SubmissionResult, qid: str):  # type: ignore[no-untyped-def]
    return next(q for q in result.questions if q.qid == qid)


@pytest.fixture
def grade_mini(mini_rubric: Rubric) -> Callable[[Path], SubmissionResult]:
    return lambda path: grade_submission(mini_rubric, path)
