"""`grader grade RUBRIC SUBMISSION_OR_DIR... --out DIR`: grade a class, write results, reports, gradebook."""
from __future__ import annotations

import sys
from pathlib import Path

from grader.batch import Job, job_names, run_jobs
from grader.errors import GraderError
from grader.report import write_index, write_report
from grader.results import SubmissionResult
from grader.rubric import load_rubric
from grader.sandbox import Launcher
from grader.scoring import atomic_write, gradebook_csv, write_results_json
from grader.submission import find_submissions


def grade(
    rubric_path: Path,
    targets: list[Path],
    out: Path,
    *,
    jobs: int = 1,
    launcher: Launcher | None = None,
    device: str = "cpu",
) -> int:
    rubric = load_rubric(rubric_path)
    for target in targets:
        if not target.exists() and not target.is_symlink():
            raise GraderError(f"no such submission file or folder: {target}")
    paths = find_submissions(targets)
    if not paths:
        raise GraderError(f"no .ipynb or .py submissions in {', '.join(map(str, targets))}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    names = job_names(paths)
    work = [Job(str(p), n, str(out / "logs" / f"{n}.stdout.txt")) for p, n in zip(paths, names)]
    results: list[SubmissionResult] = []
    for i, result in enumerate(run_jobs(rubric, work, workers=jobs, launcher=launcher, device=device), 1):
        folder = out / result.student
        write_results_json(result, folder)
        write_report(result, rubric, folder)
        results.append(result)
        print(f"[{i}/{len(work)}] {result.student}: {result.score:g}/{result.max_score:g}", file=sys.stderr)
    atomic_write(out / "gradebook.csv", gradebook_csv(rubric, results))
    index = write_index(results, rubric, out)
    print(f"graded {len(results)} submissions; class summary: {index}")
    return 0
