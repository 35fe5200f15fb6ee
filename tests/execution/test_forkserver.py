"""The fork server (grader/execution/forkserver.py, grader/worker/forkserver.py): one process forks every
submission's worker, and each worker's sandbox holds as bubblewrap's does, also against a submission graded at
the same time.  The isolation tests shared with bubblewrap are in test_sandbox.py, parametrized over both."""
from __future__ import annotations

import pickle
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from grader.execution import forkserver
from grader.execution.launchers import choose_launcher
from grader.execution.sandbox import BwrapLauncher, PlainLauncher
from grader.execution.session import WorkerSession
from grader.execution.zygote import WarmLauncher, WarmProcess, may_import_late
from grader.grading.submission import grade_submission
from grader.rubric.schema import Limits, load_rubric
from grader.sources.load import load_submission
from grader.worker.forkserver import parse
from tests.conftest import DATA, ROOT, call, host_command_lines, needs_forkserver, scores, wait_until, worker_process

WARM = DATA / "warm"
ESCAPE = DATA / "forkserver" / "escape.py"
LIMITS = Limits(cell_timeout=30, call_timeout=30)



def _forked(path: Path, launcher: forkserver.ForkServerLauncher, limits: Limits = LIMITS) -> WorkerSession:
    session = WorkerSession(load_submission(path), limits, launcher)
    assert session.run_cells() == []
    assert isinstance(worker_process(session), WarmProcess), "the worker was not forked by the server"
    return session


@needs_forkserver
def test_a_submission_sees_nothing_of_one_graded_at_the_same_time():
    launcher = forkserver.start(BwrapLauncher()).with_threads(2)
    token = f"fork-{uuid.uuid4().hex}"
    with _forked(WARM / "leaves_traces.py", launcher) as first:
        written = call(first, "leave", token)
        assert sorted(Path(p).parent.as_posix() for p in written) == ["/dev/shm", "/home/student", "/tmp"]
        assert wait_until(lambda: sum(token in line for line in host_command_lines()) == 2)
        with _forked(WARM / "looks_for_traces.py", launcher) as second:  # while the first one's daemons run
            seen = call(second, "look", token)
        assert seen["files"] == [] and seen["processes"] == [] and seen["home"] == ["looks_for_traces.py"]
        assert seen["allclose"] is False and seen["env"] is None and seen["threads"] == 2
    assert wait_until(lambda: not any(token in line for line in host_command_lines())), "a daemon survived"
    with _forked(WARM / "looks_for_traces.py", launcher) as third:  # and nothing is left for the next one
        seen = call(third, "look", token)
    assert seen["files"] == [] and seen["processes"] == [] and seen["env"] is None
    assert seen["torch_seed"] != 1234 and seen["numpy_draw"] != 0.1915194503788923  # reseeded from the OS


@needs_forkserver
def test_each_submission_is_alone_in_its_process_namespace_without_privileges():
    launcher = forkserver.start(BwrapLauncher())
    with _forked(ESCAPE, launcher) as one, _forked(ESCAPE, launcher) as other:
        for session in (one, other):
            seen = call(session, "identity")
            assert seen == {
                "uid": 1000, "gid": 1000, "pid": 2, "hostname": "sandbox", "capabilities": ["0000000000000000"] * 5,
                "no_new_privs": "1", "processes": [1, 2],  # its init and itself: not the other one's
            }


@needs_forkserver
def test_the_covers_over_hidden_files_hold_against_a_user_namespace_of_its_own(tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "answers.py").write_text("answer = 42\n")
    (tmp_path / "rubric.yaml").write_text("secret: yes\n")
    base = BwrapLauncher(roots=(*BwrapLauncher().roots, str(tmp_path)))
    launcher = forkserver.start(base.hiding([tmp_path / "reference", tmp_path / "rubric.yaml"]))
    with _forked(ESCAPE, launcher) as session:
        for cover, path in ((tmp_path / "reference", tmp_path / "reference" / "answers.py"),
                            (tmp_path / "rubric.yaml", tmp_path / "rubric.yaml")):
            assert "42" not in str(call(session, "uncover_and_read", str(cover), str(path)))
            assert "secret" not in str(call(session, "uncover_and_read", str(cover), str(path)))


