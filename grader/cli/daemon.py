"""A warm checker per kit, as `dmypy` keeps mypy warm: `grader check SUBMISSION --kit KIT` asks it and prints its
answer, where a cold check pays for torch twice (the grader's import and the worker's) and then the checks.

The daemon is the grader's side only: it holds the kit, with torch and the checks imported, and a warm worker
launcher; each check's student code still runs in its own sandboxed worker, never in the daemon.  There is one
daemon per user and per key, a digest of everything that decides a check: the kit file (its path and its content),
the grader's own source files, the interpreter, the verdict's options (sandbox, device) and the environment the
workers read.  A changed kit or grader is a new key, so a stale daemon is never asked; it ends when idle.

It listens on a Unix socket in a private folder (the user's own, mode 0700, checked before every use), answers
only its own user (SO_PEERCRED), reads and writes JSON only, and exits after `GRADER_DAEMON_IDLE` seconds
(default 300) without a request.  Where anything is wrong (no private folder, a daemon that does not start or
dies) the check runs cold and says nothing: this module only ever makes a check faster.

This module imports nothing of the grader's (no torch, no pydantic): it is the client's whole path.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

PROTOCOL = 1
IDLE_SECONDS = 300.0  # GRADER_DAEMON_IDLE overrides
START_SECONDS = 120.0  # how long a client waits for a starting daemon to listen (its imports come after)
MAX_MESSAGE = 1 << 26  # a reply holds a check's whole output (a few failing tensors printed)
# The environment a check's verdict or its workers depend on (grader/execution/sandbox.py reads these): part of
# the key, so a daemon started under other values is never asked.
VERDICT_ENV = (
    "GRADER_WARM", "GRADER_TORCH_THREADS", "GRADER_STUDENT_UID", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "PATH",
    "TMPDIR",
)
# What decides how the output looks (rich's rules), sent with each request so the daemon draws as a cold check would.
TERMINAL_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")
_FOLDER = "grader-check"
_UCRED = struct.Struct("3i")  # pid, uid, gid


def wanted(no_daemon: bool) -> bool:
    """Whether this check may use a daemon: not with --no-daemon, GRADER_DAEMON=0, or on CI (CI=true) unless
    GRADER_DAEMON=1 asks for one there; and only where the kernel names a socket's peer (Linux)."""
    if no_daemon or not hasattr(socket, "SO_PEERCRED") or not hasattr(socket, "AF_UNIX"):
        return False
    configured = os.environ.get("GRADER_DAEMON", "")
    if configured in ("0", "1"):
        return configured == "1"
    return os.environ.get("CI", "").lower() not in ("1", "true", "yes")


