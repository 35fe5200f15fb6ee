# A submission that tries to leave something behind for the next one graded in the same warm slot.
# tests/execution/test_warm.py calls leave(token), then grades a clean submission that must see none of it.
import os
import random
import subprocess
import sys
import threading
import time

import numpy as np
import torch


def _try_write(path, text):
    try:
        with open(path, "w") as fh:
            fh.write(text)
        return path
    except OSError:
        return None


def leave(token):
    left = []
    code = f"import time; time.sleep(300)  # {token}"
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True)  # a daemon
    if os.fork() == 0:  # a double-forked, setsid'd one
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", code])
        os._exit(0)
    for folder in ("/tmp", "/dev/shm", os.getcwd(), "/", "/etc", "/home", "/dev", "/run", "/run/grader",
                   "/run/grader/scratch", "/var", "/usr", "/opt", "/root", "/mnt", "/srv"):
        left.append(_try_write(os.path.join(folder, f"left-{token}"), token))
    torch.allclose = lambda *a, **k: True  # a patched module
    np.allclose = lambda *a, **k: True
    random.seed(1234)
    np.random.seed(1234)
    torch.manual_seed(1234)
    torch.set_num_threads(7)
    os.environ["LEFT_BEHIND"] = token
    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()  # a background thread
    return [p for p in left if p]
