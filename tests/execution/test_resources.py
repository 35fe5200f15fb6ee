"""Resource bounds: one hostile submission must not exhaust the machine that grades a class.

The submissions in tests/data/hostile/resources/ fill the disk, fork until refused and hold memory in forked
children; each also has right answers that must keep their points.  They are graded through the real path (a
worker session or `grade_submission`, with the real launchers), and the host is measured from outside.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, cast

import pytest
import yaml
from pydantic import ValidationError

from grader.execution import forkserver, sandbox
from grader.execution.sandbox import BwrapLauncher, Launch, Launcher, PlainLauncher, bwrap_problem, cgroup_support
from grader.execution.session import WorkerSession
from grader.execution.zygote import ForkingLauncher, WarmProcess
from grader.grading.submission import grade_submission
from grader.results import Status
from grader.rubric.schema import Limits, load_rubric
from grader.sources.load import load_submission
from tests.conftest import DATA, SANDBOXES, sandboxed, scores

HOSTILE = DATA / "hostile" / "resources"
MiB = 2**20
RIGHT_ANSWERS = {"q1.1": 1.0, "q2.1": 2.0, "q2.2": 1.0}  # what each hostile file gets right

NO_BWRAP = bwrap_problem()


def needs_cgroup(controller: str) -> pytest.MarkDecorator:
    support = cgroup_support()
    return pytest.mark.skipif(
        controller not in support.controllers,
        reason=f"no bound without a cgroup, and none can be made here: {support.problem} (run as root, or delegate one)",
    )


@dataclass
class Recording:
    """A launcher that keeps every Launch, so a test can look at the worker's cgroup and always clean up."""

    inner: Launcher
    launches: list[Launch] = field(default_factory=list)
    hides: ClassVar[bool] = False
    sets_threads: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def forks(self) -> bool:
        return self.inner.forks

    def spawn(self, scratch: Path, limits: Limits, log_path: Path | None, rfd: int, wfd: int) -> tuple[WarmProcess, Launch]:
        proc, launch = cast(ForkingLauncher, self.inner).spawn(scratch, limits, log_path, rfd, wfd)
        self.launches.append(launch)
        return proc, launch

    def launch(self, worker_argv: list[str], scratch: Path, limits: Limits) -> Launch:
        launch = self.inner.launch(worker_argv, scratch, limits)
        self.launches.append(launch)
        return launch

    def cgroup_folders(self) -> list[Path]:
        return [folder for launch in self.launches if launch.cgroup for folder in launch.cgroup.folders]

    def cleanup(self) -> None:
        for launch in self.launches:
            if launch.cleanup is not None:
                launch.cleanup()


LAUNCHERS: dict[str, Callable[[], Launcher]] = {
    "plain": PlainLauncher, "bwrap": BwrapLauncher, "forkserver": lambda: forkserver.start(BwrapLauncher()),
}


@pytest.fixture
def recording(request: pytest.FixtureRequest) -> Iterator[Recording]:
    kind = request.param
    if kind == "bwrap" and NO_BWRAP is not None:
        pytest.skip(f"no bubblewrap sandbox here: {NO_BWRAP}")
    if kind == "forkserver" and forkserver.forkserver_problem() is not None:
        pytest.skip(f"the fork server cannot build a sandbox here: {forkserver.forkserver_problem()}")
    launcher = Recording(LAUNCHERS[kind]())
    yield launcher
    launcher.cleanup()  # whatever the grading path did, nothing of the test may outlive it


def _session(path: Path, limits: Limits, launcher: Launcher) -> WorkerSession:
    return WorkerSession(load_submission(path), limits, launcher)


def _get(session: WorkerSession, name: str) -> object:
    result = session.get(name)
    assert result.exists, result.error
    return result.value


def _tree_bytes(folder: Path) -> int:
    """Disk blocks really used below `folder` (what `du` says), so sparse tricks cannot hide anything."""
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except OSError:
                pass
    return total


# -- disk ---------------------------------------------------------------------------------------------------
DISK_LIMITS = Limits(cell_timeout=60, call_timeout=20, disk_mb=64)


@pytest.fixture(scope="module", params=SANDBOXES)
def filled(request: pytest.FixtureRequest) -> Iterator[tuple[WorkerSession, list[object], int]]:
    """The disk filler after its cells ran, and how much the host's temp file system grew meanwhile."""
    temp = tempfile.gettempdir()
    before = shutil.disk_usage(temp).used
    with _session(HOSTILE / "fills_disk_sandboxed.py", DISK_LIMITS, sandboxed(request.param)) as session:
        failures: list[object] = list(session.run_cells())
        grown = shutil.disk_usage(temp).used - before
        yield session, failures, grown


@pytest.mark.parametrize("place", ["home", "tmp"])
def test_a_full_disk_is_enospc_in_the_students_code(filled, place):
    session, _, _ = filled
    disk = _get(session, "disk")
    assert isinstance(disk, dict)
    assert disk[place]["error"] == "ENOSPC"  # 1 GiB was asked for
    assert 0 < disk[place]["written"] <= DISK_LIMITS.disk_mb * MiB


