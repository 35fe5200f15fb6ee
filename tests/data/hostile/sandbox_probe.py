# A submission that looks around from inside its worker; tests/execution/test_sandbox.py calls these functions and
# checks what they saw.  Everything here is what a curious or hostile student could write.
import os
import socket
import subprocess
import sys


def can_read(path):
    try:
        with open(path, "rb") as fh:
            fh.read(1)
        return True
    except OSError:
        return False


def can_list(path):
    try:
        os.listdir(path)
        return True
    except OSError:
        return False


def can_write(path):
    try:
        with open(path, "w") as fh:
            fh.write("tampered")
        return True
    except OSError:
        return False


def connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as exc:
        return f"refused: {exc}"


def interfaces():
    return sorted(name for _, name in socket.if_nameindex())


def process_command_lines():
    lines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    lines.append(fh.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return lines


def start_daemons(token):
    # A plain child, a setsid'd double-forked daemon, and one started with nohup-like Popen: all must die with
    # the grading.  The token in their command lines lets the test look for them from outside.
    code = f"import time; time.sleep(120)  # {token}"
    subprocess.Popen([sys.executable, "-c", code])
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", code])
        os._exit(0)
    return "started"


def allocate(n_bytes):
    try:
        block = bytearray(n_bytes)
        return len(block)
    except MemoryError:
        return "refused"


def tensor_allocate(n_bytes):
    import torch

    try:
        return int(torch.ones(n_bytes // 8, dtype=torch.float64).numel() * 8)
    except RuntimeError:
        return "refused"


def fork_bomb(n):
    made = 0
    try:
        for _ in range(n):
            if os.fork() == 0:
                import time
                time.sleep(5)
                os._exit(0)
            made += 1
    except OSError:
        return f"refused after {made}"
    return made
