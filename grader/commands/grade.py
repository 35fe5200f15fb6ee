"""`grader grade RUBRIC SUBMISSION_OR_DIR... --out DIR`: grade a class, write results, reports, gradebook.

Resumable: each finished submission is committed to DIR/gradebook.sqlite before its files are written, and a
submission whose bytes, rubric and grader version are unchanged since its last grading is not run again
(`force=True` runs everything).  Kill the command at any moment and run it again to finish the batch.
"""
from __future__ import annotations

import html
import logging
import sys
from pathlib import Path

from grader.batch import Job, job_names, run_jobs
from grader.errors import GraderError
from grader.gradebook import FILENAME, Gradebook, verdict_key
from grader.grading import preflight
from grader.outdir import RENDER_SECONDS, finish
from grader.report import write_index
from grader.results import SubmissionResult
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Launcher, hiding
from grader.scoring import atomic_write, gradebook_csv
from grader.submission import find_submissions
from grader.terminal import GradeProgress, print_summary
from grader.timeouts import time_limit


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
    preflight(rubric)  # a bad rubric or reference stops here, before any student code runs
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
    keys = {job.name: verdict_key(rubric, Path(job.path)) for job in work}
    with Gradebook(out / FILENAME) as book:
        done = {} if force else {n: r for n, k in keys.items() if (r := book.cached(n, k)) is not None}
        for name, result in done.items():
            done[name] = _write_outputs(result, rubric, out)  # cheap, and heals outputs a kill left unwritten
        if done:
            print(f"{len(done)} of {len(work)} submissions unchanged since they were graded; reusing their results "
                  "(--force grades them again)", file=sys.stderr)
        todo = [job for job in work if job.name not in done]
        for result in GradeProgress(len(todo)).track(run_jobs(rubric, todo, workers=jobs, launcher=launcher, device=device)):
            student = finish(result, rubric)  # rendered (or its failure recorded) before anything is committed
            book.record(student.result, keys[result.student])  # committed first: the gradebook is the truth
            student.write(out / result.student)
            done[result.student] = student.result
    results = [done[job.name] for job in work]
    atomic_write(out / "gradebook.csv", gradebook_csv(rubric, results))
    index = _write_index(results, rubric, out)
    print_summary(results, rubric)
    print(f"graded {len(todo)} submissions, {len(work) - len(todo)} unchanged; class summary: {index}")
    flagged = [r.student for r in results if r.needs_ta]
    if flagged:
        print(f"grader: {len(flagged)} submission{'s' if len(flagged) > 1 else ''} need a TA (grader error; "
              f"details in {out / 'grader.log'} and their report-ta.html): {', '.join(flagged)}", file=sys.stderr)
        return EXIT_NEEDS_TA
    return 0


EXIT_NEEDS_TA = 1  # grading finished, every file was written, and some submissions need a person


def _write_outputs(result: SubmissionResult, rubric: Rubric, out: Path) -> SubmissionResult:
    student = finish(result, rubric)
    student.write(out / result.student)
    return student.result


def _write_index(results: list[SubmissionResult], rubric: Rubric, out: Path) -> Path:
    try:
        with time_limit(RENDER_SECONDS * 2, "writing the class summary"):
            return write_index(results, rubric, out)
    except Exception:  # noqa: BLE001 - the class files are written whatever one student's text holds
        logging.getLogger(__name__).exception("the class summary could not be rendered; writing a plain one")
        rows = "".join(f"<li>{html.escape(r.student)}: {r.score:g} / {r.max_score:g}</li>" for r in results)
        path = out / "index.html"
        atomic_write(path, f'<!doctype html>\n<meta charset="utf-8"><title>class</title><p>The full summary '
                           f"could not be written (see grader.log).</p><ul>{rows}</ul>\n")
        return path
