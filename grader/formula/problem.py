"""The mathematics of the `formula` check (grader/checks/formula.py): the problem (symbols, expected formula,
constraints, domain points), the exact evaluator, the time-limited symbolic proof and the alarms.

Below both grader/rubric/options.py (whose FormulaOptions validator builds a FormulaProblem) and the check.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import sympy

from grader.formula.mathparse import make_symbols, parse_expression, parse_relation
from grader.timeouts import BACKSTOP, ThreadClock, cpu_deadline

if TYPE_CHECKING:  # annotations only: the options module imports this one to validate a rubric
    from grader.rubric.options import FormulaOptions, SymbolDomain

Value = int | Fraction | float  # ints as long as possible: Fraction arithmetic is slow
EXACT = (int, Fraction)
Point = tuple[int, ...]

MAX_BOX_POINTS = 20_000  # the exhaustive box shrinks its side when many symbols would make it larger
MAX_BITS = 20_000  # an exact intermediate value larger than this is "too large to evaluate"
MAX_EXPONENT = 10_000
ATTEMPTS_PER_POINT = 50  # random draws per wanted point when constraints reject most of them
SNAP_ABS = 1e-6  # a float is snapped to an integer at most this far away (see `_snap`)


class Undefined(ArithmeticError):
    """The formula has no value at this point (division by zero, log of a non-positive number)."""


class TooLarge(Undefined):
    """The value is too large to evaluate exactly (2**2**K at K=60)."""


class Unsupported(ValueError):
    """A SymPy node the evaluator does not know (only reachable through SymPy's own rewriting)."""


class OutOfTime(BaseException):
    """The check's budget is spent.  A BaseException, so that SymPy's own `except Exception` cannot eat it."""


class Budget:
    """The check's CPU seconds, checked between steps (and by `alarm` within one), with a wall-clock backstop of
    BACKSTOP times as many: a formula's verdict does not depend on the machine's load or on other slots."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.clock = ThreadClock()

    def left(self) -> float:
        return min(self.seconds - self.clock.cpu(), self.seconds * BACKSTOP - self.clock.elapsed())

    def check(self) -> None:
        if self.left() <= 0:
            raise OutOfTime()


# -- the problem: symbols, expected formula, constraints, domain points ---------------------------------------


class FormulaProblem:
    """A question's formula setting, parsed once: what answers are parsed against and evaluated on."""

    def __init__(self, options: FormulaOptions) -> None:
        self.options = options
        self.names = list(options.symbols)
        self.symbols = make_symbols(self.names, {n: _assumptions(d) for n, d in options.symbols.items()})
        self.order = [self.symbols[n] for n in self.names]
        self.expected = parse_expression(options.expected, self.symbols)
        self.evaluate_expected = compile_formula(self.expected, self.order)
        self.constraints = [compile_formula(parse_relation(c, self.symbols), self.order) for c in options.constraints]

    def admits(self, point: Point) -> bool:
        try:
            return all(bool(c(point)) for c in self.constraints)
        except Undefined:
            return False

    def expected_at(self, point: Point) -> Value | None:
        """The expected value, or None where the expected formula itself is undefined (such points are skipped)."""
        try:
            return self.evaluate_expected(point)  # type: ignore[no-any-return]
        except Undefined:
            return None

    def points(
        self, rng: random.Random, random_points: int | None = None, large_points: int | None = None
    ) -> Iterator[Point]:
        """Distinct admissible points: the whole box, random ones, then large ones (deterministic given `rng`)."""
        return (point for point, _ in self.labelled_points(rng, random_points, large_points))

    def labelled_points(
        self, rng: random.Random, random_points: int | None = None, large_points: int | None = None
    ) -> Iterator[tuple[Point, bool]]:
        """`points`, each with whether it is one of the large points."""
        seen: set[Point] = set()
        small = ((p, False) for p in itertools.chain(self._box(), self._random(rng, random_points)))
        large = ((p, True) for p in self._large(rng, large_points))
        for point, is_large in itertools.chain(small, large):
            if point not in seen and self.admits(point):
                seen.add(point)
                yield point, is_large

    def _box(self) -> Iterator[Point]:
        n = len(self.names)
        side = self.options.box
        while side > 2 and side**n > MAX_BOX_POINTS:
            side -= 1
        ranges = []
        for domain in self.options.symbols.values():
            stop = domain.min + side if domain.max is None else min(domain.max + 1, domain.min + side)
            ranges.append(range(domain.min, stop))
        return itertools.product(*ranges)

    def _random(self, rng: random.Random, wanted: int | None) -> Iterator[Point]:
        wanted = self.options.random_points if wanted is None else wanted
        domains = list(self.options.symbols.values())
        accepted = 0
        for attempt in range(wanted * ATTEMPTS_PER_POINT):
            if accepted >= wanted or not domains:
                return
            point = tuple(_draw(rng, d, self.options.sample_max, log_scale=attempt % 2 == 1) for d in domains)
            if self.admits(point):
                accepted += 1
                yield point

    def _large(self, rng: random.Random, wanted: int | None) -> Iterator[Point]:
        """Points with some symbols far past `sample_max` (up to `large_max` or their own max), others small.

        A formula may differ from the expected one only at large values (`+ Min(1, H // 1000)`), which the box
        and the small random points never reach.  Values stay in each symbol's domain; constraints still apply.
        """
        wanted = self.options.large_points if wanted is None else wanted
        domains = list(self.options.symbols.values())
        accepted = 0
        for _ in range(wanted * ATTEMPTS_PER_POINT):
            if accepted >= wanted or not domains:
                return
            large = [rng.random() < 0.5 for _ in domains]
            large[rng.randrange(len(domains))] = True  # at least one symbol large
            point = tuple(
                _draw_large(rng, d, self.options) if big else _draw(rng, d, self.options.sample_max, log_scale=True)
                for d, big in zip(domains, large)
            )
            if self.admits(point):
                accepted += 1
                yield point

    def show_point(self, point: Point) -> str:
        return ", ".join(f"{n}={v}" for n, v in zip(self.names, point))


def _assumptions(domain: SymbolDomain) -> dict[str, bool]:
    """Integer symbols, positive or non-negative where the domain is, so SymPy may use that in proofs."""
    if domain.min >= 1:
        return {"integer": True, "positive": True}
    if domain.min >= 0:
        return {"integer": True, "nonnegative": True}
    return {"integer": True}


def _draw(rng: random.Random, domain: SymbolDomain, sample_max: int, log_scale: bool) -> int:
    """Uniform or log-uniform (many small values, where off-by-one formulas differ) in the sampling range."""
    low = domain.min
    high = domain.max if domain.max is not None else (sample_max if sample_max > low else low + sample_max)
    if not log_scale:
        return rng.randint(low, high)
    return min(high, low + int(math.exp(rng.uniform(0.0, math.log(high - low + 1)))) - 1)


def _draw_large(rng: random.Random, domain: SymbolDomain, options: FormulaOptions) -> int:
    """Log-uniform between the end of the small range and `large_max` (or the symbol's own max)."""
    high = domain.max if domain.max is not None else max(options.large_max, domain.min)
    low = min(max(domain.min, options.sample_max), high)
    return min(high, low + int(math.exp(rng.uniform(0.0, math.log(high - low + 1)))) - 1)


# -- exact evaluation -------------------------------------------------------------------------------------------

Evaluator = Callable[[Sequence[int]], Any]


def compile_formula(expr: sympy.Basic, order: Sequence[sympy.Symbol]) -> Evaluator:
    """A function from symbol values (ints, in `order`) to the formula's value: an int or Fraction where exact,
    a float after log/exp/irrational powers, a bool for a relation.  Raises Undefined; never calls lambdify."""
    compiled = _compile(expr, {s: i for i, s in enumerate(order)})

    def evaluate(env: Sequence[int]) -> Any:
        try:
            value = compiled(env)
        except ZeroDivisionError as exc:
            raise Undefined("division by zero") from exc
        except OverflowError as exc:
            raise TooLarge(str(exc)) from exc
        except (ValueError, TypeError) as exc:  # math domain errors, complex results
            raise Undefined(str(exc)) from exc
        if isinstance(value, float) and not math.isfinite(value):
            raise TooLarge("not finite")
        return value

    return evaluate


def _compile(node: sympy.Basic, index: Mapping[sympy.Symbol, int]) -> Evaluator:
    if node.is_Symbol:
        if node not in index:
            raise Unsupported(f"the symbol {node}")
        i = index[node]
        return lambda env: env[i]
    if node.is_Rational:
        exact: Value = int(node.p) if node.q == 1 else Fraction(int(node.p), int(node.q))
        return lambda env: exact
    if node.is_Float or isinstance(node, sympy.NumberSymbol):
        approx = float(node)
        return lambda env: approx
    if node in (sympy.true, sympy.false):
        truth = bool(node)
        return lambda env: truth
    if node.is_Atom and node.is_number:  # zoo, oo, nan, the imaginary unit: not a real value
        return _undefined
    build = _NODES.get(type(node)) or next((b for t, b in _NODES.items() if isinstance(node, t)), None)
    if build is None:
        raise Unsupported(type(node).__name__)
    return build([_compile(arg, index) for arg in node.args])


def _undefined(env: Sequence[int]) -> Value:
    raise Undefined("not a real number")


def _add(fs: list[Evaluator]) -> Evaluator:
    def total(env: Sequence[int]) -> Value:
        # Bounded at every step: a sum of fractions with different denominators grows as their product.
        result: Value = 0
        for f in fs:
            result = _bounded(result + f(env))
        return result

    return total


def _mul(fs: list[Evaluator]) -> Evaluator:
    def product(env: Sequence[int]) -> Value:
        result: Value = 1
        for f in fs:
            result = _bounded(result * f(env))
        return result

    return product


def _pow(fs: list[Evaluator]) -> Evaluator:
    base, exponent = fs
    return lambda env: _power(base(env), exponent(env))


def _power(base: Value, exponent: Value) -> Value:
    if isinstance(exponent, EXACT) and exponent.denominator == 1:
        n = int(exponent.numerator)
        if abs(n) > MAX_EXPONENT or (isinstance(base, EXACT) and _bits(base) * abs(n) > MAX_BITS):
            raise TooLarge("power too large")
        if base == 0 and n < 0:
            raise Undefined("division by zero")
        if isinstance(base, int) and n < 0:
            return Fraction(1, base**-n)  # int ** -n would be a float
        return _bounded(base**n)
    if base < 0:
        raise Undefined("fractional power of a negative number")
    if base == 0:
        if exponent > 0:
            return 0
        raise Undefined("division by zero")
    if isinstance(base, EXACT) and isinstance(exponent, Fraction):
        exact = _exact_root(base, exponent)
        if exact is not None:
            return exact
    result: float = float(base) ** float(exponent)
    return result


def _exact_root(base: int | Fraction, exponent: Fraction) -> Value | None:
    """sqrt(9/4) stays exactly 3/2, so formulas with roots compare exactly where they can."""
    q = exponent.denominator
    if q > 64 or abs(exponent.numerator) > MAX_EXPONENT:
        return None
    num, num_exact = sympy.integer_nthroot(base.numerator, q)
    den, den_exact = sympy.integer_nthroot(base.denominator, q)
    if not (num_exact and den_exact):
        return None
    root = int(num) if den == 1 else Fraction(int(num), int(den))
    return _power(root, Fraction(exponent.numerator))


def _bits(value: int | Fraction) -> int:
    return value.numerator.bit_length() + value.denominator.bit_length()


def _bounded(value: Value) -> Value:
    if isinstance(value, EXACT) and _bits(value) > MAX_BITS:
        raise TooLarge("value too large")
    return value


def _snap(value: float) -> float:
    """floor(log(8)/log(2)) is 3: a float within rounding error of an integer is that integer."""
    nearest = round(value)
    # Relative, but at most SNAP_ABS: at a large point (1e9) a relative 1e-9 would move 333333333.67 to ...34.
    return float(nearest) if abs(value - nearest) <= min(1e-9 * max(1.0, abs(value)), SNAP_ABS) else value


def _floor(fs: list[Evaluator]) -> Evaluator:
    (f,) = fs
    return lambda env: math.floor(_exactish(f(env)))


def _ceiling(fs: list[Evaluator]) -> Evaluator:
    (f,) = fs
    return lambda env: math.ceil(_exactish(f(env)))


def _exactish(value: Value) -> Value:
    return value if isinstance(value, EXACT) else _snap(value)


def _log(fs: list[Evaluator]) -> Evaluator:
    def log(env: Sequence[int]) -> Value:
        values = [f(env) for f in fs]
        result = _ln(values[0])
        return result if len(values) == 1 else result / _ln(values[1])

    return log


def _ln(value: Value) -> Value:
    if value <= 0:
        raise Undefined("log of a non-positive number")
    if value == 1:
        return 0
    if isinstance(value, EXACT):  # math.log takes huge ints that float() would overflow on
        return math.log(value.numerator) - math.log(value.denominator)
    return math.log(value)


def _exp(fs: list[Evaluator]) -> Evaluator:
    (f,) = fs

    def exp(env: Sequence[int]) -> Value:
        value = f(env)
        return 1 if value == 0 else math.exp(value)

    return exp


def _abs(value: Value) -> Value:
    return -value if value < 0 else value


def _unary(function: Callable[[Value], Value]) -> Callable[[list[Evaluator]], Evaluator]:
    return lambda fs: (lambda env: function(fs[0](env)))


def _many(function: Callable[..., Value]) -> Callable[[list[Evaluator]], Evaluator]:
    return lambda fs: (lambda env: function(*[f(env) for f in fs]))


def _mod(a: Value, b: Value) -> Value:
    if b == 0:
        raise Undefined("modulo zero")
    return a % b  # the sign of the divisor, as SymPy's Mod


def _relation(compare: Callable[[Value, Value], bool]) -> Callable[[list[Evaluator]], Evaluator]:
    return lambda fs: (lambda env: compare(fs[0](env), fs[1](env)))


_NODES: dict[type, Callable[[list[Evaluator]], Evaluator]] = {
    sympy.Add: _add,
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.floor: _floor,
    sympy.ceiling: _ceiling,
    sympy.log: _log,
    sympy.exp: _exp,
    sympy.Abs: _unary(_abs),
    sympy.Max: _many(max),
    sympy.Min: _many(min),
    sympy.Mod: _many(_mod),
    sympy.GreaterThan: _relation(lambda a, b: a >= b),
    sympy.StrictGreaterThan: _relation(lambda a, b: a > b),
    sympy.LessThan: _relation(lambda a, b: a <= b),
    sympy.StrictLessThan: _relation(lambda a, b: a < b),
    sympy.Equality: _relation(lambda a, b: a == b),
    sympy.Unequality: _relation(lambda a, b: a != b),
}


def same_value(a: Value, b: Value, rtol: float = 1e-9) -> bool:
    if isinstance(a, EXACT) and isinstance(b, EXACT):
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-12)
    except OverflowError:
        return False


