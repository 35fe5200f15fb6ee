"""A kit check for people: the terminal table (`grader.feedback.terminal`'s), a text view and compact HTML for notebooks.

Every view shows the same facts and blocks (the failing input, expected against yours, a snippet), explained by
`grader.feedback.report.explain` as the reports explain them; student text (messages quote answers) is escaped in HTML.
"""
from __future__ import annotations

import io
import sys
from html import escape
from typing import TYPE_CHECKING, TextIO

from grader.feedback.report import Audience, Explanation, explain
from grader.feedback.terminal import MARKS, print_check
from grader.palette import STATUS_COLOURS
from grader.results import Status

if TYPE_CHECKING:  # annotations only: a KitReport shows itself through this module
    from grader.kit.result import KitReport



def print_report(report: KitReport, stream: TextIO | None = None) -> None:
    stream = stream if stream is not None else sys.stdout
    if report.result.questions or report.result.load_error:
        print_check(report.result, stream, footer="")  # the kit's own summary line says it, honestly
    if report.unchecked:
        print("\nnot checked here (graded when you submit):", file=stream)
        for u in report.unchecked:
            print(f"  {u.qid} {u.title} ({u.points:g} points): {u.reason}", file=stream)
    print(report.summary(), file=stream)


def text(report: KitReport) -> str:
    buffer = io.StringIO()  # not a terminal: plain aligned text, no control codes
    print_report(report, buffer)
    return buffer.getvalue().rstrip("\n")


def html(report: KitReport) -> str:
    """A compact, self-contained block for a notebook's output (no scripts, inline styles only)."""
    result = report.result
    python_file = result.path.endswith(".py")
    rows: list[str] = []
    problems: list[str] = []
    for q in result.questions:
        view = explain(q, Audience.STUDENT, python_file=python_file)
        colour = STATUS_COLOURS[q.status].hex
        why = "" if q.status is Status.PASSED else escape(view.summary)
        rows.append(
            f"<tr><td>{escape(q.qid)} {escape(q.title)}</td>"
            f'<td style="color:{colour};font-weight:bold">{escape(MARKS.get(q.status, q.status.value))}</td>'
            f'<td style="text-align:right">{q.score:g}/{q.max_score:g}</td><td>{why}</td></tr>'
        )
        if q.status is not Status.PASSED and (view.facts or view.blocks or view.code or view.traceback):
            problems.append(_details(f"{q.qid} {q.title}", view, open_=not problems))
    for u in report.unchecked:
        rows.append(
            f"<tr><td>{escape(u.qid)} {escape(u.title)}</td><td>not checked</td>"
            f'<td style="text-align:right">{u.points:g}</td><td>{escape(u.reason)}</td></tr>'
        )
    parts = ['<div class="dl-grader-kit" style="font-family:sans-serif;font-size:13px">']
    if result.load_error:
        parts.append(f"<p>Your submission could not be read: {escape(result.load_error)}</p>")
    if rows:
        parts.append(
            '<table style="border-collapse:collapse"><thead><tr><th style="text-align:left">question</th>'
            '<th>result</th><th>points</th><th style="text-align:left">why</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>"
        )
    parts.extend(problems)
    for c in result.cell_failures:
        parts.append(_details(f"code {c.name} failed ({c.reason})", Explanation("", traceback=(c.message, *c.traceback[-6:])), False))
    mark = STATUS_COLOURS[Status.FAILED if report.failed else Status.PASSED].hex
    parts.append(f'<p style="font-weight:bold;color:{mark}">{escape(report.summary())}</p></div>')
    return "".join(parts)


def _details(title: str, view: Explanation, open_: bool) -> str:
    """A question's problem as report.html shows it: facts, then the blocks (the failing input, expected against
    yours, the snippet to reproduce it), offending lines and the traceback; every text escaped."""
    items = "".join(f"<li>{escape(f.label)}: {escape(f.value)}</li>" for f in view.facts)
    body = f"<ul>{items}</ul>" if items else ""
    for b in view.blocks:
        body += f"<p>{escape(b.title[:1].upper() + b.title[1:])}:</p><pre>{escape(b.text)}</pre>"
    if view.code:
        body += "<pre>" + escape("\n".join(view.code)) + "</pre>"
    if view.traceback:
        body += "<pre>" + escape("\n".join(view.traceback)) + "</pre>"
    return f"<details{' open' if open_ else ''}><summary>{escape(title)}</summary>{body}</details>"
