"""The vocabulary of explanations, shared by the check kinds (each explains its own `Details`) and the reports.

A kind's `Details` record fills a `View` with labelled facts, blocks of text (an input in full, the values near
the worst element, a snippet to paste), code lines and charts, for one audience; `grader.feedback.report` lays a View
out as HTML, Markdown or terminal text.  Nothing here renders markup: text stays plain `str` until a template
escapes it; charts are SVG strings drawn by `grader.svg`, the one trusted source.

Two records are shared by the kinds that compare values (function, gradient, value, property) and so live
here: `Around` (the values near the worst element) and `Reproduction` (the failing input, shrunk, with a
snippet); `explain_failure` lays them out the same way for each of those kinds.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from markupsafe import Markup

__all__ = [
    "Around",
    "Audience",
    "Block",
    "Details",
    "DetailsReader",
    "Fact",
    "Reproduction",
    "View",
    "bounded",
    "explain_failure",
    "listed",
    "num",
    "number",
    "sci",
    "whole_numbers",
]

MAX_SHOWN = 2000  # characters of one fact or block that holds a student's text or values


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

    summary: str = ""  # the question's message, shown above the facts: a fact need not repeat what it says
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

    def unsaid(self, text: str | None) -> str | None:
        """`text`, unless the summary already says it (a diagnosis is part of the message: shown once)."""
        return None if text and text in self.summary else text


class Details(Protocol):
    """A kind's structured record of one question's outcome (`QuestionResult.details` holds its serialize())."""

    def serialize(self) -> dict[str, Any]: ...

    def explain(self, view: View) -> None: ...


class DetailsReader(Protocol):
    """A kind's Details class: reads a stored result's details, old ones too (missing or extra keys tolerated)."""

    def from_dict(self, data: dict[str, Any], /) -> Details: ...


# Readers of a stored result's values for `from_dict`: a value of another type (an old or odd record) is absent.


def number(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def whole_numbers(value: Any) -> list[int] | None:
    """An index or a shape: a list of ints, or None."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        return None
    return [int(i) for i in value]


def listed(value: Any) -> list[Any]:
    """The items of a stored list (`[]` for anything else)."""
    return list(value) if isinstance(value, list) else []


def bounded(text: Any, limit: int = MAX_SHOWN) -> str | None:
    """Text for a fact or block, cut to `limit` characters (a student's value can be any length)."""
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


@dataclass(frozen=True)
class Around:
    """The expected and the student's values in a small window that holds the worst element, as text."""

    where: str  # `[0, 1:4, 2:5]`, or `` for the whole array
    expected: str
    yours: str

    def serialize(self) -> dict[str, str]:
        return {"where": self.where, "expected": self.expected, "yours": self.yours}

    @classmethod
    def from_dict(cls, data: Any) -> Around | None:
        if not isinstance(data, dict) or not isinstance(data.get("expected"), str) or not isinstance(data.get("yours"), str):
            return None
        return cls(str(data.get("where") or ""), data["expected"], data["yours"])

    def explain(self, view: View) -> None:
        where = f" {self.where}" if self.where else ""
        view.block(f"expected{where}", self.expected)
        view.block(f"yours{where}", self.yours)


@dataclass(frozen=True)
class Reproduction:
    """A failing input shown in full (shrunk when something smaller failed the same way), what goes wrong on it,
    and a snippet that reproduces it.  Student-visible: never made for a hidden question."""

    inputs: str  # `name = value` per line
    snippet: str  # Python to paste into a new cell; it defines no name of the student's (see grader.checks.support.shrink)
    shrunk: bool = False
    original: str = ""  # the test input it was shrunk from, as `label` names it
    problem: str | None = None  # the failure on the shrunk input (the question's message names the original's)
    around: Around | None = None  # the values near the worst element on the shrunk input
    calls: int = 0  # student calls the shrinking made

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"shrunk": self.shrunk, "original": self.original, "inputs": self.inputs,
                                "snippet": self.snippet, "calls": self.calls}
        if self.problem is not None:
            data["problem"] = self.problem
        if self.around is not None:
            data["around"] = self.around.serialize()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Reproduction | None:
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), str):
            return None
        calls = data.get("calls")
        return cls(
            inputs=data["inputs"],
            snippet=str(data.get("snippet") or ""),
            shrunk=bool(data.get("shrunk", False)),
            original=str(data.get("original") or ""),
            problem=bounded(data.get("problem")),
            around=Around.from_dict(data.get("around")),
            calls=calls if isinstance(calls, int) and not isinstance(calls, bool) else 0,
        )


def explain_failure(view: View, reproduce: Reproduction | None, around: Around | None) -> None:
    """The blocks every comparing kind shows under a failure: the (shrunk) failing input with its problem, the
    values near the worst element (the shrunk input's when it has them), and the snippet that reproduces it."""
    if reproduce is not None:
        if reproduce.shrunk:
            view.block(f"smallest failing input found (shrunk from {reproduce.original or 'the test input'})",
                       reproduce.inputs)
            view.block("on it", reproduce.problem)
        else:
            view.block("the failing input", reproduce.inputs)
        if reproduce.shrunk:
            around = reproduce.around  # the original input's values would not match the input shown
    if around is not None:
        around.explain(view)
    if reproduce is not None:
        view.block("to reproduce it, run in a new cell of your notebook", reproduce.snippet)
