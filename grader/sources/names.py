"""A submission's folder name in the output folder: unique in its class, safe on every file system, never one of
the class's own files.  Sources name their jobs with it (grader.sources.discover); so does `validate`."""
from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path

# Names of what `grader grade` writes beside the students' folders; no student folder may take one.
CLASS_FILES = frozenset({
    "gradebook.csv", "gradebook.sqlite", "gradebook.sqlite-wal", "gradebook.sqlite-shm", "gradebook.sqlite-journal",
    "index.html", "grader.log", "rubric-path", "logs", "assignment.json",
})
MAX_NAME = 60  # characters of a folder name (at most 240 bytes in UTF-8, under every file system's 255)


def safe_name(text: str) -> str:
    """A folder name made of `text`'s letters and digits (any script), `-` and `_`; never empty, never hidden."""
    text = os.fsencode(text).decode("utf-8", "replace")  # bytes that are not UTF-8 come back as U+FFFD
    out = "".join(c if c.isalnum() or c in "-_" else "_" for c in text[: MAX_NAME * 2])
    out = re.sub("_{2,}", "_", out).strip("_-")[:MAX_NAME].strip("_-")
    return out or "submission"


def job_names(paths: list[Path]) -> list[str]:
    """One folder name per submission, unique by construction and deterministic for a given set of files.

    The file stem where it is unique (`alice`); the whole file name where stems collide (`bob_py`, `bob_ipynb`);
    and where even that collides (`bob_py.ipynb` beside `bob.py`), a short digest of the path.  Names are
    compared case-insensitively (two folders `Bob` and `bob` are one on macOS) and never equal a class file.
    """
    stems = [safe_name(p.stem) for p in paths]
    counts = Counter(s.casefold() for s in stems)
    names = [s if counts[s.casefold()] == 1 else safe_name(p.name.replace(".", "_")) for s, p in zip(stems, paths)]
    # The file's own name decides a digest, so a class folder moved elsewhere keeps its names (and its cache);
    # only files of one name in different folders need their path to tell them apart.
    same_file_name = Counter(p.name for p in paths)
    return unique_names(names, [p.name if same_file_name[p.name] == 1 else str(p) for p in paths])


def unique_names(names: list[str], keys: list[str]) -> list[str]:
    """`names` made unique by construction: a name shared (case-insensitively) with another, or equal to a class
    file, gets a short digest of its `key` (what tells its submission apart) as a suffix."""
    counts = Counter(n.casefold() for n in names)
    taken: set[str] = set()
    unique = []
    for base, key in zip(names, keys):
        name = base
        if counts[base.casefold()] > 1 or base.casefold() in CLASS_FILES or base.casefold() in taken:
            digest = hashlib.sha256(os.fsencode(key)).hexdigest()
            name = f"{base[: MAX_NAME - 9]}-{digest[:8]}"
            while name.casefold() in taken:  # astronomically unlikely; still unique by construction
                digest = hashlib.sha256(digest.encode()).hexdigest()
                name = f"{base[: MAX_NAME - 9]}-{digest[:8]}"
        taken.add(name.casefold())
        unique.append(name)
    return unique
