"""What a wrong array most likely is: the common mistakes of deep-learning homework, named from the values.

A student who reads "12 of 12 values differ" still has to guess why; most wrong tensors are a right tensor
changed in one simple way (transposed, negated, scaled, shifted by one step, right but for one batch item,
right but in too low a precision).  `diagnose` tries each of those against the expected array and says the
first that fits, in words a student can act on.  It runs in the grader on plain arrays and never decides a
score: the comparison has already failed when it is asked.

`around` shows the expected and the student's values near the worst element, small enough to read.
"""
from __future__ import annotations

import itertools

import numpy as np

from grader.explain import Around

__all__ = ["Around", "around", "diagnose", "diagnose_shapes", "format_array"]

_LOW_PRECISION = {"float16": 1e-2, "bfloat16": 2e-2}
_NAMED_FACTORS = ((2.0, "2"), (0.5, "1/2"), (-1.0, "-1"))


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def diagnose_shapes(
    expected: np.ndarray, got: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5, *, numpy: bool = False
) -> str | None:
    """Why the shapes differ, when the values say it: axes in another order, size-1 axes, a reshape; in the
    words of the course's library (`numpy`: the reference answers with NumPy arrays)."""
    e, g = expected.astype(np.float64), got.astype(np.float64)
    if e.ndim == g.ndim and 2 <= e.ndim <= 4 and sorted(e.shape) == sorted(g.shape):
        for order in itertools.permutations(range(g.ndim)):
            if order == tuple(range(g.ndim)) or tuple(g.shape[i] for i in order) != e.shape:
                continue
            if _close(np.transpose(g, order), e, rtol, atol):
                if g.ndim == 2:
                    return "your result is the transpose of the expected one: a `.T` is missing or one too many"
                return (f"your result has the right values with its axes in another order (axis {list(order)} of yours "
                        f"is axis 0, 1, … of the expected): a transpose{'' if numpy else ' or permute'} is missing or wrong")
    if e.size == g.size and e.size and _close(g.reshape(e.shape), e, rtol, atol):
        if tuple(s for s in e.shape if s != 1) == tuple(s for s in g.shape if s != 1):
            fix = ("`np.squeeze`/`np.expand_dims` (or `keepdims=True`)" if numpy
                   else "`squeeze`/`unsqueeze` (or `keepdim`)")
            return f"the values are right, but your shape differs in axes of size 1: a missing or extra {fix}"
        fix = "a `reshape`" if numpy else "a `view`/`reshape`"
        return f"the values are right in the wrong shape: reshape your result ({fix} is wrong or missing)"
    return None


def diagnose(
    expected: np.ndarray, got: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5, dtype: str = ""
) -> str | None:
    """The common mistake that turns `expected` into `got` (same shape), in one sentence, or None.

    `dtype` is the name of the student's dtype (`float16`), when it was not float32/float64.
    """
    e, g = expected.astype(np.float64), got.astype(np.float64)
    if e.shape != g.shape or e.size < 2 or not np.all(np.isfinite(g)) or not np.all(np.isfinite(e)):
        return None
    loose = _LOW_PRECISION.get(dtype)
    if loose and _close(g, e, loose, atol + loose * float(np.max(np.abs(e)))):
        return (f"your values are right to the precision of {dtype}, which is too coarse: "
                "compute in float32 or float64 (drop the `.half()` or `dtype` conversion)")
    for test in (_sign, _transposed, _factor, _shifted, _one_item, _offset):
        found = test(e, g, rtol, atol)
        if found:
            return found
    return None


