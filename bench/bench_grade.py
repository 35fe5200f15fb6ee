"""Benchmark: what grading a class and a student's self-check cost, side by side in one run (`make bench`).

Not a test: timings flake on shared machines.  Every figure is measured here, in this run, with the machine's
cores and load printed beside it (docs/performance.md keeps a run's figures and the goals):

1. a student's self-check of one notebook: the first `grader check NB --kit K` (no daemon yet: it starts one),
   a repeated one (answered by the warm daemon), one with `--no-daemon` (all in its own process, as before the
   daemon), next to `jupyter nbconvert --execute` of the same notebook (nbclient, its engine, where nbconvert is
   not installed) and a bare `python -c 'import torch'`; and the daemon's memory;
2. a class: batches of 6 and 60 distinct cnn-rnn notebooks (the shipped examples, varied) graded by
   `grader grade --jobs 1` and `--jobs 2`, start-up included, in seconds per submission; the peak memory (PSS of
   the command and all its processes) of each, and what the second slot adds;
3. (with --stages) where one submission's grading time goes: worker start, the student's cells, each check kind.

The batch of 60 runs with `--large` (`make bench BENCH_ARGS=--large`): about 5 minutes more on an idle 2-core
machine, which would take the default run past 10 minutes on a busy one.
"""
from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "submissions" / "cnn-rnn"
GOAL_REPEATED = 3.0  # a repeated check at least this many times faster than nbconvert --execute of the notebook
GOAL_FIRST = 1.5  # the first check within this many times one torch import
GOAL_BATCH = 15.0  # a batch of 6 at --jobs 2, start-up included, this many times faster per notebook than nbconvert
GOAL_SLOT_MB = 100  # what a second slot may add to a batch's peak memory


# -- the class --------------------------------------------------------------------------------------------------


def as_notebook(path: Path) -> dict[str, object] | str:
    """A shipped example as a notebook: a notebook as it is (an unreadable one as its text); a .py file one code
    cell per top-level statement (comments above a statement go with it), as grading splits a .py file."""
    if path.suffix == ".ipynb":
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except ValueError:
            return path.read_text()
    source = path.read_text()
    lines = source.splitlines(keepends=True)
    starts = [min([n.lineno, *(d.lineno for d in getattr(n, "decorator_list", []))]) for n in ast.parse(source).body]
    bounds = [0, *(s - 1 for s in starts[1:]), len(lines)]
    cells = []
    for begin, end in itertools.pairwise(bounds):
        text = "".join(lines[begin:end]).strip("\n")
        if text:
            cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                          "source": text.splitlines(keepends=True)})
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def make_class(n: int, folder: Path) -> list[Path]:
    """`n` distinct notebooks: the shipped cnn-rnn examples in turn (correct, partial, damaged, hostile), each made
    distinct by a Markdown cell, so that no cache serves one for another."""
    folder.mkdir(parents=True, exist_ok=True)
    examples = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".ipynb", ".py"))
    notebooks = [as_notebook(p) for p in examples]
    paths = []
    for i in range(n):
        notebook = notebooks[i % len(notebooks)]
        path = folder / f"student{i:02d}.ipynb"
        if isinstance(notebook, str):  # carol's damaged notebook stays damaged, and distinct
            path.write_text(f"{notebook}\n{i}")
        else:
            cells = [*notebook["cells"], {"cell_type": "markdown", "metadata": {}, "source": [f"copy {i}"]}]  # type: ignore[misc]
            path.write_text(json.dumps(dict(notebook, cells=cells)))
        paths.append(path)
    return paths


