"""Benchmark: what grading a class costs, side by side in one run (by hand: `make bench`).

Not a test: timings flake on shared machines.  Prints three tables:

1. seconds per submission for N distinct copies of a cnn-rnn notebook (distinct, so no cache serves another):
   `grader grade --jobs 1` and `--jobs 2`, `jupyter nbconvert --execute` (or `jupyter execute`, its nbclient
   twin, where nbconvert is not installed), and a bare `python` exec of the code cells, a process per notebook;
2. where one submission's time goes: worker start, the student's cells, each check kind, the reports;
   and, for --jobs 1 and 2, what each further submission costs once the batch is under way (grading all N less
   grading N/2: the batch's fixed start-up cancels out);
3. memory: the peak total PSS of `grader grade` and all its processes at --jobs 1, 2 and 3, and what a slot adds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def make_class(source: Path, n: int, folder: Path) -> list[Path]:
    """`n` copies of a notebook, each made distinct by a Markdown cell, so the gradebook's cache serves none."""
    notebook = json.loads(source.read_text())
    paths = []
    for i in range(n):
        copy = dict(notebook, cells=[*notebook["cells"], {"cell_type": "markdown", "metadata": {}, "source": [f"copy {i}"]}])
        path = folder / f"student{i:02d}.ipynb"
        path.write_text(json.dumps(copy))
        paths.append(path)
    return paths


def timed(argv: list[str], env: dict[str, str] | None = None, memory: bool = False) -> tuple[float, float]:
    """Wall seconds of a command, and (with `memory`) the peak PSS in MB of it and all its descendants."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0.0
    while proc.poll() is None:
        if memory:
            peak = max(peak, tree_pss(proc.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return elapsed, peak


def tree_pss(root: int) -> float:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def code_cells(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def table_1(rubric: Path, paths: list[Path], work: Path, sandbox: str) -> dict[str, float]:
    n = len(paths)
    half = paths[: n // 2]
    rows: dict[str, float] = {}
    marginal: dict[int, float] = {}
    memory: dict[int, float] = {}
    for jobs in (1, 2, 3):
        argv = [str(BIN / "grader"), "grade", str(rubric), "--jobs", str(jobs), "--sandbox", sandbox, "--force", "--out"]
        seconds, memory[jobs] = timed([*argv, str(work / f"out-{jobs}"), *map(str, paths)], memory=True)
        if jobs == 3:
            break  # memory only: this machine may not have the cores for a third slot's time to mean anything
        rows[f"grader grade --jobs {jobs}"] = seconds / n
        # The batch's fixed cost (start-up, zygotes, rubric, class files) cancels out between n and n/2.
        marginal[jobs] = (seconds - timed([*argv, str(work / f"half-{jobs}"), *map(str, half)])[0]) / (n - len(half))
    nbconvert = shutil.which("jupyter-nbconvert", path=str(BIN))
    label = "jupyter nbconvert --execute" if nbconvert else "jupyter execute (nbconvert not installed)"
    total = 0.0
    for path in paths:
        argv = ([nbconvert, "--to", "notebook", "--execute", "--output-dir", str(work / "nb"), str(path)] if nbconvert
                else [str(BIN / "jupyter-execute"), str(path)])
        total += timed(argv)[0]
    rows[label] = total / n
    total = 0.0
    for path in paths:
        script = work / (path.stem + ".py")
        script.write_text(code_cells(path))
        total += timed([sys.executable, str(script)])[0]
    rows["bare python, one process per notebook"] = total / n
    print(f"\n1. seconds per submission, {n} distinct cnn-rnn notebooks, {os.cpu_count()} cores, sandbox {sandbox}")
    for name, seconds in rows.items():
        print(f"   {name:<44} {seconds:6.2f} s")
    for jobs, seconds in marginal.items():
        print(f"   {f'each further submission, --jobs {jobs}':<44} {seconds:6.2f} s   (grading {n} less grading {len(half)})")
    one, two = rows["grader grade --jobs 1"], rows["grader grade --jobs 2"]
    print(f"   --jobs 2 vs --jobs 1: {one / two:.2f}x (each further submission: {marginal[1] / marginal[2]:.2f}x); "
          f"{label} vs --jobs 2: {rows[label] / two:.1f}x (each further submission: {rows[label] / marginal[2]:.1f}x)")
    print("\n3. memory (peak PSS of grader grade and all its processes)")
    for jobs, mb in memory.items():
        print(f"   --jobs {jobs}: {mb:7.0f} MB")
    print(f"   a slot beyond the second adds {memory[3] - memory[2]:.0f} MB; the process pool itself (its fork "
          f"server, the first slot's pool process) adds {memory[2] - memory[1] - (memory[3] - memory[2]):.0f} MB")
    return rows


def table_2(rubric_path: Path, path: Path, sandbox: str, repeat: int) -> None:
    from grader.checks import CheckContext
    from grader.classroom.outdir import finish
    from grader.execution.sandbox import choose_launcher
    from grader.execution.session import WorkerSession
    from grader.grading.submission import run_question
    from grader.rubric.schema import load_rubric
    from grader.sources.load import load_submission

    rubric = load_rubric(rubric_path)
    reference = rubric.load_reference()
    launcher = choose_launcher(sandbox)
    stages: dict[str, list[float]] = defaultdict(list)
    from grader.grading.submission import grade_submission

    for i in range(repeat + 1):  # the first round warms the zygote and the caches up; not counted
        submission = load_submission(path)
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
        result = grade_submission(rubric, path, launcher=launcher)
        with tempfile.TemporaryDirectory() as tmp:
            t5 = time.perf_counter()
            finish(result, rubric).write(Path(tmp) / "student")
            t6 = time.perf_counter()
        if i:
            stages["worker start (fork from the zygote, or bwrap + python + torch)"].append(t1 - t0)
            stages["the student's cells"].append(t2 - t1)
            for kind, seconds in kinds.items():
                stages[f"{kind} checks"].append(seconds)
            stages["worker teardown"].append(t4 - t3)
            stages["reports (results.json, grading.json, report.html/md)"].append(t6 - t5)
    print(f"\n2. one submission ({path.name}), median of {repeat}, sandbox {sandbox}, {launcher.name}"
          f"{' warm' if hasattr(launcher, 'spawn') else ''}")
    for stage, times in stages.items():
        print(f"   {stage:<62} {sorted(times)[len(times) // 2]:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rubric", default=str(ROOT / "rubrics" / "cnn-rnn.yaml"))
    parser.add_argument("--notebook", default=str(ROOT / "submissions" / "cnn-rnn" / "alice_correct.ipynb"))
    parser.add_argument("-n", type=int, default=12, help="distinct notebooks graded")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        work = Path(tmp)
        paths = make_class(Path(args.notebook), args.n, work)
        table_1(Path(args.rubric), paths, work, args.sandbox)
    table_2(Path(args.rubric), Path(args.notebook), args.sandbox, args.repeat)


if __name__ == "__main__":
    main()
