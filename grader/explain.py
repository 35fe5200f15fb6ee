"""The vocabulary of explanations, shared by the check kinds (each explains its own `Details`) and the reports.

A kind's `Details` record fills a `View` with labelled facts, blocks of text (an input in full, the values near
the worst element, a snippet to paste), code lines and charts, for one audience; `grader.report` lays a View
out as HTML, Markdown or terminal text.  Nothing here renders markup: text stays plain `str` until a template
escapes it; charts are SVG strings drawn by `grader.svg`, the one trusted source.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from markupsafe import Markup

__all__ = ["Audience", "Fact", "Block", "View", "Details", "num", "sci", "feedback_blocks"]


class Audience(str, enum.Enum):
    STUDENT = "student"
    TA = "ta"


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class Block:
    """A titled block of plain text shown as it is (monospace): an input, expected against yours, a snippet."""

    title: str
    text: str


def num(x: Any, digits: int = 6) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def sci(x: Any) -> str:
    return f"{x:.2e}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


@dataclass
class View:
    """What one audience reads of a question, filled by the kind's Details and the shared readers."""

    ta: bool = False  # TA-only facts (the expected formula, the grading guide) are added only when set
    python_file: bool = False  # a .py submission: its lines are the file's, cell numbers mean nothing
    passed: bool = False  # a passed question shows a short summary, not every number that was checked
    facts: list[Fact] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    charts: list[Markup] = field(default_factory=list)
    answer: str | None = None
    comment: str | None = None
    grader_error: str | None = None

    def fact(self, label: str, value: Any, fmt: Callable[[Any], str] = num) -> None:
        if value is not None and value != "":
            self.facts.append(Fact(label, fmt(value)))

    def block(self, title: str, text: Any) -> None:
        if isinstance(text, str) and text.strip():
            self.blocks.append(Block(title, text))


class Details(Protocol):
    """A kind's structured record of one question's outcome (`QuestionResult.details` holds its serialize())."""

    def serialize(self) -> dict[str, Any]: ...

    def explain(self, view: View) -> None: ...


def feedback_blocks(details: dict[str, Any]) -> list[Block]:
    """The blocks every comparing kind shares: the values near the worst element, the (shrunk) failing input
    with its problem, and a snippet that reproduces it.  Student-visible: never called for hidden questions."""
    view = View()
    add_feedback(details, view)
    return view.blocks


def add_feedback(details: dict[str, Any], view: View) -> None:
    found = details.get("reproduce")
    repro: dict[str, Any] = found if isinstance(found, dict) else {}
    around = repro.get("around") if isinstance(repro.get("around"), dict) else details.get("around")
    if repro.get("shrunk"):
        view.block(f"smallest failing input found (shrunk from {repro.get('original', 'the test input')})",
                   repro.get("inputs"))
        view.block("on it", repro.get("problem"))
    elif repro.get("inputs"):
        view.block("the failing input", repro.get("inputs"))
    if isinstance(around, dict):
        where = f" {around['where']}" if around.get("where") else ""
        view.block(f"expected{where}", around.get("expected"))
        view.block(f"yours{where}", around.get("yours"))
    view.block("to reproduce it, run in a new cell of your notebook", repro.get("snippet"))


def feedback_text(details: dict[str, Any]) -> str:
    """`feedback_blocks` as plain text, for results.json's `output` and the terminal."""
    return "\n\n".join(f"{b.title}:\n{b.text}" for b in feedback_blocks(details))
