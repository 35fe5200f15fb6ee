"""Benchmark: how soon the first worker answers once a command has started the fork server (by hand:
`python bench/bench_forkserver_start.py`).

`choose_launcher` starts the server before the command reads its rubric and submissions, so the server's
imports overlap that reading.  Printed: how long the server's imports take alone (a separate process running
the same `preload`), and, from the launcher's choice, when the rubric was read and when the first worker
answered its hello (all it needs is the server's imports, plus one fork and one sandbox).  The goal: the first
answer within about 1 s of the server's imports.  Wall-clock figures: machine-dependent, never a test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def imports_alone() -> float:
    code = "import time; t = time.monotonic(); from grader.worker.zygote import preload; preload(); print(time.monotonic() - t)"
    done = subprocess.run([sys.executable, "-s", "-P", "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(done.stdout)


def first_answer() -> tuple[float, float]:
    start = time.monotonic()
    from grader.execution.launchers import choose_launcher
    from grader.execution.session import WorkerSession
    from grader.rubric.schema import load_rubric
    from grader.sources.load import load_submission

    launcher = choose_launcher("required")
    assert launcher.name == "forkserver", f"the fork server cannot run here ({launcher.name} chosen)"
    rubric = load_rubric(ROOT / "tests" / "data" / "mini" / "rubric.yaml")
    read = time.monotonic() - start
    with WorkerSession(load_submission(ROOT / "tests" / "data" / "mini" / "reference.py"), rubric.limits, launcher) as session:
        session.run_cells()
        return read, time.monotonic() - start


def main() -> None:
    os.environ.pop("GRADER_FORKSERVER", None)
    alone = imports_alone()
    read, answered = first_answer()
    print(f"the server's imports, alone:            {alone:6.2f} s")
    print(f"rubric read, from the launcher's choice: {read:6.2f} s")
    print(f"first worker's cells run:               {answered:6.2f} s ({answered - alone:+.2f} s after the imports alone)")


if __name__ == "__main__":
    main()