def timed(argv: list[str], env: dict[str, str] | None = None, memory: bool = False, cwd: Path | None = None,
          ok: tuple[int, ...] = (0, 1)) -> tuple[float, float]:
    """Wall seconds of a command, and (with `memory`) the peak PSS in MB of it and all its descendants."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    peak = 0.0
    if memory:
        while proc.poll() is None:
            peak = max(peak, tree_pss(proc.pid))
            time.sleep(0.2)
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return elapsed, peak


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def tree_pss(root: int) -> float:
    total = 0
    for pid in descendants(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def grade_batches(sizes: list[int], work: Path, sandbox: str) -> dict[tuple[int, int], tuple[float, float]]:
    """(batch size, jobs) -> (seconds per submission, peak MB), start-up included."""
    rubric = ROOT / "rubrics" / "cnn-rnn.yaml"
    found = {}
    for n in sizes:
        paths = make_class(n, work / f"class-{n}")
        for jobs in (1, 2):
            argv = [str(BIN / "grader"), "grade", str(rubric), "--jobs", str(jobs), "--sandbox", sandbox, "--force",
                    "--out", str(work / f"out-{n}-{jobs}"), *map(str, paths)]
            # Timed alone, then again for its memory: reading every process's smaps 5 times a second takes CPU
            # from the grading on a 2-core machine.
            seconds, _ = timed(argv)
            _, peak = timed(argv, memory=True)
            found[n, jobs] = (seconds / n, peak)
            print(f"   graded {n} at --jobs {jobs}: {seconds:.1f} s (peak {peak:.0f} MB; load average {load()})", flush=True)
    return found


# -- a student's check ------------------------------------------------------------------------------------------


def nbconvert_argv(notebook: Path, out: Path) -> tuple[str, list[str]]:
    nbconvert = shutil.which("jupyter-nbconvert", path=str(BIN))
    if nbconvert:
        return "jupyter nbconvert --execute", [nbconvert, "--to", "notebook", "--execute", "--output-dir", str(out),
                                               str(notebook)]
    code = ("import sys, nbformat, nbclient; nb = nbformat.read(sys.argv[1], as_version=4); "
            "nbclient.NotebookClient(nb, kernel_name='python3', timeout=600).execute()")
    return "nbclient execute (nbconvert's engine)", [sys.executable, "-c", code, str(notebook)]


def stop_daemons(runtime: Path) -> float:
    """Stop the check daemons started under `runtime`; their memory (PSS, the zygote's included) in MB."""
    pss = 0.0
    folder = runtime / "grader-check"
    for pidfile in folder.glob("*.pid") if folder.exists() else []:
        try:
            pid = int(pidfile.read_text())
            if b"grader.cli.check_daemon" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
        except (OSError, ValueError):
            continue
        pss += tree_pss(pid)
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)
    return pss


def student_check(work: Path, sandbox: str, repeat: int) -> tuple[dict[str, float], float]:
    """Median seconds of each way to check one notebook, and the warm daemon's memory in MB."""
    folder = work / "check"
    folder.mkdir()
    notebook = folder / "alice.ipynb"
    shutil.copy(EXAMPLES / "alice_correct.ipynb", notebook)
    kit = folder / "cnn-rnn.kit.zip"
    timed([str(BIN / "grader"), "kit", str(ROOT / "rubrics" / "cnn-rnn.yaml"), "--out", str(kit)])
    check = [str(BIN / "grader"), "check", notebook.name, "--kit", str(kit), "--sandbox", sandbox]
    label, nbconvert = nbconvert_argv(notebook, folder / "nb")
    times: dict[str, list[float]] = defaultdict(list)
    memory = 0.0
    for i in range(repeat):  # interleaved, so that a change in the machine's load touches every row alike
        runtime = Path(tempfile.mkdtemp(prefix="gb-", dir="/tmp"))  # no daemon yet: the first check starts one
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "GRADER_DAEMON": "1"}
        env.pop("GRADER_DAEMON_IDLE", None)
        try:
            times["grader check, first (starts the daemon)"].append(timed(check, env=env, cwd=folder)[0])
            for _ in range(repeat):
                times["grader check, repeated (the warm daemon)"].append(timed(check, env=env, cwd=folder)[0])
        finally:
            memory = max(memory, stop_daemons(runtime))
            shutil.rmtree(runtime, ignore_errors=True)
        times["grader check --no-daemon"].append(timed([*check, "--no-daemon"], cwd=folder)[0])
        times[label].append(timed(nbconvert, cwd=folder)[0])
        times["python -c 'import torch'"].append(timed([sys.executable, "-c", "import torch"])[0])
        times["python -c pass (a bare interpreter)"].append(timed([sys.executable, "-c", "pass"])[0])
        print(f"   check round {i + 1} of {repeat} done", file=sys.stderr)
    return {name: statistics.median(values) for name, values in times.items()}, memory


# -- where one submission's time goes ---------------------------------------------------------------------------


