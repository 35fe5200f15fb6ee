"""Grading on a Dask cluster: a real scheduler and two workers on 127.0.0.1 (separate processes), each
submission graded once, the same results as local grading, lost workers and GPU requests handled."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path
from typing import Any, Iterator

import pytest

from grader.cli.main import main
from grader.errors import GraderError
from grader.grading.batch import Job, Settings
from grader.grading.cluster import DaskExecutor, environment_mismatch
from grader.rubric.schema import load_rubric
from tests.conftest import DATA, ROOT

DASK = Path(sys.executable).parent / "dask"
MINI = DATA / "mini" / "rubric.yaml"
HOSTILE = DATA / "hostile" / "class"
SCORES = {"ann": 10, "ben": 0, "cat": 10, "dan": 0, "eve": 10, "fay": 10}
pytestmark = pytest.mark.timeout(240)


class Cluster:
    """A scheduler and two nanny-managed workers (`dask worker` as a TA starts them), killed in a finally."""

    def __init__(self, folder: Path, gpu_worker: bool = False) -> None:
        self.gpu_worker = gpu_worker  # w1 says it has a GPU (`--resources GPU=1`); none really does
        self.file = folder / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ, "PYTHONPATH": str(ROOT), "GRADER_SANDBOX": "auto",
            # A running scheduler reads allowed-failures from its own configuration, not the client's.
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2",
            "DASK_DISTRIBUTED__WORKER__DAEMON": "False",  # a worker starts its grading process
            # One task at a time per one-thread worker: a submission that kills its worker takes no other with it.
            "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
            "GRADER_TEST_CLUSTER": str(folder),  # marks every process this cluster starts, grading processes too
        }
        self.logs = folder

    def start(self) -> None:
        self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(self.file),
                    "--no-dashboard")
        for i in (1, 2):
            gpu = ["--resources", "GPU=1"] if self.gpu_worker and i == 1 else []
            self._spawn(f"worker{i}", "worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1",
                        "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--name", f"w{i}", "--death-timeout", "60",
                        *gpu)
        self.client()  # both workers registered

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen([str(DASK), *args], env=self.env, cwd=ROOT, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))

    def client(self, workers: int = 2) -> Any:
        from distributed import Client

        deadline = time.monotonic() + 60
        while not self.file.is_file():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        client = Client(scheduler_file=str(self.file), timeout=30, set_as_default=False)
        client.wait_for_workers(workers, timeout=90)
        return client

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, then the scheduler
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Nothing it started outlives it: a grading process ends with its Dask worker, even a killed one.
        deadline = time.monotonic() + 15
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left behind by the cluster: {left}"

    def leftovers(self) -> list[int]:
        marker = f"GRADER_TEST_CLUSTER={self.env['GRADER_TEST_CLUSTER']}".encode()
        found = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if marker in environ.read_bytes().split(b"\0"):
                    found.append(int(environ.parent.name))
            except OSError:
                pass  # gone, or not ours to read
        return found


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # One per test: workers compare the grader they loaded with the client's, and a module-long cluster would
    # (rightly) refuse a client whose checkout changed since they started.
    yield from _running(Cluster(tmp_path_factory.mktemp("dask")))


@pytest.fixture
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from _running(Cluster(tmp_path_factory.mktemp("dask"), gpu_worker=True))


def _running(cluster: Cluster) -> Iterator[Cluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _jobs(folder: Path, names: dict[str, str]) -> list[Job]:
    folder.mkdir()
    jobs = []
    for name, source in names.items():
        shutil.copy(HOSTILE / f"{source}.py", folder / f"{name}.py")
        jobs.append(Job(str(folder / f"{name}.py"), name, str(folder / f"{name}.log")))
    return jobs


CLASS = {"ann": "zed_honest", "ben": "liar_objects", "cat": "zed_honest", "dan": "liar_objects",
         "eve": "zed_honest", "fay": "zed_honest"}


def test_a_killed_worker_loses_no_submission(cluster: Cluster, tmp_path: Path) -> None:
    rubric = load_rubric(MINI)
    jobs = _jobs(tmp_path / "class", CLASS)
    executor = DaskExecutor(scheduler_file=str(cluster.file), sandbox="auto", wait=30)
    client = cluster.client()
    killed = None
    results = []
    try:
        for result in executor.grade(rubric, jobs, Settings(device="cpu")):
            results.append(result)
            if killed is None:  # mid-batch: a worker that is grading a submission right now dies
                busy = [addr for addr, keys in client.processing().items() if keys]
                assert busy, "no worker was grading when the first result came"
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed = busy[0]
    finally:
        client.close()
    assert killed
    assert sorted(r.student for r in results) == sorted(CLASS)  # each exactly once
    assert {r.student: r.score for r in results} == SCORES
    assert not any(r.needs_ta for r in results)


def test_a_submission_that_kills_its_workers_is_failed_after_two_retries(cluster: Cluster, tmp_path: Path) -> None:
    from tests.cluster_tasks import die_grading_ben

    rubric = load_rubric(MINI)
    jobs = _jobs(tmp_path / "class", {"ann": "zed_honest", "ben": "zed_honest"})
    executor = DaskExecutor(scheduler_file=str(cluster.file), sandbox="auto", wait=30, task=die_grading_ben)
    results = {r.student: r for r in executor.grade(rubric, jobs, Settings(device="cpu"))}
    assert sorted(results) == ["ann", "ben"]
    assert results["ann"].score == 10 and not results["ann"].needs_ta
    ben = results["ben"]
    assert ben.needs_ta and ben.score == 0
    assert "the submission killed 3 Dask workers" in (ben.grader_error or "")


def test_grade_through_the_cluster_matches_local_grading(cluster: Cluster, tmp_path: Path) -> None:
    rubric, examples = ROOT / "rubrics" / "cnn-rnn.yaml", ROOT / "submissions" / "cnn-rnn"
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["grade", str(rubric), str(examples), "--out", str(local), "--sandbox", "auto"]) == 0
    assert main(["grade", str(rubric), str(examples), "--out", str(remote), "--sandbox", "auto",
                 "--scheduler-file", str(cluster.file)]) == 0
    students = sorted(p.name for p in local.iterdir() if (p / "results.json").is_file())
    assert len(students) == 4
    for student in students:
        for name in ("results.json", "grading.json"):
            mine, theirs = (json.loads((folder / student / name).read_text()) for folder in (local, remote))
            assert _without_timings(mine) == _without_timings(theirs), (student, name)
        printed = [folder / "logs" / f"{student}.stdout.txt" for folder in (local, remote)]
        assert [p.read_bytes() if p.exists() else None for p in printed] == [p.read_bytes() if p.exists() else None for p in printed[::-1]]
    assert (local / "gradebook.csv").read_text() == (remote / "gradebook.csv").read_text()


def _without_timings(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_timings(v) for k, v in data.items() if k not in TIMINGS}
    if isinstance(data, list):
        return [_without_timings(v) for v in data]
    return data


TIMINGS = {"execution_time", "duration", "seconds", "train_seconds", "elapsed"}


def test_training_on_cuda_without_gpu_workers_fails_fast(cluster: Cluster, tmp_path: Path) -> None:
    rubric = load_rubric(ROOT / "rubrics" / "backprop-optim.yaml")
    job = Job(str(ROOT / "submissions" / "backprop-optim" / "dana_correct.ipynb"), "dana")
    with pytest.raises(GraderError, match="none of the 2 workers .* has the GPU resource"):
        list(DaskExecutor(scheduler_file=str(cluster.file), sandbox="auto", wait=1).grade(rubric, [job], Settings(device="cuda")))


def test_training_on_cuda_goes_to_gpu_workers_only(gpu_cluster: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    training = DATA / "backprop-optim" / "training"
    rubric = load_rubric(training / "rubric.yaml")  # its reference is ../../../../reference: the layout travels
    (tmp_path / "class").mkdir()
    jobs = []
    for name in ("ann", "ben", "cat"):
        shutil.copy(training / "no_factory.py", tmp_path / "class" / f"{name}.py")
        jobs.append(Job(str(tmp_path / "class" / f"{name}.py"), name))
    client = gpu_cluster.client()
    try:
        gpu = [a for a, w in client.scheduler_info()["workers"].items() if w.get("resources", {}).get("GPU")]
    finally:
        client.close()
    caplog.set_level("INFO", logger="grader.grading.cluster")
    executor = DaskExecutor(scheduler_file=str(gpu_cluster.file), sandbox="auto", wait=30)
    results = list(executor.grade(rubric, jobs, Settings(device="cuda")))
    assert sorted(r.student for r in results) == ["ann", "ben", "cat"]
    graded_on = {m.split(" on Dask worker ")[1].split(" ")[0] for m in caplog.messages if m.startswith("graded ")}
    assert graded_on == set(gpu) and len(gpu) == 1


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once the socket is closed: nobody listens there
    err = StringIO()
    with redirect_stderr(err):
        code = main(["grade", str(MINI), str(HOSTILE / "zed_honest.py"), "--out", str(tmp_path / "out"), "--sandbox",
                     "auto", "--cluster", f"tcp://127.0.0.1:{port}", "--cluster-wait", "2"])
    assert code == 2
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err.getvalue()


@pytest.mark.parametrize(("theirs", "said"), [
    ({}, None),
    ({"torch": "2.3.0"}, "torch 2.3.0 (this client has 2.14.1)"),
    ({"grader": "0.1.0+abc"}, "grader 0.1.0+abc (this client has 0.1.0+def)"),
    ({"python": None}, "python unknown (this client has 3.11.7)"),
])
def test_an_environment_that_changes_verdicts_is_named(theirs: dict[str, Any], said: str | None) -> None:
    mine = {"grader": "0.1.0+def", "python": "3.11.7", "torch": "2.14.1", "numpy": "2.1.0", "sympy": "1.13"}
    assert environment_mismatch(mine, {**mine, **theirs}) == said
