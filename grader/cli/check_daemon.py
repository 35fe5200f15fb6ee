"""The check daemon's process: `python -m grader.cli.check_daemon --kit KIT --key KEY ...`, started by
`grader check --kit` where no daemon of its key listens (grader/cli/daemon.py says what it is and why).

It listens at once (the first request waits in the socket's queue), then warms up: reads the kit, starts the
worker zygote and, meanwhile, imports torch and the checks.  Each request is then answered as the command would
have answered it in the client's folder and terminal: `check_kit` with the kit already read, its output captured
stream by stream, its failures through the command's own handler (`guarded`).  Student code runs in a worker
forked for the check, never here.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from grader.cli import daemon
from grader.cli.check import beside_zygote, check_kit, daemon_options
from grader.cli.daemon import CheckRequest, Listener, Place, Reply, Terminal
from grader.cli.main import LOG_FORMAT, default_log_file, guarded

if TYPE_CHECKING:
    from grader.kit.schema import KitFile

log = logging.getLogger(__name__)


class Capture(io.TextIOBase):
    """One output stream of a check, looking to rich as the client's does (a terminal or not, its encoding); what
    is written goes to the reply's output in order."""

    def __init__(self, fd: int, output: list[tuple[int, str]], tty: bool, encoding: str) -> None:
        super().__init__()
        self.fd, self.output, self.tty, self.codec = fd, output, tty, encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.codec

    def isatty(self) -> bool:
        return self.tty

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.output.append((self.fd, text))
        return len(text)


def merged(output: list[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    """Consecutive writes to one stream as one chunk."""
    chunks: list[tuple[int, list[str]]] = []
    for fd, text in output:
        if chunks and chunks[-1][0] == fd:
            chunks[-1][1].append(text)
        else:
            chunks.append((fd, [text]))
    return tuple((fd, "".join(texts)) for fd, texts in chunks)


@contextlib.contextmanager
def as_client(request: CheckRequest, output: list[tuple[int, str]]) -> Iterator[None]:
    """This process as the client's for one check: its folder, umask and terminal (what rich reads), output
    captured, and Python's once-per-place warnings shown again as in a fresh process."""
    terminal: Terminal = request.terminal
    saved = {name: os.environ.get(name) for name in daemon.TERMINAL_ENV}
    umask = os.umask(request.umask)
    try:
        for name in daemon.TERMINAL_ENV:
            os.environ.pop(name, None)
        os.environ.update(terminal.env)
        # rich asks the size of this process's own streams (/dev/null here), then COLUMNS and LINES.
        if terminal.columns and "COLUMNS" not in terminal.env:
            os.environ["COLUMNS"] = str(terminal.columns)
        if terminal.lines and "LINES" not in terminal.env:
            os.environ["LINES"] = str(terminal.lines)
        stdout = Capture(1, output, terminal.stdout_tty, terminal.stdout_encoding)
        stderr = Capture(2, output, terminal.stderr_tty, terminal.stderr_encoding)
        # catch_warnings resets every module's record of warnings already shown.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            yield
    finally:
        os.umask(umask)
        os.chdir("/")
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Checker:
    """The warm half of `grader check --kit`: the kit read once, torch and the checks imported, a zygote up."""

    kit: KitFile
    kit_path: Path
    sandbox: str
    device: str
    log_path: Path

    @classmethod
    def start(cls, kit_path: Path, key: str, sandbox: str, device: str, log_path: Path) -> Checker | None:
        """Warm up for `key`; None where the kit on disk is not the one the key names (changed since)."""
        from grader.execution.launchers import choose_launcher
        from grader.kit.schema import kit_handout, read_kit, read_limits

        began = time.perf_counter()
        options = daemon_options(sandbox, device)
        if daemon.key_for(kit_path, options) != key:
            return None
        timings: list[float] = []

        def load() -> KitFile:  # decoding the kit's values imports torch; then every check kind and view
            kit = read_kit(kit_path)
            timings.append(time.perf_counter())
            for module in ("grader.feedback.report", "grader.kit.run", "grader.kit.show", "grader.sources.discover"):
                import_module(module)
            kit_handout(kit, kit_path)
            timings.append(time.perf_counter())
            return kit

        kit = beside_zygote(lambda: choose_launcher(sandbox), read_limits(kit_path), load)
        if daemon.key_for(kit_path, options) != key:  # changed while it was read
            return None
        read, imported = timings
        log.info("the check daemon of %s is warm in %.2f s (the kit read, torch imported, in %.2f s, the checks "
                 "imported %.2f s later, the zygote up %.2f s after that)", kit_path, time.perf_counter() - began,
                 read - began, imported - read, time.perf_counter() - imported)
        return cls(kit, kit_path, sandbox, device, log_path)

    def answer(self, request: CheckRequest) -> Reply:
        try:
            os.chdir(request.cwd)
        except OSError:
            return Reply(served=False)  # the client's folder is gone: its own check says what follows
        if Path(request.kit).resolve() != self.kit_path:
            os.chdir("/")
            return Reply(served=False)
        output: list[tuple[int, str]] = []
        began = time.perf_counter()
        with as_client(request, output):
            code = guarded(lambda: self.check(request), self.log_path)
        log.info("checked %s in %.2f s", request.submission, time.perf_counter() - began)
        return Reply(merged(output), code)

    def check(self, request: CheckRequest) -> int:
        from grader.execution.launchers import choose_launcher, forget_warnings

        forget_warnings()  # a cold check warns (no sandbox, no cgroup) every time: so does this one
        launcher = choose_launcher(self.sandbox)
        return check_kit(
            Path(request.submission), Path(request.kit), launcher=launcher, as_json=request.as_json,
            question=request.question, device=self.device,
            report=None if request.report is None else Path(request.report), kit=self.kit,
        )


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # through `finally`: the socket removed, the zygote closed (atexit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grader-check-daemon")
    parser.add_argument("--kit", type=Path, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--idle", type=float, default=daemon.IDLE_SECONDS)
    args = parser.parse_args(argv)
    folder = daemon.state_dir()
    if folder is None:
        return 1
    try:
        listener = Listener(Place(folder, args.key))
    except OSError:  # another daemon of this key holds the lock: it answers
        return 0
    signal.signal(signal.SIGTERM, _stop)
    log_path = default_log_file()
    logging.basicConfig(filename=log_path, level=logging.INFO, format=LOG_FORMAT)
    try:
        checker = Checker.start(args.kit.resolve(), args.key, args.sandbox, args.device, log_path)
        if checker is None:
            return 1
        listener.serve(checker.answer, args.idle)
    except Exception:  # the client checks cold; the story is in the log
        log.warning("the check daemon stopped", exc_info=True)
        return 1
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
