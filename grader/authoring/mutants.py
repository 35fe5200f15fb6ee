"""Mutation analysis of a rubric: small wrong versions of the reference, graded by the rubric's own checks.

A question that gives full points to a wrong answer is weak.  This module makes such wrong answers (mutants) of
the reference and grades each through the same engine a student's submission goes through:

* function mutants: one AST transformation of a reference function (an operator swapped, a constant ±1, an
  off-by-one slice or range bound, a dropped term, a transposed result, sum↔mean, an activation or a
  max-subtraction removed, an in-place update), defined in a worker that holds the reference as the
  "submission", then the questions that read the function are run there (`grader.grading.submission.run_question`);
* value mutants: the same transformations of a top-level assignment the answer names;
* formula mutants: the rubric's `expected` formula with its floor dropped, ±1, a symbol swapped, an operator
  swapped, given to the formula check as the student's answer.

A mutant survives a question when the question still gives full points.  Mutants are the author's code, not
a student's, so one warm worker per process serves them all (the definition is swapped in, the questions run,
the original definition is put back); that is what keeps a few hundred mutants within a minute or two.
"""
from __future__ import annotations

import ast
import copy
import difflib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from multiprocessing import get_context
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.checks import CheckContext
from grader.errors import GraderError, RubricError
from grader.execution.sandbox import Launcher
from grader.execution.session import GetResult, WorkerSession
from grader.grading.submission import run_question
from grader.results import QuestionResult
from grader.rubric.kinds import kind_spec
from grader.rubric.schema import Question, Rubric
from grader.sources.load import load_submission

log = logging.getLogger(__name__)

MAX_PER_TARGET = 40  # mutants kept per function, value or formula (a deterministic choice beyond that)
MUTANT_CELL = 1_000_000  # the cell index mutant definitions run under (names their tracebacks `<cell …>`)
MIN_TIMEOUT = 5.0  # seconds a mutant's call may take, at least ...
TIMEOUT_FACTOR = 10.0  # ... or this many times the reference's time on the whole question
ACTIVATIONS = frozenset({"sigmoid", "relu", "tanh", "softmax", "log_softmax", "gelu", "elu", "leaky_relu", "silu"})
MAX_NAMES = frozenset({"max", "amax", "logsumexp"})
ROUNDINGS = {"floor": "ceiling", "ceiling": "floor", "ceil": "floor"}  # formulas' and math's; dropped or swapped
class Verdict(str, Enum):
    KILLED = "killed"  # the question took points off
    SURVIVED = "survived"  # full points for a wrong answer: the question is weak, or the mutant is equivalent
    EQUIVALENT = "equivalent"  # proved equal (formulas): not a wrong answer at all
    ALLOWED = "allowed"  # survived, and the allow-list says why it is equivalent
    SIBLING = "killed by a sibling"  # survived here, killed by another question that checks the same function


@dataclass(frozen=True)
class Mutant:
    """One wrong version of one reference name (a function, a value) or of a formula question's expected text."""

    id: str  # the function, the change and its statement's text: `conv1d_grad_x:BinOp:Add->Sub@return a + b`
    target: str  # the function or variable name, or `expected` for a formula
    kind: str  # "function", "value" or "formula"
    original: str  # source (a definition, `name = expr`, or a formula)
    source: str  # the mutated source
    questions: tuple[str, ...]  # the questions that read the target

    @property
    def digest(self) -> str:
        """An id that survives edits elsewhere in the function: `src:` and the mutant source's SHA-256 prefix."""
        return "src:" + hashlib.sha256(self.source.encode()).hexdigest()[:12]

    def diff(self) -> list[str]:
        """The changed lines, `-` the reference's and `+` the mutant's."""
        lines = difflib.unified_diff(self.original.splitlines(), self.source.splitlines(), lineterm="", n=0)
        return [line for line in lines if line[:1] in "+-" and line[:3] not in ("---", "+++")]

    def serialize(self) -> dict[str, Any]:
        return {**asdict(self), "questions": list(self.questions), "digest": self.digest}


@dataclass(frozen=True)
class MutantResult:
    """What one question made of one mutant."""

    mutant: Mutant
    question: str
    verdict: Verdict
    score: float
    max_score: float
    message: str = ""  # the check's message (why it was killed), or the allow-list's reason

    def serialize(self) -> dict[str, Any]:
        data = asdict(self)
        data["mutant"] = self.mutant.serialize()
        data["verdict"] = self.verdict.value
        return data


# -- making mutants -----------------------------------------------------------------------------------------------