def test_an_uncaught_full_disk_is_the_cells_failure(filled):
    _, failures, _ = filled
    assert [(f.reason, "No space left on device" in f.message) for f in failures] == [("error", True)]  # type: ignore[attr-defined]


def test_the_host_temp_folder_does_not_grow_past_the_quota(filled):
    session, _, grown = filled
    assert session.scratch is not None
    # The scratch folder on the host (where 2.4 GB once landed) holds the submission copy only.
    assert _tree_bytes(session.scratch) < MiB
    # The whole temp file system, measured: other processes may write to it too, so this bound is looser
    # than the quota, and still far below the 2 GiB the submission tried to write.
    assert grown < 4 * DISK_LIMITS.disk_mb * MiB


# -- processes ----------------------------------------------------------------------------------------------
@needs_cgroup("pids")
@pytest.mark.parametrize("recording", ["plain", "bwrap", "forkserver"], indirect=True)
def test_a_fork_bomb_is_bounded_by_pids_max_even_as_root(recording):
    limits = Limits(cell_timeout=60, call_timeout=20, processes=64)
    with _session(HOSTILE / "fork_bomb_cgroup.py", limits, recording) as session:
        assert session.run_cells() == []
        forked = _get(session, "forked")
        assert isinstance(forked, int) and 0 < forked < limits.processes
        (cgroup,) = [launch.cgroup for launch in recording.launches]
        assert cgroup is not None
        assert 0 < len(cgroup.members()) <= limits.processes  # the sleeping children are there, and bounded
        assert _get(session, "answer") == 42  # the worker still answers
    recording.cleanup()
    assert not cgroup.members() and not any(folder.exists() for folder in cgroup.folders)


# -- memory -------------------------------------------------------------------------------------------------
@needs_cgroup("memory")
@pytest.mark.parametrize("recording", ["plain", "bwrap", "forkserver"], indirect=True)
def test_forked_children_are_bounded_in_total_memory(recording):
    # 12 children of 128 MiB each: each is far under memory_mb (its own rlimit), together twice the total.
    limits = Limits(cell_timeout=90, call_timeout=20, memory_mb=1024, total_memory_mb=768)
    with _session(HOSTILE / "forked_memory_cgroup.py", limits, recording) as session:
        assert session.run_cells() == []
        held = _get(session, "held")
        assert isinstance(held, dict)
        assert held["alive"] * held["mib"] < limits.total_memory
        assert held["alive"] < held["children"]
        assert session.restarts == 0  # the OOM killer took children, the worker lives on


# -- the graded path ----------------------------------------------------------------------------------------
GRADED = [
    pytest.param("fills_disk_sandboxed.py", "bwrap", None, id="fills_disk-bwrap"),
    pytest.param("fork_bomb_cgroup.py", "plain", "pids", id="fork_bomb-plain"),
    pytest.param("fork_bomb_cgroup.py", "bwrap", "pids", id="fork_bomb-bwrap"),
    pytest.param("forked_memory_cgroup.py", "bwrap", "memory", id="forked_memory-bwrap"),
    pytest.param("fills_disk_sandboxed.py", "forkserver", None, id="fills_disk-forkserver"),
    pytest.param("fork_bomb_cgroup.py", "forkserver", "pids", id="fork_bomb-forkserver"),
    pytest.param("forked_memory_cgroup.py", "forkserver", "memory", id="forked_memory-forkserver"),
]


@pytest.mark.parametrize("name, recording, controller", GRADED, indirect=["recording"])
def test_hostile_submissions_keep_their_right_answers_and_leave_no_cgroup(name, recording, controller, tmp_path):
    if controller is not None and controller not in cgroup_support().controllers:
        pytest.skip(f"unbounded without a {controller} cgroup, and none can be made here: {cgroup_support().problem}")
    rubric = _mini_rubric(tmp_path, disk_mb=64, processes=64, memory_mb=1024, total_memory_mb=768)
    result = grade_submission(rubric, HOSTILE / name, launcher=recording)
    assert {q: s for q, s in scores(result).items() if q in RIGHT_ANSWERS} == RIGHT_ANSWERS
    assert not result.needs_ta and all(q.status is not Status.GRADER_ERROR for q in result.questions)
    # A forked worker is reaped, and its cgroup removed, before the next is forked or when the process ends.
    forkserver.settle()
    # The grading itself removed every cgroup it made (Launch.cleanup, called once each worker is reaped).
    leftovers = [folder for folder in recording.cgroup_folders() if folder.exists()]
    assert leftovers == []


def _mini_rubric(tmp_path: Path, **limits: object):  # type: ignore[no-untyped-def]
    spec = yaml.safe_load((DATA / "mini" / "rubric.yaml").read_text())
    spec["reference"] = str(DATA / "mini" / "reference.py")
    spec["limits"] = {"cell_timeout": 90, "call_timeout": 20, **limits}
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_rubric(path)