def _sign(e: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    if np.any(np.abs(e) > atol) and _close(g, -e, rtol, atol):
        return "wrong sign: your values are the negatives of the expected ones"
    return None


def _transposed(e: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    # A square matrix transposed keeps its shape, so the shape check cannot see it.
    if e.ndim >= 2 and e.shape[-1] == e.shape[-2] and _close(np.swapaxes(g, -1, -2), e, rtol, atol):
        return "your result is transposed (last two axes swapped): a `.T` is missing or one too many"
    return None


def _factor(e: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    big = np.abs(e) > max(atol, 1e-12) * 10
    if not np.any(big):
        return None
    c = float(np.median(g[big] / e[big]))
    if not np.isfinite(c) or abs(c - 1.0) < 1e-6 or c == 0 or not _close(g, c * e, rtol, atol):
        return None
    if c < 0 and abs(c + 1) < 1e-6:
        return None  # the sign test says it better
    name = next((n for f, n in _NAMED_FACTORS if abs(c - f) < 1e-6 * abs(f)), None)
    sizes = sorted({s for s in e.shape if s > 1})
    for s in sizes:
        if abs(c - s) < 1e-6 * s:
            return (f"off by a constant factor: your values are {s} times the expected ones ({s} is an axis size): "
                    "a sum where a mean belongs, or a missing division by the batch size")
        if abs(c * s - 1) < 1e-6:
            return (f"off by a constant factor: your values are 1/{s} of the expected ones ({s} is an axis size): "
                    "a mean where a sum belongs, or a division by the batch size too many")
    return f"off by a constant factor: your values are {name or f'{c:.4g}'} times the expected ones"


def _shifted(e: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    """Yours equals the expected moved one step along an axis (an off-by-one in a time step or an index)."""
    for axis in range(e.ndim):
        n = e.shape[axis]
        if n < 3:
            continue
        head = [slice(None)] * e.ndim
        tail = [slice(None)] * e.ndim
        head[axis], tail[axis] = slice(0, n - 1), slice(1, n)
        if _close(g[tuple(tail)], e[tuple(head)], rtol, atol):
            return (f"shifted by one along axis {axis}: your element i is the expected element i-1 "
                    "(an off-by-one in a time step or an index)")
        if _close(g[tuple(head)], e[tuple(tail)], rtol, atol):
            return (f"shifted by one along axis {axis}: your element i is the expected element i+1 "
                    "(an off-by-one in a time step or an index)")
    return None


def _one_item(e: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    if e.ndim < 2 or e.shape[0] < 2:
        return None
    wrong = [i for i in range(e.shape[0]) if not _close(g[i], e[i], rtol, atol)]
    if len(wrong) == 1:
        i = wrong[0]
        which = "the last" if i == e.shape[0] - 1 else "the first" if i == 0 else f"item {i}"
        return (f"correct except for one batch item, {which} (index {i} along axis 0): "
                "look at how your loop or indexing treats that item")
    return None


def _offset(e: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    d = g - e
    c = float(np.median(d))
    if abs(c) > atol and np.allclose(d, c, rtol=0, atol=atol + rtol * float(np.max(np.abs(e)))):
        return f"off by a constant: your values are the expected ones plus {c:.4g} everywhere (a bias added twice or missing?)"
    return None


# ---------------------------------------------------------------------------------------- values near the worst


WHOLE = 24  # arrays up to this many elements are shown whole


def around(expected: np.ndarray, got: np.ndarray, index: tuple[int, ...], radius: int = 2) -> Around:
    """The whole arrays when small; else the last two axes around `index` (leading axes fixed at it)."""
    if expected.size <= WHOLE:
        return Around("", format_array(expected), format_array(got))
    window: list[slice | int] = []
    parts: list[str] = []
    for axis, (i, n) in enumerate(zip(index, expected.shape)):
        if axis < expected.ndim - 2:
            window.append(i)
            parts.append(str(i))
        else:
            lo, hi = max(0, i - radius), min(n, i + radius + 1)
            window.append(slice(lo, hi))
            parts.append(f"{lo}:{hi}")
    key = tuple(window)
    return Around(f"[{', '.join(parts)}]", format_array(expected[key]), format_array(got[key]))


def format_array(a: np.ndarray, precision: int = 6) -> str:
    """A NumPy array as nested lists a person (and Python) reads: `[[0.5, -1.25], [2.0, 3.0]]`."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)) and np.all(np.abs(a) < 1e6):
        precision = 1  # whole numbers: `2.` would be noise
    return np.array2string(
        a, separator=", ", precision=precision, threshold=10**6, max_line_width=100, floatmode="maxprec"
    )
