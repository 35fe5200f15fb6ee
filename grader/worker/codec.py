"""Plain-data encoding of values between the grader and a student's worker.

JSON with tagged objects for what JSON lacks: tuples, non-finite floats, tensors and arrays (raw bytes of a
whitelisted dtype, base64), SymPy expressions (as text, parsed again by the grader's whitelist parser).
Decoding never runs code: it builds numbers, strings, containers and arrays, nothing else.  Anything the
worker cannot express this way arrives as `Opaque` (its type name and a short repr), a wrong answer; so do
complex and sparse tensors and integers too large to check, described in the grader's words.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES = {
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
}
MAX_DEPTH = 32
MAX_BIGINT_DIGITS = 1000  # larger integers arrive as their digit count: a wrong answer, described


@dataclass(frozen=True)
class Opaque:
    """A value that is not plain data (a module, a generator, a custom object).

    With `diagnostic`, `text` is the grader's own sentence about the value (a complex tensor, an integer too
    large to check), shown to the student as it is.
    """

    type_name: str
    text: str
    diagnostic: bool = False


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


def encode(value: Any, depth: int = 0) -> Any:  # noqa: C901 (a flat dispatch on the value's type)
    if depth > MAX_DEPTH:
        return {"$opaque": {"type": "nested", "text": f"nested deeper than {MAX_DEPTH} levels"}}
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is int:
        return value if abs(value) < 2**63 else _encode_bigint(value)
    if type(value) is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if type(value) in (list, tuple):
        items = [encode(v, depth + 1) for v in value]
        return items if type(value) is list else {"$tuple": items}
    if type(value) is dict:
        return {"$dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, Handle):
        return {"$handle": {"id": value.id, "type": value.type_name}}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "c":
            return _complex("array", value.dtype.name, value.shape)
        return {"$ndarray": _array_payload(value)}
    tensor = _encode_tensor(value)
    if tensor is not None:
        return tensor
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return encode(int(value))
    if isinstance(value, np.floating):
        return encode(float(value))
    if isinstance(value, (complex, np.complexfloating)):
        return _complex("number", type(value).__name__, ())
    if _is_sympy(value):
        return {"$sympy": str(value)}
    return {"$opaque": {"type": type(value).__name__, "text": _safe_repr(value)}}


def _encode_bigint(value: int) -> Any:
    # Only the digit count travels past MAX_BIGINT_DIGITS: str() of such a number is slow, and raises past
    # Python's int digit limit, which the student's process may have changed either way.
    digits = int(value.bit_length() * math.log10(2)) + 1
    if digits <= MAX_BIGINT_DIGITS:
        try:
            return {"$bigint": str(value)}
        except ValueError:
            pass
    return {"$bigint": {"digits": digits}}


def _complex(kind: str, dtype: str, shape: Iterable[int]) -> dict[str, Any]:
    return {"$complex": {"kind": kind, "dtype": dtype, "shape": [int(n) for n in shape]}}


def _encode_tensor(value: Any) -> Any:
    """A torch tensor as a tagged payload; None for anything that is not a tensor."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return None
    if not isinstance(value, torch.Tensor):
        return None
    layout: Any = getattr(value, "layout", None)
    try:
        shape = [int(n) for n in value.shape]
    except Exception:  # noqa: BLE001 - a nested (jagged) tensor has no plain shape
        shape = []
    if layout != torch.strided:  # sparse: no strides, so no plain view of it either
        return {"$sparse": {"layout": str(layout).removeprefix("torch."), "shape": shape}}
    t = torch.Tensor.as_subclass(value, torch.Tensor).detach()
    if t.is_complex():
        return _complex("tensor", str(t.dtype).removeprefix("torch."), tuple(shape))
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.float()  # bfloat16, float8: numpy has no such dtype
    try:
        array = t.cpu().contiguous().numpy()
    except Exception as exc:  # noqa: BLE001 - a meta or quantized tensor holds no plain numbers
        return {"$opaque": {"type": "Tensor", "text": f"a tensor whose values cannot be read ({type(exc).__name__})"}}
    return {"$tensor": _array_payload(array)}


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


def decode(data: Any, *, as_torch: bool = True, depth: int = 0) -> Any:  # noqa: C901 (a flat dispatch on the encoded type)
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
    if tag == "$bigint":
        return _decode_bigint(body)
    if tag == "$complex" and type(body) is dict:
        return _decode_complex(body)
    if tag == "$sparse" and type(body) is dict:
        return _decode_sparse(body)
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


_DIGITS = re.compile(rf"-?[0-9]{{1,{MAX_BIGINT_DIGITS}}}")


def _decode_bigint(body: Any) -> int | Opaque:
    if type(body) is str and _DIGITS.fullmatch(body):
        return int(body)
    if type(body) is str and re.fullmatch(r"-?[0-9]+", body):
        digits = len(body.lstrip("-"))
    elif type(body) is dict and type(body.get("digits")) is int and body["digits"] > 0:
        digits = body["digits"]
    else:
        raise CodecError("malformed integer")
    return Opaque("int", f"an integer of about {min(digits, 10**9)} digits, too large to check", diagnostic=True)


def _decode_complex(body: dict[str, Any]) -> Opaque:
    kind, dtype, shape = body.get("kind"), body.get("dtype"), _shape(body.get("shape"))
    if type(dtype) is not str or len(dtype) > 20 or shape is None:
        raise CodecError("malformed complex value")
    if kind == "number":
        return Opaque("complex", "a complex number: this question expects real values", diagnostic=True)
    if kind not in ("tensor", "array"):
        raise CodecError("malformed complex value")
    text = f"a complex {kind} ({dtype}, shape {shape}): this question expects real values"
    return Opaque(f"complex {kind}", text, diagnostic=True)


def _decode_sparse(body: dict[str, Any]) -> Opaque:
    layout, shape = body.get("layout"), _shape(body.get("shape"))
    if type(layout) is not str or len(layout) > 20 or shape is None:
        raise CodecError("malformed sparse tensor")
    kind = "a sparse tensor" if layout.startswith("sparse") else f"a tensor with layout {layout}"
    return Opaque("sparse tensor", f"{kind} ({layout}, shape {shape}): return a dense one (.to_dense())", diagnostic=True)


def _shape(data: Any) -> tuple[int, ...] | None:
    """A shape as sent: at most 32 dimensions, each a plain int numpy can index (below 2**31)."""
    if type(data) is not list or len(data) > 32 or not all(type(n) is int and 0 <= n < 2**31 for n in data):
        return None
    return tuple(data)


def _decode_array(body: dict[str, Any]) -> np.ndarray:
    dtype, shape, payload = body.get("dtype"), _shape(body.get("shape")), body.get("data")
    if dtype not in DTYPES or type(body.get("shape")) is not list or type(payload) is not str:
        raise CodecError("malformed array")
    if shape is None:
        raise CodecError("malformed array shape")
    try:
        raw = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise CodecError("array data is not base64") from exc
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise CodecError("array data does not match its shape")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape).copy()


def dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes) -> dict[str, Any]:
    message = json.loads(data.decode("utf-8"))
    if type(message) is not dict:
        raise CodecError("a message is a JSON object")
    return message
