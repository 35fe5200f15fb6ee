"""Code similarity across a class (and earlier classes): a winnowing fingerprint over Python tokens, as MOSS
and `copydetect` do.  Flags are hints for a TA, never a score change.

Each submission's code (a `.py` file, or a notebook's code cells with `%`/`!` lines dropped) becomes a token
stream where every name is `N`, every number `1` and every string `"`, comments and layout gone: renaming
variables, adding comments or reformatting changes nothing.  Every k consecutive tokens are hashed and, in
each window of w hashes, the smallest is kept (winnowing: any match of k + w - 1 tokens or more is seen).
Reordering functions moves fingerprints but keeps them.  The starter code's fingerprints (the rubric's
`starter:` and handout `.py` files) are removed from every submission first, so the code everybody was given
never pairs two students.  The score of a pair is the share of the smaller submission's fingerprints that
the other holds.
"""
from __future__ import annotations

import hashlib
import io
import json
import keyword
import stat
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from grader.atomic import atomic_write
from grader.classroom.classbook import read_results
from grader.errors import GraderError
from grader.rubric.schema import load_rubric

__all__ = ["THRESHOLD", "WINDOW", "Fingerprints", "K", "Match", "Pair", "code_of", "compare", "fingerprint"]

K = 12  # tokens per hashed k-gram: shorter runs are common idioms (`for i in range(n):`)
WINDOW = 6
THRESHOLD = 0.5  # the share of the smaller submission's fingerprints found in the other
MAX_CODE_BYTES = 8 * 1024 * 1024  # of a submission's file read for fingerprints (a notebook's outputs included)
MIN_FINGERPRINTS = 8  # fewer than that is too little code to judge

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
         tokenize.ENDMARKER}
_KEEP_NAMES = {"self", "True", "False", "None"}


@dataclass(frozen=True)
class Fingerprints:
    """One submission's fingerprints: hash -> the source lines (first, last) of its first occurrence."""

    name: str
    code: str
    where: dict[int, tuple[int, int]]

    @property
    def hashes(self) -> set[int]:
        return set(self.where)


@dataclass(frozen=True)
class Match:
    """Lines of one submission matched to lines of the other (1-based, inclusive)."""

    a_lines: tuple[int, int]
    b_lines: tuple[int, int]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float
    matches: tuple[Match, ...]

    @property
    def line(self) -> str:
        return f"{self.a}\t{self.b}\t{self.score:.2f}"

    def serialize(self) -> dict[str, object]:
        return {"a": self.a, "b": self.b, "score": round(self.score, 4),
                "matches": [{"a_lines": list(m.a_lines), "b_lines": list(m.b_lines)} for m in self.matches]}


def code_of(path: Path) -> str:
    """The Python code of a submission: a `.py` file as it is, a notebook's code cells joined (IPython
    magics and shell lines dropped); "" when it cannot be read.  Only a regular file (never a link, a FIFO or a
    device, which could block) of at most MAX_CODE_BYTES is read: the file is a student's."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CODE_BYTES:
            return ""
        with open(path, "rb") as fh:  # not followed: lstat said it is a regular file
            text = fh.read(MAX_CODE_BYTES + 1).decode("utf-8", errors="replace")
    except OSError:
        return ""
    if path.suffix.lower() != ".ipynb":
        return text
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError, RecursionError):
        return ""
    parts = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            parts.append("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    return "\n\n".join(parts)


def _tokens(code: str) -> list[tuple[str, int]]:
    """(normalised token, line) pairs; code that does not tokenize to the end keeps what came before."""
    found: list[tuple[str, int]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _SKIP:
                continue
            if tok.type == tokenize.NAME:
                text = tok.string if keyword.iskeyword(tok.string) or tok.string in _KEEP_NAMES else "N"
            elif tok.type == tokenize.NUMBER:
                text = "1"
            elif tok.type == tokenize.STRING:
                text = '"'
            else:
                text = tok.string
            found.append((text, tok.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def fingerprint(name: str, code: str, k: int = K, window: int = WINDOW) -> Fingerprints:
    tokens = _tokens(code)
    grams = []
    for i in range(len(tokens) - k + 1):
        text = "\0".join(t for t, _ in tokens[i:i + k])
        grams.append((int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big"),
                      (tokens[i][1], tokens[i + k - 1][1])))
    where: dict[int, tuple[int, int]] = {}
    for i in range(max(len(grams) - window + 1, 1 if grams else 0)):
        h, lines = min(grams[i:i + window], key=lambda g: g[0])
        where.setdefault(h, lines)
    return Fingerprints(name, code, where)


def without(prints: Fingerprints, starter: set[int]) -> Fingerprints:
    return Fingerprints(prints.name, prints.code, {h: w for h, w in prints.where.items() if h not in starter})


def compare(
    current: Iterable[Fingerprints],
    earlier: Iterable[Fingerprints] = (),
    starter: Iterable[Fingerprints] = (),
    threshold: float = THRESHOLD,
) -> list[Pair]:
    """Pairs above `threshold`, highest first: every two of `current`, and each of `current` with each of
    `earlier` (earlier classes' submissions, named as the caller likes)."""
    given = set().union(*(s.hashes for s in starter))
    now = [without(p, given) for p in current]
    old = [without(p, given) for p in earlier]
    pairs = []
    for i, a in enumerate(now):
        for b in [*now[i + 1:], *old]:
            pair = _pair(a, b)
            if pair is not None and pair.score >= threshold:
                pairs.append(pair)
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


def _pair(a: Fingerprints, b: Fingerprints) -> Pair | None:
    if min(len(a.where), len(b.where)) < MIN_FINGERPRINTS:
        return None
    shared = a.hashes & b.hashes
    score = len(shared) / min(len(a.where), len(b.where))
    matches = _merge(sorted((a.where[h], b.where[h]) for h in shared))
    return Pair(a.name, b.name, score, matches)


def _merge(spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> tuple[Match, ...]:
    """Matched line spans joined where they touch on both sides, for showing side by side."""
    merged: list[Match] = []
    for (a0, a1), (b0, b1) in spans:
        if merged:
            last = merged[-1]
            if a0 <= last.a_lines[1] + 1 and last.b_lines[0] - 1 <= b0 <= last.b_lines[1] + 1:
                merged[-1] = Match((last.a_lines[0], max(a1, last.a_lines[1])),
                                   (min(b0, last.b_lines[0]), max(b1, last.b_lines[1])))
                continue
        merged.append(Match((a0, a1), (b0, b1)))
    return tuple(merged)


# -- a graded class folder ------------------------------------------------------------------------------------
REPORT = "similarity.json"


def class_prints(out: Path, prefix: str = "") -> list[Fingerprints]:
    return [fingerprint(prefix + r.student, code_of(Path(r.path))) for r in read_results(out)]


def starter_prints(out: Path) -> list[Fingerprints]:
    """The code every student was given: the rubric's starter and the handout's `.py` files, where known."""
    pointer = out / "rubric-path"
    if not pointer.is_file():
        return []
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
