"""The grader's own bounds on student content: what a notebook costs the grading process, whatever it holds.

A class of hostile notebooks is graded by `grader grade` in a child process, whose own peak memory (its workers
apart) is measured: a cell holding a 12 MiB list literal (parsed whole, it took the grader 5 GB and 29 s), a
31 MB notebook of 300,000 Markdown cells (40-50 s of nbformat validation), 1,990 tiny failing cells (a 50 MB
student folder).  The batch completes, every submission has its exact score, and nothing of student content
costs the grader more than a bounded amount.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.checks.forbid import find_violations
from grader.execution import sandbox
from grader.execution.sandbox import WorkerCgroup, cgroup_support, remove_orphaned_cgroups
from grader.grading.submission import MAX_CELL_FAILURES, MAX_CELL_TRACEBACKS
from grader.rubric.schema import Limits
from grader.sources.load import MAX_PARSED, Cell, Submission, TooLargeToParse, load_submission, parse_python
from tests.conftest import ROOT

DATA = Path(__file__).resolve().parents[1] / "data" / "bounds"
HONEST = ["def double(x):\n    return x * 2", "answer = 42"]
BIG_LITERAL = "big = [" + "0, " * (4 * 2**20) + "]"  # 12 MiB
PEAK_MB = 1500  # the grading process, torch imported: about 500 MB; the huge literal alone once took 5 GB


def _notebook(path: Path, code: list[str], markdown: int = 0) -> Path:
    cells = [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in code]
    text = "Some words of a student, nothing of an answer, about fifty characters."
    cells += [{"cell_type": "markdown", "metadata": {}, "source": text} for _ in range(markdown)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


GRADE = """
import json, resource, sys
from pathlib import Path
from grader.cli.grade import grade
from grader.execution.sandbox import PlainLauncher

