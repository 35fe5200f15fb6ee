"""The student's side: a process that runs code cells and calls student functions on given inputs.

It computes no verdict.  It answers requests from the grader on a private pipe (student `print`s go to
stdout, a different file) with plain data only.  Everything in this process may be tampered with by the
student's code; the grader treats what comes back as the student's answer, nothing more.
"""
from __future__ import annotations

import builtins
import linecache
import os
import random
import signal
import sys
import time
import traceback
from typing import Any, Callable

from grader.worker import codec
from grader.worker.protocol import ChannelClosed, read_message, write_message


class CellTimeout(BaseException):
    """Raised by the interval timer; a BaseException so `except Exception` in student code does not eat it."""


class Worker:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.handles: dict[int, Any] = {}
        self.ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "hello": self.op_hello,
            "exec": self.op_exec,
            "call": self.op_call,
            "get": self.op_get,
            "names": self.op_names,
        }
        from grader.worker import extensions

        for name, op in extensions.OPS.items():
            self.ops[name] = lambda req, op=op: op(self, req)

    # -- loop -------------------------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                request = read_message(self.rfd)
            except ChannelClosed:
                return
            op = self.ops.get(str(request.get("op")))
            try:
                reply = op(request) if op else {"ok": False, "error": "unknown request"}
            except CellTimeout:
                reply = {"ok": False, "timed_out": True, "error": "time limit reached"}
            except BaseException as exc:  # noqa: BLE001 - report everything, die of nothing
                reply = {"ok": False, "error": _describe(exc)}
            reply["id"] = request.get("id")
            reply["nonce"] = request.get("nonce")
            try:
                write_message(self.wfd, reply)
            except (codec.CodecError, TypeError, ValueError) as exc:
                write_message(self.wfd, {"id": request.get("id"), "nonce": request.get("nonce"), "ok": False, "error": f"reply not encodable: {exc}"})

    # -- ops --------------------------------------------------------------------------------------------
    def op_hello(self, request: dict[str, Any]) -> dict[str, Any]:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return {"ok": True, "python": sys.version.split()[0], "torch": torch.__version__, "device": device}

    def op_exec(self, request: dict[str, Any]) -> dict[str, Any]:
        index, source = int(request["index"]), str(request["source"])
        filename = f"<cell {index}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        try:
            code = compile(source, filename, "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
            return {"ok": False, "reason": "syntax", "error": _describe(exc), "traceback": _syntax_lines(exc)}
        try:
            with _time_limit(float(request.get("timeout", 60))):
                exec(code, self.namespace)
        except CellTimeout:
            return {"ok": False, "reason": "timeout", "error": "the cell ran past its time limit"}
        except SystemExit as exc:
            return {"ok": False, "reason": "error", "error": f"the cell called sys.exit({exc.code!r})"}
        except BaseException as exc:  # noqa: BLE001
            return {"ok": False, "reason": "error", "error": _describe(exc), "traceback": _student_frames(exc)}
        return {"ok": True}

    def op_call(self, request: dict[str, Any]) -> dict[str, Any]:
        if "handle" not in request and str(request.get("name")) not in self.namespace:
            return {"ok": False, "missing": True, "error": f"`{request.get('name')}` is not defined"}
        fn = self._resolve(request)
        args = [self._decode_arg(a) for a in request.get("args", [])]
        kwargs = {str(k): self._decode_arg(v) for k, v in (request.get("kwargs") or {}).items()}
        if request.get("seed") is not None:
            seed_everything(int(request["seed"]))
        start = time.perf_counter()
        try:
            with _time_limit(float(request.get("timeout", 30))):
                value = fn(*args, **kwargs)
        except CellTimeout:
            return {"ok": False, "timed_out": True, "error": "the call ran past its time limit"}
        except SystemExit as exc:
            return {"ok": False, "error": f"the function called sys.exit({exc.code!r})"}
        except BaseException as exc:  # noqa: BLE001
            return {"ok": False, "error": _describe(exc), "traceback": _student_frames(exc)}
        reply: dict[str, Any] = {"ok": True, "duration": time.perf_counter() - start}
        if request.get("keep"):
            value = self.keep(value)
        reply["value"] = codec.encode(value)
        if request.get("echo_args"):
            reply["args_after"] = [codec.encode(a) for a in args]
            reply["kwargs_after"] = {k: codec.encode(v) for k, v in kwargs.items()}
        return reply

    def op_get(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request["name"])
        if name not in self.namespace:
            return {"ok": True, "exists": False}
        return {"ok": True, "exists": True, "value": codec.encode(self.namespace[name])}

    def op_names(self, request: dict[str, Any]) -> dict[str, Any]:
        names = {k: type(v).__name__ for k, v in list(self.namespace.items()) if not k.startswith("__")}
        return {"ok": True, "names": names}

    # -- helpers ----------------------------------------------------------------------------------------
    def keep(self, value: Any) -> codec.Handle:
        handle = codec.Handle(len(self.handles) + 1, type(value).__name__)
        self.handles[handle.id] = value
        return handle

    def _resolve(self, request: dict[str, Any]) -> Any:
        if "handle" in request:
            return self.handles[int(request["handle"])]
        name = str(request["name"])
        if name not in self.namespace:
            raise NameError(f"name '{name}' is not defined")
        return self.namespace[name]

    def _decode_arg(self, data: Any) -> Any:
        value = codec.decode(data)
        return self.handles[value.id] if isinstance(value, codec.Handle) else value


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _time_limit:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _on_alarm(signum: int, frame: object) -> None:
    raise CellTimeout()


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(exc).__name__}: {text}"[:2000] if text else type(exc).__name__


def _student_frames(exc: BaseException) -> list[str]:
    """The traceback lines that point into the student's cells, none of the toolkit's."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return [line.rstrip("\n") for line in lines][-40:]


def _syntax_lines(exc: BaseException) -> list[str]:
    return [line.rstrip("\n") for line in traceback.format_exception_only(type(exc), exc)]


def main() -> None:
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    for fd in (rfd, wfd):
        os.set_inheritable(fd, False)  # processes the student starts do not get the channel
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch  # noqa: F401 - paid once here, before the first cell, not inside a cell's time limit

    threads = os.environ.get("GRADER_TORCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    Worker(rfd, wfd).serve()
    # Skip interpreter shutdown: atexit hooks and finalisers are the student's, not ours.
    os._exit(0)