def idle_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("GRADER_DAEMON_IDLE", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


# -- the key ----------------------------------------------------------------------------------------------------


def _grader_files(package: Path) -> Iterator[Path]:
    for path in sorted(package.rglob("*")):
        if "__pycache__" not in path.parts and path.suffix != ".pyc" and path.is_file():
            yield path


def grader_fingerprint() -> str:
    """A digest of the grader's own files (sources and templates: each one's name, size and modification time,
    which any edit, checkout or re-install changes; reading them all would cost every check ~0.05 s) and of the
    interpreter running it."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"{sys.executable}\0{sys.version}\0".encode())
    for path in _grader_files(package):
        info = path.stat()
        digest.update(f"{path.relative_to(package)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    try:  # an install or removal in the environment changes its site-packages folder's mtime
        digest.update(str(os.stat(sysconfig.get_path("purelib")).st_mtime_ns).encode())
    except OSError:
        pass
    return digest.hexdigest()


def key_for(kit: Path, options: Mapping[str, str | None]) -> str:
    """The daemon key of a kit file (read now) checked with `options` (those that decide a verdict) under this
    environment and this grader."""
    digest = hashlib.sha256()
    record = {
        "protocol": PROTOCOL,
        "kit": str(kit.resolve()),
        "kit_sha256": hashlib.sha256(kit.read_bytes()).hexdigest(),
        "grader": grader_fingerprint(),
        "options": dict(sorted(options.items())),
        "env": {name: os.environ.get(name) for name in VERDICT_ENV},
    }
    digest.update(json.dumps(record, sort_keys=True).encode())
    return digest.hexdigest()


# -- the private folder -----------------------------------------------------------------------------------------


def private(folder: Path, uid: int) -> bool:
    """A real folder (not a link) owned by `uid` that nobody else may enter."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and info.st_mode & 0o077 == 0


def state_dir() -> Path | None:
    """This user's folder of daemon sockets (`usable`): `$XDG_RUNTIME_DIR/grader-check` where that is the user's
    private runtime folder, else `/tmp/grader-check-UID`."""
    uid = os.getuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and private(Path(runtime), uid):
        return usable(Path(runtime) / _FOLDER, uid)
    return usable(Path("/tmp") / f"{_FOLDER}-{uid}", uid)


def usable(folder: Path, uid: int) -> Path | None:
    """`folder`, made if need be, where it is private to `uid`; None where it is not (another owner, a link, a
    mode that lets others in): then no daemon is used."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    if not private(folder, uid):
        log.warning("%s is not a private folder of uid %d: grader check runs without its daemon", folder, uid)
        return None
    return folder


@dataclass(frozen=True)
class Place:
    """Where the daemon of one key listens, and its pid file (which it locks while it lives)."""

    folder: Path
    key: str

    @property
    def socket(self) -> Path:
        return self.folder / f"{self.key[:32]}.sock"  # short: a socket path has ~100 bytes at most

    @property
    def pidfile(self) -> Path:
        return self.folder / f"{self.key[:32]}.pid"


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket, as the kernel says it."""
    _, uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return int(uid)


def daemon_pids(folder: Path) -> list[int]:
    """The pids the daemons in `folder` wrote (for tests and the benchmark, which stop the daemons they start)."""
    pids = []
    for path in folder.glob("*.pid"):
        try:
            pids.append(int(path.read_text().strip()))
        except (OSError, ValueError):
            pass
    return pids


# -- the messages -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terminal:
    """How the client's output streams look to rich: whether each is a terminal, its encoding, the terminal's
    size and the environment variables rich reads."""

    stdout_tty: bool = False
    stderr_tty: bool = False
    stdout_encoding: str = "utf-8"
    stderr_encoding: str = "utf-8"
    columns: int | None = None
    lines: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def here(cls) -> Terminal:
        size = None
        for fd in (0, 1, 2):  # rich's order
            try:
                size = os.get_terminal_size(fd)
                break
            except (OSError, ValueError):
                pass
        return cls(
            _isatty(sys.stdout), _isatty(sys.stderr), getattr(sys.stdout, "encoding", None) or "utf-8",
            getattr(sys.stderr, "encoding", None) or "utf-8", size.columns if size else None,
            size.lines if size else None, {k: os.environ[k] for k in TERMINAL_ENV if k in os.environ},
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Terminal:
        return cls(bool(data["stdout_tty"]), bool(data["stderr_tty"]), str(data["stdout_encoding"]),
                   str(data["stderr_encoding"]), _int_or_none(data.get("columns")), _int_or_none(data.get("lines")),
                   {str(k): str(v) for k, v in dict(data.get("env", {})).items() if k in TERMINAL_ENV})


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class CheckRequest:
    """One `grader check --kit`: its arguments as the client was given them, read from the client's folder."""

    key: str
    cwd: str
    submission: str
    kit: str
    question: str | None
    as_json: bool
    report: str | None
    umask: int
    terminal: Terminal

    def serialize(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRequest:
        if data.get("protocol") != PROTOCOL:
            raise ValueError(f"protocol {data.get('protocol')!r}")
        return cls(
            str(data["key"]), str(data["cwd"]), str(data["submission"]), str(data["kit"]),
            None if data["question"] is None else str(data["question"]), bool(data["as_json"]),
            None if data["report"] is None else str(data["report"]), int(data["umask"]),
            Terminal.from_dict(data["terminal"]),
        )


@dataclass(frozen=True)
class Reply:
    """What a check printed, stream by stream in the order it was written (1 stdout, 2 stderr), and its exit
    status; `served` is False where the daemon declined (another key): the client then checks cold."""

    output: tuple[tuple[int, str], ...] = ()
    exit_code: int = 0
    served: bool = True
    pid: int = 0  # the daemon's, for tests

    def serialize(self) -> dict[str, Any]:
        return {"output": [list(chunk) for chunk in self.output], "exit_code": self.exit_code, "served": self.served,
                "pid": self.pid}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        output = tuple((int(fd), str(text)) for fd, text in data["output"])
        if any(fd not in (1, 2) for fd, _ in output):
            raise ValueError("a stream other than stdout or stderr")
        return cls(output, int(data["exit_code"]), bool(data["served"]), int(data.get("pid", 0)))

    def play(self) -> int:
        """Print the check's output here, as it was written there; the check's exit status."""
        streams = {1: sys.stdout, 2: sys.stderr}
        last = None
        for fd, text in self.output:
            if last is not None and last != fd:
                streams[last].flush()
            streams[fd].write(text)
            last = fd
        sys.stdout.flush()
        sys.stderr.flush()
        return self.exit_code


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode())
    sock.shutdown(socket.SHUT_WR)


def _receive(sock: socket.socket) -> dict[str, Any]:
    chunks, size = [], 0
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise ValueError("message too large")
    data = json.loads(b"".join(chunks))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


# -- the client -------------------------------------------------------------------------------------------------


def connect(place: Place, uid: int | None = None) -> socket.socket | None:
    """A connection to the daemon of `place`, where one listens there and runs as `uid` (this user)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(place.socket))
        if peer_uid(sock) != (os.getuid() if uid is None else uid):
            raise PermissionError(f"{place.socket} is answered by another user")
    except OSError:
        sock.close()
        return None
    return sock


def start(argv: list[str]) -> subprocess.Popen[bytes] | None:
    """Start a daemon (`argv`) in its own session, detached from this terminal; it outlives this process."""
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd="/", start_new_session=True, close_fds=True)
    except OSError:
        log.warning("the check daemon did not start", exc_info=True)
        return None


def _await(place: Place, proc: subprocess.Popen[bytes]) -> socket.socket | None:
    """A connection to the daemon just started, once it listens (before its imports: the request waits in the
    socket's queue), or None where it exits first (another daemon of this key may have won: tried once more)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        sock = connect(place)
        if sock is not None:
            return sock
        if proc.poll() is not None:
            return connect(place)
        time.sleep(0.01)
    return None


def ask(place: Place, request: CheckRequest, daemon_argv: list[str]) -> Reply | None:
    """The daemon's answer to `request`, starting the daemon where none listens; None where there is no answer
    (no daemon could start, it declined, it died mid-check): the caller then checks cold."""
    sock = connect(place)
    if sock is None:
        proc = start(daemon_argv)
        sock = _await(place, proc) if proc is not None else None
    if sock is None:
        return None
    try:
        with sock:
            _send(sock, request.serialize())
            reply = Reply.from_dict(_receive(sock))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("the check daemon gave no answer (%s): checking cold", exc)
        return None
    return reply if reply.served else None


# -- the daemon -------------------------------------------------------------------------------------------------


class Listener:
    """The daemon's end: the lock on its pid file (one daemon per key) and its listening socket."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self.uid = os.getuid()  # the only user answered
        old_umask = os.umask(0o077)
        try:
            self.lockfd = os.open(place.pidfile, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        finally:
            os.umask(old_umask)
        try:
            fcntl.flock(self.lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.lockfd)
            raise
        os.ftruncate(self.lockfd, 0)
        os.write(self.lockfd, f"{os.getpid()}\n".encode())
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            place.socket.unlink()  # a dead daemon's: the lock says none of this key lives
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o077)
        try:
            self.sock.bind(str(place.socket))
        finally:
            os.umask(old_umask)
        self.inode = os.stat(place.socket).st_ino
        self.sock.listen(16)

    def ours(self) -> bool:
        """The socket file is still the one this daemon bound (not removed, not replaced)."""
        try:
            return os.stat(self.place.socket).st_ino == self.inode
        except OSError:
            return False

    def serve(self, handle: Callable[[CheckRequest], Reply], idle: float) -> None:
        """Answer requests one at a time until `idle` seconds pass without one, or the socket is not ours."""
        self.sock.settimeout(idle)
        while self.ours():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                return
            with conn:
                conn.settimeout(None)
                self.answer(conn, handle)

    def answer(self, conn: socket.socket, handle: Callable[[CheckRequest], Reply]) -> None:
        try:
            if peer_uid(conn) != self.uid:
                log.warning("refused a request from another user")
                return
            request = CheckRequest.from_dict(_receive(conn))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("an unreadable request (%s)", exc)
            return
        reply = handle(request) if request.key == self.place.key else Reply(served=False)
        try:
            conn.sendall(json.dumps({**reply.serialize(), "pid": os.getpid()}).encode())
        except OSError:  # the client went away (interrupted): nothing to tell it
            pass

    def close(self) -> None:
        if self.ours():
            self.place.socket.unlink()
        self.sock.close()
        try:
            self.place.pidfile.unlink()
        except FileNotFoundError:
            pass
        os.close(self.lockfd)
