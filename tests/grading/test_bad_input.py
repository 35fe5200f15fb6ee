"""Bad input by the hundred: whatever a submission file holds, the student gets a result with a message.

The loader is fed many generated files (it starts no worker); a handful of files go through the whole
pipeline, and one batch checks that every result belongs to the file it came from.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.cli.grade import grade
from grader.errors import SubmissionUnreadable
from grader.execution.launchers import choose_launcher
from grader.grading.submission import grade_submission
from grader.sources.load import Submission, load_submission
from tests.conftest import DATA

RUBRIC = DATA / "mini" / "rubric.yaml"
HONEST = DATA / "hostile" / "class" / "zed_honest.py"

# -- generators ---------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
cell_types = st.sampled_from(["code", "markdown", "raw", "", None, 3, ["code"]])
sources = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=5),
    json_values,
    st.just("Answer q1.1:\n$x^2$"),
)
cells = st.one_of(
    st.fixed_dictionaries(
        {"cell_type": cell_types, "source": sources},
        optional={"id": st.sampled_from(["same", "same", "x"]), "metadata": json_values, "outputs": json_values,
                  "execution_count": json_values},
    ),
    json_values,
)
notebooks = st.fixed_dictionaries(
    {},
    optional={
        "cells": st.one_of(st.lists(cells, max_size=6), json_values),
        "nbformat": st.sampled_from([4, 3, 5, "4", None, 4.0, [4]]),
        "nbformat_minor": st.sampled_from([0, 5, -1, "x", None]),
        "metadata": json_values,
    },
)


def _deep(depth: int) -> str:
    return '{"cells": [' + "[" * depth + "]" * depth + '], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}'


file_bytes = st.one_of(
    notebooks.map(lambda nb: json.dumps(nb).encode()),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    st.text(max_size=100).map(lambda t: t.encode("utf-16")),  # not UTF-8
    st.sampled_from([b"", b"   \n", b"\xff\xfe\x00", b'{"cells": [', b"null", b"[]", b'"cells"', b"\x00" * 10]),
    st.integers(10, 50_000).map(lambda d: _deep(d).encode()),
    st.integers(1, 200).map(lambda n: ("x = 1\n" * n + "def f(:\n" + "    " * n + "pass\n").encode()),
)


def _check_loaded(path: Path) -> Submission | SubmissionUnreadable:
    try:
        submission = load_submission(path)
    except SubmissionUnreadable as exc:
        assert path.name in str(exc), f"the message must name the file: {exc}"
        assert "\n" not in str(exc)[:300] or len(str(exc)) < 2000
        return exc
    assert submission.path == path and submission.student == path.stem
    assert all(isinstance(c.source, str) for c in submission.cells)
    assert [c.index for c in submission.cells] == list(range(len(submission.cells)))
    return submission


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=file_bytes, suffix=st.sampled_from([".ipynb", ".py"]))
def test_the_loader_never_crashes(tmp_path, data, suffix):
    path = tmp_path / f"student{suffix}"
    path.write_bytes(data)
    _check_loaded(path)


# -- odd files, one by one ----------------------------------------------------------------------------------
def _make(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "odd.ipynb"
    if kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        path.symlink_to(HONEST)
    elif kind == "dangling symlink":
        path.symlink_to(tmp_path / "nowhere.ipynb")
    elif kind == "zero bytes":
        path.touch()
    elif kind == "over the size limit":
        with open(path, "wb") as fh:
            fh.truncate(65 * 2**20)  # sparse: costs no disk
    elif kind == "unreadable":
        path.write_text("{}")
        path.chmod(0)
    elif kind == "fifo":
        os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("directory", "is a directory"),
        ("symlink", "symbolic link"),
        ("dangling symlink", "symbolic link"),
        ("zero bytes", "is empty"),
        ("over the size limit", "the limit is 64 MiB"),
        ("fifo", "not a regular file"),
    ],
)
def test_odd_files_are_graded_with_a_message(tmp_path, mini_rubric, kind, fragment):
    path = _make(tmp_path, kind)
    result = grade_submission(mini_rubric, path)
    assert result.load_error is not None and fragment in result.load_error
    assert result.score == 0 and result.student == "odd" and result.path == str(path)
    assert all("not graded" in q.message for q in result.questions)


def test_a_50_mb_output_blob_is_no_obstacle(tmp_path):
    blob = "A" * (50 * 2**20)
    notebook = {
        "cells": [
            {"cell_type": "code", "source": "answer = 42", "metadata": {}, "execution_count": 1,
             "outputs": [{"output_type": "display_data", "data": {"image/png": blob}, "metadata": {}}]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "blob.ipynb"
    path.write_text(json.dumps(notebook))
    submission = load_submission(path)
    assert [c.source for c in submission.cells] == ["answer = 42"]


# -- a few through the whole pipeline (these start workers) -------------------------------------------------
@pytest.mark.parametrize(
    "name, content, graded",
    [
        ("huge_cell.py", "answer = 42\n" + "x = 1\n" * 200_000, {"q1.1": 1.0}),
        ("deep_expression.py", "answer = " + "(" * 400 + "42" + ")" * 400 + "\n", {}),
        ("half_parses.py", "answer = 42\n\ndef broken(:\n    pass\n\npair = (5, 2)\n", {"q1.1": 1.0, "q1.2": 1.0}),
        ("dup_ids.ipynb", json.dumps({
            "cells": [{"cell_type": "code", "id": "a", "source": "answer = 42", "metadata": {}, "outputs": [],
                       "execution_count": None}] * 2,
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), {"q1.1": 1.0}),
    ],
)
def test_malformed_but_loadable_submissions_are_graded(tmp_path, mini_rubric, name, content, graded):
    path = tmp_path / name
    path.write_text(content)
    result = grade_submission(mini_rubric, path)
    scores = {q.qid: q.score for q in result.questions if q.score}
    assert scores == graded and result.load_error is None
    assert result.student == path.stem


def test_a_batch_of_bad_files_keeps_every_result_with_its_file(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    files = {
        "alice.py": HONEST.read_bytes(),
        "alice.ipynb": b"{not json",  # same stem as alice.py: the two must not be confused
        "bob.ipynb": json.dumps({"cells": [], "nbformat": 3}).encode(),
        "carol.ipynb": "caf\xe9".encode("latin-1"),
        "dave.py": b"",
        "erin.ipynb": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "frank.ipynb").mkdir()
    (folder / "gina.py").symlink_to(HONEST)
    os.mkfifo(folder / "hank.ipynb")  # reading it would block the whole batch
    out = tmp_path / "out"
    assert grade(RUBRIC, [folder], out, launcher=choose_launcher("auto")) == 0
    graded = {}
    for result_dir in (p for p in out.iterdir() if (p / "grading.json").exists()):
        data = json.loads((result_dir / "grading.json").read_text())
        assert data["student"] == result_dir.name
        graded[result_dir.name] = (Path(data["path"]).name, data["load_error"] is None, sum(q["score"] for q in data["questions"]))
    assert graded == {
        "alice_py": ("alice.py", True, 10),
        "alice_ipynb": ("alice.ipynb", False, 0),
        "bob": ("bob.ipynb", False, 0),
        "carol": ("carol.ipynb", False, 0),
        "dave": ("dave.py", False, 0),
        "erin": ("erin.ipynb", False, 0),
        "frank": ("frank.ipynb", False, 0),
        "gina": ("gina.py", False, 0),
        "hank": ("hank.ipynb", False, 0),
    }
