"""The worker's working folder: the submission, the student's own files, and the course's handout.

Built by the grading process in a fresh scratch folder before a worker starts; every launcher then shows the
worker exactly that tree as its working directory (a copy in the sandbox's home, sub-folders kept).  The layers,
in order:

1. the submission file, at the top, under its own name;
2. the student's other files (helper modules, their own packages, data), under the relative paths the student
   gave them (a path that would leave the folder, or is too deep, is reduced to its last part);
3. the rubric's handout, at its own relative paths, read-only (mode 0444): a student file at the same path does
   not replace the course's file (`shadowed` lists them, for the report); the submission file itself is never
   replaced.

Only regular files are copied, never links.
"""
from __future__ import annotations

import logging
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from grader.rubric.handout import HandoutFile, safe_relative

log = logging.getLogger(__name__)

__all__ = ["StagedFolder", "shadow_note", "stage_workdir", "tree_size"]

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class StagedFolder:
    shadowed: tuple[str, ...] = ()  # the student's files the handout's replaced (relative paths)
    skipped: tuple[str, ...] = ()  # the student's files not copied (unreadable, or a name taken by the submission)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the report says of the working folder: nothing of the student's is left out without a word."""
        notes = [shadow_note(self.shadowed)] if self.shadowed else []
        if self.skipped:
            names = ", ".join(f"`{n}`" for n in self.skipped[:5]) + (
                f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else "")
            notes.append(f"not copied beside your submission: {names} (a name that leaves the folder or is taken, "
                         "or not a readable file)")
        return tuple(notes)


def stage_workdir(
    folder: Path, main: Path, helpers: Sequence[tuple[str, str]] = (), handout: Sequence[HandoutFile] = ()
) -> StagedFolder:
    """Fill `folder` (empty) as the module's docstring says."""
    shutil.copyfile(main, folder / main.name)
    taken = {main.name}
    shadowed: list[str] = []
    skipped: list[str] = []
    handout_names = {f.name for f in handout}
    for name, source in helpers:
        rel = safe_relative(name) or safe_relative(Path(name.replace("\\", "/")).name)
        if rel is None or rel.as_posix() in taken:
            skipped.append(name)
            continue
        if rel.as_posix() in handout_names:
            shadowed.append(rel.as_posix())
            continue
        target = folder / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or not Path(source).is_file() or Path(source).is_symlink():
                raise OSError("not a regular file, or a folder of that name exists")
            shutil.copyfile(source, target)
        except OSError as exc:
            log.warning("student file %s (%s) not copied: %s", name, source, exc)
            skipped.append(name)
            continue
        taken.add(rel.as_posix())
    for f in handout:
        if f.name == main.name:
            continue  # the submission is what the grader runs; a handout file of its name stays out
        target = folder / f.name
        for parent in reversed(target.relative_to(folder).parents[:-1]):
            if (folder / parent).is_file():  # a student file where the course has a folder
                (folder / parent).unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.rmtree(target)  # a student folder named like a course file: the course's file wins
        shutil.copyfile(f.path, target)
        target.chmod(READ_ONLY)
    return StagedFolder(tuple(shadowed), tuple(skipped))


def shadow_note(shadowed: Sequence[str]) -> str:
    """The report's one line on student files the handout replaced."""
    names = ", ".join(f"`{n}`" for n in shadowed[:5]) + (f" and {len(shadowed) - 5} more" if len(shadowed) > 5 else "")
    one = len(shadowed) == 1
    return (f"your {names} {'was' if one else 'were'} not used: the course hands out a file of {'that name' if one else 'those names'}, "
            "and grading uses the course's")


def tree_size(folder: Path) -> int:
    """Bytes of every regular file under `folder` (what a copy of it into a tmpfs needs)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
    return total
