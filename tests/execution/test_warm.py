"""Warm workers (grader/execution/zygote.py): each submission forked by a zygote starts from a state no earlier submission
could touch, keeps the whole sandbox, and is graded exactly as in a fresh worker."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from grader.classroom.score_files import gradescope
from grader.execution.launchers import choose_launcher
from grader.execution.sandbox import BwrapLauncher, PlainLauncher
from grader.execution.session import WorkerSession
from grader.execution.zygote import WarmLauncher, WarmProcess, cpu_share
from grader.grading.submission import grade_submission
from grader.rubric.schema import Limits, load_rubric
from grader.sources.load import load_submission
from tests.conftest import (
    DATA,
    ROOT,
    call,
    first_per_assignment,
    host_command_lines,
    needs_bwrap,
    scores,
    wait_until,
    worker_process,
)

WARM = DATA / "warm"
LIMITS = Limits(cell_timeout=30, call_timeout=30)


@needs_bwrap
def test_a_submission_leaves_nothing_for_the_next_in_its_slot(cnn_rubric):
    launcher = WarmLauncher(BwrapLauncher(), threads=2)
    token = f"warm-{uuid.uuid4().hex}"
    with WorkerSession(load_submission(WARM / "leaves_traces.py"), LIMITS, launcher) as session:
        assert session.run_cells() == []
        assert isinstance(worker_process(session), WarmProcess)
        written = call(session, "leave", token)
        # It could write only to its own places: its home, /tmp and /dev/shm.
        assert sorted(Path(p).parent.as_posix() for p in written) == ["/dev/shm", "/home/student", "/tmp"]
        assert wait_until(lambda: sum(token in line for line in host_command_lines()) == 2)
    assert wait_until(lambda: not any(token in line for line in host_command_lines())), "a daemon survived"
    with WorkerSession(load_submission(WARM / "looks_for_traces.py"), LIMITS, launcher) as session:
        assert session.run_cells() == []
        seen = call(session, "look", token)
    assert seen == {
        "files": [], "processes": [], "allclose": False, "torch_seed": seen["torch_seed"],
        "numpy_draw": seen["numpy_draw"], "random_draw": seen["random_draw"], "threads": 2, "env": None,
        "python_threads": 1, "tasks": seen["tasks"], "home": ["looks_for_traces.py"],
    }
    assert seen["torch_seed"] != 1234  # torch.manual_seed(1234): reseeded from the OS, as a fresh process is
    assert seen["numpy_draw"] != 0.1915194503788923  # np.random.seed(1234)'s first draw: reseeded from the OS
    assert seen["random_draw"] != 0.9664535356921388  # random.seed(1234)'s
    assert seen["tasks"] <= 3  # torch's own pool at most; not the earlier submission's sleeping thread
    # And a clean submission graded in the same slot right after earns every point.
    result = grade_submission(cnn_rubric, ROOT / "submissions" / "cnn-rnn" / "alice_correct.ipynb", launcher=launcher)
    assert result.score == cnn_rubric.max_score, scores(result)


@needs_bwrap
def test_a_worker_that_dies_is_forked_again_and_replays_its_cells():
    with WorkerSession(load_submission(WARM / "dies.py"), LIMITS, WarmLauncher(BwrapLauncher())) as session:
        failures = session.run_cells()
        assert [f.reason for f in failures] == ["died"]
        value, pid = call(session, "answer")  # type: ignore[misc]
        assert value == 42 and session.restarts == 1 and isinstance(worker_process(session), WarmProcess)
        assert pid == 2  # in the submission's own PID namespace, under its init


@needs_bwrap
def test_the_sandbox_holds_in_a_warm_worker(tmp_path):
    probe = DATA / "hostile" / "sandbox_probe.py"
    launcher = WarmLauncher(BwrapLauncher()).hiding([ROOT / "reference"])
    with WorkerSession(load_submission(probe), LIMITS, launcher) as session:
        assert session.run_cells() == []
        assert isinstance(worker_process(session), WarmProcess)
        assert call(session, "can_read", str(ROOT / "reference" / "cnn_rnn.py")) is False
        assert call(session, "can_read", "/etc/passwd") is False
        assert call(session, "interfaces") == ["lo"]
        assert str(call(session, "connect", "1.1.1.1", 53)).startswith("refused")
        seen = call(session, "process_command_lines")
        assert isinstance(seen, list) and not any("pytest" in line for line in seen) and len(seen) < 10
        for path, writable in (("/home/student/x", True), ("/tmp/x", True), ("/etc/x", False), ("/x", False)):
            assert call(session, "can_write", path) is writable, path


@needs_bwrap
def test_what_the_sandbox_binds_under_tmp_stays_visible_read_only(tmp_path):
    # A Python installed under /tmp (a CI's checkout, say) is bound there by bubblewrap; each submission's fresh
    # /tmp must not cover it, or every warm start fails and falls back to a fresh worker.
    assert str(tmp_path).startswith("/tmp/")
    (tmp_path / "lib.txt").write_text("kept")
    launcher = WarmLauncher(BwrapLauncher(roots=(*BwrapLauncher().roots, str(tmp_path))))
    with WorkerSession(load_submission(DATA / "hostile" / "sandbox_probe.py"), LIMITS, launcher) as session:
        assert session.run_cells() == []
        assert isinstance(worker_process(session), WarmProcess)
        assert call(session, "can_read", str(tmp_path / "lib.txt")) is True
        assert call(session, "can_write", str(tmp_path / "lib.txt")) is False
        assert call(session, "can_write", "/tmp/own.txt") is True
    assert (tmp_path / "lib.txt").read_text() == "kept"


@needs_bwrap
def test_the_memory_limit_holds_in_a_warm_worker():
    limits = Limits(cell_timeout=20, call_timeout=20, memory_mb=1024)
    with WorkerSession(load_submission(DATA / "hostile" / "sandbox_probe.py"), limits, WarmLauncher(BwrapLauncher())) as session:
        assert session.run_cells() == []
        assert call(session, "allocate", 2 * 1024**3) == "refused"
        assert call(session, "allocate", 100 * 2**20) == 100 * 2**20


def _examples() -> list[tuple[str, Path]]:
    return [
        (folder.name, path)
        for folder in sorted((ROOT / "submissions").iterdir()) if folder.is_dir()
        for path in sorted(folder.iterdir()) if path.suffix in (".py", ".ipynb")
    ]


def _comparable(result) -> dict[str, object]:  # type: ignore[no-untyped-def]
    data = gradescope(result)
    data.pop("execution_time", None)
    return data


@needs_bwrap
@pytest.mark.parametrize("assignment, path", first_per_assignment(_examples()), ids=lambda x: getattr(x, "name", x))
def test_results_are_the_same_with_and_without_warm_workers(assignment, path):
    rubric = load_rubric(ROOT / "rubrics" / f"{assignment}.yaml")
    cold = grade_submission(rubric, path, launcher=BwrapLauncher())
    warm = grade_submission(rubric, path, launcher=WarmLauncher(BwrapLauncher()))
    assert _comparable(warm) == _comparable(cold)


def test_choose_launcher_is_warm_unless_asked(monkeypatch):
    monkeypatch.delenv("GRADER_WARM", raising=False)  # the suite's default (tests/conftest.py) is cold
    monkeypatch.setattr("grader.execution.sandbox.bwrap_problem", lambda bwrap="bwrap": None)
    assert isinstance(choose_launcher("required"), WarmLauncher)
    monkeypatch.setenv("GRADER_WARM", "0")
    assert type(choose_launcher("required")) is BwrapLauncher
    assert type(choose_launcher("off")) is PlainLauncher  # no sandbox: a fresh process per submission


def test_each_worker_gets_its_share_of_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert cpu_share(1) == cores and cpu_share(cores * 4) == 1
    assert WarmLauncher(BwrapLauncher()).with_threads(3).threads == 3
