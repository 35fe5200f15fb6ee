"""CSV files a TA opens in a spreadsheet: written so that no cell runs, read whatever the spreadsheet saved.

Every CSV the grader writes (gradebook.csv, the Canvas and Moodle imports, `grader manual export`) goes
through `csv_text`.  A text cell a spreadsheet would take for a formula (a leading `=`, `+`, `-`, `@`, tab or
carriage return: OWASP's "CSV injection" list) gets a leading `'`, so that a spreadsheet reads it as text, not
as a formula (it may show the `'`).  Student-controlled text (names from the roster or an LMS's file names, a
student's answer) reaches these files, so every text cell is treated so; numbers are written as numbers and
stay numbers.  `unquote` takes the `'` off again where such a file comes back (`grader manual import`).

`read_csv_text` reads a CSV file as text, accepting Excel's "CSV UTF-8" (which starts with a byte-order mark).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["FORMULA_STARTS", "Cell", "csv_text", "neutralise", "read_csv_text", "unquote"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | None  # None: an empty cell


def neutralise(text: str) -> str:
    """A text cell as written: a leading `'` where a spreadsheet would run it as a formula (and where the text
    already starts with `'`s before such a start, so that `unquote` gives back exactly what was written)."""
    return "'" + text if text.lstrip("'").startswith(FORMULA_STARTS) else text


def unquote(text: str) -> str:
    """A cell as `neutralise` wrote it, read back: the `'` it added removed (a spreadsheet removes it itself)."""
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS) else text


def _number(x: float) -> str:
    return f"{x:g}"


def csv_text(
    rows: Iterable[Iterable[Cell]], number: Callable[[float], str] = _number, *, lineterminator: str = "\n"
) -> str:
    """The CSV of `rows`: text cells neutralised, numbers (int, float) written by `number`, None empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=lineterminator)
    # csv quotes a cell holding a character of the line terminator only: with "\n" a bare "\r" would go out
    # unquoted and split the row for every reader, so such a row is quoted whole.
    careful = csv.writer(buf, lineterminator=lineterminator, quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [
            "" if c is None else number(c) if isinstance(c, (int, float)) and not isinstance(c, bool)
            else neutralise(str(c))
            for c in row
        ]
        (careful if any("\r" in c or "\n" in c for c in cells) else writer).writerow(cells)
    return buf.getvalue()


def read_csv_text(path: Path) -> str:
    """A CSV file's text: UTF-8, a leading byte-order mark (Excel's "CSV UTF-8") dropped.

    Raises OSError and UnicodeDecodeError; the caller names the file in its own error.
    """
    return path.read_bytes().decode("utf-8-sig")
