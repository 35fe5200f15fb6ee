"""Messages on the worker's private pipes: a fixed header, then a JSON object.

The header carries what the grader must check *before* it parses anything: a magic word, the payload's size,
the request id and its nonce, and (on requests) the largest reply the grader will read.  A reply whose id or
nonce is not the one asked for (forged by student code that found the pipe) is skipped unparsed, and one over
its size bound is never read, so nothing a student writes on the channel costs the grader more than reading and
dropping bytes under the request's deadline.

Replies are then checked against `Reply`, the one schema of everything a worker may say: student code shares
the worker's process and can change any reply, so every field is checked for its type and size before use.
"""
from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.worker.codec import MAX_DEPTH, loads

MiB = 1 << 20
MAX_MESSAGE = 256 * MiB  # the largest request (training images, say)
REPLY_LIMIT = 4 * MiB  # a status reply: hello, exec, names
VALUE_REPLY_LIMIT = 16 * MiB  # a reply holding a returned value, before the allowance for big inputs

MAGIC = b"DLGW"
NONCE_SIZE = 12
# magic, payload size, request id, nonce, reply limit (on requests; 0 on replies)
HEADER = struct.Struct(f">4sIQ{NONCE_SIZE}sI")

# Bounds on a parsed reply.  An honest worker stays far inside them; they keep a forged reply from costing the
# grader more than a small multiple of its size in memory, or a RecursionError while parsing.
MAX_JSON_DEPTH = 3 * MAX_DEPTH + 8  # a dict level takes three JSON levels ({"$dict": [[k, v]]})
MAX_JSON_CONTAINERS = 100_000
MAX_JSON_ITEMS = 2_000_000
MAX_INT_DIGITS = 1000  # plain JSON integers; the codec sends bigger ones tagged, and far bigger ones described
MAX_TEXT = 4000  # an error message
MAX_TRACEBACK_LINES = 100
MAX_LINE = 1000


class ChannelClosed(EOFError):
    pass


class GarbledStream(ValueError):
    """The bytes on the reply pipe are not a frame: student code wrote raw bytes on it."""


class MalformedReply(ValueError):
    """A reply that is not one a worker may send; the message says what is wrong, in a few words."""


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


# -- the grader's side: a reply parsed within bounds, then checked against the schema -----------------------------


class Reply(BaseModel):
    """Everything a worker may answer, whatever the op; fields an op does not use keep their defaults."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    ok: bool
    error: str = Field("", max_length=MAX_TEXT)
    reason: Literal["error", "syntax", "timeout"] = "error"  # why a cell failed
    traceback: list[Annotated[str, Field(max_length=MAX_LINE)]] = Field(default_factory=list, max_length=MAX_TRACEBACK_LINES)
    timed_out: bool = False
    limit: Literal["", "cpu", "wall"] = ""  # the limit a timed-out cell or call reached
    missing: bool = False
    exists: bool = False
    too_large: int | None = Field(None, ge=0, le=2**62)  # the size of a reply the worker would not send
    duration: float = Field(0.0, ge=0.0, le=1e9)
    device: str = Field("cpu", max_length=40)
    # Encoded values: their structure is bounded by the parse, their meaning is the codec's to check.
    value: Any = None
    args_after: list[Any] = Field(default_factory=list, max_length=10_000)
    kwargs_after: dict[str, Any] = Field(default_factory=dict, max_length=10_000)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_reply(data: bytes) -> Reply:
    """Parse and check a reply's payload; MalformedReply says what is wrong, in words for the student."""
    _check_shape(data)
    try:
        raw = json.loads(data.decode("utf-8"), parse_int=_parse_int)
    except MalformedReply:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MalformedReply(f"not valid JSON ({str(exc)[:100]})") from None
    if type(raw) is not dict:
        raise MalformedReply("not a JSON object")
    if _ESCAPED_SURROGATE.search(data):  # the worker writes ASCII JSON: a surrogate can only come escaped
        raw = _clean(raw)
    try:
        return Reply.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "reply"
        raise MalformedReply(f"field `{where[:60]}`: {first['msg']}") from None


def _check_shape(data: bytes) -> None:
    """Bound nesting and the number of values before json builds anything (it would recurse and allocate)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH and data.count(b",") <= MAX_JSON_ITEMS:
        return  # counted inside strings too, so bounds of the real figures: a tensor's reply ends here, fast
    skeleton = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    opens = (skeleton == ord("[")) | (skeleton == ord("{"))
    closes = (skeleton == ord("]")) | (skeleton == ord("}"))
    containers = int(np.count_nonzero(opens))
    if containers > MAX_JSON_CONTAINERS:
        raise MalformedReply(f"it holds more than {MAX_JSON_CONTAINERS} lists, tuples and dicts")
    if int(np.count_nonzero(skeleton == ord(","))) > MAX_JSON_ITEMS:
        raise MalformedReply(f"it holds more than {MAX_JSON_ITEMS} values")
    if containers:
        depth = np.cumsum(opens.astype(np.int32) - closes.astype(np.int32))
        if int(depth.max()) > MAX_JSON_DEPTH:
            raise MalformedReply(f"it is nested deeper than {MAX_JSON_DEPTH} levels")


def _parse_int(text: str) -> int:
    # json would call int() on any run of digits: past 4300 of them that raises ValueError, below it can still
    # make a number too big to convert to float later.
    if len(text) > MAX_INT_DIGITS:
        raise MalformedReply(f"it holds an integer of {len(text)} digits")
    return int(text)


def _clean(value: Any) -> Any:
    """The parsed reply with lone surrogates (JSON "\\ud800") made U+FFFD, so any text can be written as UTF-8."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if kind is list:
        return [_clean(v) for v in value]
    if kind is dict:
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value
