"""The requests the grader sends a worker, one record per op, and the keys a worker's reply may hold.

Both sides use these records: the grader builds every request as one (`Call(name="f", args=[...])`) and sends
`to_json()`; the worker reads the JSON object back with `parse_request` and its ops take the record, never a
dict read by key.  On the wire a request is the JSON object `{"op": ..., field: value, ...}`, its fields that
are None left out.  Values the student's code sees (arguments, tensors, selectors) travel encoded by
`grader.worker.codec`; here they are `Any`, as the codec checks them.

Replies go the other way as `ReplyFields`, a plain dict the worker builds; the grader checks each one against
its schema (`grader.execution.replies.Reply`) before it reads anything, since student code can change any reply.

The standard library only: the worker imports this module before the student's first cell.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Required, TypedDict


class MalformedRequest(ValueError):
    """A request that is not one of these records: the message says which op and which field."""


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request; `op` names it on the wire and picks the worker's operation."""

    op: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The request as the JSON object the worker reads: its op, then its fields that are not None."""
        out: dict[str, Any] = {"op": self.op}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class Timed(Request):
    """A request that runs the student's code: `timeout` CPU seconds, and `wall`, the wall-clock backstop the
    grader adds as it sends the request (`with_wall`)."""

    timeout: float
    wall: float | None = None

    def with_wall(self, wall: float) -> Timed:
        return dataclasses.replace(self, wall=wall)


@dataclass(frozen=True, kw_only=True)
class Hello(Request):
    op: ClassVar[str] = "hello"


@dataclass(frozen=True, kw_only=True)
class Exec(Timed):
    """Run one code cell in the worker's namespace; `index` names it in tracebacks (`<cell 3>`)."""

    op: ClassVar[str] = "exec"
    index: int
    source: str


@dataclass(frozen=True, kw_only=True)
class Call(Timed):
    """Call a function of the student's namespace by `name`, or a value kept in the worker by `handle`."""

    op: ClassVar[str] = "call"
    name: str | None = None
    handle: int | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    echo_args: bool = False  # send the arguments back as they are after the call (a function that changes them)
    seed: int | None = None  # seed Python's, NumPy's and torch's generators first
    keep: bool = False  # keep the value in the worker and send back its handle


@dataclass(frozen=True, kw_only=True)
class Get(Request):
    """The value of a name in the student's namespace."""

    op: ClassVar[str] = "get"
    name: str


@dataclass(frozen=True, kw_only=True)
class Names(Request):
    op: ClassVar[str] = "names"


@dataclass(frozen=True, kw_only=True)
class Integrity(Request):
    """What the worker's audit hook noticed (grader.worker.ops_integrity)."""

    op: ClassVar[str] = "integrity"


@dataclass(frozen=True, kw_only=True)
class Release(Request):
    """Let kept values go (grader.worker.ops_chain)."""

    op: ClassVar[str] = "release"
    handles: list[int]


@dataclass(frozen=True, kw_only=True)
class Pick(Request):
    """Item `item` (encoded) of a kept value, as plain data or, with `keep`, as a new handle."""

    op: ClassVar[str] = "pick"
    handle: int
    item: Any
    keep: bool = False


@dataclass(frozen=True, kw_only=True)
class BuildModel(Request):
    """Build a model from its spec (encoded; grader.worker.ops_models) and keep it."""

    op: ClassVar[str] = "build_model"
    spec: Any


@dataclass(frozen=True, kw_only=True)
class ModelDigest(Request):
    op: ClassVar[str] = "model_digest"
    model: int


@dataclass(frozen=True, kw_only=True)
class DescribeGroups(Request):
    """Per param group of a kept value, the names of its parameters in kept model `model`."""

    op: ClassVar[str] = "describe_groups"
    groups: int
    model: int


@dataclass(frozen=True, kw_only=True)
class TrainRun(Timed):
    """Train the student's model on the grader's data (grader.worker.ops_training); images and labels encoded."""

    op: ClassVar[str] = "train_run"
    factory: str
    train: str
    images: Any
    labels: Any
    epochs: int
    seed: int
    device: str


REQUESTS: dict[str, type[Request]] = {
    kind.op: kind
    for kind in (Hello, Exec, Call, Get, Names, Integrity, Release, Pick, BuildModel, ModelDigest, DescribeGroups,
                 TrainRun)
}

# What each field's annotation lets through once parsed from JSON (Any: an encoded value, the codec's to check).
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list[Any]": (list,),
    "list[int]": (list,), "dict[str, Any]": (dict,),
}


def parse_request(raw: object) -> Request:
    """The record a JSON request holds; MalformedRequest says what is wrong with one that holds none."""
    if not isinstance(raw, dict):
        raise MalformedRequest("a request is a JSON object")
    kind = REQUESTS.get(str(raw.get("op")))
    if kind is None:
        raise MalformedRequest("unknown request")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if f.name not in raw or raw[f.name] is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MalformedRequest(f"`{kind.op}` request without `{f.name}`")
            continue
        value = raw[f.name]
        annotation = str(f.type).removesuffix(" | None")
        allowed = _TYPES.get(annotation)
        if allowed is not None and (not isinstance(value, allowed) or (bool not in allowed and type(value) is bool)):
            raise MalformedRequest(f"`{kind.op}` request: `{f.name}` is not of type {annotation}")
        values[f.name] = value
    return kind(**values)


class ReplyFields(TypedDict, total=False):
    """What a worker answers, whatever the op; the grader reads it as `grader.execution.replies.Reply`."""

    ok: Required[bool]
    error: str
    reason: Literal["error", "syntax", "timeout"]  # why a cell failed
    traceback: list[str]
    timed_out: bool
    limit: str  # the limit a timed-out cell or call reached: "cpu" or "wall"
    missing: bool  # the name asked for is not defined
    exists: bool
    too_large: int  # the size of a reply over the grader's bound, sent instead of it
    duration: float
    value: Any  # encoded
    args_after: list[Any]
    kwargs_after: dict[str, Any]
    # hello
    device: str
    python: str
    torch: str
    # names
    names: dict[str, str]

