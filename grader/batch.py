"""Grading many submissions: in this process, or in a pool of processes that each import torch once."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import traceback
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

from grader.grading import failed_submission, grade_submission
from grader.results import SubmissionResult
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Launcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One submission to grade; plain data so that it can cross to another process or machine."""

    path: str
    name: str  # unique per batch: the output folder and the gradebook's student column
    log_path: str | None = None
    helpers: tuple[tuple[str, str], ...] = ()  # files graded with it: (the student's name for it, its path)


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
    counts = Counter(n.casefold() for n in names)
    same_file_name = Counter(p.name for p in paths)
    taken: set[str] = set()
    unique = []
    for name, path in zip(names, paths):
        if counts[name.casefold()] > 1 or name.casefold() in CLASS_FILES or name.casefold() in taken:
            # The file's own name decides the digest, so a class folder moved elsewhere keeps its names (and
            # its cache); only files of one name in different folders need their path to tell them apart.
            key = path.name if same_file_name[path.name] == 1 else str(path)
            digest = hashlib.sha256(os.fsencode(key)).hexdigest()
            name = f"{name[: MAX_NAME - 9]}-{digest[:8]}"
            while name.casefold() in taken:  # astronomically unlikely; still unique by construction
                digest = hashlib.sha256(digest.encode()).hexdigest()
                name = f"{name[: MAX_NAME - 9]}-{digest[:8]}"
        taken.add(name.casefold())
        unique.append(name)
    return unique


def _grade(rubric: Rubric, job: Job, launcher: Launcher | None, device: str, public_only: bool) -> SubmissionResult:
    """One submission inside its failure boundary: whatever the grader raises becomes this submission's
    result ("grader error, needs a TA"), never the batch's end."""
    path = Path(job.path)
    try:
        result = grade_submission(
            rubric, path, launcher=launcher, device=device, public_only=public_only,
            log_path=Path(job.log_path) if job.log_path else None, helpers=job.helpers,
        )
    except Exception:  # noqa: BLE001 - the boundary: logged whole, recorded for a TA
        log.exception("grading %s failed inside the grader", job.path)
        result = failed_submission(rubric, path, traceback.format_exc(), public_only=public_only)
    return replace(result, student=job.name)


# -- pool side ------------------------------------------------------------------------------------------------
_POOL_STATE: dict[str, object] = {}


def _pool_init(rubric_path: str, launcher: Launcher | None, device: str, public_only: bool) -> None:
    import torch  # noqa: F401 - paid once per pool process, not per submission

    _POOL_STATE.update(rubric=load_rubric(rubric_path), launcher=launcher, device=device, public_only=public_only)


def _pool_grade(job: Job) -> dict[str, object]:
    s = _POOL_STATE
    result = _grade(s["rubric"], job, s["launcher"], s["device"], s["public_only"])  # type: ignore[arg-type]
    return result.serialize()


def run_jobs(
    rubric: Rubric,
    jobs: list[Job],
    *,
    workers: int = 1,
    launcher: Launcher | None = None,
    device: str = "cpu",
    public_only: bool = False,
) -> Iterator[SubmissionResult]:
    """Yield results as submissions finish (not in input order when `workers` > 1)."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _grade(rubric, job, launcher, device, public_only)
        return
    ctx = get_context("forkserver" if os.name == "posix" else "spawn")
    tries = dict.fromkeys((job.name for job in jobs), 0)
    queue = list(jobs)
    while queue:
        # A pool process that dies (the machine's OOM killer, say) breaks the whole pool: the submissions it
        # held are tried once more in a fresh pool, then recorded as grader errors; none is lost or repeated.
        broken: list[Job] = []
        pending: dict[Future[dict[str, object]], Job] = {}
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_pool_init,
            initargs=(str(rubric.path), launcher, device, public_only),
        )
        try:
            pending = {pool.submit(_pool_grade, job): job for job in queue}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    try:
                        yield SubmissionResult.from_dict(future.result())  # type: ignore[arg-type]
                    except BrokenProcessPool:
                        broken.append(job)
                    except Exception:  # noqa: BLE001 - this submission's result, never the batch's end
                        log.exception("grading %s failed in a pool process", job.path)
                        yield replace(failed_submission(rubric, Path(job.path), traceback.format_exc(),
                                                        public_only=public_only), student=job.name)
        finally:
            # On Ctrl-C (or the consumer stopping early) nothing queued may start, and nothing waits for it.
            pool.shutdown(wait=not pending, cancel_futures=True)
        queue = []
        for job in broken:
            tries[job.name] += 1
            if tries[job.name] < 2:
                queue.append(job)
            else:
                trace = "the grading process died twice while this submission was being graded"
                log.error("%s: %s", job.path, trace)
                yield replace(failed_submission(rubric, Path(job.path), trace, public_only=public_only), student=job.name)
