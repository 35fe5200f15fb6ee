"""`grader check --kit` through the kit's warm daemon: the same output, report and exit status as a cold check,
never a stale kit, only this user in a private folder, gone when idle, and `--no-daemon` checks cold.

Every daemon here lives in a private folder of the test's own (XDG_RUNTIME_DIR) and is stopped by the fixture
that made the folder; nothing waits on a duration (an idle daemon is awaited until it is gone)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from grader.cli import daemon
from grader.cli.check import ask_daemon
from grader.cli.daemon import CheckRequest, Listener, Place, Reply, Terminal
from grader.kit import build_kit, write_kit
from grader.rubric.schema import load_rubric
from tests.conftest import ROOT

EXAMPLES = ROOT / "submissions" / "cnn-rnn"
# What a report says of its own run (when, how long), which differs run to run.
RAN_IN = re.compile(rb"ran in [0-9.]+ s|graded \d{4}-\d\d-\d\d \d\d:\d\d")
GONE_WITHIN = 300.0  # generous: a bound on a wait for an exit, not a speed


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kit") / "cnn-rnn.kit.zip"
    write_kit(build_kit(load_rubric(ROOT / "rubrics" / "cnn-rnn.yaml")), path)
    return path


def _stop_daemons(folder: Path) -> None:
    for pid in daemon.daemon_pids(folder / "grader-check"):
        if _is_daemon(pid):
            os.kill(pid, signal.SIGTERM)
    for pid in daemon.daemon_pids(folder / "grader-check"):
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
            _gone(pid)


def _is_daemon(pid: int) -> bool:
    try:
        return b"grader.cli.check_daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _gone(pid: int, within: float = GONE_WITHIN) -> bool:
    """Whether process `pid` is gone (or a zombie), waiting up to `within` seconds for it to go."""
    deadline = time.monotonic() + within
    while True:
        try:
            os.waitpid(pid, os.WNOHANG)  # reaped here where it is this process's child
        except ChildProcessError:
            pass
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z" or time.monotonic() > deadline:
            return state == "Z"
        time.sleep(0.05)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder for this test's daemons (short: a socket's path has ~100 bytes), all stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="gd-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.setenv("GRADER_DAEMON", "1")
    monkeypatch.setenv("GRADER_WARM", "1")  # as a student's machine runs it
    monkeypatch.delenv("GRADER_DAEMON_IDLE", raising=False)
    try:
        yield folder
    finally:
        _stop_daemons(folder)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Run:
    stdout: bytes
    stderr: bytes
    code: int
    report: bytes


def _grader_check(folder: Path, example: str, kit: Path, *extra: str) -> Run:
    """`grader check EXAMPLE --kit KIT` in `folder`, on a copy of the example (its report lands beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / example, folder / example)
    proc = subprocess.run([sys.executable, "-m", "grader.cli.main", "check", example, "--kit", str(kit), *extra],
                          cwd=folder, capture_output=True, env=os.environ.copy())
    report = folder / (Path(example).stem + ".report.html")
    return Run(proc.stdout, proc.stderr, proc.returncode, RAN_IN.sub(b"", report.read_bytes()))


def _daemon_files(runtime: Path) -> list[str]:
    folder = runtime / "grader-check"
    return sorted(p.suffix for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("example, code", [("alice_correct.ipynb", 0), ("bob_partial.py", 1)])
def test_a_daemon_check_is_a_cold_check(runtime: Path, kit: Path, tmp_path: Path, example: str, code: int) -> None:
    cold = _grader_check(tmp_path / "cold", example, kit, "--no-daemon")
    assert _daemon_files(runtime) == []
    first = _grader_check(tmp_path / "first", example, kit)  # starts the daemon and is answered by it
    assert _daemon_files(runtime) == [".pid", ".sock"]
    (pid,) = daemon.daemon_pids(runtime / "grader-check")
    again = _grader_check(tmp_path / "again", example, kit)
    assert daemon.daemon_pids(runtime / "grader-check") == [pid] and _is_daemon(pid)
    assert cold.code == code
    assert b"public checks: " in cold.stdout
    assert first == cold
    assert again == cold
    # The client's whole path imports none of the grader's heavy parts: torch, sympy, numpy, pydantic.
    shutil.copy(EXAMPLES / example, tmp_path / "again" / example)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "grader.cli.main", "check", example, "--kit",
                           str(kit)], cwd=tmp_path / "again", capture_output=True, env=os.environ.copy())
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.decode().splitlines() if "import time:" in line}
    assert (proc.stdout, proc.returncode) == (cold.stdout, cold.code)
    assert {"grader.cli.check", "grader.cli.daemon"} <= imported
    assert not {"torch", "sympy", "numpy", "pydantic"} & imported


def _request(kit: Path, submission: Path, key: str) -> CheckRequest:
    return CheckRequest(key, str(submission.parent), submission.name, str(kit), None, False, None, 0o022, Terminal())


