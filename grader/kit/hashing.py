"""Formula values in a kit: a salted hash per sample point, never the value or the formula.

The expected value at a point is written as a canonical string (an exact rational `q:7/2`, or for values that
are not exact, after log or sqrt, a float rounded to 10 significant digits `f:6.931471806e-01`), salted with
the question's salt and the point, and hashed with SHA-256.  A student's value is written the same way; it
matches when one of its spellings hashes alike.  The hash keeps values out of plain sight; it cannot stop a
student who hashes guesses (a value at one point is small), but every value it hides is one a submission's
report shows anyway ("yours 6, expected 5"), so it leaks nothing a student could not learn by submitting.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from fractions import Fraction

from grader.formula.problem import EXACT, Value

HASH_CHARS = 32  # 128 bits: a wrong formula matching by chance is out of the question
_SIGNIFICANT = 10
_NUDGE = 1e-11  # rounding boundaries: a float one ulp away may round to the neighbouring spelling
_NEAREST_RATIONAL = 10**6


def _exact(value: int | Fraction) -> str:
    return f"q:{value.numerator}/{value.denominator}"


def _float(value: float) -> str:
    return f"f:{value + 0.0:.{_SIGNIFICANT - 1}e}"  # + 0.0: -0.0 and 0.0 are one value


def canonical(value: Value) -> str:
    """The one spelling a kit hashes for an expected value."""
    return _exact(value) if isinstance(value, EXACT) else _float(float(value))


def spellings(value: Value) -> set[str]:
    """Every spelling under which a student's value counts as equal to an expected one (see `same_value`'s
    tolerance in the formula check: exact values exactly, others to about 1e-9 relative)."""
    found: set[str] = set()
    if isinstance(value, EXACT):
        found.add(_exact(value))
        try:
            number = float(value)
        except OverflowError:
            return found
    else:
        number = float(value)
        nearest = Fraction(number).limit_denominator(_NEAREST_RATIONAL)
        if math.isclose(float(nearest), number, rel_tol=1e-12, abs_tol=1e-15):
            found.add(_exact(nearest))  # 0.1 + 0.2 is the expected 3/10
    if math.isfinite(number):
        found.update(_float(number * f) for f in (1.0, 1.0 - _NUDGE, 1.0 + _NUDGE))
    return found


def point_hash(salt: str, point: Sequence[int], spelling: str) -> str:
    text = f"{salt}|{','.join(map(str, point))}|{spelling}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def matches(salt: str, point: Sequence[int], value: Value, stored: str) -> bool:
    return any(point_hash(salt, point, s) == stored for s in spellings(value))
