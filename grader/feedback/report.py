"""Rendering results for people: a report per student (HTML and Markdown) and a class summary.

Two audiences, decided here and nowhere else:

* `STUDENT` (report.html, report.md, `grader check`): a hidden question shows only "hidden test: passed/failed"
  and its points; no message, no inputs, no expected values, no traceback (a traceback can quote the inputs).
* `TA` (report-ta.html, index.html): everything the checks recorded, hidden questions included.

Everything the templates show of a question comes from `explain`, which turns a QuestionResult's `details` into
labelled facts, code lines, a traceback and charts; the HTML, Markdown and terminal views only lay them out.
Student text (answers, tracebacks, printed values, names) stays plain `str` and is escaped by the template
(HTML autoescape, `md`/`md_code` filters); only SVG drawn by grader/svg.py is marked safe.
"""
from __future__ import annotations

import datetime as _dt
import functools
import logging
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from grader import svg
from grader.atomic import atomic_write
from grader.explain import Audience, Block, Fact, View
from grader.grading.course_setup import SetupProblem, setup_problems
from grader.palette import STATUS_COLOURS
from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.kinds import details_class, find_kind
from grader.rubric.schema import Rubric

log = logging.getLogger(__name__)

__all__ = [
    "Audience",
    "ClassSummary",
    "Explanation",
    "Fact",
    "QuestionStats",
    "explain",
    "normalize_message",
    "render_index",
    "render_markdown",
    "render_report",
    "summarize",
    "write_index",
    "write_report",
]


@dataclass(frozen=True)
class Explanation:
    """What a person reads under a question's header, beyond points and status."""

    summary: str
    facts: tuple[Fact, ...] = ()
    blocks: tuple[Block, ...] = ()  # the failing input, expected against yours, a snippet to reproduce it
    code: tuple[str, ...] = ()  # offending source lines, `where: text`
    traceback: tuple[str, ...] = ()  # the student's own frames only (the worker filters them)
    charts: tuple[Markup, ...] = ()
    answer: str | None = None  # a free-text answer, shown verbatim (escaped)
    comment: str | None = None  # the TA's comment on a manual question
    redacted: bool = False  # a hidden question seen by a student
    grader_error: str | None = None  # the grader's own traceback, TA audience only


# --------------------------------------------------------------------------------- details -> explanation


def _ta_graded(kind: str) -> bool:
    spec = find_kind(kind)
    return spec is not None and spec.ta_graded


def _forbid_gate(kind: str, details: dict[str, Any], view: View) -> None:
    """Any question may carry its `forbid:` gate's violations (the gate's outcome replaced the kind's): the
    offending lines, read by the forbid kind's record.  A forbid question's own record has read them already."""
    if kind != "forbid" and details.get("violations"):
        from grader.checks.forbid import ForbidDetails

        ForbidDetails.from_dict(details).explain(view)


def _grader_error(details: dict[str, Any], view: View) -> None:
    """A check that crashed inside the grader: the traceback is for the TA (it may show reference code)."""
    if view.ta and isinstance(details.get("grader_error"), str):
        view.grader_error = "\n".join(details["grader_error"].splitlines()[-40:])


def explain(q: QuestionResult, audience: Audience = Audience.STUDENT, *, python_file: bool = False) -> Explanation:
    """Everything `audience` may read about one question, from its message and details.

    The question's kind explains its own details (its `Details` record, named by its entry in grader.rubric.kinds); what any
    question may carry whatever its kind is read here: a forbid gate's violations, the grader's own error and
    the student's traceback.  `python_file`: the submission is a .py file, so source locations are file lines.
    """
    if q.visibility == "hidden" and audience is Audience.STUDENT:
        return Explanation(student_output(q), redacted=True)
    view = View(summary=q.message, ta=audience is Audience.TA, python_file=python_file, passed=q.status is Status.PASSED)
    details = q.details if isinstance(q.details, dict) else {}
    reader = details_class(q.kind)
    steps: list[Callable[[], None]] = [
        lambda: _forbid_gate(q.kind, details, view),
        lambda: _grader_error(details, view),
    ]
    if reader is not None:
        steps.insert(0, lambda: reader.from_dict(details).explain(view))
    for step in steps:
        try:
            step()
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            # Details are extras for the reader; one of an unexpected shape costs its facts, not the report.
            log.warning("question %s: details not shown: %r", q.qid, sorted(map(str, details))[:10])
    traceback = details.get("traceback") or ()
    if not isinstance(traceback, (list, tuple)):
        traceback = (traceback,)
    return Explanation(
        summary=q.message,
        facts=tuple(view.facts),
        blocks=tuple(view.blocks),
        code=tuple(view.code),
        traceback=tuple(str(line) for line in traceback),
        charts=tuple(view.charts),
        answer=view.answer,
        comment=view.comment,
        grader_error=view.grader_error,
    )


