"""Loading a submission: a notebook (nbformat 4) or a Python file, into code cells and answer cells.

Nothing here runs student code.  An unreadable file raises `SubmissionUnreadable` with a message meant for
the student; the pipeline turns it into a 0-point result.
"""
from __future__ import annotations

import ast
import hashlib
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import SubmissionUnreadable

MAX_BYTES = 64 * 1024 * 1024
SUFFIXES = (".ipynb", ".py")
MAX_PY_CELLS = 500  # cells a .py file is split into, at most
MAX_NOTEBOOK_CELLS = 2000  # code cells of a notebook: each is a round trip to the worker
MAX_PADDING = 16 * 1024 * 1024  # blank lines added, over all cells, to keep line numbers true
MAX_ANSWER = 20_000  # characters kept of one `Answer qX.Y:` cell; the rest is cut, with a note
PARSE_RECURSION_LIMIT = 4000  # see `parse_python`
_RECURSION_LIMIT = threading.Lock()
# Characters of Python the grader parses in one piece (blank lines before it not counted): a syntax tree takes
# 200-500 bytes per character of source, so a cell of 256 KiB costs the grader about 100 MB and 0.1 s, where a
# 12 MiB list literal cost it 5 GB and 29 s.  See `parse_python`.
MAX_PARSED = 256 * 1024


class TooLargeToParse(MemoryError):
    """Python source over MAX_PARSED: parsing it would cost the grader more memory than it allows itself.

    A MemoryError, as it stands for one: every reader of `parse_python` already takes that for "cannot be read",
    and none may take it for "defines nothing" (forbid would then let a huge cell's functions pass unread).
    """

    def __init__(self, size: int) -> None:
        super().__init__(f"{size:,} characters of code, more than the {MAX_PARSED:,} the grader reads in one piece")
        self.size = size

# `Answer q1.2:` possibly bold/heading/italic, at the start of a Markdown cell.  Every quantifier is
# possessive (`*+`): with plain `\s*` next to `\s*`, a cell of blank space cost quadratic time to reject.
# The question id is bounded so that a run of digits cannot become a huge dictionary key.
_ANSWER_RE = re.compile(
    r"\s*+(?:#{1,6}+\s*+)?[*_]{0,3}+\s*+answer\s++(q\d{1,6}+(?:\.\d{1,6}+){0,4}+)(?!\d|\.\d)"
    r"\s*+[:.]?+\s*+[*_]{0,3}+\s*+[:.]?+\s*+",
    re.IGNORECASE,
)
_MAGIC_RE = re.compile(r"\s*+[!%]")
# Python's own line ends (`str.splitlines` also splits at \x0c, \x1c, U+2028... and would shift line numbers).
_LINE_RE = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)|[^\r\n]++")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
SURROGATE_NOTE = "invalid Unicode (lone surrogate characters) in the notebook was replaced by U+FFFD"


@dataclass(frozen=True)
class Cell:
    index: int  # position among the submission's code cells, 0-based
    source: str
    execution_count: int | None = None  # the notebook's own `In [n]`, when the cell was run before saving


@dataclass(frozen=True)
class Submission:
    path: Path
    student: str
    cells: tuple[Cell, ...]
    answers: dict[str, str] = field(default_factory=dict)  # "q6.1" -> the Markdown after "Answer q6.1:"
    sha256: str = ""
    notes: tuple[str, ...] = ()  # what the loader changed in the student's text (cut, replaced), for the report

    @property
    def source(self) -> str:
        """All code cells, for static analysis; line numbers are per cell (see `cell_of_line`)."""
        return "\n".join(c.source for c in self.cells)


def student_name(path: Path) -> str:
    return path.stem


def strip_magics(source: str) -> str:
    """Blank out shell/magic lines (`!pip`, `%matplotlib`, `%%time`) so line numbers stay true."""
    return "".join(_blank_magic(line) for line in split_lines(source))


