"""Rendering results for people: a report per student and a class summary, with Jinja2."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterable

from jinja2 import Environment, PackageLoader, select_autoescape

from grader.results import SubmissionResult
from grader.rubric import Rubric
from grader.scoring import atomic_write, student_output


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("grader", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda x: f"{x:g}"
    env.globals["student_output"] = student_output
    return env


def render_report(result: SubmissionResult, rubric: Rubric, *, for_student: bool = True) -> str:
    return _env().get_template("report.html.j2").render(
        r=result, rubric=rubric, for_student=for_student, now=_dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    )


def render_index(results: Iterable[SubmissionResult], rubric: Rubric) -> str:
    results = sorted(results, key=lambda r: r.student)
    return _env().get_template("index.html.j2").render(results=results, rubric=rubric)


def write_report(result: SubmissionResult, rubric: Rubric, folder: Path) -> Path:
    path = folder / "report.html"
    atomic_write(path, render_report(result, rubric))
    return path


def write_index(results: Iterable[SubmissionResult], rubric: Rubric, out: Path) -> Path:
    path = out / "index.html"
    atomic_write(path, render_index(results, rubric))
    return path
