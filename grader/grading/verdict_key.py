"""Everything that decides a verdict, as one cache key: the submission's bytes, the rubric's, the reference's
with the course modules it imports, the handout's, the installed versions of what the rubric requires, and the
grader's own version and code.  A stored result is reused only under an equal key (the gradebook's cache; a
Dask worker's check that it runs the same grader and reference).
"""
from __future__ import annotations

import ast
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from grader import __version__
from grader.rubric.handout import installed_version
from grader.rubric.schema import Rubric


@dataclass(frozen=True)
class CacheKey:
    """What a stored result depends on; equal keys mean grading again would give the same result."""

    submission_sha256: str
    rubric_sha256: str
    grader_version: str


def verdict_key(rubric: Rubric, submission: Path, helpers: Iterable[tuple[str, str]] = ()) -> CacheKey:
    """Everything that decides a verdict: the submission's bytes (and its helper files', by name), the
    rubric's and the reference's (with the course modules it imports), and the grader's version and own code.
    Editing any of them grades again."""
    digest = file_digest(submission)
    helpers = sorted(helpers)
    if digest and helpers:
        parts = [digest, *(f"{name}\0{file_digest(Path(path))}" for name, path in helpers)]
        digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return CacheKey(digest, rubric_digest(rubric), grader_fingerprint())


def rubric_digest(rubric: Rubric) -> str:
    digest = hashlib.sha256(rubric.sha256.encode())
    root = rubric.reference_path.parent
    for path in reference_files(rubric.reference_path):
        digest.update(b"\0" + str(path.relative_to(root)).encode("utf-8", "surrogateescape") + b"\0")
        digest.update(path.read_bytes())
    # The course's handout (its files' names and bytes) and the installed versions of what the rubric requires.
    digest.update(b"\0handout\0" + rubric.handout.digest.encode())
    for requirement in rubric.requires:
        digest.update(b"\0requires\0" + requirement.encode() + b"\0" + (installed_version(requirement) or "").encode())
    return digest.hexdigest()


def reference_files(reference: Path) -> list[Path]:
    """The reference module and every module of its own folder that it imports, directly or not."""
    root = reference.parent
    found: dict[Path, None] = {}
    todo = [reference]
    while todo:
        path = todo.pop()
        if path in found or not path.is_file():
            continue
        found[path] = None
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, RecursionError):
            continue  # the import itself fails at load, loudly; nothing more to follow here
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                folder = path.parent if node.level else root
                for _ in range(max(node.level - 1, 0)):
                    folder = folder.parent
                names = [f"{base}.{a.name}" if base else a.name for a in node.names] + ([base] if base else [])
                todo += _module_files(folder, names, root)
                continue
            todo += _module_files(root, names, root)
    return sorted(found)


def _module_files(folder: Path, dotted: list[str], root: Path) -> list[Path]:
    out = []
    for name in dotted:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            base = folder.joinpath(*parts[:i])
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file() and candidate.resolve().is_relative_to(root.resolve()):
                    out.append(candidate)
    return out


@functools.lru_cache(maxsize=1)
def grader_fingerprint() -> str:
    """The grader's version and a digest of its own code and templates: a fix to a check grades again."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".j2")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def file_digest(path: Path) -> str:
    """sha256 of a regular file's bytes, or "" for anything else (never a cache hit: it is cheap to redo)."""
    try:
        if path.is_symlink() or not path.is_file():
            return ""
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return ""