def show_value(value: Value) -> str:
    if isinstance(value, EXACT):
        text = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
        return text if len(text) <= 60 else f"{text[:25]}...({len(text)} characters)"
    name = _constant_name(float(value))
    return f"{value:.12g} (= {name})" if name else f"{value:.12g}"


def _known_constants() -> dict[str, float]:
    import math

    known = {"pi": math.pi, "e": math.e, "1/pi": 1 / math.pi}
    for n in range(2, 21):
        known[f"log({n})"] = math.log(n)
        known[f"1/log({n})"] = 1 / math.log(n)
        if math.isqrt(n) ** 2 != n:
            known[f"sqrt({n})"] = math.sqrt(n)
            known[f"1/sqrt({n})"] = 1 / math.sqrt(n)
    return known


_CONSTANTS = _known_constants()


def _constant_name(x: float) -> str | None:
    """`log(2)` for 0.69314718056: a student reads which expression was meant, not twelve digits."""
    for name, c in _CONSTANTS.items():
        if abs(x - c) <= 1e-12 * abs(c):
            return name
    return None


# -- the symbolic proof -----------------------------------------------------------------------------------------


class _Timeout(BaseException):
    """The proof's own limit; a BaseException so that SymPy's `except Exception` blocks let it through."""


def prove_equal(yours: sympy.Expr, expected: sympy.Expr, seconds: float) -> bool:
    """True only if SymPy shows the difference is 0 within `seconds` of CPU time; False when it cannot or may not
    try (in any thread: grader.timeouts.cpu_deadline)."""
    if seconds <= 0:
        return False
    try:
        with cpu_deadline(seconds, _Timeout):
            return _difference_vanishes(yours - expected)
    except _Timeout:
        return False
    except Exception:  # noqa: BLE001 - SymPy can raise anything on odd input; "not proved" is the safe answer
        return False


def _difference_vanishes(diff: sympy.Expr) -> bool:
    if diff == 0:
        return True
    diff = sympy.expand(diff)
    if diff == 0:
        return True
    # floor((a + S)/S) is floor(a/S) + 1 only once the argument is expanded into a sum with an integer term.
    diff = sympy.expand(diff.replace(
        lambda e: isinstance(e, (sympy.floor, sympy.ceiling)), lambda e: e.func(sympy.expand(e.args[0]))
    ))
    return bool(diff == 0 or sympy.simplify(diff) == 0)


def alarm(seconds: float) -> AbstractContextManager[None]:
    """The whole check's limit in CPU seconds (grader.timeouts.cpu_deadline, in any thread), for the long steps
    `Budget.check` cannot see into."""
    return cpu_deadline(seconds, OutOfTime)
