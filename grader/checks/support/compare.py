"""Comparing a student's (plain-data) answer with the expected one, with an explanation a TA would write.

Shared by the value, function, gradient and property kinds.  Runs in the grader only; `Difference` is how
a report reads a stored mismatch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Number
from typing import Any

import numpy as np

from grader.checks.support.diagnose import around, diagnose, diagnose_shapes
from grader.explain import Around, View, bounded, num, number, sci, whole_numbers
from grader.worker.codec import Opaque, SympyText


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-4
    atol: float = 1e-5


@dataclass(frozen=True)
class Mismatch:
    """Why an answer differs; `where` is the path into nested containers, e.g. `[1]` or `dA_list[2]`."""

    message: str
    where: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """The mismatch in one line: where, then why."""
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass(frozen=True)
class Difference:
    """A mismatch's details as a report reads them (`Mismatch.details`, stored in a question's details):
    the shapes when they differ, else the worst element expected against yours, the errors, the likely cause
    and the values around the worst element.  Shared by the function, value and property kinds' records."""

    expected: float | int | None = None
    got: float | int | str | None = None  # a str where the number is too long to show (`an integer of 400 digits`)
    index: list[int] | None = None  # the worst element (the first bad one when only `got` is non-finite)
    max_abs_error: float | None = None
    rel_error: float | None = None
    mismatched: int | None = None
    total: int | None = None
    expected_shape: list[int] | None = None
    got_shape: list[int] | None = None
    diagnosis: str | None = None
    around: Around | None = None

    def serialize(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "around"}
        if self.around is not None:
            data["around"] = self.around.serialize()
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Difference:
        got = data.get("got")
        mismatched, total = number(data.get("mismatched")), number(data.get("total"))
        return cls(
            expected=number(data.get("expected")),
            got=number(got) if not isinstance(got, str) else bounded(got, 200),
            index=whole_numbers(data.get("index")),
            max_abs_error=number(data.get("max_abs_error")),
            rel_error=number(data.get("rel_error")),
            mismatched=int(mismatched) if mismatched is not None else None,
            total=int(total) if total is not None else None,
            expected_shape=whole_numbers(data.get("expected_shape")),
            got_shape=whole_numbers(data.get("got_shape")),
            diagnosis=bounded(data["diagnosis"]) if isinstance(data.get("diagnosis"), str) else None,
            around=Around.from_dict(data.get("around")),
        )

    def explain(self, view: View) -> None:
        """The facts; the values around the worst element are a block, laid out by `explain_failure`."""
        if self.expected_shape is not None:
            view.fact("expected shape", tuple(self.expected_shape))
            view.fact("your shape", tuple(self.got_shape or ()))
        if self.index is not None:
            view.fact("worst element" if self.expected is not None else "first bad element", f"index {self.index}")
        if self.expected is not None and self.got is not None:
            view.fact("expected", self.expected, num)
            view.fact("yours", self.got, num)
        view.fact("max abs error", self.max_abs_error, sci)
        view.fact("relative error", self.rel_error, sci)
        if self.mismatched is not None and self.total is not None:
            view.fact("values that differ", f"{self.mismatched} of {self.total}")
        view.fact("likely cause", view.unsaid(self.diagnosis))


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray) or _is_tensor(value):
        arr = to_numpy(value)
        return f"{'tensor' if _is_tensor(value) else 'array'} of shape {tuple(arr.shape)} ({arr.dtype})"
    if isinstance(value, Opaque):
        return value.text if value.diagnostic else f"a {value.type_name} object ({value.text})"
    if isinstance(value, SympyText):
        return f"the expression {value.text}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return _number_text(value)
    if value is None:
        return "None"
    return f"{type(value).__name__} {value!r}"[:120]


def _number_text(value: Any) -> str:
    """A number as a message shows it; an integer too long to read is given by its digit count."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def _to_float(value: Any) -> float | None:
    """`value` as a float, or None where it has none (an integer past 1e308 overflows)."""
    try:
        return float(value)
    except (OverflowError, ValueError, TypeError):
        return None


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def to_numpy(value: Any) -> np.ndarray:
    if _is_tensor(value):
        array: np.ndarray = value.detach().cpu().numpy()
        return array
    return np.asarray(value)


def is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or _is_tensor(value)


def compare(expected: Any, got: Any, tol: Tolerance = Tolerance(), where: str = "") -> Mismatch | None:
    """None when `got` matches `expected`; otherwise the first difference, explained."""
    if is_array(expected):
        # The course's own word: "tensor" where the reference gives torch tensors, "array" for NumPy.
        return _compare_arrays(to_numpy(expected), got, tol, where, "tensor" if _is_tensor(expected) else "array")
    if isinstance(expected, bool):
        if isinstance(got, (bool, np.bool_)) and bool(got) == expected:
            return None
        return Mismatch(f"expected {expected}, got {describe(got)}", where)
    if isinstance(expected, Number):
        return _compare_numbers(expected, got, tol, where)
    if isinstance(expected, (tuple, list)):
        return _compare_sequences(expected, got, tol, where)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return Mismatch(f"expected a dict, got {describe(got)}", where)
        if set(got) != set(expected):
            return Mismatch(f"expected keys {_keys(expected)}, got {_keys(got)}", where)
        for key in expected:
            bad = compare(expected[key], got[key], tol, f"{where}[{key!r}]")
            if bad:
                return bad
        return None
    if _same(expected, got):
        return None
    return Mismatch(f"expected {expected!r}, got {describe(got)}", where)


def _same(expected: Any, got: Any) -> bool:
    """`expected == got` for anything else (strings, None); an array's elementwise answer counts as different."""
    if is_array(got):
        return False
    try:
        result = expected == got
    except Exception:  # noqa: BLE001 - a value that cannot be compared is not the expected one
        return False
    return isinstance(result, (bool, np.bool_)) and bool(result)


