"""`grader serve OUT`: the TA's workspace in the browser over a graded class folder (see grader.workspace)."""
from __future__ import annotations

import getpass
import socket
from pathlib import Path

from grader.errors import GraderError


def serve(out: Path, rubric: Path | None = None, *, host: str = "127.0.0.1", port: int = 0, ta: str = "") -> int:
    try:
        import uvicorn

        from grader.workspace.app import make_app, new_token
    except ImportError as exc:
        raise GraderError(f"`grader serve` needs the TA's extra: pip install 'dl-grader[grade]' ({exc})") from exc
    from grader.workspace.marking import Workspace

    workspace = Workspace(out, rubric)
    token = new_token()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # before the address is printed: a browser opened at once waits in the backlog
    except OSError as exc:
        raise GraderError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    print(f"TA workspace for {out}: open http://{shown}:{sock.getsockname()[1]}/?token={token}", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: anyone who can reach it and has the token can change scores", flush=True)
    app = make_app(workspace, token, ta=ta or _user())
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    finally:
        workspace.close()
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
