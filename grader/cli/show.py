"""`grader show OUT STUDENT`: one student's result in the terminal, as `grader check` prints it.

Reads OUT/gradebook.sqlite only; STUDENT is the folder name (any case) or, where the class recorded who each
student is, their key, sid, email or name.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from grader.classroom.classbook import find_result
from grader.feedback.terminal import print_check


def show(folder: Path, student: str, stream: TextIO | None = None) -> int:
    stream = stream or sys.stdout
    result = find_result(folder, student)
    print(f"{result.who}: {result.path}", file=stream)
    if result.late:
        print(result.late_note, file=stream)
    print_check(result, stream, footer=f"\ntotal: {result.score:g}/{result.max_score:g}")
    return 0
