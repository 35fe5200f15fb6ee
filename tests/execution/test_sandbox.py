"""The OS sandbox: what a worker inside bubblewrap can see, reach and leave behind."""
from __future__ import annotations

import os
import pickle
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.errors import GraderError
from grader.execution import launchers, sandbox
from grader.execution.launchers import choose_launcher
from grader.execution.sandbox import BwrapLauncher, Launcher, PlainLauncher
from grader.execution.session import WorkerSession
from grader.execution.zygote import WarmProcess
from grader.rubric.schema import Limits
from grader.sources.load import load_submission
from tests.conftest import DATA, ROOT, SANDBOXES, call, host_command_lines, sandboxed, wait_until, worker_process


def _call(session: WorkerSession, name: str, *args: object) -> object:
    return call(session, name, *args, timeout=20)

PROBE = DATA / "hostile" / "sandbox_probe.py"
LIMITS = Limits(cell_timeout=20, call_timeout=20)
GiB = 1024**3

def _session(launcher: Launcher, limits: Limits = LIMITS) -> WorkerSession:
    session = WorkerSession(load_submission(PROBE), limits, launcher)
    assert session.run_cells() == []
    if launcher.forks:  # not a fresh bubblewrap worker started because the fork failed
        assert isinstance(worker_process(session), WarmProcess)
    return session


@pytest.fixture(scope="module", params=SANDBOXES)
def probe(request: pytest.FixtureRequest) -> Iterator[WorkerSession]:
    with _session(sandboxed(request.param)) as session:
        yield session


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "reference" / "cnn_rnn.py",
        ROOT / "rubrics" / "cnn-rnn.yaml",
        ROOT / "submissions" / "cnn-rnn" / "alice_correct.ipynb",  # another student's work
        DATA / "mini" / "reference.py",
        ROOT / "pyproject.toml",
        Path("/etc/passwd"),
        Path("/etc/hostname"),
    ],
)
def test_worker_cannot_read_what_grading_needs_to_keep(probe, path):
    assert path.exists(), "the test needs the host file to exist"
    assert _call(probe, "can_read", str(path)) is False


@pytest.mark.parametrize("folder", [ROOT / "reference", ROOT / "rubrics", ROOT / "submissions", ROOT / "out", Path("/root/.ssh")])
def test_worker_cannot_list_private_folders(probe, folder):
    assert _call(probe, "can_list", str(folder)) is False


def test_worker_reads_what_it_needs(probe):
    # The positive control: the probe does see files, so the refusals above are the sandbox's doing.
    import grader.worker

    assert _call(probe, "can_read", grader.worker.__file__) is True
    assert _call(probe, "can_read", "sandbox_probe.py") is True  # its own copy, in its scratch folder


def test_worker_cannot_see_host_temp_or_outputs(probe, tmp_path):
    secret = tmp_path / "results.json"
    secret.write_text("{}")
    assert _call(probe, "can_read", str(secret)) is False


@pytest.mark.parametrize(
    "path, writable",
    [
        ("here.txt", True),  # the scratch folder
        ("/tmp/x", True),  # a private /tmp
        (str(ROOT / "grader" / "tampered.py"), False),
        (str(ROOT / ".venv" / "tampered.py"), False),
        ("/usr/tampered", False),
    ],
)
def test_only_the_scratch_folder_is_writable(probe, path, writable):
    assert _call(probe, "can_write", path) is writable
    assert not (ROOT / "grader" / "tampered.py").exists()


def test_no_network(probe):
    assert _call(probe, "interfaces") == ["lo"]
    assert str(_call(probe, "connect", "1.1.1.1", 53)).startswith("refused")


def test_host_processes_are_invisible(probe):
    seen = _call(probe, "process_command_lines")
    assert isinstance(seen, list) and seen, "the probe sees at least itself"
    assert not any("pytest" in line for line in seen)
    assert len(seen) < 10


