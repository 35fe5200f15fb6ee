"""Grading a batch on a Dask cluster (`grader grade --cluster tcp://HOST:8786`): one task per submission.

The client (this process) sends each task plain data: the submission's bytes and its helpers', and, once per
batch, the rubric with its reference and course modules (scattered to the workers).  A Dask worker writes them
into a temporary folder of its own, grades through `batch.grade_job` with a launcher it chooses itself (the
same sandbox and worker processes as the local pool), and returns the serialized result, the student's output
and its environment.  The client alone records results and writes files, checks every worker's environment
against its own (another grader or torch changes verdicts), and yields each job once: a task the scheduler
reruns after a worker died is still one result, and one that killed `allowed-failures + 1` workers is a
grader error for a TA, never retried forever.
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import multiprocessing
import os
import platform
import shutil
import socket
import stat
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator, Sequence

from grader.errors import GraderError
from grader.execution.launchers import choose_launcher
from grader.execution.sandbox import Launcher, bwrap_problem, hiding
from grader.grading.batch import Job, Settings, failed_job, grade_job
from grader.grading.verdict_key import grader_fingerprint, reference_files
from grader.results import SubmissionResult, scrub_text
from grader.rubric.handout import missing_requirements, requirement_line
from grader.rubric.kinds import kind_spec
from grader.rubric.schema import Rubric, load_rubric
from grader.sources.load import MAX_BYTES

log = logging.getLogger(__name__)

# Tries of a task whose workers die under it: the scheduler's `distributed.scheduler.allowed-failures` (the
# scheduler reads it from its own configuration; this value is set for a scheduler this process starts).
ALLOWED_FAILURES = 2
LOG_LIMIT = 16 * 2**20  # bytes of a student's output carried back (the worker itself stops near 8 MB)
ENVIRONMENT = ("grader", "python", "torch", "numpy", "sympy")  # what changes verdicts, compared worker by worker


@dataclass(frozen=True)
class RubricBundle:
    """The rubric and its reference (with the course modules it imports), as bytes in their relative layout."""

    digest: str
    rubric: str  # the rubric's path inside the bundle
    files: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Payload:
    """One submission as a task carries it: bytes, never a path of the client's machine."""

    name: str
    file_name: str
    data: bytes
    helpers: tuple[tuple[str, bytes], ...]
    device: str
    public_only: bool
    sandbox: str


def bundle_rubric(rubric: Rubric) -> RubricBundle:
    paths = [rubric.path, *(p for p in reference_files(rubric.reference_path) if p != rubric.path)]
    paths += [f.path for f in rubric.handout.files if f.path not in paths]  # the handout, in its layout
    if rubric.starter_path is not None and rubric.starter_path not in paths:
        paths.append(rubric.starter_path)
    root = Path(os.path.commonpath([p.parent for p in paths]))
    files = tuple((p.relative_to(root).as_posix(), p.read_bytes()) for p in paths)
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())
    return RubricBundle(digest.hexdigest(), rubric.path.relative_to(root).as_posix(), files)


def payload(job: Job, settings: Settings, sandbox: str) -> Payload | None:
    """The job as bytes, or None when its file is not a regular file of a size the loader reads: then the
    client grades it itself, which only says why it cannot be read (no student code runs)."""
    data = _read(Path(job.path))
    if data is None:
        return None
    helpers = []
    for name, path in job.helpers:
        content = _read(Path(path))
        if content is None:  # as the local worker session does: a helper that cannot be copied is left out
            log.warning("helper file %s of %s not sent to the cluster: not a readable file", path, job.path)
            continue
        helpers.append((name, content))
    return Payload(job.name, Path(job.path).name, data, tuple(helpers), settings.device, settings.public_only, sandbox)


def _read(path: Path) -> bytes | None:
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