def _blank_magic(line: str) -> str:
    if not _MAGIC_RE.match(line):
        return line
    return line[len(line.rstrip("\r\n")):]  # keep the line end, drop the command


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split where Python's tokenizer splits them (\\n, \\r\\n, \\r) and nowhere else."""
    return _LINE_RE.findall(text)


def clean_text(text: str) -> str:
    """Lone surrogates (a notebook's JSON may hold `"\\ud800"`) become U+FFFD: they cannot be encoded later."""
    return _SURROGATE_RE.sub("\ufffd", text)


def parse_python(source: str) -> ast.Module:
    """`ast.parse` with room for what the worker's `compile` accepts.

    Python bounds the nesting it parses by the recursion limit *left* at the call (`x + x + ... ` with 3,000
    terms compiles in a fresh worker); the grader calls from deeper in its stack, so it would fail first and
    misread a correct file.  The limit is raised around the call (C stack: about 12,000 levels, a few MiB).
    Raises SyntaxError, ValueError, RecursionError or MemoryError, as `ast.parse` does; TooLargeToParse (a
    MemoryError) before any work for source over MAX_PARSED, whatever its content.
    """
    size = len(source.lstrip("\n"))  # the blank lines that keep a .py file's line numbers cost nothing
    if size > MAX_PARSED:
        raise TooLargeToParse(size)
    with _RECURSION_LIMIT:  # the limit is the process's: a slot must not lower it under another's parse
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, PARSE_RECURSION_LIMIT))
        try:
            return ast.parse(source)
        finally:
            sys.setrecursionlimit(old)


def find_submissions(targets: list[Path]) -> list[Path]:
    """Expand directories to the submission files they hold (sorted, one level, hidden files skipped)."""
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            found.extend(
                p for p in sorted(target.iterdir())
                if not p.name.startswith(".") and (p.suffix.lower() in SUFFIXES or not p.is_file())
            )
        else:
            found.append(target)
    return found