# ------------------------------------------------------------------------------------------- class summary

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")


def normalize_message(message: str) -> str:
    """Numbers become `#`, so "relative error 3.1e-01" and "relative error 2.0e+00" group together."""
    return _NUMBER.sub("#", message.strip())


@dataclass(frozen=True)
class QuestionStats:
    qid: str
    title: str
    max_score: float
    mean: float
    pass_rate: float | None  # over graded (not pending) answers; None when nothing was graded
    passed: int
    graded: int
    pending: int
    errors: int
    failures: tuple[tuple[str, int], ...]  # (an example message, how many share its pattern), commonest first


@dataclass(frozen=True)
class NeedsTA:
    student: str  # the folder
    who: str  # name and sid (`SubmissionResult.who`)
    reason: str
    by_hand: bool = False  # answers waiting to be graded by a TA (pending), not a problem


@dataclass(frozen=True)
class ClassSummary:
    title: str
    results: tuple[SubmissionResult, ...]
    questions: tuple[QuestionStats, ...]
    needs_ta: tuple[NeedsTA, ...]
    max_score: float
    mean: float
    median: float
    runtime_total: float
    runtime_median: float
    runtime_max: float
    setup_problems: tuple[SetupProblem, ...] = ()  # a class-wide failure (grader.grading.course_setup): listed first


def _question_stats(
    qid: str, title: str, points: float, answers: list[QuestionResult], unread: list[QuestionResult], top: int
) -> QuestionStats:
    """`unread`: this question's results in submissions that could not be read; they count as answers
    (a zero is a zero) but their "not graded" message is not a failure pattern: Needs a TA lists them."""
    graded = [a for a in answers if a.status is not Status.PENDING]
    groups: dict[str, list[str]] = {}
    for a in answers:
        if any(a is u for u in unread):
            continue
        # A TA's partial score on a free-text answer is a judgement, not a failure message to group.
        if a.status in (Status.FAILED, Status.PARTIAL, Status.ERROR, Status.GRADER_ERROR) and not _ta_graded(a.kind):
            groups.setdefault(normalize_message(a.message), []).append(a.message)
    common = sorted(groups.values(), key=len, reverse=True)[:top]
    return QuestionStats(
        qid=qid,
        title=title,
        max_score=points,
        mean=statistics.fmean(a.score for a in answers) if answers else 0.0,
        pass_rate=sum(a.status is Status.PASSED for a in graded) / len(graded) if graded else None,
        passed=sum(a.status is Status.PASSED for a in graded),
        graded=len(graded),
        pending=len(answers) - len(graded),
        errors=sum(a.status is Status.ERROR for a in answers),
        failures=tuple((Counter(msgs).most_common(1)[0][0], len(msgs)) for msgs in common),
    )


def _needs_ta(r: SubmissionResult) -> list[NeedsTA]:
    found = []
    if r.needs_ta:
        broken = [q.qid for q in r.questions if q.status is Status.GRADER_ERROR]
        where = f" ({', '.join(broken)})" if broken and r.grader_error is None else ""
        found.append(NeedsTA(r.student, r.who, f"grader error{where}: see grader.log and report-ta.html"))
    if r.load_error:
        found.append(NeedsTA(r.student, r.who, f"could not be read: {r.load_error}"))
    if r.flags:
        found.append(NeedsTA(r.student, r.who, f"flagged (the score stands; look at the code): {'; '.join(r.flags)}"))
    pending = [q.qid for q in r.questions if q.status is Status.PENDING]
    if pending:
        found.append(NeedsTA(r.student, r.who, f"to grade by hand: {', '.join(pending)}", by_hand=True))
    # A worker that died or a cell that timed out may be the machine's fault rather than the student's.
    odd = [c for c in r.cell_failures if c.reason in ("died", "timeout")]
    if odd:
        found.append(NeedsTA(r.student, r.who, "; ".join(f"{c.name} {c.reason}: {c.message}" for c in odd)))
    return found


