# A submission that tries to undo its sandbox from inside: a user namespace of its own (which the kernel still
# allows, as under bubblewrap) gives it capabilities there, and with them it tries to take away the mounts that
# hide the grader's files.  tests/execution/test_forkserver.py checks that the covers hold.
import os
import subprocess


def uncover_and_read(cover, path):
    script = f"umount -l {cover}; umount {cover}; cat {path}"
    done = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=30)
    return done.stdout


def identity():
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh if ":" in line)
    return {
        "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "hostname": os.uname().nodename,
        "capabilities": [fields[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
        "no_new_privs": fields["NoNewPrivs"].strip(), "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }
