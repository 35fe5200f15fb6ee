# A clean submission that looks for what an earlier one in the same warm slot may have left.
import os
import random
import threading

import numpy as np
import torch


def _find(token, top):
    found = []
    for folder, dirs, files in os.walk(top):
        if folder.startswith(("/proc", "/sys")):
            dirs[:] = []
            continue
        found += [os.path.join(folder, f) for f in files if token in f]
    return found


def look(token):
    commands = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    commands.append(fh.read().decode(errors="replace"))
            except OSError:
                pass
    return {
        "files": _find(token, "/"),
        "processes": [c for c in commands if token in c],
        "allclose": torch.allclose(torch.zeros(1), torch.ones(1)) or np.allclose(0, 1),
        "torch_seed": torch.initial_seed(),
        "numpy_draw": float(np.random.random()),
        "random_draw": random.random(),
        "threads": torch.get_num_threads(),
        "env": os.environ.get("LEFT_BEHIND"),
        "python_threads": threading.active_count(),
        "tasks": len(os.listdir("/proc/self/task")),
        "home": sorted(os.listdir(".")),
    }