def _question_list(rubric: Rubric | None, results: Sequence[SubmissionResult]) -> list[tuple[str, str, float]]:
    if rubric is not None:
        return [(q.id, q.spec.title, q.spec.points) for q in rubric.questions]
    seen: dict[str, tuple[str, str, float]] = {}
    for r in results:
        for q in r.questions:
            seen.setdefault(q.qid, (q.qid, q.title, q.max_score))
    return list(seen.values())


def _title(rubric: Rubric | None, assignment: str) -> str:
    return (rubric.spec.title or rubric.assignment) if rubric is not None else assignment


def summarize(results: Iterable[SubmissionResult], rubric: Rubric | None = None, *, top: int = 3) -> ClassSummary:
    ordered = tuple(sorted(results, key=lambda r: r.student))
    questions = _question_list(rubric, ordered)
    by_qid: dict[str, list[QuestionResult]] = {qid: [] for qid, _, _ in questions}
    unread: dict[str, list[QuestionResult]] = {qid: [] for qid, _, _ in questions}
    for r in ordered:
        for q in r.questions:
            by_qid.setdefault(q.qid, []).append(q)
            if r.load_error:
                unread.setdefault(q.qid, []).append(q)
    scores = [r.score for r in ordered] or [0.0]
    times = [r.execution_time for r in ordered] or [0.0]
    return ClassSummary(
        title=_title(rubric, ordered[0].assignment if ordered else ""),
        results=ordered,
        questions=tuple(_question_stats(qid, title, pts, by_qid[qid], unread[qid], top) for qid, title, pts in questions),
        needs_ta=tuple(n for r in ordered for n in _needs_ta(r)),
        max_score=sum(pts for _, _, pts in questions),
        mean=statistics.fmean(scores),
        median=statistics.median(scores),
        runtime_total=sum(times),
        runtime_median=statistics.median(times),
        runtime_max=max(times),
        setup_problems=setup_problems(ordered),
    )


# ---------------------------------------------------------------------------------------------- rendering

_MD_SPECIAL = re.compile(r"([\\*\[\]!#|])")
# `_` between two letters or digits cannot start or end emphasis (CommonMark's intraword rule), so `grad_H`
# stays as written; elsewhere it is escaped.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# A shape such as `<5x3>` reads as code in plain text: set in a code span rather than as `&lt;5x3&gt;`.
_MD_ANGLED = re.compile(r"<(?:\d+(?:x\d+)*|scalar)>")


def md_inline(text: Any) -> str:
    """Markdown text that renders as exactly `text`: `code spans` kept, HTML and Markdown syntax neutralised.

    LMS comment boxes render raw HTML inside Markdown, so `<`, `>` and `&` become entities outside code spans
    (inside them Markdown shows characters literally).  No student text can end the paragraph (newlines become
    spaces, in code spans too, where a blank line would otherwise end the span and start raw HTML).
    """
    text = str(text).replace("\r", "")
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: no code spans, every backtick literal
        return _md_prose(text, spans=False).replace("`", "\\`")
    for i in range(len(parts)):
        if i % 2:
            parts[i] = "`" + parts[i].replace("\n", " ") + "`"
        else:
            parts[i] = _md_prose(parts[i])
    return "".join(parts)


