"""Grading many submissions: the jobs (plain data; their folder names are grader.sources.names), the failure boundary around each one,
and the `Executor` seam that decides where they run (grader/grading/executors.py: this process or a local pool)."""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from grader.execution.sandbox import Launcher
from grader.grading.submission import failed_submission, grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One submission to grade; plain data so that it can cross to another process or machine."""

    path: str
    name: str  # unique per batch: the output folder and the gradebook's student column
    log_path: str | None = None
    helpers: tuple[tuple[str, str], ...] = ()  # files graded with it: (the student's name for it, its path)


@dataclass(frozen=True)
class Settings:
    """How every submission of a batch is graded; plain data, so that it can cross to another process."""

    launcher: Launcher | None = None
    device: str = "cpu"
    public_only: bool = False


def grade_job(rubric: Rubric, job: Job, settings: Settings) -> SubmissionResult:
    """One submission inside its failure boundary: whatever the grader raises becomes this submission's
    result ("grader error, needs a TA"), never the batch's end.  Every executor grades through this."""
    path = Path(job.path)
    try:
        result = grade_submission(
            rubric, path, launcher=settings.launcher, device=settings.device, public_only=settings.public_only,
            log_path=Path(job.log_path) if job.log_path else None, helpers=job.helpers,
        )
    except Exception:
        log.exception("grading %s failed inside the grader", job.path)
        result = failed_job(rubric, job, traceback.format_exc(), settings)
    return replace(result, student=job.name)


def failed_job(rubric: Rubric, job: Job, trace: str, settings: Settings) -> SubmissionResult:
    """The result of a job its executor lost (a process that died, a task that failed): needs a TA."""
    return replace(failed_submission(rubric, Path(job.path), trace, public_only=settings.public_only), student=job.name)


class Executor(Protocol):
    """Where a batch's submissions are graded: this process, a local pool, a cluster.

    `grade` yields one result per job, in any order, each made by `grade_job` (so each inside its failure
    boundary); a job the executor itself loses is yielded as `failed_job`, never dropped and never yielded twice.
    """

    @property
    def name(self) -> str: ...

    def grade(self, rubric: Rubric, jobs: Sequence[Job], settings: Settings) -> Iterator[SubmissionResult]: ...
