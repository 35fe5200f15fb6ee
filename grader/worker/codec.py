"""Plain-data encoding of values between the grader and a student's worker.

JSON with tagged objects for what JSON lacks: tuples, non-finite floats, tensors and arrays (raw bytes of a
whitelisted dtype, base64), SymPy expressions (as text, parsed again by the grader's whitelist parser).
Decoding never runs code: it builds numbers, strings, containers and arrays, nothing else.  Anything the
worker cannot express this way arrives as `Opaque` (its type name and a short repr), a wrong answer.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES = {
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
}
MAX_DEPTH = 32


@dataclass(frozen=True)
class Opaque:
    """A value that is not plain data (a module, a generator, a custom object)."""

    type_name: str
    text: str


@dataclass(frozen=True)
class SympyText:
    """A SymPy expression the student built, as the text SymPy prints for it."""

    text: str


@dataclass(frozen=True)
class Handle:
    """A reference to an object kept inside the worker (a returned callable, a model)."""

    id: int
    type_name: str


class CodecError(ValueError):
    pass


# -- encoding (runs on both sides) -------------------------------------------------------------------------


def encode(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        return {"$opaque": {"type": "nested", "text": "nested deeper than %d levels" % MAX_DEPTH}}
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is int:
        return value if abs(value) < 2**63 else {"$bigint": str(value)}
    if type(value) is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if type(value) in (list, tuple):
        items = [encode(v, depth + 1) for v in value]
        return items if type(value) is list else {"$tuple": items}
    if type(value) is dict:
        return {"$dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, Handle):
        return {"$handle": {"id": value.id, "type": value.type_name}}
    array = _as_array(value)
    if array is not None:
        tag = "$ndarray" if isinstance(value, np.ndarray) else "$tensor"
        return {tag: _array_payload(array)}
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return encode(float(value))
    if _is_sympy(value):
        return {"$sympy": str(value)}
    return {"$opaque": {"type": type(value).__name__, "text": _safe_repr(value)}}


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return None
    if isinstance(value, torch.Tensor):
        t = torch.Tensor.as_subclass(value, torch.Tensor).detach()
        if t.is_complex() or t.layout != torch.strided:
            return None
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.cpu().contiguous().numpy()
    return None


def _array_payload(array: np.ndarray) -> dict[str, Any]:
    name = array.dtype.name
    if name not in DTYPES:
        if array.dtype.kind in "f":
            array, name = array.astype(np.float64), "float64"
        elif array.dtype.kind in "iu":
            array, name = array.astype(np.int64), "int64"
        else:
            raise CodecError(f"arrays of dtype {name} cannot be returned")
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"dtype": name, "shape": list(array.shape), "data": base64.b64encode(data).decode("ascii")}


def _is_sympy(value: Any) -> bool:
    return any(c.__module__.startswith("sympy.") for c in type(value).__mro__)


def _safe_repr(value: Any) -> str:
    """A description that runs none of the value's own code and holds no memory address (messages stay
    identical from one grading to the next)."""
    import types

    kind = type(value)
    if kind in (types.FunctionType, types.BuiltinFunctionType, types.MethodType):
        name = value.__qualname__ if isinstance(getattr(kind, "__qualname__", None), str) else "?"
        return f"<function {str(name)[:100]}>"
    module = kind.__module__ if isinstance(kind.__module__, str) else "?"
    prefix = "" if module in ("builtins", "__main__") else module + "."
    return f"<{prefix}{kind.__qualname__} object>"[:200]


# -- decoding (never runs code) ----------------------------------------------------------------------------


def decode(data: Any, *, as_torch: bool = True, depth: int = 0) -> Any:
    if depth > MAX_DEPTH + 2:
        raise CodecError("value nested too deeply")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(v, as_torch=as_torch, depth=depth + 1) for v in data]
    if type(data) is not dict or len(data) != 1:
        raise CodecError("malformed value")
    (tag, body), = data.items()
    if tag == "$tuple" and type(body) is list:
        return tuple(decode(v, as_torch=as_torch, depth=depth + 1) for v in body)
    if tag == "$dict" and type(body) is list:
        out = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise CodecError("malformed mapping")
            key = decode(pair[0], as_torch=as_torch, depth=depth + 1)
            try:
                out[key] = decode(pair[1], as_torch=as_torch, depth=depth + 1)
            except TypeError as exc:  # an unhashable key
                raise CodecError("mapping with an unhashable key") from exc
        return out
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$bigint" and type(body) is str and body.lstrip("-").isdigit() and len(body) < 5000:
        return int(body)
    if tag in ("$tensor", "$ndarray") and type(body) is dict:
        array = _decode_array(body)
        if tag == "$tensor" and as_torch:
            import torch

            return torch.from_numpy(array)
        return array
    if tag == "$sympy" and type(body) is str:
        return SympyText(body)
    if tag == "$opaque" and type(body) is dict:
        return Opaque(str(body.get("type", "?"))[:100], str(body.get("text", ""))[:200])
    if tag == "$handle" and type(body) is dict and type(body.get("id")) is int:
        return Handle(body["id"], str(body.get("type", "?"))[:100])
    raise CodecError(f"unknown value tag {tag[:40]!r}")


def _decode_array(body: dict[str, Any]) -> np.ndarray:
    dtype, shape, payload = body.get("dtype"), body.get("shape"), body.get("data")
    if dtype not in DTYPES or type(shape) is not list or type(payload) is not str:
        raise CodecError("malformed array")
    if not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 32:
        raise CodecError("malformed array shape")
    raw = base64.b64decode(payload, validate=True)
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise CodecError("array data does not match its shape")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape).copy()


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes) -> dict[str, Any]:
    message = json.loads(data.decode("utf-8"))
    if type(message) is not dict:
        raise CodecError("a message is a JSON object")
    return message
