"""Framing of messages on the worker's private pipes: 4-byte length, then a JSON object."""
from __future__ import annotations

import os
import struct
from typing import Any

from grader.worker.codec import dumps, loads

MAX_MESSAGE = 256 * 1024 * 1024


class ChannelClosed(EOFError):
    pass


def write_message(fd: int, message: dict[str, Any]) -> None:
    data = dumps(message)
    payload = struct.pack(">I", len(data)) + data
    view = memoryview(payload)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exactly(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise ChannelClosed("channel closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> dict[str, Any]:
    (size,) = struct.unpack(">I", read_exactly(fd, 4))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes is over the limit")
    return loads(read_exactly(fd, size))
