"""Benchmark: wall time to grade the shipped example submissions (run by hand: `make bench`).

Not a test: timings flake on shared machines.  Prints one line per submission and the worker start-up cost.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from grader.execution import WorkerSession
from grader.grading import grade_submission
from grader.rubric import load_rubric
from grader.submission import Submission, find_submissions

ROOT = Path(__file__).resolve().parent.parent


def time_worker_start(rubric_path: Path, repeat: int) -> float:
    rubric = load_rubric(rubric_path)
    empty = ROOT / "bench" / "_empty.py"
    empty.write_text("x = 1\n")
    try:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            with WorkerSession(Submission(empty, "empty", ()), rubric.limits) as session:
                session.get("x")
            times.append(time.perf_counter() - start)
    finally:
        empty.unlink()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rubric", default=str(ROOT / "rubrics" / "cnn-rnn.yaml"))
    parser.add_argument("--submissions", default=str(ROOT / "submissions" / "cnn-rnn"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rubric = load_rubric(args.rubric)
    rubric.load_reference()
    print(f"worker start-up (python + torch import), median of {args.repeat}: {time_worker_start(Path(args.rubric), args.repeat):.2f} s")
    for path in find_submissions([Path(args.submissions)]):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = grade_submission(rubric, path)
            times.append(time.perf_counter() - start)
        print(f"{path.name:<32} {result.score:g}/{result.max_score:g}  median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
