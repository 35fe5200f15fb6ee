"""A worker's reply as the grader reads it: parsed within bounds, then checked against `Reply`, the one schema of
everything a worker may say.  Student code shares the worker's process and can change any reply, so every field
is checked for its type and size before use; what fails is `MalformedReply`, in words for the student.

The grader's side of grader.worker.protocol, apart so that the worker imports neither pydantic nor this.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.worker.codec import MAX_DEPTH
from grader.worker.protocol import MAX_LINE, MAX_TEXT, MAX_TRACEBACK_LINES

# Bounds on a parsed reply.  An honest worker stays far inside them; they keep a forged reply from costing the
# grader more than a small multiple of its size in memory, or a RecursionError while parsing.
MAX_JSON_DEPTH = 3 * MAX_DEPTH + 8  # a dict level takes three JSON levels ({"$dict": [[k, v]]})
MAX_JSON_CONTAINERS = 100_000
MAX_JSON_ITEMS = 2_000_000
MAX_INT_DIGITS = 1000  # plain JSON integers; the codec sends bigger ones tagged, and far bigger ones described


class MalformedReply(ValueError):
    """A reply that is not one a worker may send; the message says what is wrong, in a few words."""


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