Make = Callable[[ast.AST], ast.AST]


@dataclass(frozen=True)
class _Site:
    index: int  # the node's position in `_preorder` of the target
    label: str  # `BinOp:Add->Sub@return a + b`
    make: Make  # node (in a fresh copy of the target) -> its replacement


@dataclass(frozen=True)
class _Node:
    node: ast.AST
    parent: ast.AST | None
    field: str
    position: int | None  # index in the parent's list field


_SKIPPED_FIELDS = frozenset({"annotation", "returns", "decorator_list", "type_comment"})


def _preorder(root: ast.AST, fields: Sequence[str] | None = None) -> Iterator[_Node]:
    """Every node under `root` (only under `fields` of the root when given) in source order, with its parent."""
    stack: list[_Node] = []

    def children(node: ast.AST, only: Sequence[str] | None) -> list[_Node]:
        out = []
        for name, value in ast.iter_fields(node):
            if (only is not None and name not in only) or name in _SKIPPED_FIELDS or isinstance(value, ast.arguments):
                continue  # signatures (defaults, annotations) are the interface, not the computation
            if isinstance(value, ast.AST):
                out.append(_Node(value, node, name, None))
            elif isinstance(value, list):
                out.extend(_Node(v, node, name, i) for i, v in enumerate(value) if isinstance(v, ast.AST))
        return out

    stack.extend(reversed(children(root, fields)))
    while stack:
        item = stack.pop()
        yield item
        stack.extend(reversed(children(item.node, None)))


_BINOP_SWAPS: dict[type[ast.operator], tuple[type[ast.operator], ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult,),
    ast.FloorDiv: (ast.Div,),
    ast.Mod: (ast.FloorDiv,),
    ast.Pow: (ast.Mult,),
    ast.MatMult: (ast.Mult,),
}
_COMPARE_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.GtE),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}


def _name(node: ast.AST) -> str:
    return type(node).__name__


def _plus(expr: ast.expr, delta: int) -> ast.expr:
    op: ast.operator = ast.Add() if delta > 0 else ast.Sub()
    return ast.BinOp(left=expr, op=op, right=ast.Constant(abs(delta)))


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _is_max_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _called_name(node) in MAX_NAMES


def _sites(root: ast.AST, fields: Sequence[str] | None, symbols: Sequence[str] = ()) -> list[_Site]:
    """Every single transformation of `root`, in source order.  `symbols`: names a formula may swap.

    A site's label names the node's kind, the change and the source text of its statement (the header of a
    `for` or `if`): `BinOp:Add->Sub@h = c * h + (1 - c) * u`, with `#2`, `#3` for the same change in the same
    text again (`BinOp:Mult->Div#2@...`).  It changes only when that statement does, never when a line is added elsewhere, so an
    allow-list entry holds across unrelated edits.
    """
    sites: list[_Site] = []
    seen: dict[str, int] = {}
    statement: dict[int, ast.AST] = {}  # node -> the statement it is part of

    def add(index: int, change: str, where: str, make: Make) -> None:
        key = f"{change}@{where}"
        seen[key] = seen.get(key, 0) + 1
        sites.append(_Site(index, key if seen[key] == 1 else f"{change}#{seen[key]}@{where}", make))

    steps: set[int] = set()  # nodes of a slice's step: `[::-1]` is reversed or not, not stepped by 2 or 0
    for index, item in enumerate(_preorder(root, fields)):
        node = item.node
        if isinstance(node, ast.stmt):
            statement[id(node)] = node
        elif item.parent is not None and id(item.parent) in statement:
            statement[id(node)] = statement[id(item.parent)]
        if isinstance(node, ast.Slice) and node.step is not None:
            steps.update(id(n) for n in ast.walk(node.step))
        where = _site_text(statement.get(id(node), root))
        for detail, make in _transformations(node, symbols, in_step=id(node) in steps):
            add(index, f"{_name(node)}:{detail}", where, make)
    return sites


def _site_text(node: ast.AST) -> str:
    """A statement's source as one line (a compound statement's header only), at most 80 characters."""
    if hasattr(node, "body") and isinstance(node.body, list):
        node = copy.copy(node)
        for name in ("body", "orelse", "finalbody", "handlers"):
            if isinstance(getattr(node, name, None), list):
                setattr(node, name, [ast.Pass()] if name == "body" else [])
    try:
        text = ast.unparse(node).splitlines()[0] if not isinstance(node, ast.Expression) else ast.unparse(node.body)
    except (AttributeError, TypeError, ValueError, IndexError, RecursionError):
        text = _name(node)
    return " ".join(text.split())[:80]


