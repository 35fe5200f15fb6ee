"""The executors behind `grader grade`: this process and a local pool give the same results, each job once."""
from __future__ import annotations

import shutil
from pathlib import Path

from grader.execution.launchers import choose_launcher
from grader.grading.batch import Job, Settings
from grader.grading.executors import PoolExecutor, SerialExecutor, run_jobs
from grader.rubric.schema import load_rubric
from tests.conftest import DATA

RUBRIC = DATA / "mini" / "rubric.yaml"
CLASS = DATA / "hostile" / "class"


def _jobs(folder: Path) -> list[Job]:
    folder.mkdir()
    jobs = []
    for name, source in {"ann": "zed_honest", "ben": "liar_objects", "cat": "zed_honest"}.items():
        shutil.copy(CLASS / f"{source}.py", folder / f"{name}.py")
        jobs.append(Job(str(folder / f"{name}.py"), name))
    jobs.append(Job(str(folder / "missing.ipynb"), "gone"))  # vanished since discovery: a clear result, not a crash
    return jobs


def test_serial_and_pool_executors_agree(tmp_path: Path) -> None:
    rubric = load_rubric(RUBRIC)
    jobs = _jobs(tmp_path / "class")
    settings = Settings(choose_launcher("auto"))
    serial = {r.student: r for r in SerialExecutor().grade(rubric, jobs, settings)}
    pooled = [r for r in PoolExecutor(2).grade(rubric, jobs, settings)]
    assert sorted(r.student for r in pooled) == ["ann", "ben", "cat", "gone"]  # each job exactly once
    for r in pooled:
        assert [(q.qid, q.score, q.status) for q in r.questions] == [
            (q.qid, q.score, q.status) for q in serial[r.student].questions
        ]
    assert {r.student: r.score for r in pooled} == {"ann": 10, "ben": 0, "cat": 10, "gone": 0}
    assert serial["gone"].load_error and not serial["gone"].needs_ta


def test_run_jobs_picks_the_pool_for_more_than_one_worker(tmp_path: Path) -> None:
    rubric = load_rubric(RUBRIC)
    jobs = _jobs(tmp_path / "class")[:2]
    results = list(run_jobs(rubric, jobs, workers=2, launcher=choose_launcher("auto")))
    assert sorted((r.student, r.score) for r in results) == [("ann", 10), ("ben", 0)]
