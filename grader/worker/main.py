"""The student's side: a process that runs code cells and calls student functions on given inputs.

It computes no verdict.  It answers requests from the grader on a private pipe (student `print`s go to
stdout, a different file) with plain data only.  Everything in this process may be tampered with by the
student's code; the grader treats what comes back as the student's answer, nothing more.
"""
from __future__ import annotations

import builtins
import functools
import io
import linecache
import os
import resource
import stat
import sys
import threading
import time
from typing import Any, Callable, cast

from grader.worker import codec, protocol
from grader.worker.messages import Call, Exec, Get, MalformedRequest, ReplyFields, Request, parse_request
from grader.worker.protocol import ChannelClosed, read_message
from grader.worker.running import (
    CellTimeout,
    describe,
    seed_everything,
    student_frames,
    syntax_lines,
    time_limit,
)

OUTPUT_CAP = 8 * 1024 * 1024  # bytes of a worker's stdout and stderr kept in the log
NOTICE_ROOM = 256  # bytes kept under the file-size limit for the truncation notice


class Worker:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.handles: dict[int, Any] = {}
        # Each op takes its own request record (grader.worker.messages), the one `parse_request` made.
        self.ops: dict[str, Callable[[Any], ReplyFields]] = {
            "hello": self.op_hello,
            "exec": self.op_exec,
            "call": self.op_call,
            "get": self.op_get,
            "names": self.op_names,
        }
        from grader.worker import extensions

        for name, op in extensions.OPS.items():
            self.ops[name] = functools.partial(op, self)

    # -- loop -------------------------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                header, request = read_message(self.rfd)
            except ChannelClosed:
                return
            reply: ReplyFields
            try:
                reply = self.answer(parse_request(request))
            except MalformedRequest as exc:
                reply = {"ok": False, "error": str(exc)}
            except CellTimeout as exc:
                reply = {"ok": False, "timed_out": True, "limit": exc.limit, "error": "time limit reached"}
            except BaseException as exc:  # noqa: BLE001 - report everything, die of nothing
                reply = {"ok": False, "error": describe(exc)}
            data = _encode_reply(reply, header.reply_limit)
            protocol.write_frame(self.wfd, protocol.frame(data, header.request_id, header.nonce))

    def answer(self, request: Request) -> ReplyFields:
        """The reply of the request's op; what the op raises is the caller's to report."""
        op = self.ops.get(request.op)
        if op is None:
            return {"ok": False, "error": "unknown request"}
        return op(request)

    # -- ops --------------------------------------------------------------------------------------------
    def op_hello(self, request: Request) -> ReplyFields:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return {"ok": True, "python": sys.version.split()[0], "torch": torch.__version__, "device": device}

    def op_exec(self, request: Exec) -> ReplyFields:
        index, source = request.index, request.source
        filename = f"<cell {index}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        try:
            code = compile(source, filename, "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
            return {"ok": False, "reason": "syntax", "error": describe(exc), "traceback": syntax_lines(exc)}
        try:
            with time_limit.of(request):
                exec(code, self.namespace)  # noqa: S102 (the student's cell runs here, in the worker)
        except CellTimeout as exc:
            return {"ok": False, "reason": "timeout", "limit": exc.limit, "error": "the cell ran past its time limit"}
        except SystemExit as exc:
            return {"ok": False, "reason": "error", "error": f"the cell called sys.exit({exc.code!r})"}
        except BaseException as exc:  # noqa: BLE001
            return {"ok": False, "reason": "error", "error": describe(exc), "traceback": student_frames(exc)}
        return {"ok": True}

    def op_call(self, request: Call) -> ReplyFields:
        if request.handle is None and str(request.name) not in self.namespace:
            return {"ok": False, "missing": True, "error": f"`{request.name}` is not defined"}
        fn = self._resolve(request)
        raw_args, raw_kwargs = request.args, request.kwargs
        args = [self._decode_arg(a) for a in raw_args]
        kwargs = {str(k): self._decode_arg(v) for k, v in raw_kwargs.items()}
        if request.seed is not None:
            seed_everything(request.seed)
        start = time.perf_counter()
        try:
            with time_limit.of(request):
                value = fn(*args, **kwargs)
        except CellTimeout as exc:
            return {"ok": False, "timed_out": True, "limit": exc.limit, "error": "the call ran past its time limit"}
        except SystemExit as exc:
            return {"ok": False, "error": f"the function called sys.exit({exc.code!r})"}
        except BaseException as exc:  # noqa: BLE001
            return {"ok": False, "error": describe(exc), "traceback": student_frames(exc)}
        reply: ReplyFields = {"ok": True, "duration": time.perf_counter() - start}
        if request.keep:
            value = self.keep(value)
        reply["value"] = codec.encode(value)
        if request.echo_args:
            # A kept object passed by handle (a student's own cache) is echoed as its handle: it is not the grader's to read.
            reply["args_after"] = [_echo(raw, a) for raw, a in zip(raw_args, args)]
            reply["kwargs_after"] = {k: _echo(raw_kwargs[k], v) for k, v in kwargs.items()}
        return reply

    def op_get(self, request: Get) -> ReplyFields:
        name = request.name
        if name not in self.namespace:
            return {"ok": True, "exists": False}
        return {"ok": True, "exists": True, "value": codec.encode(self.namespace[name])}

    def op_names(self, request: Request) -> ReplyFields:
        names = {k: type(v).__name__ for k, v in list(self.namespace.items()) if not k.startswith("__")}
        return {"ok": True, "names": names}

    # -- helpers ----------------------------------------------------------------------------------------
    def keep(self, value: Any) -> codec.Handle:
        handle = codec.Handle(len(self.handles) + 1, type(value).__name__)
        self.handles[handle.id] = value
        return handle

    def _resolve(self, request: Call) -> Any:
        if request.handle is not None:
            return self.handles[request.handle]
        name = str(request.name)
        if name not in self.namespace:
            raise NameError(f"name '{name}' is not defined")
        return self.namespace[name]

    def _decode_arg(self, data: Any) -> Any:
        value = codec.decode(data)
        return self.handles[value.id] if isinstance(value, codec.Handle) else value


def _echo(raw: Any, value: Any) -> Any:
    """An argument as it is after the call, encoded; one sent as a handle goes back as that handle."""
    return raw if isinstance(raw, dict) and "$handle" in raw else codec.encode(value)


def _encode_reply(reply: ReplyFields, limit: int) -> bytes:
    """The reply's bytes; past the grader's bound only its size is sent, which the grader reports as too large."""
    try:
        data = codec.dumps(reply)
    except (codec.CodecError, TypeError, ValueError, RecursionError) as exc:
        data = codec.dumps({"ok": False, "error": f"reply not encodable: {describe(exc)}"})
    if limit and len(data) > limit:
        data = codec.dumps({"ok": False, "too_large": len(data)})
    return data


class _OutputBudget:
    """What the student's output may still add to the log: stdout and stderr share one file, so one budget."""

    def __init__(self, cap: int) -> None:
        self.left = cap
        self.notice = f"\n[output truncated: only the first {cap:,} bytes of output are kept]\n".encode()
        self.truncated = False
        self.lock = threading.Lock()

    def write(self, fd: int, data: bytes) -> None:
        with self.lock:
            if self.truncated:
                return
            if len(data) > self.left:
                data = data[: max(self.left, 0)] + self.notice
                self.truncated = True
            self.left -= len(data)
            try:
                protocol.write_frame(fd, data)
            except OSError:
                pass  # a full disk or a closed log is not the student's error


class _CappedRaw(io.RawIOBase):
    """A file descriptor's writes, passed on until the budget is spent, then dropped without an error."""

    def __init__(self, fd: int, budget: _OutputBudget) -> None:
        super().__init__()
        self.fd, self.budget = fd, budget

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.budget.write(self.fd, chunk)
        return len(chunk)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        super().close()  # the descriptor stays open: it is the log, shared with the grader's view of it


def cap_output() -> None:
    """Give `print` a capped stdout and stderr, so that output past RLIMIT_FSIZE never raises in student code.

    Without it, printing past the file-size limit makes every later write fail with EFBIG, and the student's
    next `print` raises.  The cap leaves room under that limit for what earlier workers (before a restart)
    already wrote to the same log.
    """
    cap = OUTPUT_CAP
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        try:
            used = os.fstat(1).st_size if stat.S_ISREG(os.fstat(1).st_mode) else 0
        except OSError:
            used = 0
        cap = min(cap, soft - used - NOTICE_ROOM)
    budget = _OutputBudget(max(cap, 0))
    for name, fd in (("stdout", 1), ("stderr", 2)):
        # Straight onto the raw writer, as with PYTHONUNBUFFERED: output reaches the log even if the worker is killed.
        raw = cast(Any, _CappedRaw(fd, budget))  # typeshed wants a buffered writer; a raw one is what -u uses too
        stream = io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True, write_through=True)
        setattr(sys, name, stream)


def main() -> None:
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch  # noqa: F401 - paid once here, before the first cell, not inside a cell's time limit

    threads = os.environ.get("GRADER_TORCH_THREADS")
    serve_student(rfd, wfd, int(threads) if threads else None)


def serve_student(rfd: int, wfd: int, threads: int | None) -> None:
    """Everything from here on belongs to one submission: a fresh worker's, or a child forked by a zygote."""
    import torch

    for fd in (rfd, wfd):
        os.set_inheritable(fd, False)  # processes the student starts do not get the channel
    cap_output()
    if threads:
        torch.set_num_threads(threads)
    # The working folder (the student's files: a helper module the notebook imports) is importable, as in
    # Jupyter; appended, not prepended, and only now, so that it cannot shadow the worker's own modules.
    sys.path.append(os.getcwd())
    worker = Worker(rfd, wfd)
    from grader.worker import ops_integrity

    ops_integrity.arm()  # last before the first cell: what the worker itself does is not a sign of anything
    worker.serve()
    # Skip interpreter shutdown: atexit hooks and finalisers are the student's, not ours.
    os._exit(0)
