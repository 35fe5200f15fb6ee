# A cell kills its own worker: the session replays the other cells in a fresh worker, forked by the zygote.
import os

x = 41

# %%
os._exit(3)

# %%
def answer():
    return x + 1, os.getpid()
