"""The local executors of a batch: one submission at a time in this process (`--jobs 1`, a single submission),
several at once in threads of this process (`--jobs N`), or, where asked (GRADER_POOL=processes), a pool of
processes that each import torch once.  Each grades each job through `batch.grade_job`, inside its boundary.

Threads are the default for `--jobs N`: every submission's code runs in its own sandboxed worker process anyway,
so what a slot does here is wait for its worker and compare plain data.  A slot then costs one more worker (a
fork of the fork server, about 11 MB), not a process that imports torch again, and a batch starts as soon as this
process and the fork server have imported it.  What the grader's side shares between slots is made safe for
them: each slot has its own connection to the fork server (or its own zygote), the reference module is loaded
once, before any slot starts, and each call of the reference holds `grader.checks.base.REFERENCE`."""
from __future__ import annotations

import logging
import os
import queue
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import get_context
from typing import Iterator, Sequence

from grader.execution.sandbox import Launcher, with_threads
from grader.execution.zygote import cpu_share
from grader.grading.batch import Executor, Job, Settings, failed_job, grade_job
from grader.results import SubmissionResult
from grader.rubric.kinds import kind_names, kind_spec
from grader.rubric.schema import Rubric, load_rubric

log = logging.getLogger(__name__)

POOL_TRIES = 2  # a job whose pool process died this many times is a grader error, not retried forever


class SerialExecutor:
    name = "serial"

    def grade(self, rubric: Rubric, jobs: Sequence[Job], settings: Settings) -> Iterator[SubmissionResult]:
        settings = replace(settings, launcher=with_threads(settings.launcher, cpu_share(1)))
        for job in jobs:
            yield grade_job(rubric, job, settings)


@dataclass(frozen=True)
class ThreadExecutor:
    """`workers` submissions at once, each graded by a thread of this process (a slot); their student code runs
    in sandboxed worker processes as always.  Threads are daemons: after Ctrl-C (or the consumer stopping early)
    no queued submission starts, and the command's exit ends those still running with their workers."""

    workers: int
    name: str = "threads"

    def grade(self, rubric: Rubric, jobs: Sequence[Job], settings: Settings) -> Iterator[SubmissionResult]:
        settings = replace(settings, launcher=with_threads(settings.launcher, cpu_share(self.workers)))
        try:
            rubric.load_reference()  # once, here, not by two slots at once
        except Exception:  # each job then says so inside its boundary, as one at a time would
            log.warning("the reference did not load", exc_info=True)
        todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for job in jobs:
            todo.put(job)
        done: queue.SimpleQueue[SubmissionResult] = queue.SimpleQueue()
        stop = threading.Event()

        def slot() -> None:
            while not stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put(grade_job(rubric, job, settings))
                except BaseException:
                    log.exception("grading %s failed in a slot", job.path)
                    done.put(failed_job(rubric, job, traceback.format_exc(), settings))

        slots = [threading.Thread(target=slot, name=f"grader-slot-{i + 1}", daemon=True)
                 for i in range(min(self.workers, len(jobs)))]
        for thread in slots:
            thread.start()
        try:
            for _ in jobs:
                while True:
                    try:
                        yield done.get(timeout=0.5)  # a timeout, so that Ctrl-C reaches this thread at once
                        break
                    except queue.Empty:
                        continue
        finally:
            stop.set()
        for thread in slots:
            thread.join()


@dataclass(frozen=True)
class PoolExecutor:
    workers: int
    name: str = "pool"

    def grade(self, rubric: Rubric, jobs: Sequence[Job], settings: Settings) -> Iterator[SubmissionResult]:
        ctx = get_context("forkserver" if os.name == "posix" else "spawn")
        if os.name == "posix":
            # Pool processes are forked from a server that imported torch and the checks once: they share those
            # pages (and that time) instead of each paying for its own copy.
            ctx.set_forkserver_preload(preload())
        # Each submission's worker uses its share of the cores, so N at once do not oversubscribe them.
        settings = replace(settings, launcher=with_threads(settings.launcher, cpu_share(self.workers)))
        tries = dict.fromkeys((job.name for job in jobs), 0)
        queue = list(jobs)
        while queue:
            # A pool process that dies (the machine's OOM killer, say) breaks the whole pool: the submissions
            # it held are tried once more in a fresh pool, then recorded as grader errors; none is lost or
            # repeated.
            broken: list[Job] = []
            pending: dict[Future[dict[str, object]], Job] = {}
            pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx, initializer=_pool_init,
                initargs=(str(rubric.path), settings, cpu_share(self.workers)),
            )
            try:
                pending = {pool.submit(_pool_grade, job): job for job in queue}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = pending.pop(future)
                        try:
                            yield SubmissionResult.from_dict(future.result())
                        except BrokenProcessPool:
                            broken.append(job)
                        except Exception:
                            log.exception("grading %s failed in a pool process", job.path)
                            yield failed_job(rubric, job, traceback.format_exc(), settings)
            finally:
                # On Ctrl-C (or the consumer stopping early) nothing queued may start, and nothing waits for it.
                pool.shutdown(wait=not pending, cancel_futures=True)
            queue = []
            for job in broken:
                tries[job.name] += 1
                if tries[job.name] < POOL_TRIES:
                    queue.append(job)
                else:
                    trace = f"the grading process died {POOL_TRIES} times while this submission was being graded"
                    log.error("%s: %s", job.path, trace)
                    yield failed_job(rubric, job, trace, settings)


# -- inside a pool process -------------------------------------------------------------------------------------
_POOL_STATE: dict[str, object] = {}


def preload() -> list[str]:
    """What every pool process needs, imported once by the fork server so the pool processes share those pages:
    torch, the grading code and every check kind's module (SymPy with the formula kind); a rubric loads none of
    them by itself."""
    kinds = (kind_spec(kind).check.partition(":")[0] for kind in kind_names())
    return ["torch", "grader.grading.submission", *dict.fromkeys(kinds)]


def _pool_init(rubric_path: str, settings: Settings, threads: int) -> None:
    import torch  # paid once per pool process (or once by the fork server), not per submission

    torch.set_num_threads(threads)  # the grader's own share (reference runs, comparisons)
    _POOL_STATE.update(rubric=load_rubric(rubric_path), settings=settings)


def _pool_grade(job: Job) -> dict[str, object]:
    rubric, settings = _POOL_STATE["rubric"], _POOL_STATE["settings"]
    return grade_job(rubric, job, settings).serialize()  # type: ignore[arg-type]


def local_executor(workers: int, jobs: int) -> Executor:
    """One at a time for one worker or one job; else threads, or processes where GRADER_POOL=processes asks."""
    if workers <= 1 or jobs <= 1:
        return SerialExecutor()
    if os.environ.get("GRADER_POOL", "threads") == "processes":
        return PoolExecutor(workers)
    return ThreadExecutor(workers)


def run_jobs(
    rubric: Rubric,
    jobs: list[Job],
    *,
    workers: int = 1,
    launcher: Launcher | None = None,
    device: str = "cpu",
    public_only: bool = False,
    executor: Executor | None = None,
) -> Iterator[SubmissionResult]:
    """Yield results as submissions finish (not in input order when `workers` > 1)."""
    chosen: Executor = executor or local_executor(workers, len(jobs))
    yield from chosen.grade(rubric, jobs, Settings(launcher, device, public_only))
