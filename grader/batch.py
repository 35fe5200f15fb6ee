"""Grading many submissions: in this process, or in a pool of processes that each import torch once."""
from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

from grader.grading import grade_submission
from grader.results import SubmissionResult
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Launcher


@dataclass(frozen=True)
class Job:
    """One submission to grade; plain data so that it can cross to another process or machine."""

    path: str
    name: str  # unique per batch: the output folder and the gradebook's student column
    log_path: str | None = None


def job_names(paths: list[Path]) -> list[str]:
    """Folder names per submission: the file stem, or the whole file name where two stems collide."""
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else p.name.replace(".", "_") for p in paths]


def _grade(rubric: Rubric, job: Job, launcher: Launcher | None, device: str, public_only: bool) -> SubmissionResult:
    from dataclasses import replace

    result = grade_submission(
        rubric, Path(job.path), launcher=launcher, device=device, public_only=public_only,
        log_path=Path(job.log_path) if job.log_path else None,
    )
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
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_pool_init,
        initargs=(str(rubric.path), launcher, device, public_only),
    ) as pool:
        pending: set[Future[dict[str, object]]] = {pool.submit(_pool_grade, job) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield SubmissionResult.from_dict(future.result())  # type: ignore[arg-type]
