"""Worker ops for chained calls and selected outputs: items of a kept value, read or kept in turn.

A forward pass returns `(out, cache)`; the cache is the student's own and only their backward reads it.  The
grader keeps the whole return value in the worker (`call` with `keep`), then asks for one item of it: as plain
data when it is compared (`out`), or as a new handle when it is only passed on (the cache).  Replies are plain
data; whether an item exists is the worker's report, and the verdict on it is the grader's.
"""
from __future__ import annotations

from typing import Any, Callable

from grader.worker import codec
from grader.worker.messages import Pick, Release, ReplyFields


def pick(value: Any, item: Any) -> tuple[bool, Any]:
    """Item `item` of a returned value: an index of a tuple or list, or a key of a dict; (False, None) if none."""
    if type(item) is int and isinstance(value, (tuple, list)):
        return (True, value[item]) if 0 <= item < len(value) else (False, None)
    if isinstance(value, dict) and not isinstance(item, (list, dict)):
        return (True, value[item]) if item in value else (False, None)
    return False, None


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (tuple, list, dict)) else None


def op_pick(worker: Any, request: Pick) -> ReplyFields:
    value = worker.handles[request.handle]
    found, item = pick(value, codec.decode(request.item))
    if not found:
        described = {"found": False, "type": type(value).__name__[:100], "size": _size(value)}
        return {"ok": True, "value": codec.encode(described)}
    return {"ok": True, "value": codec.encode({"found": True, "item": worker.keep(item) if request.keep else item})}


def op_release(worker: Any, request: Release) -> ReplyFields:
    """Let kept values go once a case is done (caches can be large); their ids stay taken, so none is reused."""
    for handle in request.handles:
        if isinstance(handle, int) and handle in worker.handles:
            worker.handles[handle] = None
    return {"ok": True}


OPS: dict[str, Callable[[Any, Any], ReplyFields]] = {Pick.op: op_pick, Release.op: op_release}
