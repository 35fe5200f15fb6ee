"""`grader similarity OUT [--against OLD_OUT...]`: pairs of submissions whose code is alike (grader.classroom.similarity).

Prints one line per pair above the threshold (both students and the score), writes OUT/similarity.json for
`grader serve`, and never changes a score.  Reads the submissions where `grading.json` says they were graded
from; the rubric's starter code and handout `.py` files are left out of every comparison.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from grader.classroom.similarity import REPORT, THRESHOLD, write_pairs


def similarity(out: Path, against: Sequence[Path] = (), threshold: float = THRESHOLD) -> int:
    pairs = write_pairs(out, against, threshold)
    for pair in pairs:
        print(pair.line)
    print(f"{len(pairs)} pair(s) at or above {threshold:g} (a hint for a TA, never a score change); see {out / REPORT}")
    return 0
