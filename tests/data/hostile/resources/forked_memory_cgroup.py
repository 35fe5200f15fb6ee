# %%
import os
import select
import signal
import time

answer = 42


def scale(x, k):
    return x * k


# %%
# Each forked child gets the per-process memory limit afresh: fill 128 MiB in each of 12 children and hold
# it.  The children volunteer to be the OOM killer's first choice so that the parent lives to count them; a
# real attacker would not, which changes only who is killed, not how much memory is held.
def hold_in_children(children=12, mib=128):
    r, w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            try:
                with open("/proc/self/oom_score_adj", "w") as fh:
                    fh.write("1000")
                block = b"\x01" * (mib << 20)  # written, so every page is really used
                os.write(w, b"k")
                time.sleep(60)
                del block
            finally:
                os._exit(0)
        pids.append(pid)
        wait_for_child(r, pid)  # one child at a time, so that they pile up
    time.sleep(0.5)
    alive = sum(is_alive(pid) for pid in pids)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    return {"children": children, "mib": mib, "alive": alive}


def wait_for_child(r, pid, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and is_alive(pid):
        if select.select([r], [], [], 0.05)[0]:
            os.read(r, 1)
            return


def is_alive(pid):
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


held = hold_in_children()
