"""Naming a submission's code cells the same way everywhere, and a failed cell as the cause where it matters.

A cell is named as the student sees it: the notebook's own `In [8]` where it was run, else its position
(`cell 8`, counting code cells from 1), and in a .py file the line it starts at; with the first line of its
code.  The worker names cells `<cell 7>` (0-based positions) in tracebacks; `rename_frames` rewrites those to
the same names.  A question whose answer is missing because the cell that defines it failed is told so,
right there (`blame`), instead of only "`f` is not defined" with the cause far below.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import replace
from typing import Any, Iterable

from grader.results import CellFailure, QuestionResult, Status
from grader.sources.load import Submission, parse_python

__all__ = ["NAME_ERROR", "blame", "cell_label", "first_line", "name_failures", "rename_frames"]

_FRAME = re.compile(r"<cell (\d+)>")
_MISSING = re.compile(r"^`([A-Za-z_][A-Za-z0-9_]*)` is not defined")


def _is_py(submission: Submission) -> bool:
    return submission.path.suffix.lower() == ".py"


def cell_label(submission: Submission, index: int) -> str:
    """`cell In [8]`, `cell 3` or (a .py file) `line 12`."""
    if not 0 <= index < len(submission.cells):
        return f"cell {index + 1}"
    cell = submission.cells[index]
    if _is_py(submission):
        return f"line {_start_line(cell.source)}"
    count = getattr(cell, "execution_count", None)
    return f"cell In [{count}]" if isinstance(count, int) else f"cell {index + 1}"


def _start_line(source: str) -> int:
    """The first line with code (a .py cell is padded with blank lines to keep the file's numbering)."""
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip():
            return number
    return 1


def first_line(submission: Submission, index: int, width: int = 80) -> str:
    if not 0 <= index < len(submission.cells):
        return ""
    line = next((ln.strip() for ln in submission.cells[index].source.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def name_failures(submission: Submission, failures: Iterable[CellFailure]) -> tuple[CellFailure, ...]:
    """The failures with their cell's label and first line, and tracebacks that use the same names."""
    return tuple(
        replace(
            f,
            label=cell_label(submission, f.index),
            first_line=first_line(submission, f.index),
            traceback=rename_frames(submission, f.traceback),
        )
        for f in failures
    )


def rename_frames(submission: Submission, lines: Iterable[str]) -> list[str]:
    """`File "<cell 7>", line 3` as `File "<cell In [8]>", line 3` (or `<your file>` for a .py file)."""

    def name(match: re.Match[str]) -> str:
        if _is_py(submission):
            return "<your file>"
        return f"<{cell_label(submission, int(match.group(1)))}>"

    return [_FRAME.sub(name, str(line)) for line in lines]


# Asked of every failed cell once per question: parsed once (64 cells of at most 256 KiB each are kept).
@functools.lru_cache(maxsize=64)
def _defines(source: str) -> frozenset[str]:
    """Top-level names a cell binds: functions, classes, assignments, imports."""
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", source, re.MULTILINE))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def _star_imports(source: str) -> bool:
    """Whether a cell has `from m import *` at its top level (it may define any name)."""
    return bool(re.search(r"^from\s+[\w.]+\s+import\s+\*", source, re.MULTILINE))


def blame(submission: Submission, failures: tuple[CellFailure, ...], q: QuestionResult) -> QuestionResult:
    """`q` with its cause named when its answer is missing because the cell that defines it failed, or when
    the answer ran into a name (`NameError`) that a failed cell would have defined (a failed import of the
    course's helpers: "`sigmoid` is not defined because cell 1 failed: ModuleNotFoundError: ...")."""
    match = _MISSING.match(q.message)
    if q.status in (Status.PASSED, Status.PENDING, Status.GRADER_ERROR):
        return q
    if match is None or q.status is not Status.ERROR:
        return _blame_name_error(submission, failures, q)
    name = match.group(1)
    for f in failures:
        if _cell_defines(submission, f, name):
            cause = {"timeout": "ran past its time limit", "died": "ended the worker process"}.get(
                f.reason, "failed before defining it"
            )
            cell, details = _failed_cell(submission, f, q)
            return replace(q, message=f"{q.message}: {cell}, where it is defined, {cause}: {f.message}", details=details)
    return q


def _cell_defines(submission: Submission, f: CellFailure, name: str) -> bool:
    return 0 <= f.index < len(submission.cells) and name in _defines(submission.cells[f.index].source)


def _failed_cell(submission: Submission, f: CellFailure, q: QuestionResult) -> tuple[str, dict[str, Any]]:
    """The failed cell `f` as a message names it (`cell 1 (`import numpy as np`)`), and `q`'s details with it."""
    where = f.label or cell_label(submission, f.index)
    line = f" (`{f.first_line}`)" if f.first_line and "`" not in f.first_line else ""
    return where + line, {**q.details, "failed_cell": {"label": where, "first_line": f.first_line, "message": f.message}}


NAME_ERROR = re.compile(  # the worker's words for a name nothing defined
    r"NameError: name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def _blame_name_error(submission: Submission, failures: tuple[CellFailure, ...], q: QuestionResult) -> QuestionResult:
    match = NAME_ERROR.search(q.message)
    if match is None or not failures:
        return q
    name = match.group(1)
    may = ""
    defining = [f for f in failures if _cell_defines(submission, f, name)]
    if not defining:  # a failed `from helpers import *` may have been the one to define it
        may = " (its `import *` would have defined it)"
        defining = [f for f in failures if 0 <= f.index < len(submission.cells)
                    and _star_imports(submission.cells[f.index].source) and "Error" in f.message]
    if not defining:
        return q
    f = defining[0]
    cell, details = _failed_cell(submission, f, q)
    return replace(q, message=f"{q.message}. `{name}` is not defined because {cell} failed{may}: {f.message}", details=details)
