"""The executors behind `grader grade`: this process, threads of it and a pool of processes give the same results,
each job once, under every launcher."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from grader.execution import forkserver
from grader.execution.launchers import choose_launcher
from grader.execution.sandbox import BwrapLauncher, Launch, Launcher, PlainLauncher
from grader.execution.zygote import WarmLauncher
from grader.grading.batch import Job, Settings
from grader.grading.executors import PoolExecutor, SerialExecutor, ThreadExecutor, local_executor, run_jobs
from grader.rubric.schema import Limits, load_rubric
from tests.conftest import DATA, ROOT, needs_bwrap, needs_forkserver

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


def test_serial_threads_and_pool_executors_agree(tmp_path: Path) -> None:
    rubric = load_rubric(RUBRIC)
    jobs = _jobs(tmp_path / "class")
    settings = Settings(choose_launcher("auto"))
    serial = {r.student: r for r in SerialExecutor().grade(rubric, jobs, settings)}
    for executor in (ThreadExecutor(2), PoolExecutor(2)):
        graded = list(executor.grade(rubric, jobs, settings))
        assert sorted(r.student for r in graded) == ["ann", "ben", "cat", "gone"]  # each job exactly once
        for r in graded:
            assert [(q.qid, q.score, q.status) for q in r.questions] == [
                (q.qid, q.score, q.status) for q in serial[r.student].questions
            ]
        assert {r.student: r.score for r in graded} == {"ann": 10, "ben": 0, "cat": 10, "gone": 0}
    assert serial["gone"].load_error and not serial["gone"].needs_ta


def test_run_jobs_grades_in_threads_for_more_than_one_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rubric = load_rubric(RUBRIC)
    jobs = _jobs(tmp_path / "class")[:2]
    results = list(run_jobs(rubric, jobs, workers=2, launcher=choose_launcher("auto")))
    assert sorted((r.student, r.score) for r in results) == [("ann", 10), ("ben", 0)]
    assert isinstance(local_executor(2, 2), ThreadExecutor)
    assert isinstance(local_executor(2, 1), SerialExecutor) and isinstance(local_executor(1, 5), SerialExecutor)
    monkeypatch.setenv("GRADER_POOL", "processes")
    assert isinstance(local_executor(2, 2), PoolExecutor)


CNN = ROOT / "submissions" / "cnn-rnn"


def _launchers() -> list[object]:
    return [
        pytest.param(lambda: WarmLauncher(BwrapLauncher()), id="zygote", marks=needs_bwrap),
        pytest.param(lambda: forkserver.start(BwrapLauncher()), id="forkserver", marks=needs_forkserver),
    ]


@pytest.mark.parametrize("make_launcher", _launchers())
def test_slots_in_threads_grade_as_one_at_a_time(tmp_path: Path, make_launcher: Callable[[], Launcher]) -> None:
    """Every kind of the cnn-rnn rubric (formulas with their proofs, gradients, functions, values), two slots
    sharing one reference and one launcher: each result, details included, is the one-at-a-time result."""
    rubric = load_rubric(ROOT / "rubrics" / "cnn-rnn.yaml")
    folder = tmp_path / "class"
    folder.mkdir()
    jobs = []
    for i, source in enumerate(["alice_correct.ipynb", "bob_partial.py", "alice_correct.ipynb", "bob_partial.py"]):
        path = folder / f"s{i}{Path(source).suffix}"
        shutil.copy(CNN / source, path)
        jobs.append(Job(str(path), f"s{i}"))
    settings = Settings(make_launcher())
    serial = {r.student: r for r in SerialExecutor().grade(rubric, jobs, settings)}
    threaded = list(ThreadExecutor(2).grade(rubric, jobs, settings))
    assert sorted(r.student for r in threaded) == ["s0", "s1", "s2", "s3"]
    assert {r.student: r.score for r in threaded} == {"s0": 30, "s1": 14, "s2": 30, "s3": 14}
    for r in threaded:
        assert [(q.qid, q.score, q.status, q.message, q.details) for q in r.questions] == [
            (q.qid, q.score, q.status, q.message, q.details) for q in serial[r.student].questions
        ]
        assert r.sandbox == serial[r.student].sandbox != "none"


class _NoGraderLauncher(PlainLauncher):
    """A worker environment without the grader (a cluster node's broken install, say): its worker cannot start."""

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        argv = ["grader_not_installed.worker" if a == "grader.worker" else a for a in worker_argv]
        return super().launch(argv, scratch, limits)


def test_a_worker_that_cannot_start_is_the_graders_failure_not_the_students(tmp_path: Path) -> None:
    rubric = load_rubric(RUBRIC)
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(CLASS / "zed_honest.py", folder / "ann.py")
    job = Job(str(folder / "ann.py"), "ann", str(tmp_path / "ann.log"))
    [result] = SerialExecutor().grade(rubric, [job], Settings(_NoGraderLauncher()))
    assert result.needs_ta and result.score == 0
    assert result.grader_error is not None
    assert "the grader's worker did not start" in result.grader_error
    assert "No module named 'grader_not_installed'" in result.grader_error
    assert not any("ended the worker process" in q.message for q in result.questions)
