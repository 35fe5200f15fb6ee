from __future__ import annotations

import ast
import functools
import os
import textwrap
import time
from pathlib import Path
from subprocess import Popen
from typing import Callable

import nbformat
import pytest

from grader.execution import forkserver
from grader.execution.sandbox import BwrapLauncher, Launcher, bwrap_problem
from grader.execution.session import WorkerSession
from grader.execution.transport import PipeTransport
from grader.execution.zygote import WarmProcess
from grader.grading.submission import grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric, load_rubric

# Tests that run `grader grade` use the OS sandbox where bubblewrap is installed (CI installs it) and say so
# where it is not, instead of refusing as the command does by default on Linux.
os.environ.setdefault("GRADER_SANDBOX", "auto")
# Tests grade under many sandboxes (one per temporary folder): a warm zygote per sandbox would cost more than the
# fresh worker it saves.  tests/execution/test_warm.py builds warm launchers itself and checks them against fresh ones.
os.environ.setdefault("GRADER_WARM", "0")
# `grader check --kit` run by tests checks in its own process; tests/cli/test_check_daemon.py starts daemons itself
# (in a private folder of its own) and stops every one it started.
os.environ.setdefault("GRADER_DAEMON", "0")
# Likewise the fork server: tests/execution/test_forkserver.py and the isolation tests start it themselves and
# check it against bubblewrap, so that the rest of the suite keeps grading as before.
os.environ.setdefault("GRADER_FORKSERVER", "0")


needs_bwrap = pytest.mark.skipif(
    bwrap_problem() is not None, reason=f"no bubblewrap sandbox here: {bwrap_problem()} (.ci/run installs it as root)"
)
needs_forkserver = pytest.mark.skipif(
    forkserver.forkserver_problem() is not None,
    reason=f"the fork server cannot build a sandbox here: {forkserver.forkserver_problem()}",
)
# The two sandboxes every isolation test runs under: a fresh bubblewrap worker, and a worker forked by the fork
# server (one per test process, shared by every test, as a batch's slots share it).
SANDBOXES = [pytest.param("bwrap", marks=needs_bwrap), pytest.param("forkserver", marks=needs_forkserver)]


def sandboxed(kind: str, base: BwrapLauncher | None = None) -> Launcher:
    """The launcher of one of SANDBOXES, around `base` (its mounts and hidden paths)."""
    base = base or BwrapLauncher()
    return base if kind == "bwrap" else forkserver.start(base)


def call(session: WorkerSession, name: str, *args: object, timeout: float = 30) -> object:
    """The value of the student's `name(*args)` in a worker; the call must succeed."""
    result = session.call(name, list(args), timeout=timeout)
    assert result.ok, result.error
    return result.value


def worker_process(session: WorkerSession) -> Popen[bytes] | WarmProcess:
    """The process of the session's worker (started through a launcher: a pipe transport)."""
    transport = session.transport
    assert isinstance(transport, PipeTransport)
    return transport.proc


def host_command_lines() -> list[str]:
    """The command line of every process this test can see on the host."""
    lines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return lines


def first_per_assignment(params: list[tuple[str, object]]) -> list[object]:
    """`(assignment, example)` parameters: the first example of each assignment as it is, the others marked
    `long` (run by `make test-long`), for checks whose cost is one grading per example."""
    seen: set[str] = set()
    out: list[object] = []
    for assignment, example in params:
        if assignment in seen:
            out.append(pytest.param(assignment, example, marks=pytest.mark.long))
        else:
            out.append((assignment, example))
            seen.add(assignment)
    return out

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# -- running under pytest-xdist (`make test` runs `-n 3 --dist loadgroup`) ----------------------------------------
# Tests are spread one by one over the workers, except that the tests of a module that use a module- or
# session-scoped fixture of that module (often a grading of every shipped example) go to one worker together, so
# that the fixture is computed once, not once per worker.  A module listed here goes to one worker whole:
# test_tamper's tests share fixed files in /tmp (the markers a trick would write), not only a fixture.
ONE_WORKER = {"tests/execution/test_tamper.py"}


def _fixture_scope(node: ast.FunctionDef) -> str | None:
    """The scope of a `@pytest.fixture` function, or None where `node` is not a fixture."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call is not None else decorator
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            for keyword in call.keywords if call is not None else ():
                if keyword.arg == "scope" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
            return "function"
    return None


@functools.cache
def tests_sharing_a_fixture(module: str) -> frozenset[str]:
    """The test functions of `module` (a path from the root) that use, directly or through other fixtures, a
    fixture of that module whose scope is wider than one test."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    fixtures: dict[str, tuple[bool, set[str]]] = {}
    tests: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            args = {a.arg for a in node.args.args + node.args.kwonlyargs}
            scope = _fixture_scope(node)
            if scope is not None:
                fixtures[node.name] = (scope != "function", args)
            elif node.name.startswith("test"):
                tests[node.name] = args

    @functools.cache
    def shared(name: str) -> bool:
        wide, args = fixtures[name]
        return wide or any(shared(a) for a in args if a in fixtures and a != name)

    return frozenset(t for t, args in tests.items() if any(shared(a) for a in args if a in fixtures))


def xdist_scope(nodeid: str) -> str:
    """The unit of work a test belongs to: its module where it shares a fixture with others of that module (or
    the module is in ONE_WORKER), else the test alone."""
    module, _, rest = nodeid.partition("::")
    function = rest.split("[")[0].split("::")[-1]
    if module in ONE_WORKER or (module.endswith(".py") and function in tests_sharing_a_fixture(module)):
        return module
    return nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    # xdist's own loadgroup (an `xdist_group` mark) renames test ids, which pytest 9.2 no longer lets it do.
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduler(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return Scheduler(config, log)


@pytest.fixture(scope="session")
def mini_rubric() -> Rubric:
    return load_rubric(DATA / "mini" / "rubric.yaml")


@pytest.fixture(scope="session")
def cnn_rubric() -> Rubric:
    return load_rubric(ROOT / "rubrics" / "cnn-rnn.yaml")


@pytest.fixture
def write_py(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(source: str, name: str = "student.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def write_nb(tmp_path: Path) -> Callable[..., Path]:
    def write(*cells: str, name: str = "student.ipynb") -> Path:
        nb = nbformat.v4.new_notebook()
        for cell in cells:
            cell = textwrap.dedent(cell)
            if cell.startswith("md:"):
                nb.cells.append(nbformat.v4.new_markdown_cell(cell[3:].lstrip()))
            else:
                nb.cells.append(nbformat.v4.new_code_cell(cell))
        path = tmp_path / name
        nbformat.write(nb, path)
        return path

    return write


def scores(result: SubmissionResult) -> dict[str, float]:
    return {q.qid: q.score for q in result.questions}


def by_id(result: SubmissionResult, qid: str):  # type: ignore[no-untyped-def]
    return next(q for q in result.questions if q.qid == qid)


@pytest.fixture
def grade_mini(mini_rubric: Rubric) -> Callable[[Path], SubmissionResult]:
    return lambda path: grade_submission(mini_rubric, path)


def wait_until(condition: Callable[[], object], seconds: float = 15.0) -> bool:
    """Whether `condition()` came true within `seconds` (what another process does takes its time to show)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())