def stages(notebook: Path, sandbox: str, repeat: int) -> None:
    from grader.checks import CheckContext
    from grader.classroom.outdir import finish
    from grader.execution.launchers import choose_launcher
    from grader.execution.session import WorkerSession
    from grader.grading.submission import grade_submission, run_question
    from grader.rubric.schema import load_rubric
    from grader.sources.load import load_submission

    rubric = load_rubric(ROOT / "rubrics" / "cnn-rnn.yaml")
    reference = rubric.load_reference()
    launcher = choose_launcher(sandbox)
    spent: dict[str, list[float]] = defaultdict(list)
    for i in range(repeat + 1):  # the first round warms the zygote and the caches up; not counted
        submission = load_submission(notebook)
        t0 = time.perf_counter()
        with WorkerSession(submission, rubric.limits, launcher) as session:
            session.get("__name__")
            t1 = time.perf_counter()
            session.run_cells()
            t2 = time.perf_counter()
            kinds: dict[str, float] = defaultdict(float)
            for question in rubric.questions:
                start = time.perf_counter()
                run_question(CheckContext(rubric, question, submission, session, reference, "cpu", reproduce_failures=True))
                kinds[question.spec.kind] += time.perf_counter() - start
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        result = grade_submission(rubric, notebook, launcher=launcher)
        with tempfile.TemporaryDirectory() as tmp:
            t5 = time.perf_counter()
            finish(result, rubric).write(Path(tmp) / "student")
            t6 = time.perf_counter()
        if i:
            spent["worker start (fork from the zygote, or bwrap + python + torch)"].append(t1 - t0)
            spent["the student's cells"].append(t2 - t1)
            for kind, seconds in kinds.items():
                spent[f"{kind} checks"].append(seconds)
            spent["worker teardown"].append(t4 - t3)
            spent["reports (results.json, grading.json, report.html/md)"].append(t6 - t5)
    print(f"\n3. one submission ({notebook.name}), median of {repeat}, sandbox {sandbox}, {launcher.name}"
          f"{' warm' if hasattr(launcher, 'spawn') else ''}")
    for stage, times in spent.items():
        print(f"   {stage:<62} {statistics.median(times):6.3f} s")


# -- the report -------------------------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
        memory = f", {kb / 1024 / 1024:.0f} GB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores{f' ({model})' if model else ''}{memory}, {platform.system()} {platform.release()}"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_checks(checks: dict[str, float], daemon_mb: float, repeat: int) -> None:
    print(f"\n1. a student's self-check of one notebook (alice_correct.ipynb), median of {repeat}")
    for name, seconds in checks.items():
        print(f"   {name:<44} {seconds:6.2f} s")
    label = next(name for name in checks if name.startswith(("jupyter", "nbclient")))
    repeated = checks["grader check, repeated (the warm daemon)"]
    first = checks["grader check, first (starts the daemon)"]
    torch = checks["python -c 'import torch'"]
    print(f"   goal: a repeated check >= {GOAL_REPEATED:g}x faster than {label}: "
          f"{checks[label] / repeated:.1f}x ({'met' if checks[label] / repeated >= GOAL_REPEATED else 'NOT met'})")
    print(f"   goal: the first check <= {GOAL_FIRST:g}x one torch import: {first / torch:.2f}x "
          f"({'met' if first / torch <= GOAL_FIRST else 'NOT met'})")
    print(f"   the warm daemon and its zygote hold {daemon_mb:.0f} MB (PSS)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="grade a batch of 60 notebooks too")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the self-check timings (medians)")
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("--stages", action="store_true", help="also where one submission's time goes")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average at start {load()}")
    sizes = [6, 60] if args.large else [6]
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        work = Path(tmp)
        checks, daemon_mb = student_check(work, args.sandbox, args.repeat)
        print_checks(checks, daemon_mb, args.repeat)
        print(f"   load average now {load()}", flush=True)
        batches = grade_batches(sizes, work, args.sandbox)
    label = next(name for name in checks if name.startswith(("jupyter", "nbclient")))
    print(f"\n2. grading a class: seconds per submission, start-up included; sandbox {args.sandbox}; "
          f"{label} of one notebook took {checks[label]:.2f} s")
    for n in sizes:
        one, two = batches[n, 1][0], batches[n, 2][0]
        print(f"   {n:>2} notebooks   --jobs 1 {one:6.2f} s   --jobs 2 {two:6.2f} s   "
              f"({checks[label] / one:.1f}x and {checks[label] / two:.1f}x faster than {label})")
    two = batches[6, 2][0]
    print(f"   goal: 6 notebooks at --jobs 2 >= {GOAL_BATCH:g}x faster per notebook than {label}: "
          f"{checks[label] / two:.1f}x ({'met' if checks[label] / two >= GOAL_BATCH else 'NOT met'})")
    print("   peak memory (PSS of grader grade and all its processes)")
    for n in sizes:
        one, two = batches[n, 1][1], batches[n, 2][1]
        print(f"   {n:>2} notebooks   --jobs 1 {one:6.0f} MB  --jobs 2 {two:6.0f} MB  (a second slot adds {two - one:.0f} MB)")
    added = batches[6, 2][1] - batches[6, 1][1]
    print(f"   goal: a second slot adds <= {GOAL_SLOT_MB} MB: {added:.0f} MB "
          f"({'met' if added <= GOAL_SLOT_MB else 'NOT met'})")
    if args.stages:
        stages(EXAMPLES / "alice_correct.ipynb", args.sandbox, args.repeat)
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
