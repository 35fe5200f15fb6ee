# %%
import errno
import os

answer = 42


def scale(x, k):
    return x * k


# %%
# Fill the home folder and /tmp with 1 GiB each, in 8 MiB files (each under the file-size limit), and note
# how far it got and how it was stopped.
def fill(folder, total=2**30, chunk=2**20, per_file=8):
    written = 0
    try:
        for n in range(total // (chunk * per_file)):
            with open(os.path.join(folder, f"fill-{n}.bin"), "wb") as fh:
                for _ in range(per_file):
                    fh.write(b"x" * chunk)
                    written += chunk
    except OSError as exc:
        return {"error": errno.errorcode.get(exc.errno, str(exc.errno)), "written": written}
    return {"error": None, "written": written}


disk = {"home": fill(os.environ["HOME"]), "tmp": fill("/tmp")}

# %%
# The same without catching anything: the error is this cell's failure, in the student's own traceback.
with open("/tmp/one-more.bin", "wb") as fh:
    fh.write(b"x" * 2**24)