@needs_forkserver
def test_a_worker_that_dies_is_forked_again_and_replays_its_cells():
    with WorkerSession(load_submission(WARM / "dies.py"), LIMITS, forkserver.start(BwrapLauncher())) as session:
        failures = session.run_cells()
        assert [f.reason for f in failures] == ["died"]
        value, pid = call(session, "answer")  # type: ignore[misc]
        assert value == 42 and session.restarts == 1 and isinstance(worker_process(session), WarmProcess)
        assert pid == 2  # in the submission's own PID namespace, under its init


@needs_forkserver
def test_what_the_sandbox_binds_under_tmp_stays_visible_read_only(tmp_path):
    assert str(tmp_path).startswith("/tmp/")
    (tmp_path / "lib.txt").write_text("kept")
    launcher = forkserver.start(BwrapLauncher(roots=(*BwrapLauncher().roots, str(tmp_path))))
    with _forked(DATA / "hostile" / "sandbox_probe.py", launcher) as session:
        assert call(session, "can_read", str(tmp_path / "lib.txt")) is True
        assert call(session, "can_write", str(tmp_path / "lib.txt")) is False
        assert call(session, "can_write", "/tmp/own.txt") is True
    assert (tmp_path / "lib.txt").read_text() == "kept"


@needs_forkserver
def test_results_are_the_same_as_under_bubblewrap(cnn_rubric):
    path = ROOT / "submissions" / "cnn-rnn" / "alice_correct.ipynb"
    forked = grade_submission(cnn_rubric, path, launcher=forkserver.start(BwrapLauncher()))
    fresh = grade_submission(cnn_rubric, path, launcher=BwrapLauncher())
    assert forked.score == fresh.score == cnn_rubric.max_score, scores(forked)
    assert scores(forked) == scores(fresh)
    assert forked.sandbox == "forkserver" and fresh.sandbox == "bwrap"


def _processes_seen_from(launcher: forkserver.ForkServerLauncher) -> object:
    """In a pool process: what a worker forked for it sees of /proc."""
    with _forked(ESCAPE, launcher) as session:
        return call(session, "identity")


@needs_forkserver
def test_a_pool_process_forks_from_the_server_its_parent_started():
    launcher = forkserver.start(BwrapLauncher())
    assert pickle.loads(pickle.dumps(launcher)) == launcher
    assert launcher.address == forkserver.start(BwrapLauncher()).address  # one server per process that starts it
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        seen = pool.submit(_processes_seen_from, launcher).result(timeout=300)
    assert isinstance(seen, dict) and seen["processes"] == [1, 2] and seen["uid"] == 1000


@needs_forkserver
def test_the_mini_rubric_grades_as_under_bubblewrap():
    rubric = load_rubric(DATA / "mini" / "rubric.yaml")
    result = grade_submission(rubric, DATA / "mini" / "reference.py", launcher=forkserver.start(BwrapLauncher()))
    assert result.score == 7.0, scores(result)  # the answers themselves, but no cube_vjp nor cube_jac (q3.*: 3 points)
    assert scores(result) == scores(grade_submission(rubric, DATA / "mini" / "reference.py", launcher=BwrapLauncher()))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--unshare-all", "--bind", "/", "/"], "does not know bubblewrap's --bind"),
        (["--unshare-user", "--tmpfs", "/tmp"], "every namespace"),
        (["--unshare-all", "--size", "10", "--ro-bind", "/usr", "/usr"], "--size must come right before --tmpfs"),
        (["--unshare-all", "--ro-bind", "/usr"], "--ro-bind needs 2 arguments"),
    ],
)
def test_an_argument_the_server_cannot_carry_out_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        parse(args)


