"""Signs of tampering, noticed in the worker and reported as flags for a TA (never a verdict, never a score).

`arm()` runs once before the first cell: it remembers the comparison functions a student might patch and adds an
audit hook (which Python lets no one remove) that notes writes outside the working folder and signals sent
outside the worker's own processes.  `op_integrity` reports what it saw.  Student code shares this process and
can make the report lie; a flag is a hint for a person, and its absence proves nothing.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

from grader.worker.messages import Integrity, ReplyFields

MAX_FLAGS = 20
_flags: list[str] = []
_originals: dict[str, Callable[..., Any]] = {}
_allowed: tuple[str, ...] = ()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _note(flag: str) -> None:
    if flag not in _flags and len(_flags) < MAX_FLAGS:
        _flags.append(flag[:300])


def _watched() -> dict[str, Callable[..., Any]]:
    import numpy as np
    import torch

    return {
        "torch.allclose": torch.allclose, "torch.equal": torch.equal, "torch.isclose": torch.isclose,
        "torch.Tensor.__eq__": torch.Tensor.__eq__, "numpy.allclose": np.allclose,
        "numpy.array_equal": np.array_equal, "numpy.testing.assert_allclose": np.testing.assert_allclose,
    }


def _is_write(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    try:
        if event == "open" and len(args) >= 3 and _is_write(args[1], args[2]) and isinstance(args[0], (str, bytes)):
            path = os.path.abspath(os.fsdecode(args[0]))
            if not path.startswith(_allowed):
                _note(f"tried to write {path} (outside its working folder)")
        elif event in ("os.kill", "os.killpg") and args and isinstance(args[0], int):
            target = args[0]
            if target <= 0 or target == os.getppid() or (event == "os.kill" and target == 1):
                _note(f"sent a signal to a process that is not its own ({event}({target}))")
    except Exception:  # noqa: BLE001 - a hook that raises would break the student's own code
        pass


def arm() -> None:
    """Called once, before any student code runs."""
    global _allowed  # noqa: PLW0603 (set once, before any student code runs; read by the audit hook)
    home = os.getcwd()
    tmp = os.environ.get("TMPDIR", "/tmp")
    _allowed = (*(os.path.join(os.path.abspath(p), "") for p in (home, tmp, "/tmp", "/dev")), "/dev/null")
    _originals.update(_watched())
    sys.addaudithook(_hook)


def op_integrity(worker: Any, request: Integrity) -> ReplyFields:
    from grader.worker import codec

    try:
        for name, current in _watched().items():
            if _originals.get(name) is not None and current is not _originals[name]:
                _note(f"replaced {name}")
    except Exception:  # noqa: BLE001 - a module the student broke is itself a sign
        _note("broke torch or numpy")
    return {"ok": True, "value": codec.encode(list(_flags))}


OPS: dict[str, Callable[[Any, Any], ReplyFields]] = {Integrity.op: op_integrity}
