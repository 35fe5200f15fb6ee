# Ends its worker every way it can: from atexit, at import of a module, in a cell, from a function.
import atexit
import os
import sys

atexit.register(lambda: os._exit(0))
answer = 41
pair = (5, 3)
# %%
sys.exit(0)
# %%
flag = True
ratio = 0.5
# %%
os._exit(0)
# %%
def scale(x, k):
    os._exit(0)
# %%
def cube_vjp(x, g):
    raise SystemExit(0)
# %%
def cube_jac(x):
    import signal
    os.kill(os.getpid(), signal.SIGKILL)