def load_submission(path: Path) -> Submission:
    path = Path(path)
    if path.is_symlink():
        raise SubmissionUnreadable(f"{path.name} is a symbolic link, not a submission file")
    if path.is_dir():
        raise SubmissionUnreadable(f"{path.name} is a directory, not a notebook or Python file")
    if not path.exists():
        raise SubmissionUnreadable(f"{path.name} does not exist")
    if not path.is_file():
        # A FIFO or a device would block or never end when read.
        raise SubmissionUnreadable(f"{path.name} is not a regular file")
    if path.suffix.lower() not in SUFFIXES:
        raise SubmissionUnreadable(f"{path.name}: a submission is a .ipynb notebook or a .py file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SubmissionUnreadable(f"{path.name} is {size // 2**20} MiB; the limit is {MAX_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionUnreadable(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise SubmissionUnreadable(f"{path.name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionUnreadable(f"{path.name} is not UTF-8 text (byte {exc.start})") from exc
    if "\x00" in text:
        raise SubmissionUnreadable(f"{path.name} contains NUL bytes; it is not a text file")
    sha = hashlib.sha256(data).hexdigest()
    notes: list[str] = []
    if path.suffix.lower() == ".ipynb":
        cells, answers = _notebook_cells(path.name, text, notes)
    else:
        cells, answers = _python_cells(text), {}
    return Submission(path, student_name(path), tuple(cells), answers, sha, tuple(notes))


def _notebook_cells(name: str, text: str, notes: list[str]) -> tuple[list[Cell], dict[str, str]]:
    """The code cells and answers of a notebook, read from its JSON in one linear pass.

    nbformat's schema validation is not run: it only logs what it finds, and costs far more than the notebook's
    size (40-50 s for 300,000 Markdown cells); what the grader reads (a list of cells, each an object with a type
    and a source of text) is checked here, field by field.
    """
    import json

    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SubmissionUnreadable(f"{name} is not valid notebook JSON ({_short(exc)})") from exc
    if not isinstance(raw, dict) or "cells" not in raw:
        raise SubmissionUnreadable(f"{name} is JSON but not a Jupyter notebook (no 'cells')")
    major = raw.get("nbformat")
    if major != 4:
        raise SubmissionUnreadable(f"{name} is nbformat {major!r}; only nbformat 4 notebooks are graded")
    cells: list[Cell] = []
    answers: dict[str, str] = {}
    if not isinstance(raw["cells"], list):
        raise SubmissionUnreadable(f"{name}: 'cells' is not a list")
    for cell in raw["cells"]:
        if not isinstance(cell, dict):
            raise SubmissionUnreadable(f"{name}: a cell is not an object")
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            raise SubmissionUnreadable(f"{name}: a cell's source is not text")
        cleaned = clean_text(source)  # only JSON escapes (`"\\ud800"`) can put lone surrogates here
        if cleaned != source and SURROGATE_NOTE not in notes:
            notes.append(SURROGATE_NOTE)
        source = cleaned
        kind = cell.get("cell_type")
        if kind == "code":
            if len(cells) >= MAX_NOTEBOOK_CELLS:
                raise SubmissionUnreadable(
                    f"{name} has more than {MAX_NOTEBOOK_CELLS} code cells; merge some (the limit is {MAX_NOTEBOOK_CELLS})"
                )
            count = cell.get("execution_count")
            count = count if isinstance(count, int) and not isinstance(count, bool) else None
            cells.append(Cell(len(cells), strip_magics(source), count))
        elif kind == "markdown":
            match = _ANSWER_RE.match(source)
            if match:
                qid = match.group(1).lower()
                if qid not in answers:
                    answers[qid] = _bounded_answer(qid, source[match.end():].strip(), notes)
    return cells, answers


def _bounded_answer(qid: str, text: str, notes: list[str]) -> str:
    if len(text) <= MAX_ANSWER:
        return text
    notes.append(f"the `Answer {qid}:` cell is {len(text)} characters long; only the first {MAX_ANSWER} were kept")
    return text[:MAX_ANSWER] + f"\n\n[cut by the grader: the answer was {len(text)} characters, the limit is {MAX_ANSWER}]"


def _python_cells(text: str) -> list[Cell]:
    """Split a .py file into cells: `# %%` markers if present, else one cell per top-level statement.

    Per-statement cells mean an exception at line 50 costs only that statement, as a failing notebook cell
    costs only itself.  A file that does not parse is split into blocks so that the parts that parse still run.
    """
    text = strip_magics(text)
    if re.search(r"^# ?%%", text, re.MULTILINE):
        chunks = re.split(r"^# ?%%.*$", text, flags=re.MULTILINE)
        return [Cell(i, c) for i, c in enumerate(c for c in chunks if c.strip())]
    lines = split_lines(text)
    try:
        tree = parse_python(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [Cell(i, c) for i, c in enumerate(_blocks(lines))]
    starts = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        starts.append(first - 1)
    if not starts:
        return []
    starts[0] = 0  # leading comments and blank lines go with the first statement
    if len(starts) > MAX_PY_CELLS:
        # Each cell is a round trip to the worker: 200,000 one-line statements would take many minutes.
        # Past the cap, neighbouring statements share a cell (and an exception costs the whole group).
        step = -(-len(starts) // MAX_PY_CELLS)
        starts = starts[::step]
    bounds = [*starts, len(lines)]
    # Padding with blank lines keeps tracebacks' line numbers those of the student's file; it grows as
    # cells × lines, so a huge file goes unpadded rather than sending gigabytes of newlines.
    pad = sum(starts) <= MAX_PADDING
    return [
        Cell(i, "\n" * bounds[i] * pad + "".join(lines[bounds[i]:bounds[i + 1]])) for i in range(len(starts))
    ]


def _blocks(lines: list[str]) -> list[str]:
    """Blocks that start at an unindented line after a blank line; merged while a block alone does not parse."""
    blocks: list[list[str]] = [[]]
    for i, line in enumerate(lines):
        new_block = line.strip() and not line[0].isspace() and i > 0 and not lines[i - 1].strip()
        if new_block and blocks[-1]:
            blocks.append([])
        blocks[-1].append(line)
    return ["".join(b) for b in blocks if "".join(b).strip()]


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