# -- on a Dask worker --------------------------------------------------------------------------------------------
# A Dask worker runs tasks in threads, but grading wants a process's main thread (the formula check's proof runs
# under an alarm) and one submission per process at a time (the reference in sys.modules, warm worker
# processes).  So each Dask worker process grades in one grading process of its own, as a local pool process
# does, and its threads take turns: run workers with `--nthreads 1` and as many `--nworkers` as cores allow.
_TURN = threading.Lock()
_ROOTS: dict[str, Path] = {}  # rubric bundle digest -> its folder on this machine
_POOL: list[ProcessPoolExecutor] = []


def grade_remote(bundle: RubricBundle, task: Payload) -> dict[str, Any]:
    """The task: grade one submission on this worker, from bytes, and return plain data."""
    with _TURN:
        root = _materialised(bundle)
        with tempfile.TemporaryDirectory(prefix="grader-task-") as tmp:
            folder = Path(tmp)
            main = folder / "submission" / task.file_name
            main.parent.mkdir()
            main.write_bytes(task.data)
            helpers = []
            for i, (name, data) in enumerate(task.helpers):
                path = folder / "helpers" / str(i)
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data)
                helpers.append((name, str(path)))
            log_path = folder / "stdout.txt"
            job = Job(str(main), task.name, str(log_path), tuple(helpers))
            result = _in_grading_process(str(root / bundle.rubric), str(root), job, task)
            output = _head(log_path) if log_path.exists() else None
    from distributed import get_worker

    worker = get_worker().address
    return {"result": result, "log": output, "env": worker_environment(), "host": socket.gethostname(), "worker": worker}


