"""Benchmark: how long the grader's bounds take to act, in wall-clock seconds (by hand: `python bench/bench_bounds.py`).

Not a test: wall-clock figures depend on the machine's load, so no test asserts them (tests assert verdicts,
and CPU time where a bound guards against a blow-up).  These are the durations the tests used to assert, each
printed beside the figure it was once held to:

- a cell that computes forever and one that sleeps, in a worker (stopped by its CPU seconds, by the backstop);
- a call that needs 0.6 CPU seconds under a 2 s limit, quiet and with every core kept busy (`--busy`);
- a right formula too slow to check within a 0.5 s budget (needs a TA), and a huge one refused at once;
- loading a notebook of adversarial Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.execution.session import WorkerSession  # noqa: E402
from grader.rubric.schema import Limits  # noqa: E402
from grader.sources.load import load_submission  # noqa: E402


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.monotonic()
    value = fn()
    return time.monotonic() - start, value


def worker_rows(folder: Path, busy: bool) -> list[tuple[str, float, str, str]]:
    path = folder / "student.py"
    path.write_text(
        "import time\n\ndef slow_double(x):\n    start = time.thread_time()\n"
        "    while time.thread_time() - start < 0.6:\n        pass\n    return x * 2\n"
        "# %%\nwhile True:\n    pass\n# %%\ntime.sleep(60)\n"
    )
    rows = []
    limits = Limits(cell_timeout=3, call_timeout=2)
    with WorkerSession(load_submission(path), limits) as session:
        seconds, failures = timed(session.run_cells)
        reasons = ", ".join(f.message.split(" (")[0] for f in failures)  # type: ignore[attr-defined]
        rows.append(("two hanging cells (3 CPU s, 12 s backstop)", seconds, "< 40", reasons))
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3 * (os.cpu_count() or 1))] if busy else []
        try:
            seconds, result = timed(lambda: session.call("slow_double", [21], timeout=2))
        finally:
            for proc in burners:
                proc.kill()
                proc.wait()
        what = "a 0.6 CPU-s call, 2 s limit" + (", every core busy" if busy else "")
        rows.append((what, seconds, "-", f"ok={result.ok} value={result.value}"))  # type: ignore[attr-defined]
    return rows


def formula_rows() -> list[tuple[str, float, str, str]]:
    from tests.checks.test_formula import CONV
    from tests.test_student_text import SLOW_RIGHT, grade

    seconds, outcome = timed(lambda: grade({**CONV, "budget": 0.5}, SLOW_RIGHT))
    rows = [("a right formula too slow for a 0.5 s budget", seconds, "< 3", outcome.resolved_status.value)]  # type: ignore[attr-defined]
    seconds, outcome = timed(lambda: grade(CONV, "2**2**2**99"))
    rows.append(("a formula with a huge exponent", seconds, "< 5", outcome.resolved_status.value))  # type: ignore[attr-defined]
    return rows


def load_rows(folder: Path) -> list[tuple[str, float, str, str]]:
    path = folder / "nb.ipynb"
    text = "$a" * 100_000
    cells = [{"cell_type": "markdown", "metadata": {}, "source": text},
             {"cell_type": "code", "metadata": {}, "source": text, "outputs": [], "execution_count": None}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    seconds, _ = timed(lambda: load_submission(path))
    return [("loading a notebook of 200,000 adversarial characters", seconds, "< 2", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--busy", action="store_true", help="keep every core busy during the 0.6 CPU-s call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = worker_rows(Path(tmp), args.busy) + formula_rows() + load_rows(Path(tmp))
    print(f"{'what':58} {'wall s':>8} {'was held to':>12}  outcome")
    for what, seconds, bound, outcome in rows:
        print(f"{what:58} {seconds:8.2f} {bound:>12}  {outcome}")


if __name__ == "__main__":
    main()
