"""Messages on the worker's private pipes: a fixed header, then a JSON object.

The header carries what the grader must check *before* it parses anything: a magic word, the payload's size,
the request id and its nonce, and (on requests) the largest reply the grader will read.  A reply whose id or
nonce is not the one asked for (forged by student code that found the pipe) is skipped unparsed, and one over
its size bound is never read, so nothing a student writes on the channel costs the grader more than reading and
dropping bytes under the request's deadline.

The grader then checks a reply against its schema before it reads anything (grader.execution.replies): student
code shares the worker's process and can change any reply.  This module is the worker's too, so it stays light:
the standard library only.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

from grader.worker.codec import loads

MiB = 1 << 20
MAX_MESSAGE = 256 * MiB  # the largest request (training images, say)
REPLY_LIMIT = 4 * MiB  # a status reply: hello, exec, names
VALUE_REPLY_LIMIT = 16 * MiB  # a reply holding a returned value, before the allowance for big inputs

MAGIC = b"DLGW"
NONCE_SIZE = 12
# magic, payload size, request id, nonce, reply limit (on requests; 0 on replies)
HEADER = struct.Struct(f">4sIQ{NONCE_SIZE}sI")

# What a reply's text may hold (grader.execution.replies checks it); the worker keeps its lines within them.
MAX_TEXT = 4000  # an error message
MAX_TRACEBACK_LINES = 100
MAX_LINE = 1000


class ChannelClosed(EOFError):
    pass


class GarbledStream(ValueError):
    """The bytes on the reply pipe are not a frame: student code wrote raw bytes on it."""


@dataclass(frozen=True)
class Header:
    size: int
    request_id: int
    nonce: bytes
    reply_limit: int = 0

    def pack(self) -> bytes:
        return HEADER.pack(MAGIC, self.size, self.request_id, self.nonce, self.reply_limit)

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        magic, size, request_id, nonce, reply_limit = HEADER.unpack(raw)
        if magic != MAGIC:
            raise GarbledStream("the reply stream holds bytes that are not a message")
        return cls(size, request_id, nonce, reply_limit)


def reply_limit(op: str, request_size: int) -> int:
    """The largest reply the grader reads for a request of this op whose payload is `request_size` bytes.

    Status replies get a few MB.  A value gets more, plus twice the request: a call may echo its arguments, an
    attack returns images as big as those it was given, a training run returns logits for the images sent.
    """
    if op in ("hello", "exec", "names"):
        return REPLY_LIMIT
    return VALUE_REPLY_LIMIT + 2 * request_size


def frame(payload: bytes, request_id: int, nonce: bytes, limit: int = 0) -> bytes:
    return Header(len(payload), request_id, nonce, min(limit, 2**32 - 1)).pack() + payload


# -- the worker's side: blocking reads and writes of whole frames ---------------------------------------------------


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(data)
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


def read_message(fd: int) -> tuple[Header, dict[str, Any]]:
    """A request, as the worker reads it (the grader is trusted: no schema here)."""
    header = Header.unpack(read_exactly(fd, HEADER.size))
    if header.size > MAX_MESSAGE:
        raise ValueError(f"message of {header.size} bytes is over the limit")
    return header, loads(read_exactly(fd, header.size))