def md_span(text: Any) -> str:
    """`text` as one inline code span that nothing inside can close or break out of."""
    body = str(text).replace("\r", "").replace("\n", " ")
    runs = [len(m) for m in re.findall(r"`+", body)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _md_prose(text: str, spans: bool = True) -> str:
    if not spans:
        return _md_escape(text)
    out, pos = [], 0
    for m in _MD_ANGLED.finditer(text):
        out += [_md_escape(text[pos:m.start()]), md_span(m.group())]
        pos = m.end()
    return "".join([*out, _md_escape(text[pos:])])


def _md_escape(text: str) -> str:
    # `&` only matters where it could start an entity (`&lt;`); "CNN & RNN" stays readable as plain text.
    text = re.sub(r"&(?=[#A-Za-z0-9])", "&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)  # backslashes first: the `_` escapes below add some
    return _MD_UNDERSCORE.sub(r"\_", text).replace("\n", " ")


def md_code(text: Any, lang: str = "text") -> str:
    """A fenced block longer than any backtick run inside, so student text cannot close it early."""
    body = str(text).replace("\r", "")
    runs = [len(m) for m in re.findall(r"`+", body)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def load_advice(result: SubmissionResult) -> str:
    """What a student whose file could not be read should do next."""
    if result.path.lower().endswith(".ipynb"):
        return ("Open the notebook in Jupyter, save it again (File → Save), check that it opens, "
                "and submit that file again.")
    return "Check that the file opens in an editor as plain Python (UTF-8 text) and submit it again."


def html_message(text: Any) -> Markup:
    """A check's message as HTML: escaped first, then its `code spans` set in <code>."""
    escaped = str(Markup.escape(str(text)))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


@functools.cache  # one per process: compiling the templates cost ~0.3 s per student's reports
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("grader.feedback", "templates"),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = lambda x: f"{x:g}"
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.0f}%"
    env.filters["secs"] = lambda s: f"{s:.1f} s"
    env.filters["md"] = md_inline
    env.filters["md_code"] = md_code
    env.filters["md_span"] = md_span
    env.filters["message"] = html_message
    env.filters["capitalize_first"] = lambda t: str(t)[:1].upper() + str(t)[1:]
    env.globals["explain"] = explain
    env.globals["load_advice"] = load_advice
    env.globals["colours"] = {status.value: colour.hex for status, colour in STATUS_COLOURS.items()}  # the CSS's
    return env


def _now(now: _dt.datetime | None) -> str:
    return (now or _dt.datetime.now()).strftime("%Y-%m-%d %H:%M")


def _report_context(
    result: SubmissionResult, rubric: Rubric | None, audience: Audience, now: _dt.datetime | None
) -> dict[str, Any]:
    return {
        "r": result,
        "title": _title(rubric, result.assignment),
        "audience": audience,
        "ta": audience is Audience.TA,
        "views": [(q, explain(q, audience, python_file=result.path.lower().endswith(".py"))) for q in result.questions],
        "now": _now(now),
    }


def render_report(
    result: SubmissionResult,
    rubric: Rubric | None = None,
    *,
    audience: Audience = Audience.STUDENT,
    now: _dt.datetime | None = None,
) -> str:
    return _env().get_template("report.html.j2").render(_report_context(result, rubric, audience, now))


def render_markdown(result: SubmissionResult, rubric: Rubric | None = None, *, now: _dt.datetime | None = None) -> str:
    """The student's report as Markdown, for pasting into an LMS comment; always the student audience."""
    return _env().get_template("report.md.j2").render(_report_context(result, rubric, Audience.STUDENT, now))


def render_index(
    results: Iterable[SubmissionResult], rubric: Rubric | None = None, *, now: _dt.datetime | None = None
) -> str:
    summary = summarize(results, rubric)
    scores = [r.score for r in summary.results]
    chart = Markup(svg.histogram(scores, lo=0.0, hi=summary.max_score or 1.0, bins=10, title="total scores"))
    qids = [q.qid for q in summary.questions]
    rows = [(r, [{q.qid: q for q in r.questions}.get(qid) for qid in qids]) for r in summary.results]
    return _env().get_template("index.html.j2").render(s=summary, rows=rows, histogram=chart, now=_now(now))


REPORT_FILES = {"html": "report.html", "markdown": "report.md", "ta": "report-ta.html"}


def write_report(result: SubmissionResult, rubric: Rubric | None, folder: Path) -> Path:
    """report.html and report.md for the student, report-ta.html for TAs; returns report.html's path."""
    path = folder / REPORT_FILES["html"]
    atomic_write(path, render_report(result, rubric))
    atomic_write(folder / REPORT_FILES["markdown"], render_markdown(result, rubric))
    atomic_write(folder / REPORT_FILES["ta"], render_report(result, rubric, audience=Audience.TA))
    return path


def write_index(results: Iterable[SubmissionResult], rubric: Rubric | None, out: Path) -> Path:
    path = out / "index.html"
    atomic_write(path, render_index(results, rubric))
    return path


def student_output(q: QuestionResult) -> str:
    """What a student may read of a question: hidden checks say only whether they passed."""
    if q.visibility == "hidden":
        return f"hidden test: {'passed' if q.status == Status.PASSED else 'failed'}"
    if q.status is Status.PASSED or not isinstance(q.details, dict):
        return q.message
    # the failing input, expected against yours, a snippet
    more = "\n\n".join(f"{b.title}:\n{b.text}" for b in explain(q).blocks)
    return f"{q.message}\n\n{more}" if more else q.message
