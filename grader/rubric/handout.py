"""What a course hands out beside the notebook, and the packages its students' code needs.

A rubric's `handout:` names a folder (relative to the rubric) holding the course's files exactly as students
have them: helper modules (`dnn_utils.py`), packages (`cs231n/`, sub-folders kept), small data files
(`data/x.npy`).  They are laid into every worker's working folder before the student's cells run (see
`grader.execution.workdir`), so `from dnn_utils import sigmoid` and `np.load("data/x.npy")` work as they do in the
course.  The handout is public: the student kit carries it too.

A rubric's `requires:` lists requirement strings (`h5py`, `scikit-learn>=1.3`) of the packages the students'
code imports beyond the grader's own.  `missing_requirements` says which of them the running environment lacks;
grading, the kit and the Gradescope autograder check them before any student code runs.

Nothing here runs student code or imports the handout's modules.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.errors import GraderError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "Handout",
    "HandoutError",
    "HandoutFile",
    "installed_version",
    "load_handout",
    "missing_requirements",
    "parse_requirement",
    "require",
    "requirement_line",
    "safe_relative",
]

# As for a student's folder (grader.sources.discover): files, folder depth, one file's size; and the whole handout.
MAX_FILES = 200
MAX_DEPTH = 4
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
SKIPPED = {"__pycache__", ".ipynb_checkpoints", "__MACOSX", ".git"}


class HandoutError(ValueError):
    """The handout folder breaks a limit or holds something that cannot be handed out (a link, a device)."""


@dataclass(frozen=True)
class HandoutFile:
    """One file of the handout: its path inside the working folder (POSIX, relative) and where it is now."""

    name: str
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Handout:
    folder: Path | None
    files: tuple[HandoutFile, ...] = ()

    @property
    def digest(self) -> str:
        """Names and contents of every file: part of a verdict's cache key."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f.name.encode("utf-8", "surrogateescape") + b"\0" + f.sha256.encode() + b"\n")
        return digest.hexdigest()

    def __bool__(self) -> bool:
        return bool(self.files)


def safe_relative(name: str, max_depth: int = MAX_DEPTH) -> PurePosixPath | None:
    """`name` as a relative path that stays inside a folder, or None: no absolute paths, no `..`, no empty or
    hidden parts, at most `max_depth` folders deep.  Backslashes (a Windows zip's names) count as separators."""
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or path.is_absolute() or any(p == ".." for p in parts) or len(parts) - 1 > max_depth:
        return None
    if any("\0" in p for p in parts):
        return None
    return PurePosixPath(*parts)


def load_handout(folder: Path) -> Handout:
    """Every file under `folder`, checked against the limits; raises HandoutError naming what is wrong."""
    if not folder.is_dir():
        raise HandoutError(f"the handout folder {folder} does not exist")
    files: list[HandoutFile] = []
    total = 0

    def walk(current: Path, depth: int) -> None:
        nonlocal total
        for child in sorted(current.iterdir()):
            if child.name in SKIPPED or child.name.startswith("."):
                continue
            rel = child.relative_to(folder).as_posix()
            if child.is_symlink():
                raise HandoutError(f"{rel} is a symbolic link; a handout holds files and folders only")
            if child.is_dir():
                if depth + 1 > MAX_DEPTH:
                    raise HandoutError(f"{rel} is more than {MAX_DEPTH} folders deep")
                walk(child, depth + 1)
                continue
            if not child.is_file():
                raise HandoutError(f"{rel} is not a regular file")
            size = child.stat().st_size
            if size > MAX_FILE_BYTES:
                raise HandoutError(f"{rel} is {size // 2**20} MiB; a handout file may be {MAX_FILE_BYTES // 2**20} MiB")
            total += size
            if total > MAX_TOTAL_BYTES:
                raise HandoutError(f"the handout holds more than {MAX_TOTAL_BYTES // 2**20} MiB")
            if len(files) >= MAX_FILES:
                raise HandoutError(f"the handout holds more than {MAX_FILES} files")
            files.append(HandoutFile(rel, child.resolve(), hashlib.sha256(child.read_bytes()).hexdigest(), size))

    walk(folder, 0)
    return Handout(folder.resolve(), tuple(files))


def parse_requirement(text: str) -> str | None:
    """Why `text` is not a requirement string (`h5py`, `scikit-learn>=1.3`), or None when it is one."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement as exc:
        return str(exc).splitlines()[0]
    return None


def installed_version(requirement: str) -> str | None:
    """The installed version of the package a requirement string names, or None where it is not installed."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        return metadata.version(Requirement(requirement).name)
    except metadata.PackageNotFoundError:
        return None


def missing_requirements(requires: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(requirement, the version this environment has instead, or "" where the package is not installed) for
    each requirement the running environment does not satisfy.  Requirements are checked at rubric load."""
    from packaging.requirements import Requirement

    missing: list[tuple[str, str]] = []
    for text in requires:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = installed_version(text)
        if version is None:
            missing.append((text, ""))
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append((text, version))
    return missing


def require(requires: tuple[str, ...] | list[str], who: str = "the rubric") -> None:
    """Stop (GraderError: exit 2) where this environment lacks a required package, with the pip line."""
    missing = missing_requirements(requires)
    if missing:
        raise GraderError(requirement_line(missing, who))


def requirement_line(missing: list[tuple[str, str]], who: str = "the rubric") -> str:
    """One line: `the rubric requires h5py, which this environment lacks: pip install h5py`."""
    wanted = [text for text, _ in missing]
    others = [f"{text.split(';')[0]}: {version} is installed" for text, version in missing if version]
    line = f"{who} requires {', '.join(wanted)}, which this environment lacks"
    if others:
        line += f" ({'; '.join(others)})"
    quoted = " ".join(t if re.fullmatch(r"[A-Za-z0-9._-]+", t) else f"'{t}'" for t in wanted)
    return f"{line}: pip install {quoted}"
