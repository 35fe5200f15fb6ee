# %%
import os
import time

answer = 42


def scale(x, k):
    return x * k


# %%
# Fork until the system says no; every child sleeps, holding its process slot, and never forks again (a
# child that returned into the worker's code would only confuse the test, not the bound).
def fork_until_refused(most=2000):
    made = 0
    try:
        for _ in range(most):
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            made += 1
    except OSError:
        return made
    return made


forked = fork_until_refused()
