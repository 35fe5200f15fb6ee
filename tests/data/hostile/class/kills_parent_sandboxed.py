# Tries to kill the grader: its parent, its parent's process group and its own process group.
# Without the sandbox os.kill(os.getppid()) can reach the grader: sandbox only.
import os
import signal

answer = 41


def _kill_everyone():
    for target in (lambda: os.kill(os.getppid(), signal.SIGKILL),
                   lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL),
                   lambda: os.killpg(0, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


# %%
pair = (5, 3)
_kill_everyone()
# %%
flag = True


def scale(x, k):
    _kill_everyone()
    return x