rc = grade(Path(sys.argv[1]), [Path(sys.argv[2])], Path(sys.argv[3]), launcher=PlainLauncher())
print(json.dumps({"rc": rc, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    folder = tmp_path_factory.mktemp("class")
    out = folder.parent / "out"
    _notebook(folder / "honest.ipynb", HONEST)
    _notebook(folder / "huge_literal.ipynb", [HONEST[0], BIG_LITERAL, HONEST[1]])
    _notebook(folder / "markdown.ipynb", HONEST, markdown=300_000)
    _notebook(folder / "failing.ipynb", [HONEST[0], *(f"raise ValueError({i})" for i in range(1990)), HONEST[1]])
    done = subprocess.run([sys.executable, "-c", GRADE, str(DATA / "rubric.yaml"), str(folder), str(out)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def _result(out: Path, student: str) -> dict:  # type: ignore[type-arg]
    return json.loads((out / student / "grading.json").read_text())


def test_the_batch_completes_with_every_score_exact(graded: tuple[dict[str, object], Path]) -> None:
    summary, out = graded
    assert summary["rc"] == 0
    scores = {s: {q["qid"]: q["score"] for q in _result(out, s)["questions"]}
              for s in ("honest", "huge_literal", "markdown", "failing")}
    assert scores == {
        "honest": {"q1.1": 1, "q1.2": 1},
        "huge_literal": {"q1.1": 1, "q1.2": 0},  # its forbid-gated question: a cell the grader cannot read
        "markdown": {"q1.1": 1, "q1.2": 1},
        "failing": {"q1.1": 1, "q1.2": 1},
    }


def test_the_grading_process_stays_within_its_memory(graded: tuple[dict[str, object], Path]) -> None:
    summary, _ = graded
    assert isinstance(summary["peak_mb"], float) and summary["peak_mb"] < PEAK_MB, summary


def test_a_cell_too_large_to_parse_is_unreadable_not_empty(graded: tuple[dict[str, object], Path]) -> None:
    _, out = graded
    q = next(q for q in _result(out, "huge_literal")["questions"] if q["qid"] == "q1.2")
    assert q["message"] == (
        "double uses dynamic code (cell 1 is too large for the grader to read: 12,582,920 characters of code, more "
        f"than the {MAX_PARSED:,} the grader reads in one piece; simplify it) (cell 1); the handout forbids "
        "torch.nn.functional here"
    )


def test_a_thousand_failing_cells_are_cut_with_a_note(graded: tuple[dict[str, object], Path]) -> None:
    _, out = graded
    result = _result(out, "failing")
    failures = result["cell_failures"]
    assert len(failures) == MAX_CELL_FAILURES
    assert [bool(f["traceback"]) for f in failures] == [True] * MAX_CELL_TRACEBACKS + [False] * (MAX_CELL_FAILURES - MAX_CELL_TRACEBACKS)
    assert result["notes"] == [
        f"1,990 cells failed; only the first {MAX_CELL_FAILURES} are shown; tracebacks are shown for the first "
        f"{MAX_CELL_TRACEBACKS} failed cells only (cut by the grader)"
    ]
    folder = sum(p.stat().st_size for p in (out / "failing").rglob("*") if p.is_file())
    assert folder < 5 * 2**20, folder  # 1,990 failures once made 50 MB


# -- in this process: CPU time of this thread and memory, never the wall clock --------------------------------------


def test_parsing_refuses_a_huge_cell_before_any_work() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.thread_time()
    with pytest.raises(TooLargeToParse) as caught:
        parse_python(BIG_LITERAL)
    assert time.thread_time() - start < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB: the source's copy at most
    assert isinstance(caught.value, MemoryError)
    assert parse_python("\n" * MAX_PARSED + "x = 1").body  # blank lines that keep line numbers are free


def test_forbid_reads_at_most_its_total_and_says_so(tmp_path: Path) -> None:
    cell = "values = [" + "1, " * 80_000 + "]"  # 240,000 characters: under the cap of one cell
    cells = (*tuple(Cell(i, cell) for i in range(40)), Cell(40, HONEST[0]))
    submission = Submission(tmp_path / "s.py", "s", cells, {}, "0" * 64)
    (violation,) = find_violations(submission, "double", ["torch.nn.functional"])
    assert violation.note.startswith("cell 34 is past the first 8,388,608 characters of code")


def test_a_notebook_of_300k_markdown_cells_loads_in_seconds_of_cpu(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "nb.ipynb", HONEST, markdown=300_000)
    start = time.thread_time()
    submission = load_submission(path)
    assert time.thread_time() - start < 10  # nbformat's validation took 40-50 s
    assert [c.source for c in submission.cells] == HONEST


# -- worker cgroups are always removed, whatever happened --------------------------------------------------------

needs_cgroups = pytest.mark.skipif(not cgroup_support().parents, reason=f"no cgroup can be made here: {cgroup_support().problem}")

ORPHANING = """
import json, os, signal, subprocess
from grader.rubric.schema import Limits
from grader.execution.sandbox import WorkerCgroup

cgroup = WorkerCgroup.create(Limits())
sleeper = subprocess.Popen(["sleep", "600"], preexec_fn=cgroup.join, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps({"folders": [str(f) for f in cgroup.folders], "pid": sleeper.pid}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does: no atexit, no cleanup
"""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")  # killed, not reaped yet
    except OSError:
        return True


@needs_cgroups
def test_the_cgroups_of_a_killed_grader_are_removed_by_the_next_one() -> None:
    done = subprocess.run([sys.executable, "-c", ORPHANING], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    left = json.loads(done.stdout)
    folders = [Path(f) for f in left["folders"]]
    try:
        assert all(f.exists() for f in folders) and not _gone(left["pid"])
        remove_orphaned_cgroups.cache_clear()  # once per process: this test is a second grader
        removed = remove_orphaned_cgroups()
        assert set(folders) <= set(removed)
        assert not any(f.exists() for f in folders)
        assert _gone(left["pid"])  # what ran in it was killed
    finally:
        if not _gone(left["pid"]):
            os.kill(left["pid"], signal.SIGKILL)


@needs_cgroups
def test_a_cgroup_not_removed_in_time_is_removed_before_the_next_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    first = WorkerCgroup.create(Limits())
    assert first is not None
    real = sandbox._remove_cgroup
    monkeypatch.setattr(sandbox, "_remove_cgroup", lambda folder, deadline, warn=True: False)  # still busy
    first.cleanup()
    assert all(f.exists() for f in first.folders)
    monkeypatch.setattr(sandbox, "_remove_cgroup", real)
    second = WorkerCgroup.create(Limits())
    assert second is not None
    second.cleanup()
    assert not any(f.exists() for f in first.folders + second.folders)