def test_a_changed_kit_is_not_served_by_the_old_daemon(runtime: Path, kit: Path, tmp_path: Path) -> None:
    path = tmp_path / "course.kit.zip"
    shutil.copy(kit, path)
    shutil.copy(EXAMPLES / "bob_partial.py", tmp_path / "bob_partial.py")
    options = {"sandbox": "auto", "device": "cpu"}
    before = ask_daemon(tmp_path / "bob_partial.py", path, sandbox="auto", device="cpu")
    assert before is not None and before.pid and before.exit_code == 1
    assert "q1.1 conv output size             wrong      0/2" in "".join(t for _, t in before.output)
    old_key = daemon.key_for(path, options)

    # The course changes the kit (q1.1 is now worth 3 points) at the same path.
    rubric = yaml.safe_load((ROOT / "rubrics" / "cnn-rnn.yaml").read_text())
    rubric.update(reference=str(ROOT / "reference" / "cnn_rnn.py"), total=31)
    rubric["questions"][0]["points"] = 3
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(rubric))
    write_kit(build_kit(load_rubric(tmp_path / "changed.yaml")), path)
    new_key = daemon.key_for(path, options)
    assert new_key != old_key

    # The old daemon declines a request for another key, even sent to its own socket.
    folder = runtime / "grader-check"
    no_start = [sys.executable, "-c", "raise SystemExit(1)"]
    assert daemon.ask(Place(folder, old_key), _request(path, tmp_path / "bob_partial.py", new_key), no_start) is None
    after = ask_daemon(tmp_path / "bob_partial.py", path, sandbox="auto", device="cpu")
    assert after is not None and after.pid != before.pid
    assert "q1.1 conv output size             wrong      0/3" in "".join(t for _, t in after.output)
    assert sorted(daemon.daemon_pids(folder)) == sorted([before.pid, after.pid])


@pytest.mark.parametrize("mode", [0o755, 0o701, 0o770])
def test_a_folder_others_may_enter_is_refused(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "sockets"
    folder.mkdir(mode=0o700)
    assert daemon.usable(folder, os.getuid()) == folder
    folder.chmod(mode)
    assert daemon.usable(folder, os.getuid()) is None


def test_a_link_or_another_users_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert daemon.usable(tmp_path / "link", os.getuid()) is None
    assert daemon.usable(tmp_path / "real", os.getuid() + 1) is None  # ours, so not the other user's
    if os.getuid() == 0:  # a folder another user really owns
        os.chown(tmp_path / "real", 65534, 65534)
        assert daemon.usable(tmp_path / "real", 0) is None


def test_a_permissive_runtime_folder_means_no_daemon(runtime: Path, kit: Path, tmp_path: Path) -> None:
    (runtime / "grader-check").mkdir(mode=0o755)
    (runtime / "grader-check").chmod(0o755)
    assert daemon.state_dir() is None
    assert ask_daemon(EXAMPLES / "bob_partial.py", kit, sandbox="auto", device="cpu") is None
    assert list((runtime / "grader-check").iterdir()) == []


def _said(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1024)
    except ConnectionResetError:  # closed with the request unread
        return b""


def test_a_request_from_another_user_is_refused(runtime: Path, kit: Path) -> None:
    folder = daemon.state_dir()
    assert folder is not None
    place = Place(folder, "0" * 64)
    listener = Listener(place)
    answered: list[CheckRequest] = []

    def handle(request: CheckRequest) -> Reply:
        answered.append(request)
        return Reply()

    try:
        listener.uid = os.getuid() + 1  # the daemon of another user, as far as this process is concerned
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(place.socket))
            client.sendall(b'{"protocol": 1}')
            client.shutdown(socket.SHUT_WR)
            conn, _ = listener.sock.accept()
            with conn:
                listener.answer(conn, handle)
            assert _said(client) == b""  # closed without a word
        assert answered == []
        # And a client does not talk to a daemon run by another user.
        assert daemon.connect(place, uid=os.getuid() + 1) is None
        assert daemon.connect(place) is not None
    finally:
        listener.close()
    assert not place.socket.exists() and not place.pidfile.exists()


def test_an_idle_daemon_ends(runtime: Path, kit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_DAEMON_IDLE", "0.1")
    shutil.copy(EXAMPLES / "alice_correct.ipynb", tmp_path / "alice.ipynb")
    reply = ask_daemon(tmp_path / "alice.ipynb", kit, sandbox="auto", device="cpu")
    assert reply is not None and reply.exit_code == 0
    assert _gone(reply.pid), "the idle daemon is still running"
    assert _daemon_files(runtime) == []


@pytest.mark.parametrize("how", ["--no-daemon", "GRADER_DAEMON=0", "CI=true"])
def test_no_daemon_checks_cold(runtime: Path, kit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               how: str) -> None:
    extra = [how] if how.startswith("--") else []
    if not extra:
        monkeypatch.delenv("GRADER_DAEMON")
        name, value = how.split("=")
        monkeypatch.setenv(name, value)
    run = _grader_check(tmp_path, "bob_partial.py", kit, *extra)
    assert run.code == 1
    assert run.stdout.endswith(b"public checks: 14/30 points pass, 16 checked here do not\n")
    assert _daemon_files(runtime) == []


def test_messages_are_json_and_checked() -> None:
    request = CheckRequest("k" * 64, "/", "s.py", "k.zip", "q1.1", True, None, 0o077, Terminal(True, False, "utf-8",
                           "ascii", 100, 30, {"TERM": "xterm"}))
    assert CheckRequest.from_dict(request.serialize()) == request
    assert Terminal.from_dict({**request.serialize()["terminal"], "env": {"LD_PRELOAD": "x"}}).env == {}
    reply = Reply(((2, "checking\n"), (1, "table\n")), 1)
    assert Reply.from_dict(reply.serialize()) == reply
    with pytest.raises(ValueError):
        Reply.from_dict({**reply.serialize(), "output": [[3, "elsewhere"]]})
    with pytest.raises(ValueError):
        CheckRequest.from_dict({**request.serialize(), "protocol": 0})
    assert replace(reply, served=False).serialize()["served"] is False


def test_the_command_line_parses_without_the_heavy_parts() -> None:
    """`grader`'s parser and `grader check`'s client load no torch, sympy, numpy or pydantic: each verb's module,
    and what it needs, is imported when that verb runs."""
    code = ("import sys; from grader.cli import check, main; main.build_parser().parse_args(['status', 'out']); "
            "print(sorted(m for m in ('torch', 'sympy', 'numpy', 'pydantic') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "[]\n"