@pytest.mark.parametrize("kind", SANDBOXES)
def test_children_and_daemons_die_with_the_grading(kind):
    token = f"grader-daemon-{uuid.uuid4().hex}"
    with _session(sandboxed(kind)) as session:
        assert _call(session, "start_daemons", token) == "started"
        # While grading runs the daemons exist (so the search below can find them at all).
        assert wait_until(lambda: sum(token in line for line in host_command_lines()) == 3, seconds=10)
    assert wait_until(lambda: not any(token in line for line in host_command_lines()), seconds=10), "a daemon survived"


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.parametrize("allocate", ["allocate", "tensor_allocate"])
def test_memory_limit_holds(kind, allocate):
    with _session(sandboxed(kind), Limits(cell_timeout=20, call_timeout=20, memory_mb=1024)) as session:
        assert _call(session, allocate, 2 * GiB) == "refused"
        assert _call(session, allocate, 100 * 2**20) == 100 * 2**20  # the limit is not a ban on memory


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.skipif(
    os.geteuid() == 0 and "pids" not in sandbox.cgroup_support().controllers,
    reason="the kernel exempts root from RLIMIT_NPROC and no pids cgroup can be made here; run as a normal user",
)
def test_process_limit_holds(kind):
    with _session(sandboxed(kind), Limits(cell_timeout=20, call_timeout=20, processes=40)) as session:
        assert str(_call(session, "fork_bomb", 200)).startswith("refused")


@pytest.mark.parametrize("kind", SANDBOXES)
def test_hidden_paths_inside_visible_folders(kind, tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "answers.py").write_text("answer = 42\n")
    (tmp_path / "rubric.yaml").write_text("secret: yes\n")
    (tmp_path / "public.txt").write_text("hello\n")
    launcher = BwrapLauncher(roots=(*BwrapLauncher().roots, str(tmp_path)))
    launcher = launcher.hiding([tmp_path / "reference", tmp_path / "rubric.yaml"])
    with _session(sandboxed(kind, launcher)) as session:
        assert _call(session, "can_read", str(tmp_path / "public.txt")) is True
        assert _call(session, "can_read", str(tmp_path / "reference" / "answers.py")) is False
        assert _call(session, "can_read", str(tmp_path / "rubric.yaml")) is False


def test_launcher_pickles_for_the_process_pool(tmp_path):
    launcher = BwrapLauncher().hiding([tmp_path])
    copy = pickle.loads(pickle.dumps(launcher))
    assert copy == launcher and copy.name == "bwrap" and str(tmp_path.resolve()) in copy.hidden


def test_argv_isolates_the_worker(tmp_path):
    argv = BwrapLauncher().launch(["python", "-m", "grader.worker", "3", "4"], tmp_path, LIMITS).argv
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"):
        assert flag in argv
    # The scratch folder is only staged, read-only: what the student writes goes to size-limited tmpfs mounts.
    assert "--bind" not in argv
    stage = argv.index(sandbox.SANDBOX_STAGE)
    assert argv[stage - 2 : stage] == ["--ro-bind", str(tmp_path)]
    for place in (sandbox.SANDBOX_HOME, "/tmp"):
        tmpfs = next(i for i, arg in enumerate(argv) if arg == place and argv[i - 1] == "--tmpfs")
        assert argv[tmpfs - 3] == "--size" and int(argv[tmpfs - 2]) >= LIMITS.disk_mb * 2**20
    assert str(ROOT / "reference") not in argv and str(ROOT) not in argv


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda bwrap="bwrap": "bwrap is not installed")
    launchers._warn_once.cache_clear()


@pytest.mark.parametrize("mode, warnings", [("off", 0), ("auto", 1)])
def test_fallback_without_bwrap(no_bwrap, capsys, mode, warnings):
    assert isinstance(choose_launcher(mode), PlainLauncher)
    assert isinstance(choose_launcher(mode), PlainLauncher)
    assert capsys.readouterr().err.count("no OS sandbox") == warnings  # said once, not once per submission


def test_required_refuses_without_bwrap(no_bwrap):
    with pytest.raises(GraderError, match="no OS sandbox: bwrap is not installed"):
        choose_launcher("required")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is required by default on Linux only")
def test_grade_refuses_without_bwrap_by_default_on_linux(no_bwrap, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRADER_SANDBOX", raising=False)
    code = main(["grade", str(DATA / "mini" / "rubric.yaml"), str(PROBE), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["grader: error: no OS sandbox: bwrap is not installed; install bubblewrap or pass --sandbox=auto to grade without it"]
    assert not (tmp_path / "out" / "gradebook.csv").exists()



def test_the_grader_is_byte_compiled_once_for_its_workers(tmp_path, monkeypatch):
    # Workers never write bytecode; the grading process compiles the grader's modules for them where it may.
    import grader
    from grader.execution import sandbox

    package = Path(grader.__file__).resolve().parent
    sandbox.compile_grader.cache_clear()
    sandbox.worker_argv(3, 4)
    cached = package / "worker" / "__pycache__"
    assert any(p.name.startswith("protocol.") and p.suffix == ".pyc" for p in cached.iterdir())
    sandbox.worker_argv(3, 4)
    assert sandbox.compile_grader.cache_info().hits == 1  # once per process