def _transformations(node: ast.AST, symbols: Sequence[str], *, in_step: bool) -> Iterator[tuple[str, Make]]:  # noqa: C901 (one branch per kind of AST node a mutant changes)
    if isinstance(node, ast.BinOp):
        yield from _binop(node)
    elif isinstance(node, ast.AugAssign):
        for new in _BINOP_SWAPS.get(type(node.op), ()):
            yield f"{_name(node.op)}->{new.__name__}", _set("op", new)
        yield "dropped", lambda n: ast.Pass()
    elif isinstance(node, ast.Compare):
        for i, cmp in enumerate(node.ops):
            for swap in _COMPARE_SWAPS.get(type(cmp), ()):
                yield f"{_name(cmp)}->{swap.__name__}", _set_compare(i, swap)
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not in_step:
        yield from _constant(node)
    elif isinstance(node, ast.Slice):
        for bound in ("lower", "upper"):
            if getattr(node, bound) is not None:
                for delta in (1, -1):
                    yield f"{bound}{delta:+d}", _shift(bound, delta)
    elif isinstance(node, ast.Call):
        yield from _call(node)
    elif isinstance(node, ast.Return) and isinstance(node.value, (ast.Call, ast.Name, ast.BinOp, ast.Subscript, ast.Attribute)):
        yield "transposed", _transpose_return
    elif isinstance(node, ast.Assign):
        yield from _in_place(node)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield f"{_name(node.op)}-dropped", lambda n: cast(ast.UnaryOp, n).operand
    elif isinstance(node, ast.Name) and node.id in symbols:
        for other in symbols:
            if other != node.id:
                yield f"{node.id}->{other}", _rename(other)


def _binop(node: ast.BinOp) -> Iterator[tuple[str, Make]]:
    for new in _BINOP_SWAPS.get(type(node.op), ()):
        yield f"{_name(node.op)}->{new.__name__}", _set("op", new)
    if isinstance(node.op, _NOT_COMMUTATIVE):
        yield "operands-swapped", _swap_operands
    if isinstance(node.op, (ast.Add, ast.Sub)) and all(_is_product(side) for side in (node.left, node.right)):
        yield "factors-swapped", _swap_factors  # `m * v + (1 - m) * g` -> `(1 - m) * v + m * g`
    if isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Constant) and node.left.value == 1:
        yield "one-minus-dropped", lambda n: cast(ast.BinOp, n).right
    if isinstance(node.op, (ast.Add, ast.Sub)):
        right = "max-subtraction-dropped" if isinstance(node.op, ast.Sub) and _is_max_call(node.right) else "right-dropped"
        yield right, lambda n: cast(ast.BinOp, n).left
        if isinstance(node.op, ast.Add):
            yield "left-dropped", lambda n: cast(ast.BinOp, n).right


def _constant(node: ast.Constant) -> Iterator[tuple[str, Make]]:
    value = node.value
    if isinstance(value, bool):
        yield f"{value}->{not value}", lambda n: ast.Constant(not cast(ast.Constant, n).value)
        return
    for delta in (1, -1):
        yield f"{value!r}{delta:+d}", _add_constant(delta)
    if isinstance(value, float) and 0 < value < 1 and value != 0.5:
        # A weight and its complement swapped (`beta` for `1 - beta`): the running averages' classic mistake.
        yield f"{value!r}->1-{value!r}", lambda n: ast.BinOp(ast.Constant(1), ast.Sub(), ast.Constant(cast(ast.Constant, n).value))


_NOT_COMMUTATIVE = (ast.Sub, ast.Div, ast.MatMult)
# Calls whose two arguments may be swapped without a change: swapping them makes no wrong answer.
_SYMMETRIC_CALLS = frozenset({"transpose", "swapaxes", "swapdims", "maximum", "minimum", "max", "min", "add", "mul",
                              "multiply", "hypot", "isclose", "allclose", "eq", "ne", "dist", "equal", "logaddexp"})


def _is_product(node: ast.expr) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)


def _swap_operands(n: ast.AST) -> ast.AST:
    node = cast(ast.BinOp, n)
    node.left, node.right = node.right, node.left
    return node


def _swap_factors(n: ast.AST) -> ast.AST:
    node = cast(ast.BinOp, n)
    left, right = cast(ast.BinOp, node.left), cast(ast.BinOp, node.right)
    left.left, right.left = right.left, left.left
    return node


def _swap_arguments(n: ast.AST) -> ast.AST:
    call = cast(ast.Call, n)
    call.args[0], call.args[1] = call.args[1], call.args[0]
    return call