def _materialised(bundle: RubricBundle) -> Path:
    """The bundle written once per worker process into a folder of its own (the relative layout kept, so the
    rubric's `reference:` path holds)."""
    if bundle.digest not in _ROOTS:
        root = Path(tempfile.mkdtemp(prefix=f"grader-rubric-{bundle.digest[:12]}-")).resolve()
        atexit.register(shutil.rmtree, root, True)
        for name, data in bundle.files:
            path = root / name
            if root not in path.resolve().parents:
                raise GraderError(f"rubric bundle file {name!r} lies outside its folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        _ROOTS[bundle.digest] = root
    return _ROOTS[bundle.digest]


def _in_grading_process(rubric: str, root: str, job: Job, task: Payload) -> dict[str, Any]:
    if not _POOL:
        # Spawned, not forked from a server: its parent is this Dask worker process, which it watches.
        _POOL.append(ProcessPoolExecutor(
            max_workers=1, mp_context=get_context("spawn"), initializer=_end_with, initargs=(os.getpid(),),
        ))
    try:
        return _POOL[0].submit(_grade_here, rubric, root, job, task.sandbox, task.device, task.public_only).result()
    except BrokenProcessPool:
        _POOL.pop().shutdown(wait=False, cancel_futures=True)
        raise RuntimeError(f"the grading process of a Dask worker died while grading {job.name}") from None


# -- in a Dask worker's grading process ----------------------------------------------------------------------------


def _end_with(parent: int) -> None:
    """The grading process ends when its Dask worker does (killed, or closed by its nanny), never left behind;
    its student workers end with it (bubblewrap's --die-with-parent, the worker's pipes)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="grader-end-with-dask-worker", daemon=True).start()


def _grade_here(rubric: str, root: str, job: Job, sandbox: str, device: str, public_only: bool) -> dict[str, Any]:
    settings = Settings(_launcher(sandbox, Path(root)), device, public_only)
    return grade_job(_rubric(rubric), job, settings).serialize()


@functools.cache
def _rubric(path: str) -> Rubric:
    return load_rubric(path)


@functools.cache
def _launcher(mode: str, root: Path) -> Launcher:
    # Chosen on the worker's machine; the rubric and reference are hidden from student code.
    return hiding(choose_launcher(mode), [root])


def _head(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(LOG_LIMIT)
    except OSError:
        return b""


def environment(*, now: bool = False) -> dict[str, str]:
    """What decides a verdict besides the rubric and the submission.  `now`: the grader installed now, not as
    this process first saw it (a long-lived client compares it with workers started since)."""
    import numpy
    import sympy
    import torch

    fingerprint = getattr(grader_fingerprint, "__wrapped__", grader_fingerprint) if now else grader_fingerprint
    return {
        "grader": fingerprint(), "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "sympy": sympy.__version__,
    }


# A worker's, once per process: the code it loaded, even if the installation changes under it later.
worker_environment = functools.cache(environment)


def probe(sandbox: str, requires: tuple[str, ...] = ()) -> dict[str, Any]:
    """A worker's environment, where the sandbox is required why it has none, and which of the rubric's
    required packages it lacks (run on every worker)."""
    problem = bwrap_problem() if sandbox == "required" else None
    return {**worker_environment(), "sandbox_problem": problem, "host": socket.gethostname(),
            "daemonic": multiprocessing.current_process().daemon,
            "missing": [list(m) for m in missing_requirements(requires)]}


def environment_mismatch(mine: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """How a worker's environment differs from the client's, in words, or None."""
    for key in ENVIRONMENT:
        if mine.get(key) != theirs.get(key):
            return f"{key} {theirs.get(key) or 'unknown'} (this client has {mine.get(key)})"
    return None


# -- on the client -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskExecutor:
    """A batch's submissions as tasks of a Dask cluster, given by its address or its scheduler file."""

    address: str | None = None
    scheduler_file: str | None = None
    sandbox: str = "required"  # the sandbox mode each worker chooses its launcher with
    wait: float = 60.0  # seconds to wait for the scheduler, the first worker and (for training on cuda) a GPU worker
    task: Any = grade_remote  # the remote function (a module-level function the workers can import)
    name: str = "dask"

    @property
    def where(self) -> str:
        return self.address or f"the scheduler file {self.scheduler_file}"

    def grade(self, rubric: Rubric, jobs: Sequence[Job], settings: Settings) -> Iterator[SubmissionResult]:
        if not jobs:
            return
        client = self._connect()
        try:
            yield from self._grade(client, rubric, jobs, settings)
        finally:
            client.close()  # its futures are released: on Ctrl-C the scheduler forgets what has not run

    def _connect(self) -> Any:
        import dask
        from distributed import Client

        # Only a scheduler this process starts reads it; a running one has it from its own configuration.
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES})
        try:
            if self.scheduler_file:
                if not Path(self.scheduler_file).is_file():
                    raise GraderError(f"no Dask scheduler file {self.scheduler_file}")
                return Client(scheduler_file=self.scheduler_file, timeout=self.wait, set_as_default=False)
            return Client(self.address, timeout=self.wait, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise GraderError(f"cannot reach the Dask scheduler at {self.where}: {exc}") from exc

    def _grade(self, client: Any, rubric: Rubric, jobs: Sequence[Job], settings: Settings) -> Iterator[SubmissionResult]:
        from distributed import as_completed

        gpu = settings.device == "cuda" and any(kind_spec(q.spec.kind).uses_gpu for q in rubric.questions)
        mine = self._check_workers(client, gpu, rubric.requires)
        batch = uuid.uuid4().hex[:8]
        # In every task, not scattered nor a task of its own: a task then depends on nothing a dying worker could
        # take with it (a rubric and its reference are kilobytes; each worker writes them once).
        bundle = bundle_rubric(rubric)
        futures: dict[Any, Job] = {}
        local: list[Job] = []
        for job in jobs:
            task = payload(job, settings, self.sandbox)
            if task is None:
                local.append(job)
                continue
            future = client.submit(
                self.task, bundle, task, key=f"grade-{batch}-{job.name}", pure=False,
                resources={"GPU": 1} if gpu else None,
            )
            futures[future] = job
        for job in local:
            yield grade_job(rubric, job, settings)
        seen: set[str] = set()
        try:
            for future in as_completed(list(futures), loop=client.loop):
                job = futures.pop(future)
                result = self._result(future, rubric, job, settings, mine)
                if job.name in seen:  # never recorded twice, whatever the scheduler did
                    log.warning("a second result of %s from the cluster was ignored", job.name)
                    continue
                seen.add(job.name)
                yield result
        finally:
            if futures:
                client.cancel(list(futures))

    def _check_workers(self, client: Any, gpu: bool, requires: tuple[str, ...] = ()) -> dict[str, str]:
        """Fail before any submission: no worker, no GPU worker for training on cuda, another environment."""
        deadline = time.monotonic() + self.wait
        while True:
            workers = client.scheduler_info()["workers"]
            if workers and (not gpu or any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values())):
                break
            if time.monotonic() > deadline:
                if not workers:
                    raise GraderError(f"no Dask worker joined the scheduler at {self.where} within {self.wait:g} s")
                raise GraderError(
                    f"training questions on --device cuda need a GPU worker, and none of the {len(workers)} workers "
                    f"at {self.where} has the GPU resource (start them with `dask worker ... --resources GPU=1`)"
                )
            time.sleep(0.2)
        mine = environment(now=True)
        for address, theirs in client.run(probe, self.sandbox, requires).items():
            missing = [(str(m[0]), str(m[1])) for m in theirs.get("missing") or []]
            if missing:
                raise GraderError(requirement_line(missing, f"the rubric, on Dask worker {address},"))
            mismatch = environment_mismatch(mine, theirs)
            if mismatch:
                raise GraderError(f"Dask worker {address} has {mismatch}; verdicts would differ: install the same "
                                  "dl-grader and libraries on every worker")
            if theirs.get("daemonic"):
                raise GraderError(f"Dask worker {address} runs in a daemonic process, which cannot start the grading "
                                  "process: start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False (or --no-nanny)")
            if self.sandbox == "required" and theirs.get("sandbox_problem"):
                raise GraderError(f"Dask worker {address} has no OS sandbox: {theirs['sandbox_problem']}; install "
                                  "bubblewrap there or pass --sandbox=auto")
        log.info("grading on %d Dask workers at %s", len(workers), self.where)
        return mine

    def _result(self, future: Any, rubric: Rubric, job: Job, settings: Settings, mine: dict[str, str]) -> SubmissionResult:
        from distributed.scheduler import KilledWorker

        try:
            reply = future.result()
        except KilledWorker as exc:
            last = getattr(exc.last_worker, "address", exc.last_worker)
            trace = (f"the submission killed {exc.allowed_failures + 1} Dask workers (each died while grading it; "
                     f"the last was {last}); not tried again")
            log.error("%s: %s", job.path, trace)
            return failed_job(rubric, job, trace, settings)
        except GraderError as exc:  # the worker could not grade at all (no sandbox there, say): stop the batch
            raise GraderError(f"a Dask worker could not grade {job.name}: {exc}") from exc
        except Exception:
            log.exception("grading %s failed on the cluster", job.path)
            return failed_job(rubric, job, traceback.format_exc(), settings)
        mismatch = environment_mismatch(mine, reply["env"])
        if mismatch:  # a worker that joined after the check
            raise GraderError(f"the Dask worker on {reply['host']} that graded {job.name} has {mismatch}; verdicts "
                              "would differ: install the same dl-grader and libraries on every worker")
        log.info("graded %s on Dask worker %s (%s)", job.name, reply.get("worker"), reply["host"])
        if job.log_path and reply["log"] is not None:  # as a local worker does: appended to, made where it ran
            with open(job.log_path, "ab") as fh:
                fh.write(reply["log"])
        result = SubmissionResult.from_dict(reply["result"])
        return replace(result, student=job.name, path=scrub_text(job.path))