def _keys(mapping: dict[Any, Any]) -> str:
    names = sorted(str(k)[:40] for k in mapping)
    return str(names[:10])[:-1] + (f", … {len(names) - 10} more]" if len(names) > 10 else "]")


def _compare_numbers(expected: Number, got: Any, tol: Tolerance, where: str) -> Mismatch | None:
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (Number, np.number)):
        if is_array(got) and to_numpy(got).size == 1 and to_numpy(got).ndim == 0:
            got = to_numpy(got).item()
        else:
            return Mismatch(f"expected the number {expected!r}, got {describe(got)}", where)
    got = _plain(got)
    g = _to_float(got)
    if isinstance(expected, int):
        if g is not None and g == expected:
            return None
        shown = _number_text(got)
        return Mismatch(f"expected {expected}, got {shown}", where, {"expected": expected, "got": got if g is not None else shown})
    e = float(expected)  # type: ignore[arg-type]
    if g is None:
        return Mismatch(f"expected {e:.6g}, got {_number_text(got)}", where)
    if math.isnan(g) and not math.isnan(e):
        return Mismatch(f"expected {e:.6g}, got nan", where)
    if abs(e - g) <= tol.atol + tol.rtol * abs(e) or (math.isnan(e) and math.isnan(g)):
        return None
    return Mismatch(f"expected {e:.6g}, got {g:.6g}", where, {"expected": e, "got": g})


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def _compare_sequences(expected: tuple[Any, ...] | list[Any], got: Any, tol: Tolerance, where: str) -> Mismatch | None:
    if not isinstance(got, (tuple, list)):
        return Mismatch(f"expected a {type(expected).__name__} of {len(expected)} items, got {describe(got)}", where)
    if len(got) != len(expected):
        return Mismatch(f"expected {len(expected)} items, got {len(got)}", where)
    for i, (e, g) in enumerate(zip(expected, got)):
        bad = compare(e, g, tol, f"{where}[{i}]")
        if bad:
            return bad
    return None


def _compare_arrays(
    expected: np.ndarray, got: Any, tol: Tolerance, where: str, word: str = "array"
) -> Mismatch | None:
    if not is_array(got):
        return Mismatch(f"expected {'an' if word == 'array' else 'a'} {word} of shape {tuple(expected.shape)}, got {describe(got)}", where)
    g = to_numpy(got)
    if tuple(g.shape) != tuple(expected.shape):
        shapes: dict[str, Any] = {"expected_shape": list(expected.shape), "got_shape": list(g.shape)}
        why = diagnose_shapes(expected, g, tol.rtol, tol.atol, numpy=word == "array") if _numeric(expected, g) else None
        if why:
            shapes["diagnosis"] = why
        return Mismatch(
            f"expected shape {tuple(expected.shape)}, got shape {tuple(g.shape)}" + (f"; {why}" if why else ""),
            where,
            shapes,
        )
    if (expected.dtype.kind == "b" or g.dtype.kind == "b") and expected.dtype.kind != g.dtype.kind:
        return Mismatch(f"expected a {expected.dtype} {word}, got {g.dtype}", where)
    if expected.dtype.kind in "iub" and g.dtype.kind == "f":
        return Mismatch(f"expected integer values ({expected.dtype}), got {g.dtype}", where)
    if expected.size == 0:
        return None
    e64, g64 = expected.astype(np.float64), g.astype(np.float64)
    if not np.all(np.isfinite(g64)) and np.all(np.isfinite(e64)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(g64))[0])
        return Mismatch(f"non-finite value {g64[index]} at index {list(index)}", where, {"index": list(index)})
    err = np.abs(e64 - g64)
    allowed = tol.atol + tol.rtol * np.abs(e64)
    if np.all(err <= allowed):
        return None
    index = tuple(int(i) for i in np.unravel_index(np.argmax(err - allowed), err.shape))
    scale = float(np.max(np.abs(e64))) or 1.0
    rel = float(np.max(err)) / scale
    details = {
        "index": list(index),
        "expected": float(e64[index]),
        "got": float(g64[index]),
        "max_abs_error": float(np.max(err)),
        "rel_error": rel,
        "mismatched": int(np.sum(err > allowed)),
        "total": int(err.size),
    }
    message = (
        f"{details['mismatched']} of {details['total']} values differ; worst at index {list(index)}: "
        f"expected {details['expected']:.6g}, got {details['got']:.6g} "
        f"(max abs error {details['max_abs_error']:.3g}, relative {rel:.3g})"
    )
    # Beyond the verdict, what a student needs to fix it: the values near the worst one, and the likely mistake.
    details["around"] = around(e64, g64, index).serialize()
    why = diagnose(e64, g64, tol.rtol, tol.atol, dtype="" if g.dtype.name in ("float32", "float64") else g.dtype.name)
    if why:
        details["diagnosis"] = why
        message += f". Likely cause: {why}"
    return Mismatch(message, where, details)


def _numeric(*arrays: np.ndarray) -> bool:
    return all(a.dtype.kind in "fiub" for a in arrays)


def relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    """CS231n's relative error: max |a - b| / max(|a| + |b|), robust to scale."""
    e, g = expected.astype(np.float64), got.astype(np.float64)
    denom = np.maximum(np.abs(e) + np.abs(g), 1e-12)
    return float(np.max(np.abs(e - g) / denom)) if e.size else 0.0
