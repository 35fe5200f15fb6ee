"""The grader's side, fuzzed: whatever a student's process sends and whatever a student writes, every function
that reads it returns its result or its own clear error, within a time bound, and nothing else escapes.

CI runs a bounded number of examples; `make fuzz` runs many more (GRADER_FUZZ_EXAMPLES).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from grader.errors import SubmissionUnreadable
from grader.feedback.report import render_index, render_markdown, render_report
from grader.results import QuestionResult, Status, SubmissionResult
from grader.sources.names import MAX_NAME, job_names
from grader.worker import codec

EXAMPLES = int(os.environ.get("GRADER_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
BOUND = 10.0  # CPU seconds for any one call: far above what a bounded input needs, far below "hangs"


def within_bound(call: Callable[[], Any]) -> Any:
    # CPU time of this thread, not the wall clock: other processes keeping the machine busy do not count.
    start = time.thread_time()
    value = call()
    assert time.thread_time() - start < BOUND
    return value


# Student text: any code point (lone surrogates included), with the characters that parsers and Markdown treat
# specially over-represented, and long runs of one character (the food of backtracking regular expressions).
SPECIAL = st.sampled_from([*list("`$\\{}[]()*_#|<>&!\n\r\t ^/-+=:.,;'\""), "�", "�", "\x00", "\x1b", "Answer q1.1:"])
TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(SPECIAL, st.characters()), max_size=200).map("".join),
    st.tuples(SPECIAL, st.integers(1, 20_000)).map(lambda t: t[0] * t[1]),
)

# Replies: any JSON-ish value, any nesting, tagged objects included with the wrong bodies.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), TEXT,
    st.integers(min_value=-(10**80), max_value=10**80),
)
TAGS = st.sampled_from(["$tuple", "$dict", "$float", "$bigint", "$tensor", "$ndarray", "$sympy", "$opaque", "$handle", "$x"])


def _tagged(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    array = st.fixed_dictionaries(
        {"dtype": st.sampled_from(["float64", "int64", "bool", "complex128", "object", 3]),
         "shape": st.lists(st.integers(-2, 2**40), max_size=4), "data": st.one_of(st.text(max_size=40), st.integers())}
    )
    return st.one_of(
        st.dictionaries(TAGS, st.one_of(children, array, st.text(max_size=30)), min_size=1, max_size=1),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
        st.lists(children, max_size=6),
    )


JSONISH = st.recursive(SCALARS, _tagged, max_leaves=60)


@FUZZ
@given(JSONISH)
def test_decoding_any_reply_value_gives_a_value_or_a_codec_error(value: Any) -> None:
    try:
        within_bound(lambda: codec.decode(value))
    except codec.CodecError:
        pass


@FUZZ
@given(st.integers(1, 100_000))
def test_decoding_deep_nesting_is_refused_without_recursion(depth: int) -> None:
    value: Any = []
    for _ in range(depth):
        value = [value]
    try:
        within_bound(lambda: codec.decode(value))
    except codec.CodecError:
        pass


REPLY_FIELDS = st.fixed_dictionaries(
    {}, optional={k: JSONISH for k in ("ok", "error", "traceback", "value", "args_after", "kwargs_after", "timed_out",
                                        "missing", "duration", "reason", "exists", "device", "id", "nonce")},
)


@FUZZ
@given(st.one_of(REPLY_FIELDS, JSONISH))
def test_any_reply_payload_parses_to_a_reply_or_a_malformed_reply(reply: Any) -> None:
    from grader.execution.replies import MalformedReply, parse_reply

    data = json.dumps(reply, allow_nan=True).encode()
    try:
        parsed = within_bound(lambda: parse_reply(data))
    except MalformedReply as exc:
        assert str(exc)
        return
    assert isinstance(parsed.ok, bool)
    parsed.model_dump_json()  # everything in it can be written back out (no lone surrogates, no odd types)


@FUZZ
@given(st.one_of(st.binary(max_size=2000), st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
                 st.integers(1, 20_000).map(lambda n: b'{"ok": true, "error": "' + b"\\ud800" * n + b'"}'),
                 st.integers(1, 5000).map(lambda n: b'{"ok": true, "duration": ' + b"9" * n + b"}")))
def test_any_reply_bytes_parse_or_are_refused(data: bytes) -> None:
    from grader.execution.replies import MalformedReply, parse_reply

    try:
        within_bound(lambda: parse_reply(data))
    except MalformedReply:
        pass


@FUZZ
@given(st.binary(min_size=0, max_size=64))
def test_any_frame_header_is_read_or_refused(data: bytes) -> None:
    from grader.worker.protocol import HEADER, GarbledStream, Header

    try:
        Header.unpack(data.ljust(HEADER.size, b"\0")[: HEADER.size])
    except GarbledStream:
        pass


# ----------------------------------------------------------------------------------------------- loader


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["markdown", "code", "raw"]), TEXT), max_size=8))
def test_loading_any_notebook_text_gives_a_submission_or_a_clear_refusal(tmp_path_factory: Any, cells: list[tuple[str, str]]) -> None:
    from grader.sources.load import load_submission

    nb = nbformat.v4.new_notebook()
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell, "raw": nbformat.v4.new_raw_cell}
    nb.cells = [make[kind](text) for kind, text in cells]
    path = tmp_path_factory.mktemp("nb") / "student.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")  # json escapes lone surrogates as \udxxx, as a notebook may
    try:
        submission = within_bound(lambda: load_submission(path))
    except SubmissionUnreadable as exc:
        assert str(exc)
        return
    for text in [*(c.source for c in submission.cells), *submission.answers.values()]:
        text.encode("utf-8")  # nothing kept from a student is unwritable


@FUZZ
@given(TEXT)
def test_loading_any_python_text(tmp_path_factory: Any, text: str) -> None:
    from grader.sources.load import load_submission

    path = tmp_path_factory.mktemp("py") / "student.py"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        within_bound(lambda: load_submission(path))
    except SubmissionUnreadable as exc:
        assert str(exc)


# ----------------------------------------------------------------------------------------------- formulas

FORMULA = st.one_of(
    TEXT,
    st.lists(st.sampled_from(["H", "K", "P", "S", "D", "(", ")", "+", "-", "*", "/", "//", "**", "^", "2", "999999",
                              "floor(", "ceiling(", "log(", "exp(", "sqrt(", "Max(", "Min(", ",", "Abs(", "1e9"]),
             max_size=120).map("".join),
)


@FUZZ
@given(FORMULA)
def test_parsing_any_formula_text_gives_an_expression_or_a_parse_error(text: str) -> None:
    from grader.formula.mathparse import parse_expression

    try:
        within_bound(lambda: parse_expression(text, ["H", "K", "P", "S", "D"]))
    except ValueError:  # mathparse.ParseError and its kin
        pass


LATEX = st.one_of(
    TEXT,
    st.lists(st.sampled_from(["$", "$$", "\\frac{", "}{", "}", "{", "\\left\\lfloor", "\\right\\rfloor", "\\lceil",
                              "\\rceil", "H", "K", "^", "_", "2", "\\cdot", "\\log", "\\sqrt{", "\\text{", "+", "-",
                              "(", ")", "=", "\\,", "**Answer q1.1:**"]), max_size=120).map("".join),
)


@FUZZ
@given(LATEX)
def test_parsing_any_answer_cell_gives_an_expression_or_a_parse_error(text: str) -> None:
    from grader.formula.latex import parse_answer_cell

    try:
        within_bound(lambda: parse_answer_cell(text, ["H", "K", "P", "S", "D"]))
    except ValueError:
        pass


# -------------------------------------------------------------------------------------------- reports

DETAILS = st.dictionaries(
    st.sampled_from(["traceback", "case", "worst_index", "expected", "got", "answer", "counterexample", "violations",
                     "losses", "accuracy", "tiers", "grader_error", "missing_answer", "ta_comment", "yours"]),
    st.recursive(st.one_of(SCALARS, TEXT), lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(TEXT, c, max_size=3)),
                 max_leaves=12),
    max_size=6,
)
QUESTION = st.builds(
    QuestionResult,
    qid=st.sampled_from(["q1.1", "q2.1", "q3.2"]), title=TEXT, kind=st.sampled_from(["formula", "function", "gradient",
    "value", "forbid", "training", "property", "manual"]), score=st.floats(0, 5), max_score=st.just(5.0),
    status=st.sampled_from(list(Status)), message=TEXT, visibility=st.sampled_from(["public", "hidden"]), details=DETAILS,
)
RESULT = st.builds(
    SubmissionResult,
    student=TEXT, path=TEXT, assignment=st.just("fuzz"), questions=st.lists(QUESTION, max_size=4).map(tuple),
    load_error=st.one_of(st.none(), TEXT), grader_error=st.one_of(st.none(), TEXT),
)


@FUZZ
@given(RESULT)
def test_any_result_renders_to_every_report_or_to_the_fallback(result: SubmissionResult) -> None:
    from grader.classroom.outdir import finish

    student = within_bound(lambda: finish(result, None))
    for text in student.files.values():
        text.encode("utf-8")
    if student.result.grader_error is None or result.grader_error is not None:
        tokens = MarkdownIt("commonmark").parse(student.files["report.md"])
        kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
        assert not kinds & {"html_block", "html_inline"}, student.files["report.md"]


@FUZZ
@given(st.lists(RESULT, max_size=5))
def test_any_class_renders_a_summary(results: list[SubmissionResult]) -> None:
    from grader.classroom.outdir import plain

    results = [plain(r) for r in results]
    within_bound(lambda: render_index(results))
    for r in results:
        within_bound(lambda r=r: render_report(r))  # type: ignore[misc]
        within_bound(lambda r=r: render_markdown(r))  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------- names

FILE_NAME = st.one_of(
    st.text(min_size=1, max_size=120).filter(lambda s: "/" not in s and "\x00" not in s and s not in (".", "..")),
    st.binary(min_size=1, max_size=120).filter(lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b".."))
    .map(os.fsdecode),
)


@FUZZ
@given(st.lists(st.tuples(FILE_NAME, st.sampled_from([".py", ".ipynb", ".PY"])), max_size=12))
def test_any_file_names_get_unique_safe_folder_names(files: list[tuple[str, str]]) -> None:
    paths = list(dict.fromkeys(Path("class") / (stem + ext) for stem, ext in files))
    names = within_bound(lambda: job_names(paths))
    assert len({n.casefold() for n in names}) == len(paths)
    for name in names:
        name.encode("utf-8")
        assert 0 < len(name) <= MAX_NAME and "/" not in name and "." not in name


@pytest.mark.parametrize("depth", [10, 1000])
def test_fuzz_strategies_reach_their_targets(depth: int) -> None:
    """The generators above are not vacuous: a deep value is refused, a shallow one decodes."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    if depth > codec.MAX_DEPTH:
        with pytest.raises(codec.CodecError):
            codec.decode(value)
    else:
        assert codec.decode(value) == value
