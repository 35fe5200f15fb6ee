"""Benchmark: throughput of the local pool against one and two local Dask workers (run by hand:
`.venv/bin/python bench/bench_cluster.py`).

Not a test: timings flake on shared machines.  Grades N copies of the cnn-rnn examples that run code
(`alice_correct.ipynb`, `bob_partial.py`, alternately) with each executor and prints submissions per minute.
A local pool starts afresh with each batch; a Dask worker keeps its grading process from one batch to the next,
so the cluster's first batch and a later one are shown apart.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import dask

from grader.execution.sandbox import choose_launcher
from grader.grading.batch import Executor, Job, Settings
from grader.grading.cluster import DaskExecutor
from grader.grading.executors import PoolExecutor, ThreadExecutor
from grader.rubric.schema import load_rubric

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "submissions" / "cnn-rnn" / name for name in ("alice_correct.ipynb", "bob_partial.py")]


def jobs(folder: Path, count: int) -> list[Job]:
    made = []
    for i in range(count):
        source = EXAMPLES[i % len(EXAMPLES)]
        path = folder / f"s{i:03d}{source.suffix}"
        shutil.copy(source, path)
        made.append(Job(str(path), path.stem))
    return made


def batch_seconds(executor: Executor, work: list[Job], settings: Settings) -> float:
    rubric = load_rubric(ROOT / "rubrics" / "cnn-rnn.yaml")
    start = time.perf_counter()
    results = list(executor.grade(rubric, work, settings))
    seconds = time.perf_counter() - start
    assert sorted(r.student for r in results) == sorted(j.name for j in work)
    assert not any(r.needs_ta for r in results)
    return seconds


def say(what: str, times: list[float], count: int) -> None:
    median = statistics.median(times)
    print(f"{what:<44} {median:6.1f} s  {count / median * 60:5.1f} submissions/min")


def local_cluster(workers: int) -> Any:
    from distributed import LocalCluster

    # As `dask worker --nthreads 1 --nworkers N` with DASK_DISTRIBUTED__WORKER__DAEMON=False.
    dask.config.set({"distributed.worker.daemon": False, "distributed.scheduler.worker-saturation": 1.0})
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()
    settings = Settings(choose_launcher(args.sandbox), "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        work = jobs(Path(tmp), args.submissions)
        print(f"{len(work)} cnn-rnn submissions, sandbox {settings.launcher.name if settings.launcher else 'none'}")
        rows: list[tuple[str, Executor]] = [("local pool, 1 process", PoolExecutor(1)),
                                            ("local pool, 2 processes", PoolExecutor(2)),
                                            ("this process, 2 threads (grader grade --jobs 2)", ThreadExecutor(2))]
        for name, executor in rows:  # every batch starts its pool afresh
            say(name, [batch_seconds(executor, work, settings) for _ in range(args.repeat)], len(work))
        for workers in (1, 2):
            with local_cluster(workers) as cluster:
                executor = DaskExecutor(cluster.scheduler_address, sandbox=args.sandbox)
                first = batch_seconds(executor, work, settings)  # the workers start their grading processes
                warm = [batch_seconds(executor, work, settings) for _ in range(args.repeat)]
            plural = "s" if workers > 1 else ""
            say(f"Dask, {workers} worker{plural}, first batch", [first], len(work))
            say(f"Dask, {workers} worker{plural}, next batch (workers warm)", warm, len(work))


if __name__ == "__main__":
    main()