def test_every_argument_bubblewrap_gets_is_carried_out(tmp_path):
    plan = parse(BwrapLauncher().hiding([ROOT / "grader" / "cases.py"]).mounts(tmp_path, LIMITS))
    assert plan.uid == plan.gid == 1000 and plan.hostname == "sandbox" and plan.new_session and plan.die_with_parent
    assert ("--proc", "/proc") in plan.ops and ("--dev", "/dev") in plan.ops
    assert ("--ro-bind", str(tmp_path.resolve()), "/run/grader/scratch") in plan.ops


def test_choose_launcher_prefers_the_fork_server_unless_asked(monkeypatch):
    monkeypatch.delenv("GRADER_WARM", raising=False)
    monkeypatch.setattr("grader.execution.sandbox.bwrap_problem", lambda bwrap="bwrap": None)
    monkeypatch.setattr(forkserver, "forkserver_problem", lambda: None)
    monkeypatch.setattr(forkserver, "start", lambda base: forkserver.ForkServerLauncher(base, address="/nowhere"))
    monkeypatch.setenv("GRADER_FORKSERVER", "1")
    assert isinstance(choose_launcher("required"), forkserver.ForkServerLauncher)
    monkeypatch.setenv("GRADER_FORKSERVER", "0")
    assert isinstance(choose_launcher("required"), WarmLauncher)  # today's path, for comparison
    monkeypatch.setenv("GRADER_FORKSERVER", "1")
    monkeypatch.setattr(forkserver, "forkserver_problem", lambda: "no user namespaces")
    assert isinstance(choose_launcher("required"), WarmLauncher)  # the fallback where it cannot build a sandbox
    assert type(choose_launcher("off")) is PlainLauncher


def test_the_launcher_declares_what_it_can_do():
    launcher = forkserver.ForkServerLauncher(BwrapLauncher(), address="/nowhere")
    assert launcher.forks and launcher.hides and launcher.sets_threads
    assert launcher.with_threads(3).threads == 3 and launcher.hiding([ROOT]).base.hidden == (str(ROOT),)
    assert not (PlainLauncher.forks or PlainLauncher.hides or BwrapLauncher.forks) and BwrapLauncher.hides


def test_the_late_imports_are_asked_for_by_the_words_of_a_working_folder(tmp_path: Path) -> None:
    plain, training, notebook = tmp_path / "plain", tmp_path / "training", tmp_path / "notebook"
    for folder in (plain, training, notebook):
        folder.mkdir()
    (plain / "hw.py").write_text("import torch\nimport torch.nn.functional as F\nx = F.relu(torch.ones(2))\n")
    (plain / "data.csv").write_text("optimizer,torchvision\n")  # not Python: not read
    (training / "hw.py").write_text("import torch\n")
    (training / "helpers.py").write_text("from torch import optim\n")  # a helper module counts too
    (notebook / "hw.ipynb").write_text('{"cells": [{"source": ["import torchvision"]}]}')
    assert not may_import_late(plain)
    assert may_import_late(training) and may_import_late(notebook)


@needs_forkserver
def test_a_worker_forked_without_the_late_imports_imports_them_itself(tmp_path: Path) -> None:
    """A submission that reaches torch._dynamo by a name built at run time (so that the server was not asked to
    import it first) gets it all the same; one that names an optimiser has it from the server."""
    hidden = tmp_path / "hidden.py"
    hidden.write_text("import importlib\nm = importlib.import_module('torch._' + 'dyn' + 'amo')\nok = callable(m.reset)\n")
    named = tmp_path / "named.py"
    named.write_text("import sys, torch\nw = torch.zeros(2, requires_grad=True)\nopt = torch.optim.SGD([w], lr=0.1)\n"
                     "ok = 'torch._dynamo' in sys.modules\n")
    launcher = forkserver.start(BwrapLauncher())
    for path in (hidden, named):
        with _forked(path, launcher) as session:
            assert session.get("ok").value is True