def _add_constant(delta: int) -> Make:
    return lambda n: ast.Constant(cast(float, cast(ast.Constant, n).value) + delta)


def _call(node: ast.Call) -> Iterator[tuple[str, Make]]:
    called = _called_name(node)
    args = node.args
    if (len(args) == 2 and type(args[0]) is type(args[1]) and not isinstance(args[0], (ast.Constant, ast.Starred))
            and called not in _SYMMETRIC_CALLS and ast.dump(args[0]) != ast.dump(args[1])):
        yield "arguments-swapped", _swap_arguments  # `f(x, W)` for `f(W, x)`, `torch.zeros(m, n)` for `(n, m)`
    if isinstance(node.func, ast.Attribute) and called in ("sum", "mean"):
        other = "mean" if called == "sum" else "sum"
        yield f"{called}->{other}", _attr_call(other)
    if called in ACTIVATIONS:
        if isinstance(node.func, ast.Attribute) and not node.args and not _is_module(node.func.value):
            yield f"{called}-removed", lambda n: cast(ast.Attribute, cast(ast.Call, n).func).value
        elif node.args:
            yield f"{called}-removed", lambda n: cast(ast.Call, n).args[0]
    if called in ROUNDINGS and len(node.args) == 1:
        yield f"{called}-dropped", lambda n: cast(ast.Call, n).args[0]
        if isinstance(node.func, ast.Name):
            yield f"{called}->{ROUNDINGS[called]}", _rename_call(ROUNDINGS[called])
    if called == "range" and isinstance(node.func, ast.Name) and node.args:
        positions = {"stop": min(len(node.args) - 1, 1)} if len(node.args) > 1 else {"stop": 0}
        if len(node.args) > 1:
            positions["start"] = 0
        for bound, i in positions.items():
            for delta in (1, -1):
                yield f"range-{bound}{delta:+d}", _shift_arg(i, delta)


def _is_module(node: ast.expr) -> bool:
    """`torch.sigmoid()` / `F.relu()` name a module function; `z.sigmoid()` is a method of a tensor."""
    return isinstance(node, ast.Name) and node.id in ("torch", "F", "nn", "np", "functional")


def _in_place(node: ast.Assign) -> Iterator[tuple[str, Make]]:
    """`x = x - y` becomes `x -= y`: the same value, unless `x` is the caller's tensor (then it changes it)."""
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name) or not isinstance(node.value, ast.BinOp):
        return
    name, value = node.targets[0].id, node.value
    if isinstance(value.left, ast.Name) and value.left.id == name:
        yield "in-place", lambda n: _augassign(cast(ast.Assign, n), left_is_target=True)
    elif isinstance(value.op, (ast.Add, ast.Mult)) and isinstance(value.right, ast.Name) and value.right.id == name:
        yield "in-place", lambda n: _augassign(cast(ast.Assign, n), left_is_target=False)


def _augassign(node: ast.Assign, left_is_target: bool) -> ast.AST:
    value = cast(ast.BinOp, node.value)
    return ast.AugAssign(target=cast(ast.Name, node.targets[0]), op=value.op, value=value.right if left_is_target else value.left)


def _set(attr: str, new: type[ast.AST]) -> Make:
    def make(n: ast.AST) -> ast.AST:
        setattr(n, attr, new())
        return n

    return make


def _set_compare(i: int, new: type[ast.cmpop]) -> Make:
    def make(n: ast.AST) -> ast.AST:
        cast(ast.Compare, n).ops[i] = new()
        return n

    return make


def _shift(bound: str, delta: int) -> Make:
    def make(n: ast.AST) -> ast.AST:
        setattr(n, bound, _plus(getattr(n, bound), delta))
        return n

    return make


def _shift_arg(i: int, delta: int) -> Make:
    def make(n: ast.AST) -> ast.AST:
        call = cast(ast.Call, n)
        call.args[i] = _plus(call.args[i], delta)
        return n

    return make


def _rename_call(name: str) -> Make:
    def make(n: ast.AST) -> ast.AST:
        cast(ast.Name, cast(ast.Call, n).func).id = name
        return n

    return make


def _attr_call(attr: str) -> Make:
    def make(n: ast.AST) -> ast.AST:
        cast(ast.Attribute, cast(ast.Call, n).func).attr = attr
        return n

    return make


def _rename(name: str) -> Make:
    def make(n: ast.AST) -> ast.AST:
        cast(ast.Name, n).id = name
        return n

    return make


