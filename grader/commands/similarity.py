"""`grader similarity OUT [--against OLD_OUT...]`: pairs of submissions whose code is alike (grader.similarity).

Prints one line per pair above the threshold (both students and the score), writes OUT/similarity.json for
`grader serve`, and never changes a score.  Reads the submissions where `grading.json` says they were graded
from; the rubric's starter code and handout `.py` files are left out of every comparison.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from grader.classbook import read_results
from grader.errors import GraderError
from grader.scoring import atomic_write
from grader.similarity import THRESHOLD, Fingerprints, Pair, code_of, compare, fingerprint

REPORT = "similarity.json"


def class_prints(out: Path, prefix: str = "") -> list[Fingerprints]:
    return [fingerprint(prefix + r.student, code_of(Path(r.path))) for r in read_results(out)]


def starter_prints(out: Path) -> list[Fingerprints]:
    """The code every student was given: the rubric's starter and the handout's `.py` files, where known."""
    pointer = out / "rubric-path"
    if not pointer.is_file():
        return []
    from grader.rubric import load_rubric

    try:
        rubric = load_rubric(Path(pointer.read_text(encoding="utf-8").strip()))
    except GraderError:
        return []
    paths = [rubric.starter_path] if rubric.starter_path else []
    paths += [f.path for f in rubric.handout.files if f.path.suffix in (".py", ".ipynb")]
    return [fingerprint(f"starter:{p.name}", code_of(p)) for p in paths if p is not None]


def class_pairs(out: Path, against: Sequence[Path] = (), threshold: float = THRESHOLD) -> list[Pair]:
    earlier = [p for old in against for p in class_prints(old, prefix=f"{old.name}/")]
    return compare(class_prints(out), earlier, starter_prints(out), threshold)


def write_pairs(out: Path, against: Sequence[Path] = (), threshold: float = THRESHOLD) -> list[Pair]:
    """The class's pairs, written to OUT/similarity.json (what `grader serve` shows)."""
    pairs = class_pairs(out, against, threshold)
    atomic_write(out / REPORT, json.dumps({"threshold": threshold, "pairs": [p.serialize() for p in pairs]}, indent=2))
    return pairs


def similarity(out: Path, against: Sequence[Path] = (), threshold: float = THRESHOLD) -> int:
    pairs = write_pairs(out, against, threshold)
    for pair in pairs:
        print(pair.line)
    print(f"{len(pairs)} pair(s) at or above {threshold:g} (a hint for a TA, never a score change); see {out / REPORT}")
    return 0
