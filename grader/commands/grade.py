"""`grader grade RUBRIC SUBMISSION_OR_DIR... --out DIR`: grade a class, write results, reports, gradebook.

Resumable: each finished submission is committed to DIR/gradebook.sqlite before its files are written, and a
submission whose bytes, rubric and grader version are unchanged since its last grading is not run again
(`force=True` runs everything).  Kill the command at any moment and run it again to finish the batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

from grader import __version__
from grader.batch import Job, job_names, run_jobs
from grader.errors import GraderError
from grader.gradebook import FILENAME, CacheKey, Gradebook, file_digest
from grader.report import write_index, write_report
from grader.results import SubmissionResult
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Launcher, hiding
from grader.terminal import GradeProgress, print_summary
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
    force: bool = False,
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
    atomic_write(out / "rubric-path", f"{rubric.path}\n")  # lets `grader manual --out DIR` find the rubric
    # The reference, the rubrics and the outputs stay out of the worker's sight even where they sit in a
    # folder it must see (a reference package installed in the virtual environment, say).
    launcher = hiding(launcher, [rubric.reference_path, rubric.path.parent, out]) if launcher else None
    names = job_names(paths)
    work = [Job(str(p), n, str(out / "logs" / f"{n}.stdout.txt")) for p, n in zip(paths, names)]
    keys = {job.name: CacheKey(file_digest(Path(job.path)), rubric.sha256, __version__) for job in work}
    with Gradebook(out / FILENAME) as book:
        done = {} if force else {n: r for n, k in keys.items() if (r := book.cached(n, k)) is not None}
        for result in done.values():
            _write_outputs(result, rubric, out)  # cheap, and heals outputs a kill left unwritten
        if done:
            print(f"{len(done)} of {len(work)} submissions unchanged since they were graded; reusing their results "
                  "(--force grades them again)", file=sys.stderr)
        todo = [job for job in work if job.name not in done]
        for result in GradeProgress(len(todo)).track(run_jobs(rubric, todo, workers=jobs, launcher=launcher, device=device)):
            book.record(result, keys[result.student])  # committed first: the gradebook is the truth
            _write_outputs(result, rubric, out)
            done[result.student] = result
    results = [done[job.name] for job in work]
    atomic_write(out / "gradebook.csv", gradebook_csv(rubric, results))
    index = write_index(results, rubric, out)
    print_summary(results, rubric)
    print(f"graded {len(todo)} submissions, {len(work) - len(todo)} unchanged; class summary: {index}")
    return 0


def _write_outputs(result: SubmissionResult, rubric: Rubric, out: Path) -> None:
    folder = out / result.student
    write_results_json(result, folder)
    write_report(result, rubric, folder)
