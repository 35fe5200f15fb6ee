"""Benchmark: memory per grading slot, fork server against bubblewrap (by hand: `python bench/bench_forkserver_memory.py`).

Opens N sessions at once (default 4) on a submission that imports torch and runs one operation, under the fork
server and under fresh bubblewrap workers, and prints for each the server's and each worker's RSS, PSS and USS
(private pages: what the slot costs beyond what is shared) from /proc/PID/smaps_rollup.  Figures go in
docs/forkserver.md; no test asserts them.  Needs root or the grading user (to read the workers' smaps).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.execution import forkserver  # noqa: E402
from grader.execution.sandbox import BwrapLauncher, Launcher  # noqa: E402
from grader.execution.session import WorkerSession  # noqa: E402
from grader.execution.transport import PipeTransport  # noqa: E402
from grader.rubric.schema import Limits  # noqa: E402
from grader.sources.load import load_submission  # noqa: E402

SUBMISSION = "import torch\nx = torch.nn.Linear(64, 64)(torch.ones(8, 64)).sum().item()\n"
MiB = 2**20


def memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS of `pid`, in bytes."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0]) * 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(name))
    return found


def descendants(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


def show(label: str, pid: int) -> dict[str, int]:
    m = memory(pid)
    print(f"  {label:<28} rss {m['rss'] / MiB:7.1f}  pss {m['pss'] / MiB:7.1f}  uss {m['uss'] / MiB:7.1f} MiB")
    return m


def measure(name: str, launcher: Launcher, slots: int, submission: Path) -> None:
    print(f"{name}: {slots} sessions at once")
    with ExitStack() as stack:
        sessions = [stack.enter_context(WorkerSession(load_submission(submission), Limits(), launcher)) for _ in range(slots)]
        for session in sessions:
            assert session.run_cells() == []
        time.sleep(1)
        total = {"rss": 0, "pss": 0, "uss": 0}
        if name == "forkserver":
            server = next(iter(forkserver.running_servers()))
            for key, value in show("server", server).items():
                total[key] += value
            pids = descendants(server)
        else:
            procs = [s.transport.proc for s in sessions if isinstance(s.transport, PipeTransport)]
            pids = [p for proc in procs for p in [proc.pid, *descendants(proc.pid)]]
        uss = []
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                label = fh.read().split(b"\0")[0].decode()[-28:]
            m = show(f"{pid} {os.path.basename(label)}", pid)
            uss.append(m["uss"])
            for key, value in m.items():
                total[key] += value
        print(f"  total                        rss {total['rss'] / MiB:7.1f}  pss {total['pss'] / MiB:7.1f} MiB")
        print(f"  per slot: {total['pss'] / slots / MiB:.1f} MiB of PSS; private pages per slot {sum(uss) / slots / MiB:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-forkserver-"))
    submission = folder / "submission.py"
    submission.write_text(SUBMISSION)
    measure("forkserver", forkserver.start(BwrapLauncher()), args.slots, submission)
    measure("bwrap", BwrapLauncher(), args.slots, submission)


if __name__ == "__main__":
    main()
