"""Reports as students and TAs read them, built from stored SubmissionResults (tests/data/report/*.json).

Nothing here runs student code: the JSON files hold what each check kind records in `details`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from grader import svg
from grader.checks import details_class
from grader.explain import View
from grader.feedback.report import (
    Audience,
    explain,
    md_code,
    md_inline,
    normalize_message,
    render_index,
    render_markdown,
    render_report,
    summarize,
    write_index,
    write_report,
)
from grader.results import SubmissionResult
from grader.rubric.kinds import BUILT_IN

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
NOW = dt.datetime(2025, 3, 14, 9, 26)


def load(name: str) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads((DATA / f"{name}.json").read_text()))


def question(result: SubmissionResult, qid: str):  # type: ignore[no-untyped-def]
    return next(q for q in result.questions if q.qid == qid)


@pytest.fixture(scope="module")
def alice() -> SubmissionResult:
    return load("alice")


@pytest.fixture(scope="module")
def klass() -> list[SubmissionResult]:
    return [load(n) for n in ("alice", "bob", "carol")]


# -- each check kind's explanation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "qid, facts",
    [
        # formula, right: the proof status
        ("q1.1", {"proof": "proved equal symbolically"}),
        # formula, wrong: the counterexample with the student's and the expected value
        ("q2.1", {"counterexample": "m = 3, n = 5", "your formula gives": "8", "the correct formula gives": "3"}),
        # value: expected vs got
        ("q1.2", {"expected": "17", "yours": "16"}),
        # function: the worst element, expected vs got, relative error
        ("q1.3", {"worst element": "index [1, 2, 4]", "expected": "0.731", "yours": "0.512",
                  "relative error": "8.30e-02", "values that differ": "5 of 40"}),
        # gradient: the failing input's relative error, and those of the inputs before it
        ("q1.4", {"relative error": "3.10e-01", "relative error of the inputs before it": "2.10e-12"}),
        # training: the accuracy the grader measured, the tiers, the malformed loss list
        ("q5.1", {"accuracy measured by the grader": "0.8125", "credit tiers": "0.95 → 100%, 0.8 → 50%",
                  "loss list problem": "loss 3 is nan"}),
        # manual, graded: who graded it
        ("q6.2", {"graded by": "tom"}),
    ],
)
def test_each_kind_explains_its_details(alice: SubmissionResult, qid: str, facts: dict[str, str]) -> None:
    view = explain(question(alice, qid), Audience.STUDENT)
    shown = {f.label: f.value for f in view.facts}
    for label, value in facts.items():
        assert shown.get(label) == value, (label, shown)


@pytest.mark.parametrize(
    "python_file, where", [(False, "cell 4, line 3"), (True, "line 3")], ids=["notebook", "py-file"]
)
def test_forbid_shows_the_offending_line(alice: SubmissionResult, python_file: bool, where: str) -> None:
    view = explain(question(alice, "q1.5"), python_file=python_file)
    assert view.code == (f"{where}: return torch.autograd.grad(y, x, g)[0]    # torch.autograd.grad",)


def test_failed_call_shows_the_students_traceback_only(alice: SubmissionResult) -> None:
    view = explain(question(alice, "q2.2"))
    assert view.traceback[0] == '  File "<cell 6>", line 4, in gated_rnn_forward'
    assert view.traceback[-1] == "ValueError: <script>alert('tb')</script>"


def test_training_draws_loss_curve_and_accuracy_meter(alice: SubmissionResult) -> None:
    charts = explain(question(alice, "q5.1")).charts
    assert len(charts) == 2
    curve, meter = charts
    assert "your training loss per epoch" in curve and curve.count("<polyline") == 2  # broken at the nan epoch
    assert meter.count('stroke="#2e7d32"') == 2  # one line per credit tier


@pytest.mark.parametrize(
    "qid, answer, comment",
    [("q6.1", "Dropout is *off* in eval.", None), ("q6.2", "Biases do not overfit.", "right idea, no mention of normalisation layers")],
)
def test_manual_shows_answer_and_ta_comment(alice: SubmissionResult, qid: str, answer: str, comment: str | None) -> None:
    view = explain(question(alice, qid))
    assert view.answer is not None and view.answer.startswith(answer)
    assert view.comment == comment


@pytest.mark.parametrize(
    "qid, ta_only",
    [("q2.1", "expected formula (TA only)"), ("q6.1", "grading guide (TA only)")],
)
def test_ta_only_facts_stay_out_of_the_student_view(alice: SubmissionResult, qid: str, ta_only: str) -> None:
    q = question(alice, qid)
    assert ta_only not in {f.label for f in explain(q, Audience.STUDENT).facts}
    assert ta_only in {f.label for f in explain(q, Audience.TA).facts}


ODD = {  # keys of every kind with values of the wrong type, and keys no kind knows: an old or odd record
    "case": 3, "index": "0", "expected": [1], "got": {"a": 1}, "around": "no", "reproduce": 5, "violations": "x",
    "counterexample": [], "losses": "x", "tiers": 7, "rel_errors": None, "traceback": 12, "predicate": 1.5,
    "proof": 2, "points": "many", "diagnosis": ["x"], "answer": 4, "ta_score": "9", "not_a_key": [1, {"x": 2}],
}


@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_kind_has_a_details_record_that_reads_old_and_odd_details(kind: str) -> None:
    reader = details_class(kind)
    assert reader is not None
    for data in ({}, ODD):
        record = reader.from_dict(data)
        assert reader.from_dict(record.serialize()) == record
        record.explain(View(summary="the message"))  # nothing to show, and nothing raised


@pytest.mark.parametrize("name", ["alice", "bob", "carol"])
def test_stored_details_read_back_the_same_after_serialize(name: str) -> None:
    for q in load(name).questions:
        reader = details_class(q.kind)
        assert reader is not None, q.kind
        record = reader.from_dict(q.details)
        again = reader.from_dict(record.serialize())
        assert again == record, q.qid
        views = [View(summary=q.message, ta=True), View(summary=q.message, ta=True)]
        record.explain(views[0])
        again.explain(views[1])
        assert views[0] == views[1], q.qid
        shown = views[0].facts or views[0].answer or views[0].charts
        assert shown or not q.details or "violations" in q.details, q.qid  # a gate's violations: read by report


# -- hidden checks: redacted for students -----------------------------------------------------------------------

SECRETS = ("SECRET_INPUT_7781", "SECRET_EXPECTED_4242", "SECRET_TRACEBACK_99", "SECRET_PASS_55", "4242")


@pytest.mark.parametrize("render", [render_report, render_markdown], ids=["html", "markdown"])
def test_student_reports_never_show_hidden_inputs_or_expected_values(alice: SubmissionResult, render) -> None:  # type: ignore[no-untyped-def]
    text = render(alice, now=NOW)
    for secret in SECRETS:
        assert secret not in text
    assert "hidden test: failed" in text  # (passed questions are listed in the Markdown table only)
    assert "TA_GUIDE" not in text


def test_ta_report_shows_hidden_details_and_says_so(alice: SubmissionResult) -> None:
    text = render_report(alice, audience=Audience.TA, now=NOW)
    assert all(s in text for s in SECRETS)
    assert "Do not share with students" in text


@pytest.mark.parametrize("qid, status", [("q3.2", "failed"), ("q3.3", "passed")])
def test_hidden_explanation_is_status_only(alice: SubmissionResult, qid: str, status: str) -> None:
    view = explain(question(alice, qid), Audience.STUDENT)
    assert view.redacted and view.summary == f"hidden test: {status}"
    assert not (view.facts or view.traceback or view.code or view.charts)


# -- student text is shown, never run ---------------------------------------------------------------------------


def test_html_escapes_answers_tracebacks_and_names(klass: list[SubmissionResult]) -> None:
    report = render_report(klass[0], now=NOW)
    assert "<script>" not in report and "<img" not in report
    assert "&lt;script&gt;alert(&#39;answer&#39;)&lt;/script&gt;" in report  # the answer, as text
    assert "ValueError: &lt;script&gt;alert(&#39;tb&#39;)&lt;/script&gt;" in report  # the traceback, as text
    index = render_index(klass, now=NOW)
    assert "<b>&" not in index and "carol &lt;b&gt;&amp;" in index
    assert 'href="carol%20%3Cb%3E%26/report-ta.html"' in index


def _outside_code(markdown: str) -> str:
    """The Markdown a renderer would interpret: fenced blocks and code spans removed."""
    no_fences = re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", markdown, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", no_fences)


def test_markdown_keeps_student_html_inside_code(alice: SubmissionResult) -> None:
    text = render_markdown(alice, now=NOW)
    assert "<script>alert('answer')</script>" in text  # the answer verbatim, in a fenced block
    assert "<" not in _outside_code(text)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a <script>x</script>", "a &lt;script&gt;x&lt;/script&gt;"),
        ("CNN & RNN, &lt; stays", "CNN & RNN, &amp;lt; stays"),
        ("`f(<x>)` is wrong", "`f(<x>)` is wrong"),  # code spans are literal in Markdown already
        ("see [here](http://evil)", "see \\[here\\](http://evil)"),
        ("**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
        ("odd ` tick <b>", "odd \\` tick &lt;b&gt;"),
    ],
)
def test_md_inline(raw: str, expected: str) -> None:
    assert md_inline(raw) == expected


@pytest.mark.parametrize("body, fence", [("plain", "```"), ("has ``` inside", "````"), ("````` five", "``````")])
def test_md_code_fence_outlasts_backticks_in_the_text(body: str, fence: str) -> None:
    block = md_code(body)
    assert block.startswith(fence + "text\n") and block.endswith("\n" + fence)


# -- class summary ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("relative error 3.10e-01 against autograd (at most 1e-05 passes)",
         "relative error 2.00e+00 against autograd (at most 1e-05 passes)", True),
        ("expected shape (2, 3), got shape (3, 2)", "expected shape (4, 5), got shape (1, 1)", True),
        ("`conv1d_forward` is not defined", "`conv2d_forward` is not defined", False),  # digits inside names stay
        ("expected 17, got 16", "expected a tensor, got 16", False),
    ],
)
def test_normalize_message_groups_by_pattern(a: str, b: str, same: bool) -> None:
    assert (normalize_message(a) == normalize_message(b)) is same


def test_summary_statistics(klass: list[SubmissionResult]) -> None:
    s = summarize(klass)
    stats = {q.qid: q for q in s.questions}
    # bob's notebook could not be read: his zeros count, his "not defined" messages are not failure patterns
    assert (stats["q1.3"].passed, stats["q1.3"].graded) == (1, 3)
    assert [count for _, count in stats["q1.3"].failures] == [1]
    assert (stats["q1.1"].passed, stats["q1.1"].graded) == (2, 3)
    assert stats["q1.4"].failures[0][1] == 2  # alice's and carol's relative errors group together
    assert stats["q6.1"].pending == 2 and stats["q6.1"].graded == 1
    assert stats["q6.2"].failures == ()  # a TA's partial score is not a failure message
    assert s.mean == pytest.approx((7.5 + 0 + 11) / 3)
    reasons = [(n.student, n.reason.split(":")[0]) for n in s.needs_ta]
    assert ("bob", "could not be read") in reasons and ("alice", "to grade by hand") in reasons
    assert ("carol <b>&", "cell 8 timeout") in reasons


def test_index_shows_histogram_rates_runtime_and_links(klass: list[SubmissionResult]) -> None:
    html = render_index(klass, now=NOW)
    assert html.count("<svg") == 1 and "total scores" in html
    assert "67% <small>(2/3)</small>" in html
    assert "61.8 s" in html  # carol's runtime
    assert 'href="alice/report-ta.html"' in html and 'href="alice/report.html"' in html
    assert "Needs a TA" in html and "could not be read" in html


def test_write_report_writes_student_and_ta_files(tmp_path: Path, klass: list[SubmissionResult]) -> None:
    path = write_report(klass[0], None, tmp_path / "alice")
    assert path == tmp_path / "alice" / "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report-ta.html", "report.html", "report.md"]
    assert "SECRET_EXPECTED_4242" in (path.parent / "report-ta.html").read_text()
    assert write_index(klass, None, tmp_path).read_text().startswith("<!doctype html>")


# -- SVG charts -------------------------------------------------------------------------------------------------


def _bars(chart: str) -> list[float]:
    return [float(h) for h in re.findall(r'<rect x="[^"]*" y="[^"]*" width="[^"]*" height="([^"]*)"', chart)]


@pytest.mark.parametrize(
    "values, nonempty",
    [([0, 0, 30], 2), ([30, 30, 30], 1), ([], 0), ([15.0, float("nan")], 1)],
)
def test_histogram_counts_and_puts_full_marks_in_the_top_bin(values: list[float], nonempty: int) -> None:
    chart = svg.histogram(values, lo=0, hi=30, bins=10)
    bars = _bars(chart)
    assert len(bars) == 10 and sum(h > 0 for h in bars) == nonempty
    if 30 in values:
        assert bars[-1] > 0


@pytest.mark.parametrize(
    "losses, polylines, log",
    [([2.0, 1.0, 0.5], 1, False), ([2.0, float("nan"), 1.0, 0.5], 1, False), ([1e4, 10.0, 1e-2], 1, True)],
)
def test_loss_curve(losses: list[float], polylines: int, log: bool) -> None:
    chart = svg.loss_curve(losses, [svg.Mark("target <0.1>", 0.1)])
    assert chart.count("<polyline") == polylines
    assert ("log scale" in chart) is log
    assert "nan" not in chart and "target &lt;0.1&gt;" in chart


def test_loss_curve_without_finite_values_says_so() -> None:
    assert "no finite loss values" in svg.loss_curve([float("inf"), float("nan")])