def _transpose_return(n: ast.AST) -> ast.AST:
    ret = cast(ast.Return, n)
    ret.value = ast.Attribute(value=cast(ast.expr, ret.value), attr="T", ctx=ast.Load())
    return ret


def _apply(root: ast.AST, fields: Sequence[str] | None, site: _Site) -> ast.AST:
    """A copy of `root` with the one transformation of `site` applied."""
    tree = copy.deepcopy(root)
    for index, item in enumerate(_preorder(tree, fields)):
        if index == site.index:
            new = site.make(item.node)
            assert item.parent is not None
            if item.position is None:
                setattr(item.parent, item.field, new)
            else:
                getattr(item.parent, item.field)[item.position] = new
            break
    return ast.fix_missing_locations(tree)


def mutate(
    root: ast.AST,
    target: str,
    kind: str,
    questions: tuple[str, ...],
    *,
    fields: Sequence[str] | None = None,
    symbols: Sequence[str] = (),
    render: Callable[[ast.AST], str] = ast.unparse,
    valid: Callable[[str], bool] | None = None,
    cap: int = MAX_PER_TARGET,
) -> list[Mutant]:
    """The mutants of one target: one transformation each, in source order, duplicates and identities dropped.

    Past `cap` a deterministic choice is kept (the first `cap` in the order of their ids' SHA-256), so that the
    same code always gives the same mutants.
    """
    original = render(root)
    seen = {original}
    mutants = []
    for site in _sites(root, fields, symbols):
        try:
            source = render(_apply(root, fields, site))
        except (AttributeError, TypeError, ValueError, RecursionError):
            continue  # a transformation that does not fit this node's shape
        if source in seen or not (valid or _compiles)(source):
            continue
        seen.add(source)
        mutants.append(Mutant(f"{target}:{site.label}", target, kind, original, source, questions))
    if len(mutants) > cap:
        keep = set(sorted(range(len(mutants)), key=lambda i: hashlib.sha256(mutants[i].id.encode()).hexdigest())[:cap])
        mutants = [m for i, m in enumerate(mutants) if i in keep]
    return mutants


def _compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


# -- what to mutate -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Every mutant of a rubric, and why some questions have none."""

    mutants: tuple[Mutant, ...]
    notes: dict[str, str] = field(default_factory=dict)  # question id -> why it is not mutated

    def for_question(self, qid: str) -> list[Mutant]:
        return [m for m in self.mutants if qid in m.questions]


