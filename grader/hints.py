"""One-line hints for student errors that come from a library change, not from the student's reasoning.

Code written against an older NumPy or torch can fail under the grader's newer one; the student's traceback
then reads like their own bug.  A known message gets one line naming the change and the fix.  Runs in the
grader, on the error text the worker reported.
"""
from __future__ import annotations

import re

# (pattern of the error text, the hint); the first match wins.
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"only 0-dimensional arrays can be converted to Python scalars"),
        "hint: if that array has one element, this is a NumPy 2 change: `int()`/`float()` of an array with "
        "one element but one or more dimensions (shape (1,), say) is now an error; use `a.item()` or `a[0]`",
    ),
    (
        re.compile(r"module 'numpy' has no attribute '(float|int|bool|object|complex|str)'"),
        "hint: NumPy 1.24 removed the aliases `np.float`, `np.int`, `np.bool`, ...; use `float`, `int`, `bool` "
        "or `np.float64`, `np.int64`",
    ),
    (
        re.compile(r"module 'numpy' has no attribute 'asscalar'"),
        "hint: NumPy 1.23 removed `np.asscalar(a)`; use `a.item()`",
    ),
    (
        re.compile(r"`np\.\w+` was removed in the NumPy 2\.0 release"),
        "hint: this name was removed in NumPy 2.0, which the grader uses; the error says what replaces it",
    ),
)


def library_hint(error: str) -> str | None:
    """The hint for an error message a library change explains, or None."""
    for pattern, hint in _HINTS:
        if pattern.search(error):
            return hint
    return None