# -- the cgroup itself --------------------------------------------------------------------------------------
LEAVES_A_DAEMON = (
    "import subprocess, sys; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)"
)


@needs_cgroup("pids")
def test_cleanup_kills_setsid_daemons_and_removes_the_cgroup(tmp_path):
    # The plain launcher has no PID namespace: a setsid'd daemon outlives the worker until cleanup finds it.
    launch = PlainLauncher().launch([sys.executable, "-c", LEAVES_A_DAEMON], tmp_path, Limits())
    assert launch.cgroup is not None and launch.cleanup is not None
    try:
        subprocess.run(launch.argv, env=launch.env, cwd=launch.cwd, preexec_fn=launch.preexec, check=True, timeout=60)
        (daemon,) = launch.cgroup.members()
        assert _running(daemon)
    finally:
        launch.cleanup()
    assert _gone(daemon)
    assert not any(folder.exists() for folder in launch.cgroup.folders)
    launch.cleanup()  # a second call (execution.py's, after the test's) is harmless


@needs_cgroup("pids")
@needs_cgroup("memory")
def test_the_cgroup_carries_the_limits(tmp_path):
    launch = PlainLauncher().launch(["true"], tmp_path, Limits(memory_mb=100, processes=33))
    assert launch.cgroup is not None and launch.cleanup is not None
    try:
        values = {}
        for folder in launch.cgroup.folders:
            for name in ("memory.max", "memory.limit_in_bytes", "pids.max"):
                if (folder / name).exists():
                    values[name.split(".")[0]] = int((folder / name).read_text())
        assert values == {"memory": 200 * MiB, "pids": 33}  # total_memory_mb defaults to twice memory_mb
    finally:
        launch.cleanup()  # never joined: removed all the same
    assert not any(folder.exists() for folder in launch.cgroup.folders)


def test_without_cgroups_a_warning_once_and_grading_goes_on(monkeypatch, capsys, tmp_path):
    problem = "no writable cgroup (v1 or v2) with the memory and pids controllers"
    monkeypatch.setattr(sandbox, "cgroup_support", lambda: sandbox.CgroupSupport((), problem))
    sandbox._warn_cgroups_once.cache_clear()
    launches = [PlainLauncher().launch([sys.executable, "-c", "pass"], tmp_path, Limits()) for _ in range(3)]
    assert all(launch.cgroup is None and launch.cleanup is None for launch in launches)
    err = capsys.readouterr().err
    assert err.count(problem) == 1 and "no total memory and process count limit" in err
    sandbox._warn_cgroups_once.cache_clear()


# -- where cgroups are made ---------------------------------------------------------------------------------
# (own cgroup path, subtree_control per folder of a fake v2 tree, the folder expected to hold worker cgroups)
V2_LAYOUTS = [
    ("/user.slice/session.scope", {"": "memory pids", "user.slice": "", "user.slice/session.scope": ""}, ""),
    ("/grader", {"": "cpu memory pids", "grader": "memory pids"}, "grader"),  # nearest first: stays inside
    ("/a/b", {"": "pids", "a": "memory pids", "a/b": ""}, "a"),
    ("/a", {"": "cpu io", "a": ""}, None),  # nothing delegated: never enabled by the grader, so none
]


@pytest.mark.parametrize("own, tree, expected", V2_LAYOUTS)
def test_v2_worker_cgroups_go_in_the_nearest_delegated_folder(own, tree, expected, tmp_path, monkeypatch):
    for folder, enabled in tree.items():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "cgroup.subtree_control").write_text(enabled)
    monkeypatch.setattr(sandbox, "_cgroup_mounts", lambda: [("/", tmp_path, 2, set())])
    monkeypatch.setattr(sandbox, "_own_cgroups", lambda: {"": own})
    monkeypatch.setattr(sandbox, "_can_make_children", lambda folder, version, controllers: True)
    sandbox.cgroup_support.cache_clear()
    try:
        support = sandbox.cgroup_support()
    finally:
        sandbox.cgroup_support.cache_clear()
    if expected is None:
        assert support.parents == () and support.problem is not None
    else:
        assert [(p.folder, p.version, p.controllers) for p in support.parents] == [
            (tmp_path / expected if expected else tmp_path, 2, ("memory", "pids"))
        ]


# -- the limits ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given, disk_mb, total_memory",
    [
        ({}, 256, 8192),
        ({"memory_mb": 1000}, 256, 2000),
        ({"memory_mb": 1000, "total_memory_mb": 1500}, 256, 1500),
        ({"disk_mb": 32}, 32, 8192),
    ],
)
def test_limit_defaults(given, disk_mb, total_memory):
    limits = Limits(**given)
    assert (limits.disk_mb, limits.total_memory) == (disk_mb, total_memory)


@pytest.mark.parametrize("key", ["disk_mb", "total_memory_mb", "processes"])
def test_limits_must_be_positive(key):
    with pytest.raises(ValidationError, match=key):
        Limits(**{key: 0})


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds  # a killed process takes a moment to go (and to be reaped by init)
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _running(pid)