def plan(rubric: Rubric, cap: int = MAX_PER_TARGET) -> Plan:
    """The mutants of a rubric's reference functions, values and formulas, each with the questions it is run on."""
    tree = ast.parse(rubric.reference_path.read_text(encoding="utf-8"))
    functions = {s.name: s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    values = _assignments(tree)
    owners = _owners(rubric, functions)
    mutants: list[Mutant] = []
    notes: dict[str, str] = {}
    for name, qids in owners.items():
        mutants.extend(mutate(functions[name], name, "function", qids, cap=cap))
    for q in rubric.questions:
        kind, answer = kind_spec(q.spec.kind), q.spec.answer
        if kind.mutate is None:
            notes[q.id] = kind.not_mutated or f"not mutated: the `{kind.name}` kind has no mutants"
        elif kind.mutate == "formula":
            mutants.extend(formula_mutants(q, cap))
        elif kind.mutate == "value" and answer in values:
            # Wrapped, so that the expression itself (a lone constant, say) is a node the walk reaches.
            node = ast.Expression(body=values[answer])
            mutants.extend(mutate(node, answer, "value", (q.id,), render=_assignment_renderer(answer), cap=cap))
        elif kind.mutate == "value":
            notes[q.id] = f"not mutated: `{answer}` is not a top-level assignment of the reference"
        elif kind.mutate == "function" and answer not in functions:
            notes[q.id] = f"not mutated: `{answer}` is not a top-level function of the reference"
    return Plan(tuple(mutants), notes)


def _assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """Top-level `name = expr` (the last one wins, as when the module runs)."""
    out: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            out[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            out[stmt.target.id] = stmt.value
    return out


def _assignment_renderer(name: str) -> Callable[[ast.AST], str]:
    return lambda node: f"{name} = {ast.unparse(cast(ast.Expression, node).body)}"


def _owners(rubric: Rubric, functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> dict[str, tuple[str, ...]]:
    """Reference function -> the questions its mutants run on.

    A function a question names as its answer belongs to that question alone: a mutant of `input_gradient`
    is graded by the input-gradient question, not by the FGSM question that calls it (a scaled gradient is a
    right FGSM).  A helper no question names belongs to every question whose answer reaches it.
    """
    answers: dict[str, list[str]] = {}
    for q in rubric.questions:
        if kind_spec(q.spec.kind).mutate == "function" and q.spec.answer in functions:
            answers.setdefault(q.spec.answer, []).append(q.id)
    owners: dict[str, list[str]] = {name: list(qids) for name, qids in answers.items()}
    for answer, qids in answers.items():
        for helper in sorted(_reachable(answer, functions) - {answer}):
            if helper not in answers:
                owners.setdefault(helper, []).extend(q for q in qids if q not in owners.get(helper, []))
    order = list(functions)
    return {name: tuple(qids) for name, qids in sorted(owners.items(), key=lambda kv: order.index(kv[0]))}


def _reachable(start: str, functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        node = functions[todo.pop()]
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in functions and sub.id not in seen:
                seen.add(sub.id)
                todo.append(sub.id)
    return seen


def formula_mutants(q: Question, cap: int = MAX_PER_TARGET) -> list[Mutant]:
    """The expected formula with one change: an operator, a constant ±1, floor dropped, a symbol swapped, ±1.

    Ids start with the question's answer name (`conv_output_size:BinOp:Add->Sub@<the formula>`), or its id without one.
    """
    from grader.formula.mathparse import ParseError, make_symbols, parse_expression
    from grader.rubric.options import FormulaOptions

    opts = q.options_as(FormulaOptions)
    names = list(opts.symbols)
    symbols = make_symbols(names, {})
    target = q.spec.answer or q.id

    def valid(text: str) -> bool:
        try:
            parse_expression(text, symbols)
        except (ParseError, ValueError, TypeError):
            return False
        return True

    try:
        tree: ast.Expression | None = ast.parse(opts.expected.strip(), mode="eval")
    except SyntaxError:
        tree = None  # the student grammar is wider than Python's (`2P`): only the whole formula is changed
    mutants = []
    original = opts.expected.strip()
    if tree is not None:
        original = _render_formula(tree)
        mutants = mutate(tree, target, "formula", (q.id,), symbols=names, render=_render_formula, valid=valid, cap=cap)
    seen = {m.source for m in mutants} | {original}
    for delta in (1, -1):
        source = f"({original}) {'+' if delta > 0 else '-'} 1"
        if source not in seen and valid(source):
            mutants.append(Mutant(f"{target}:whole{delta:+d}", target, "formula", original, source, (q.id,)))
    return mutants


def _render_formula(node: ast.AST) -> str:
    return ast.unparse(cast(ast.Expression, node).body)


# -- the allow-list -------------------------------------------------------------------------------------------------


class AllowEntry(BaseModel):
    """A surviving mutant the author has shown to be equivalent (or out of the handout's scope), and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    mutant: str = Field(min_length=1, description="the mutant's id, or its `src:` digest")
    reason: str = Field(min_length=1)

    def matches(self, qid: str, mutant: Mutant) -> bool:
        return self.question == qid and self.mutant in (mutant.id, mutant.digest)


def allow_list_path(rubric: Rubric) -> Path:
    """`rubrics/mutants/<rubric stem>.yaml`: in a folder of its own, so that `rubrics/*.yaml` stays all rubrics."""
    return rubric.path.parent / "mutants" / f"{rubric.path.stem}.yaml"


def load_allow_list(path: Path, rubric: Rubric) -> tuple[AllowEntry, ...]:
    """The entries of an allow-list file (none where it does not exist); errors name the file and the entry."""
    if not path.exists():
        return ()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RubricError(str(path), f"cannot read the allow-list: {exc}") from exc
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RubricError(str(path), "an allow-list is a list of {question, mutant, reason}")
    known = {q.id for q in rubric.questions}
    entries = []
    for i, item in enumerate(raw):
        try:
            entry = AllowEntry.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise RubricError(str(path), err["msg"], f"entry #{i + 1}", ".".join(map(str, err["loc"])) or None) from exc
        if entry.question not in known:
            raise RubricError(str(path), f"no question {entry.question} in {rubric.path.name}", f"entry #{i + 1}", "question")
        entries.append(entry)
    return tuple(entries)


# -- running mutants ----------------------------------------------------------------------------------------------


class _Answer:
    """Stands in for a worker for formula mutants: the formula check asks it for the student's answer only."""

    def __init__(self, text: str) -> None:
        self.text = text

    def get(self, name: str) -> GetResult:
        return GetResult(True, self.text)


FORMULA_ANSWER = "_mutant_formula"  # the answer name given to a formula question that reads only Answer cells


class Grader:
    """Grades mutants of one rubric in this process through `run_question`.

    Function and value mutants go to one warm worker holding the reference as the submission (started on first
    use); formula mutants need no worker.  Not thread-safe: grader-side model building seeds torch's global
    generator, so parallel runs use processes (`Runner`), never threads.
    """

    def __init__(self, rubric: Rubric, *, launcher: Launcher | None = None, device: str = "cpu",
                 baseline: dict[str, float] | None = None) -> None:
        self.rubric = rubric
        self.reference = rubric.load_reference()
        self.launcher = launcher
        self.device = device
        baseline = baseline or {}
        self.questions = {q.id: _with_timeout(rubric, q, baseline.get(q.id)) for q in rubric.questions}
        self.submission = load_submission(rubric.reference_path)
        # Mutants share one worker for the whole run; the submission's total time limit is a student's bound.
        self.limits = rubric.limits.model_copy(update={"wall_seconds": 7 * 24 * 3600.0})
        self._session: WorkerSession | None = None

    def grade(self, m: Mutant) -> list[MutantResult]:
        return self._formula(m) if m.kind == "formula" else self._in_worker(m)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _formula(self, m: Mutant) -> list[MutantResult]:
        results = []
        for qid in m.questions:
            q = self.questions[qid]
            if not q.spec.answer:
                q = replace(q, spec=q.spec.model_copy(update={"answer": FORMULA_ANSWER}))
            session = cast(WorkerSession, _Answer(m.source))
            result = run_question(CheckContext(self.rubric, q, self.submission, session, self.reference, self.device))
            results.append(_verdict(m, result))
        return results

    def _warm(self) -> WorkerSession:
        if self._session is None:
            session = WorkerSession(self.submission, self.limits, self.launcher, handout=self.rubric.handout.files)
            failures = session.run_cells()
            if failures:
                session.close()
                first = failures[0]
                raise GraderError(f"the reference fails as a submission: cell {first.index + 1}: {first.message}")
            self._session = session
        return self._session

    def _in_worker(self, m: Mutant) -> list[MutantResult]:
        session = self._warm()
        timeout = self.rubric.limits.cell_timeout
        problem = session.define(m.source, timeout, MUTANT_CELL)
        if problem is not None:
            # As a student's cell that raises: the name keeps no wrong value to grade, the answer is lost.
            return [self._killed(m, qid, f"the mutant failed when defined: {problem}") for qid in m.questions]
        results = []
        try:
            for i, qid in enumerate(m.questions):
                # The worker died on the last question and a fresh one replays the reference: redefine.
                if i and not session.alive() and session.define(m.source, timeout, MUTANT_CELL) is not None:
                    results.append(self._killed(m, qid, "the mutant could not be defined again"))
                    continue
                ctx = CheckContext(self.rubric, self.questions[qid], self.submission, session, self.reference, self.device)
                results.append(_verdict(m, run_question(ctx)))
        finally:
            if session.define(m.original, timeout, MUTANT_CELL) is not None:
                session.close()  # the next request starts a fresh worker, which replays the reference's cells
        return results

    def _killed(self, m: Mutant, qid: str, message: str) -> MutantResult:
        return MutantResult(m, qid, Verdict.KILLED, 0.0, self.questions[qid].spec.points, message)


def _verdict(m: Mutant, result: QuestionResult) -> MutantResult:
    """Killed when the question took points off; a formula proved equal is no wrong answer at all."""
    if result.max_score <= 0 or result.score < result.max_score:
        return MutantResult(m, result.qid, Verdict.KILLED, result.score, result.max_score, result.message)
    if m.kind == "formula" and result.details.get("proof") == "symbolic":
        return MutantResult(m, result.qid, Verdict.EQUIVALENT, result.score, result.max_score, "proved equal by SymPy")
    return MutantResult(m, result.qid, Verdict.SURVIVED, result.score, result.max_score, result.message)


def credit_siblings(results: Sequence[MutantResult]) -> list[MutantResult]:
    """A mutant one question kills is seen: where another question that checks the same function lets it
    through, it is no survivor there, but `SIBLING`, naming the question that owns it (the first that killed it).

    A helper's mutant runs on every question that reaches the helper; one case somewhere that tells it apart
    is what a mutation score asks for, so an allow-list needs no copy per question.
    """
    owner: dict[str, str] = {}
    for r in results:
        if r.verdict is Verdict.KILLED:
            owner.setdefault(r.mutant.id, r.question)
    return [
        replace(r, verdict=Verdict.SIBLING, message=f"killed by {owner[r.mutant.id]}, which checks the same function")
        if r.verdict is Verdict.SURVIVED and r.mutant.id in owner else r
        for r in results
    ]


def allow(results: Sequence[MutantResult], entries: Sequence[AllowEntry]) -> list[MutantResult]:
    """Survivors the allow-list justifies become ALLOWED, with its reason as their message."""
    out = []
    for r in results:
        entry = next((e for e in entries if e.matches(r.question, r.mutant)), None)
        if r.verdict is Verdict.SURVIVED and entry is not None:
            r = replace(r, verdict=Verdict.ALLOWED, message=entry.reason)
        out.append(r)
    return out


def unused_entries(results: Sequence[MutantResult], entries: Sequence[AllowEntry]) -> list[AllowEntry]:
    """Entries that justify no survivor (the mutant is now killed, or no longer made): stale, to be removed."""
    allowed = [r for r in results if r.verdict is Verdict.ALLOWED]
    return [e for e in entries if not any(e.matches(r.question, r.mutant) for r in allowed)]


class Runner:
    """Runs a plan's mutants: formulas in this process, functions and values in `jobs` processes that each keep
    one warm worker for all their mutants (a worker start costs more than most mutants)."""

    def __init__(self, rubric: Rubric, *, launcher: Launcher | None = None, device: str = "cpu", jobs: int = 2,
                 baseline: dict[str, float] | None = None) -> None:
        self.rubric = rubric
        self.launcher = launcher
        self.device = device
        self.jobs = max(1, jobs)
        self.baseline = dict(baseline or {})

    def run(self, mutants: Sequence[Mutant], on_done: Callable[[int, int], None] | None = None) -> list[MutantResult]:
        """Every (mutant, question) result, in the order of `mutants` and of their questions."""
        total, done = len(mutants), [0]
        results: dict[str, list[MutantResult]] = {}

        def finished(m: Mutant, rs: list[MutantResult]) -> None:
            results[m.id] = rs
            done[0] += 1
            if on_done is not None:
                on_done(done[0], total)

        local = Grader(self.rubric, launcher=self.launcher, device=self.device, baseline=self.baseline)
        in_workers = [m for m in mutants if m.kind != "formula"]
        try:
            if self.jobs == 1 or len(in_workers) < 2 * self.jobs:
                for m in mutants:
                    finished(m, local.grade(m))
            else:
                self._pool(mutants, in_workers, local, finished)
        finally:
            local.close()
        return [r for m in mutants for r in results[m.id]]

    def _pool(self, mutants: Sequence[Mutant], in_workers: list[Mutant], local: Grader,
              finished: Callable[[Mutant, list[MutantResult]], None]) -> None:
        # The costliest first, so that no long mutant starts last while the other processes sit idle.
        order = sorted(in_workers, key=lambda m: -sum(self.baseline.get(q, 1.0) for q in m.questions))
        ctx = get_context("forkserver" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_pool_init,
                                 initargs=(str(self.rubric.path), self.launcher, self.device, self.baseline)) as pool:
            futures = {pool.submit(_pool_grade, m): m for m in order}
            for m in mutants:  # the formulas meanwhile, here, where the formula check's alarm works
                if m.kind == "formula":
                    finished(m, local.grade(m))
            for future in as_completed(futures):
                try:
                    finished(futures[future], future.result())
                except GraderError:
                    raise
                except Exception as exc:
                    raise GraderError(f"mutation analysis failed on {futures[future].id}: {exc!r}") from exc


_POOL: dict[str, Grader] = {}


def _pool_init(rubric_path: str, launcher: Launcher | None, device: str, baseline: dict[str, float]) -> None:
    from multiprocessing import util

    from grader.rubric.schema import load_rubric

    grader = Grader(load_rubric(rubric_path), launcher=launcher, device=device, baseline=baseline)
    _POOL["grader"] = grader
    util.Finalize(None, grader.close, exitpriority=10)  # atexit does not run in pool processes


def _pool_grade(m: Mutant) -> list[MutantResult]:
    return _POOL["grader"].grade(m)


def _with_timeout(rubric: Rubric, q: Question, seconds: float | None) -> Question:
    """The question with a call limit fitted to the reference's time on it: a mutant that loops costs seconds."""
    limit = q.spec.timeout or rubric.limits.call_timeout
    if seconds is not None:
        limit = min(limit, max(MIN_TIMEOUT, TIMEOUT_FACTOR * seconds))
    return replace(q, spec=q.spec.model_copy(update={"timeout": limit}))
