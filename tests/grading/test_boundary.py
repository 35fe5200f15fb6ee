"""One hostile or odd submission never stops, hangs or corrupts a class's grading (issue 9).

Each vector is graded in a batch beside an honest classmate: the honest one keeps every point, the batch
writes its class files, and the odd one gets a clear result of its own.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

from grader.cli.grade import EXIT_NEEDS_TA, grade
from grader.execution.launchers import choose_launcher
from grader.results import GRADER_ERROR_MESSAGE, QuestionResult, Status, SubmissionResult
from grader.sources.names import CLASS_FILES, MAX_NAME, job_names
from tests.conftest import DATA, ROOT

BOUNDARY = DATA / "hostile" / "boundary"
RUBRIC = BOUNDARY / "rubric.yaml"
HONEST = DATA / "hostile" / "class" / "zed_honest.py"
CNN_RUBRIC = ROOT / "rubrics" / "cnn-rnn.yaml"
ALICE = ROOT / "submissions" / "cnn-rnn" / "alice_correct.ipynb"


def _grading(out: Path, student: str) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads((out / student / "grading.json").read_text()))


def _question(result: SubmissionResult, qid: str) -> QuestionResult:
    return next(q for q in result.questions if q.qid == qid)


def _gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _assert_class_files(out: Path, students: list[str]) -> None:
    rows = _gradebook(out)
    assert sorted(rows) == sorted(students)
    index = (out / "index.html").read_text(encoding="utf-8")
    for student in students:
        assert f"{student}/report.html" in index
        for name in ("results.json", "grading.json", "report.html", "report.md", "report-ta.html"):
            assert (out / student / name).is_file(), (student, name)


# -------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "files, expected",
    [
        (["alice.ipynb", "bob.py"], ["alice", "bob"]),
        (["bob.py", "bob.ipynb"], ["bob_py", "bob_ipynb"]),
        # bob.py's fallback name is bob_py, which bob_py.ipynb's stem also is: both get a digest.
        (["bob.py", "bob.ipynb", "bob_py.ipynb"], None),
        (["Bob.py", "bob.ipynb"], ["Bob_py", "bob_ipynb"]),
        (["gradebook.csv.ipynb", "index.html.ipynb", "grader.log.py", "rubric-path.py", "logs.ipynb"], None),
        (["élève 1.py", "Ünïcødé—name.ipynb", "../x.py"], ["élève_1", "Ünïcødé_name", "x"]),
        (["....py", "-rf.py"], ["submission", "rf"]),
    ],
)
def test_job_names_are_unique_safe_and_never_a_class_file(files: list[str], expected: list[str] | None) -> None:
    names = job_names([Path("class") / f for f in files])
    if expected is not None:
        assert names == expected
    assert len({n.casefold() for n in names}) == len(names)
    for name in names:
        assert name.casefold() not in CLASS_FILES and "." not in name and "/" not in name
        assert 0 < len(name) <= MAX_NAME
    assert job_names([Path("class") / f for f in files]) == names  # deterministic: resuming finds them again
    assert job_names([Path("moved") / f for f in files]) == names  # and a moved class folder keeps them


def test_job_names_of_long_and_undecodable_file_names() -> None:
    long = Path("x" * 250 + ".py")
    undecodable = Path(os.fsdecode(b"caf\xe9-\xff.py"))
    names = job_names([long, undecodable, Path("x" * 250 + ".ipynb")])
    assert all(len(n) <= MAX_NAME for n in names) and len(set(names)) == 3
    assert names[1] == "caf"  # U+FFFD is not a letter: dropped; a name is always valid UTF-8
    names[1].encode("utf-8")


# --------------------------------------------------------------------------------- report.md injection


def test_report_md_turns_no_student_text_into_markup(tmp_path: Path) -> None:
    from grader.feedback.report import render_markdown

    evil = "x`\n\n<img src=x onerror=alert(1)>\n\n<script>alert(2)</script>\n\n`"
    q = QuestionResult("q1.1", "t", "function", 0, 1, Status.ERROR, f"your code raised ValueError: {evil}", "public",
                       {"traceback": [evil, "```", evil], "case": evil, "worst_index": evil})
    result = SubmissionResult("s", "s.py", "mini", (q,), load_error=evil)
    text = render_markdown(result)
    tokens = MarkdownIt("commonmark").parse(text)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
    assert not kinds & {"html_block", "html_inline"}, text


# ------------------------------------------------------------------------------- grader's own failures


def _class_of(folder: Path, **files: Path | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        target = folder / name.replace("__", ".")
        if isinstance(source, Path):
            shutil.copy(source, target)
        else:
            target.write_text(source, encoding="utf-8")
    return folder


def test_a_check_that_crashes_costs_only_that_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from grader.checks.value import ValueCheck

    original = ValueCheck.run

    def crash_on_crashy(self, ctx):  # type: ignore[no-untyped-def]
        if ctx.submission.path.stem == "crashy" and ctx.question.id == "q1.2":
            raise OverflowError("the grader's own bug")
        return original(self, ctx)

    monkeypatch.setattr(ValueCheck, "run", crash_on_crashy)
    folder = _class_of(tmp_path / "class", zed__py=HONEST, crashy__py=HONEST)
    out = tmp_path / "out"
    assert grade(RUBRIC, [folder], out, launcher=choose_launcher("auto")) == EXIT_NEEDS_TA
    assert "1 submission need a TA" in capsys.readouterr().err
    _assert_class_files(out, ["crashy", "zed"])
    zed, crashy = _grading(out, "zed"), _grading(out, "crashy")
    assert zed.score == 10 and not zed.needs_ta
    broken = _question(crashy, "q1.2")
    assert (broken.status, broken.score, broken.message) == (Status.GRADER_ERROR, 0, GRADER_ERROR_MESSAGE)
    assert crashy.score == 9 and crashy.needs_ta  # every other answer graded as usual
    student_view = (out / "crashy" / "report.html").read_text() + (out / "crashy" / "report.md").read_text()
    assert "grader error, needs a TA" in student_view and "OverflowError" not in student_view
    assert "OverflowError: the grader&#39;s own bug" in (out / "crashy" / "report-ta.html").read_text()
    assert "OverflowError" not in (out / "crashy" / "results.json").read_text()
    assert "OverflowError: the grader's own bug" in caplog.text  # the CLI sends the log to OUT/grader.log
    assert "crashy" in (out / "index.html").read_text().split("Needs a TA")[1]


def test_a_grading_run_that_crashes_is_that_submissions_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.execution.session import WorkerSession

    original = WorkerSession.run_cells

    def crash(self):  # type: ignore[no-untyped-def]
        if self.submission.path.stem == "crashy":
            raise RecursionError("deep inside the grader")
        return original(self)

    monkeypatch.setattr(WorkerSession, "run_cells", crash)
    folder = _class_of(tmp_path / "class", zed__py=HONEST, crashy__py=HONEST)
    out = tmp_path / "out"
    assert grade(RUBRIC, [folder], out, launcher=choose_launcher("auto")) == EXIT_NEEDS_TA
    crashy = _grading(out, "crashy")
    assert crashy.score == 0 and crashy.grader_error and "RecursionError" in crashy.grader_error
    assert {q.status for q in crashy.questions} == {Status.GRADER_ERROR}
    assert _grading(out, "zed").score == 10
    _assert_class_files(out, ["crashy", "zed"])


def test_a_report_that_cannot_render_leaves_a_folder_that_a_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grader.classroom.outdir

    original = grader.classroom.outdir.render_report

    def render(result, rubric=None, **kw):  # type: ignore[no-untyped-def]
        if result.student == "crashy":
            raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")
        return original(result, rubric, **kw)

    monkeypatch.setattr(grader.classroom.outdir, "render_report", render)
    folder = _class_of(tmp_path / "class", zed__py=HONEST, crashy__py=HONEST)
    out = tmp_path / "out"
    for _ in range(2):  # the second run reuses the committed results and must not crash either
        assert grade(RUBRIC, [folder], out, launcher=choose_launcher("auto")) == EXIT_NEEDS_TA
        crashy = _grading(out, "crashy")
        assert crashy.score == 10 and crashy.needs_ta and "UnicodeEncodeError" in str(crashy.grader_error)
        assert "could not write your full report" in (out / "crashy" / "report.html").read_text()
        assert "UnicodeEncodeError" in (out / "crashy" / "report-ta.html").read_text()
        _assert_class_files(out, ["crashy", "zed"])


def test_a_bad_reference_name_stops_the_run_before_any_student_code(tmp_path: Path) -> None:
    from grader.errors import RubricError

    rubric = tmp_path / "rubric.yaml"
    text = RUBRIC.read_text().replace("../../mini/reference.py", str(DATA / "mini" / "reference.py"))
    rubric.write_text(text.replace("cases: cases_scale}", "cases: cases_scael}", 1))
    folder = _class_of(tmp_path / "class", zed__py=HONEST)
    with pytest.raises(RubricError, match=r"q2.1: cases: the reference reference.py has no 'cases_scael'"):
        grade(rubric, [folder], tmp_path / "out", launcher=choose_launcher("auto"))
    assert not (tmp_path / "out" / "zed").exists()


# ------------------------------------------------------------------------- hostile submissions, one batch

STOPS_READING = '''\
# %%
import gc, os
_rfd = next(o.rfd for o in gc.get_objects() if type(o).__name__ == "Worker")  # the worker's request pipe
_keep = os.dup(_rfd)  # the request pipe stays open, so the grader's writes would block, not fail
_r, _w = os.pipe()
os.dup2(_r, _rfd)  # and the worker now waits for requests on a pipe nobody writes to
# %%
BIG = """{big}"""
# %%
answer = 42
'''


def _notebook(source: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(nb)


def test_a_hostile_class_is_graded_whole(tmp_path: Path) -> None:
    honest = HONEST.read_text()
    folder = _class_of(
        tmp_path / "class",
        zed__py=honest,
        huge_int__py=BOUNDARY / "huge_int.py",
        digit_limit__py=BOUNDARY / "digit_limit.py",
        surrogate__py=BOUNDARY / "surrogate.py",
        md_injection__py=BOUNDARY / "md_injection.py",
        stops_reading__py=STOPS_READING.format(big="x" * 1_000_000),
        # Names: two jobs once shared `bob_py`; class files once were overwritten by students' folders.
        bob__py=honest, bob__ipynb=_notebook(honest), bob_py__ipynb=_notebook(honest),
        gradebook__csv__ipynb=_notebook(honest), index__html__ipynb=_notebook(honest),
        grader__log__py=honest, rubric_path__py=honest, logs__ipynb=_notebook(honest),
        **{"y" * 240 + "__py": honest},
    )
    (folder / "rubric_path.py").rename(folder / "rubric-path.py")
    (folder / os.fsdecode(b"caf\xe9.py")).write_text(honest)
    out = tmp_path / "out"
    status = grade(RUBRIC, [folder], out, launcher=choose_launcher("auto"))  # the one that stops reading: bounded
    assert status == 0  # nothing here is the grader's failure: every result is the student's own
    rows = _gradebook(out)
    assert len(rows) == 16
    for name in ("gradebook.csv", "index.html", "rubric-path", "logs", "gradebook.sqlite"):
        assert (out / name).exists() and name not in rows
    assert (out / "rubric-path").read_text().strip() == str(RUBRIC.resolve())
    honest_names = [n for n in rows if n not in {"huge_int", "digit_limit", "surrogate", "md_injection", "stops_reading"}]
    assert len(honest_names) == 11
    for name in honest_names:
        assert rows[name]["total"] == "10", (name, rows[name])
        name.encode("utf-8")
        assert len(name) <= MAX_NAME
    _assert_class_files(out, list(rows))

    for name in ("huge_int", "digit_limit"):
        result = _grading(out, name)
        pair = _question(result, "q1.2")
        assert (result.score, pair.score, pair.status) == (9, 0, Status.FAILED), pair
        assert not result.needs_ta

    surrogate = _grading(out, "surrogate")
    assert surrogate.score == 7 and _question(surrogate, "q2.1").status is not Status.GRADER_ERROR
    assert "bad \ufffd value" in _question(surrogate, "q2.1").message
    (out / "surrogate" / "report.md").read_text(encoding="utf-8")

    injected = (out / "md_injection" / "report.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").parse(injected)
    assert not {t.type for t in tokens} & {"html_block"}
    assert not {c.type for t in tokens for c in (t.children or [])} & {"html_inline"}

    stuck = _grading(out, "stops_reading")
    assert stuck.score == 0 and not stuck.needs_ta
    assert any(c.reason == "timeout" for c in stuck.cell_failures), stuck.cell_failures


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("red \x1b[31malert\x1b[0m", "red \\x1b[31malert\\x1b[0m"),
        ("title \x1b]0;pwned\x07 bell", "title \\x1b]0;pwned\\x07 bell"),
        ("two\nlines\r\n\ttab", "two lines  tab"),
        ("c1 \x9b control", "c1 \\x9b control"),
    ],
)
def test_student_text_cannot_drive_the_terminal(text: str, expected: str) -> None:
    from grader.feedback.terminal import one_line

    assert one_line(text) == expected


def test_what_the_loader_changed_is_said_in_the_report(tmp_path: Path, mini_rubric) -> None:
    from grader.classroom.outdir import finish
    from grader.grading.submission import grade_submission

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(HONEST.read_text() + "\n# odd \ud800 byte\n")]
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")  # JSON carries the lone surrogate as \ud800
    result = grade_submission(mini_rubric, path)
    assert result.score == 10 and result.notes and "replaced" in result.notes[0]
    files = finish(result, mini_rubric).files
    assert result.notes[0] in json.loads(files["results.json"])["output"]
    assert "Note:" in files["report.html"] and "**Note:**" in files["report.md"]


def test_a_loss_too_large_for_a_float_is_named_not_a_crash() -> None:
    from grader.checks.training import _curve, losses_problem

    assert losses_problem([0.5, 10**400], 2) == "loss 1 is an integer of 401 digits, too large"
    assert _curve([10**400, 0.5]) == [None, 0.5]


# ------------------------------------------------------------------- hostile cnn-rnn notebooks, one batch

LONG_EXPRESSION = (
    "_conv_impl = conv1d_forward\n\n"
    "def conv1d_forward(x, W, stride):\n"
    "    return _conv_impl(x, W, stride)" + " + 0 * x.sum()" * 2000 + "\n"
)
FORGES_REPLIES = '''\
import grader.worker.main as _wm
_real_conv = conv1d_forward

def conv1d_forward(x, W, stride):
    _wm._encode_reply = lambda reply, limit: b'{"ok": [], "error": {"a": 1}, "value": ' + b"[" * 50000 + b"]" * 50000 + b"}"
    return _real_conv(x, W, stride)
'''
HUGE_FORMULA = 'initial_loss = "log(K)' + "".join(f" + 1/(K+{i}) - 1/(K+{i})" for i in range(1, 40)) + '"'


def _alice_with(*cells: str, markdown: str | None = None) -> str:
    nb = nbformat.read(ALICE, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    if markdown is not None:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(markdown))
    return json.dumps(nb)  # json, not nbformat: a lone surrogate travels as \udcff, as in a real file


def test_a_hostile_notebook_class_is_graded_whole(tmp_path: Path) -> None:
    folder = _class_of(
        tmp_path / "class",
        alice__ipynb=ALICE,
        long_expression__ipynb=_alice_with(LONG_EXPRESSION),
        blank_markdown__ipynb=_alice_with(markdown="Answer q" + " \t" * 30_000 + "\n" * 5000 + "$" * 5000),
        surrogate_answer__ipynb=_alice_with(markdown="**Answer q9.9:** $k+1$ \udcff"),
        huge_formula__ipynb=_alice_with(HUGE_FORMULA),
        forges_replies__ipynb=_alice_with(FORGES_REPLIES),
    )
    out = tmp_path / "out"
    status = grade(CNN_RUBRIC, [folder], out, launcher=choose_launcher("auto"))
    rows = _gradebook(out)
    _assert_class_files(out, list(rows))
    # Right answers keep their points, however odd their form or their notebook.
    for name in ("alice", "long_expression", "blank_markdown", "surrogate_answer"):
        assert rows[name]["total"] == "30", (name, rows[name])
    huge = _question(_grading(out, "huge_formula"), "q4.1")
    assert huge.score == 1 or "too large for the grader to check" in huge.message, huge.message
    assert status == (0 if huge.score == 1 else EXIT_NEEDS_TA)  # a formula past its budget needs a TA
    forged = _grading(out, "forges_replies")
    assert not forged.needs_ta and forged.score < 30
    assert "the worker's reply was malformed" in _question(forged, "q1.3").message
    assert "replaced" not in " ".join(_grading(out, "alice").flags)
