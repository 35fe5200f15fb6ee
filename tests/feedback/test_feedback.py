"""Feedback that says what to fix and reproduces it: diagnoses of common mistakes, the smallest failing input,
failed cells named on the questions they broke, the TA guide from a real run, the training chart and diagnosis.

One graded submission (tests/data/feedback/mistakes.py) makes every mistake once, so the worker starts once.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from grader.checks.training import TrainingDetails, diagnosis
from grader.classroom.score_files import gradescope
from grader.explain import View
from grader.feedback.report import Audience, explain, render_markdown, render_report, write_report
from grader.grading.submission import grade_submission
from grader.results import Status, SubmissionResult
from grader.rubric.schema import Rubric, load_rubric
from tests.conftest import by_id

DATA = Path(__file__).resolve().parents[1] / "data" / "feedback"


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(DATA / "rubric.yaml")


@pytest.fixture(scope="module")
def graded(rubric: Rubric) -> SubmissionResult:
    return grade_submission(rubric, DATA / "mistakes.py")


@pytest.mark.parametrize(
    "qid, cause",
    [
        ("q1.1", "transpose of the expected one"),
        ("q1.2", "wrong sign"),
        ("q1.3", "2 times the expected ones"),
        ("q1.4", "1/6 of the expected ones (6 is an axis size)"),
        ("q1.5", "precision of float16"),
        ("q1.6", "correct except for one batch item, the last"),
        ("q1.7", "shifted by one along axis 1"),
        ("q1.8", "transposed (last two axes swapped)"),
        ("q2.1", "2 times the expected ones"),
    ],
)
def test_each_common_mistake_is_named(graded: SubmissionResult, qid: str, cause: str) -> None:
    q = by_id(graded, qid)
    assert q.score == 0
    assert cause in q.details["diagnosis"] and cause in q.message


def test_a_wrong_gradient_names_its_worst_element_expected_against_yours(graded: SubmissionResult) -> None:
    q = by_id(graded, "q2.2")  # `W` where `W.T` belongs: no simple diagnosis, but where and by how much
    assert "relative error" in q.message and "worst at index" in q.message
    facts = {f.label: f.value for f in explain(q).facts}
    assert {"worst element", "expected (autograd)", "yours"} <= set(facts)
    assert q.details["expected"] != q.details["got"]


def test_the_failing_input_is_shrunk_and_still_fails(graded: SubmissionResult) -> None:
    q = by_id(graded, "q1.2")  # negated: fails on any input, so shrinking goes all the way
    repro = q.details["reproduce"]
    assert repro["shrunk"] and repro["original"] == "x=<6x5>, W=<5x4>"
    assert "values differ" in repro["problem"]  # it still fails, the same way
    assert repro["calls"] <= 30
    shapes = {name: _shape(text) for name, text in re.findall(r"^(\w+) = (.*)$", repro["inputs"], re.M)}
    original = {"x": (6, 5), "W": (5, 4)}
    assert all(len(shapes[n]) == len(s) and all(a <= b for a, b in zip(shapes[n], s)) for n, s in original.items())
    assert sum(math.prod(s) for s in shapes.values()) < sum(math.prod(s) for s in original.values())
    assert repro["snippet"].startswith("def _reproduce_linear_neg():  # a function, so that none of your notebook's")
    assert "\n    import torch\n    x = torch.tensor(" in repro["snippet"]
    assert repro["snippet"].endswith("\n    return linear_neg(x, W)\n\nprint(_reproduce_linear_neg())")


def _shape(text: str) -> tuple[int, ...]:
    import numpy as np

    body = re.match(r"torch\.tensor\((.*), dtype=", text, re.S)
    assert body, text
    return tuple(np.array(eval(body.group(1))).shape)  # noqa: S307 - our own array text


def _shown(inputs: str) -> dict[str, object]:
    """The input a reproduction shows (`name = value` lines), as values."""
    import torch

    namespace: dict[str, object] = {"torch": torch}
    exec(inputs, namespace)  # noqa: S102 - our own input text
    return {k: v for k, v in namespace.items() if k not in ("torch", "__builtins__")}


def test_the_snippet_reproduces_the_failure_and_changes_none_of_the_students_names(graded: SubmissionResult) -> None:
    import contextlib
    import io

    import torch

    repro = by_id(graded, "q1.2").details["reproduce"]
    def linear_neg(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        return -(x @ W)

    mine = {"linear_neg": linear_neg, "x": "my x", "W": "my W", "torch": "my torch", "np": "my np"}
    namespace: dict[str, object] = dict(mine)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(repro["snippet"], namespace)  # noqa: S102 - our own snippet, pasted as a student would
    assert {k: namespace[k] for k in mine} == mine  # the notebook's own variables, untouched
    assert set(namespace) - set(mine) == {"__builtins__", "_reproduce_linear_neg"}
    shown = _shown(repro["inputs"])
    result = linear_neg(shown["x"], shown["W"])  # type: ignore[arg-type]
    assert printed.getvalue() == f"{result}\n"
    assert not torch.allclose(result, shown["x"] @ shown["W"])  # type: ignore[operator]  # it fails there


def test_a_snippet_renames_an_argument_that_would_hide_the_function() -> None:
    import torch

    from grader.checks.support.shrink import snippet

    text = snippet("f", {"f": torch.ones(1), "torch": 2, "x": 3})
    assert text.splitlines()[1:6] == [
        "    import torch",
        "    f_ = torch.tensor([1.], dtype=torch.float32)",
        "    torch_ = 2",
        "    x = 3",
        "    return f(f_, torch_, x)",
    ]
    namespace: dict[str, object] = {"f": lambda a, b, c: (a.tolist(), b, c)}
    exec(text.replace("print(", "result = ("), namespace)  # noqa: S102 - our own snippet
    assert namespace["result"] == ([1.0], 2, 3)


def test_a_failed_property_shows_its_smallest_failing_input_and_the_predicates_message(graded: SubmissionResult) -> None:
    import contextlib
    import io
    import runpy
    from types import SimpleNamespace

    from grader.checks.support.cases import label

    q = by_id(graded, "q4.1")
    assert q.score == 0 and q.message.startswith("on inputs x=<6x8>: row ")
    assert q.message == f"on inputs x=<6x8>: {q.details['predicate']}"
    repro = q.details["reproduce"]
    assert repro["shrunk"] is True and repro["original"] == "x=<6x8>" and repro["calls"] <= 30
    x = _shown(repro["inputs"])["x"]
    assert x.dim() == 2 and all(a <= b for a, b in zip(x.shape, (6, 8)))  # type: ignore[attr-defined]
    assert x.numel() < 6 * 8  # type: ignore[attr-defined]
    student = runpy.run_path(str(DATA / "mistakes.py"))["sort_order"]
    predicate = runpy.run_path(str(DATA / "reference.py"))["sorts_each_row"]
    ok, message = predicate({"x": x}, SimpleNamespace(value=student(x)))
    assert not ok  # the shown input still fails, with the message the report shows for it
    assert repro["problem"] == f"on inputs {label({'x': x})}: {message}"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(repro["snippet"], {"sort_order": student})  # noqa: S102 - our own snippet
    assert printed.getvalue() == f"{student(x)}\n"
    blocks = [b.title for b in explain(q).blocks]
    assert blocks == ["smallest failing input found (shrunk from x=<6x8>)", "on it",
                      "to reproduce it, run in a new cell of your notebook"]
    hidden = by_id(graded, "q4.2")
    assert hidden.score == 0 and "reproduce" not in hidden.details  # a hidden question's input is never shown


def test_feedback_reaches_results_json_and_every_report(graded: SubmissionResult, rubric: Rubric) -> None:
    tests = {t["name"].split()[0]: t for t in gradescope(graded)["tests"]}
    assert "to reproduce it, run in a new cell" in tests["q1.2"]["output"]
    assert "smallest failing input found" in tests["q1.2"]["output"]
    assert tests["q1.9"]["output"] == "hidden test: failed"  # nothing of a hidden question's inputs
    assert "reproduce" not in by_id(graded, "q1.9").details  # not even shrunk
    html = render_report(graded, rubric)
    assert "To reproduce it, run in a new cell" in html and "Likely cause" in html
    md = render_markdown(graded, rubric)
    assert "```python\ndef _reproduce_linear_neg():" in md
    assert "&lt;6x5&gt;" not in md and "`<6x5>`" in md


def test_a_passed_gradient_shows_one_number_not_one_per_input(tmp_path: Path) -> None:
    from grader.results import QuestionResult

    q = QuestionResult("q3.1", "g", "gradient", 1, 1, Status.PASSED, "matches autograd on all 9 test inputs",
                       "public", {"rel_errors": [0.0] * 9})
    assert [f.label for f in explain(q).facts] == ["largest relative error"]


def test_the_ta_guide_of_a_manual_question_appears_from_a_real_run(graded: SubmissionResult, rubric: Rubric, tmp_path: Path) -> None:
    write_report(graded, rubric, tmp_path)
    assert "TA_GUIDE_from_a_real_run" in (tmp_path / "report-ta.html").read_text()
    assert "TA_GUIDE" not in (tmp_path / "report.html").read_text()
    assert "TA_GUIDE" not in (tmp_path / "report.md").read_text()
    assert "TA_GUIDE" not in json.dumps(gradescope(graded))
    assert "+ 2 pending" in (tmp_path / "report.html").read_text()


def test_a_failed_cell_is_named_on_the_questions_it_broke(rubric: Rubric, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import torch", execution_count=3),
        nbformat.v4.new_code_cell("undefined_helper()\n\ndef linear_neg(x, W):\n    return x @ W", execution_count=7),
    ]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result = grade_submission(rubric, path)
    q = by_id(result, "q1.2")
    assert q.status is Status.ERROR
    assert q.message.startswith("`linear_neg` is not defined: cell In [7] (`undefined_helper()`), where it is defined")
    assert "NameError: name 'undefined_helper' is not defined" in q.message
    (failure,) = result.cell_failures
    assert failure.name == "cell In [7]" and failure.first_line == "undefined_helper()"
    assert any('"<cell In [7]>"' in line for line in failure.traceback)  # the same name in its traceback
    assert "Code cell In [7]" in render_report(result, rubric)


def test_the_training_diagnosis_and_chart() -> None:
    flat = [2.355 - 0.002 * i for i in range(30)]
    cause = diagnosis(flat, classes=10, accuracy=0.125)
    assert cause and "chance level (ln 10 ≈ 2.30)" in cause
    assert diagnosis([2.3, 1.0, 0.1], classes=10, accuracy=0.99) is None
    view = View()
    TrainingDetails.from_dict(
        {"tiers": [{"min": 0.5, "credit": 1.0}], "losses": flat, "accuracy": 0.125, "classes": 10, "diagnosis": cause}
    ).explain(view)
    chart = str(view.charts[0])
    assert "epoch" in chart and "training loss" in chart and "chance, ln 10" in chart
    assert re.search(r">0</text>", chart)  # the loss axis starts at 0: a flat run is drawn flat
    assert view.facts[0].label == "diagnosis"


def test_the_training_diagnosis_is_shown_once(tmp_path: Path) -> None:
    from markupsafe import Markup

    from grader.feedback.report import md_inline

    result = grade_submission(load_rubric(DATA / "training.yaml"), DATA / "not_learning.py")
    (q,) = result.questions
    cause = q.details["diagnosis"]
    assert q.score == 0 and cause.startswith("the loss stayed at chance level (ln 4 ≈ 1.39)")
    write_report(result, None, tmp_path)
    for name, shown in [("report.html", str(Markup.escape(cause))), ("report-ta.html", str(Markup.escape(cause))),
                        ("report.md", md_inline(cause))]:
        assert (tmp_path / name).read_text().count(shown) == 1, name
    assert "diagnosis" not in [f.label for f in explain(q).facts]  # the message says it


def test_the_kit_view_in_a_notebook_shows_the_reports_blocks_escaped(graded: SubmissionResult) -> None:
    import dataclasses
    from html import escape

    from grader.kit import show
    from grader.kit.result import KitReport
    from grader.results import QuestionResult

    public = [q for q in graded.questions if q.visibility == "public"]
    page = show.html(KitReport(dataclasses.replace(graded, questions=tuple(public))))
    for q in public:
        for b in explain(q).blocks:  # every block report.html shows: the input, expected against yours, the snippet
            assert f"<p>{escape(b.title[:1].upper() + b.title[1:])}:</p><pre>{escape(b.text)}</pre>" in page
    reproduced = [q.qid for q in public if "reproduce" in q.details]
    assert len(reproduced) == 11 and page.count("<pre>def _reproduce_") == 11  # every failed function, gradient, property
    hostile = "<img src=x onerror=alert(1)>"
    q = QuestionResult("q9.1", "f", "property", 0, 1, Status.FAILED, "on inputs x=<1>: bad", "public",
                       {"case": "x=<1>", "reproduce": {"shrunk": False, "inputs": f"x = '{hostile}'",
                                                       "snippet": f"print({hostile!r})"}})
    page = show.html(KitReport(dataclasses.replace(graded, questions=(q,))))
    assert hostile not in page and escape(hostile) in page


def test_student_view_of_hidden_questions_stays_redacted(graded: SubmissionResult) -> None:
    view = explain(by_id(graded, "q1.9"), Audience.STUDENT)
    assert view.redacted and not view.blocks and not view.facts


def test_grader_check_writes_the_students_report_and_explains_every_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from grader.cli.main import main

    sub = tmp_path / "mine.py"
    sub.write_text((DATA / "mistakes.py").read_text())
    assert main(["check", str(sub), "--rubric", str(DATA / "rubric.yaml"), "--sandbox", "off"]) == 0
    captured = capsys.readouterr()
    assert f"report: {tmp_path / 'mine.report.html'}" in captured.err
    for qid in ("q1.1", "q1.2", "q2.2"):  # every failed question, not only the first
        assert f"\n{qid} " in captured.out.split("What to fix:")[1]
    html = (tmp_path / "mine.report.html").read_text()
    assert "To reproduce it, run in a new cell" in html and "q1.9" not in html  # public questions only
    out = tmp_path / "elsewhere.html"
    main(["check", str(sub), "--rubric", str(DATA / "rubric.yaml"), "--sandbox", "off", "--report", str(out)])
    assert out.exists()
