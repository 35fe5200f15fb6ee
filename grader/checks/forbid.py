"""`forbid`: static proof that an answer (and every function of the submission it reaches) avoids some APIs.

Handouts say "must not use autograd": the function, and any function of the student's own that it calls, may
not call `torch.autograd.*`, `torch.func.*`, `.backward()`, `.grad` or a library convolution.  Running the code
cannot show that (a gradient computed by autograd looks like any other), so this reads the source: nothing of
the student's is executed.

The analysis starts at the last top-level definition of the answer and follows, transitively, every top-level
function, lambda, class or top-level value of the submission it names (called or merely referenced, so that
`map(helper, xs)` counts).  Every attribute chain is resolved through the submission's imports to a dotted name
(`F.conv1d` -> `torch.nn.functional.conv1d`) and compared with the banned prefixes.  Constructs that would hide
a name from this reading (`getattr(torch, "autograd")`, `eval`, `globals()[...]`) are reported as dynamic code.

A banned entry is one of:
  * a preset name (`autograd`), expanded by `PRESETS`;
  * `.attr`: any attribute access named `attr` (`.backward`, `.grad`), whatever the object;
  * a dotted prefix (`torch.autograd`), matched on whole components (`torch.autograd.grad` yes,
    `torch.autogradx` no).
"""
from __future__ import annotations

import ast
import builtins
import functools
import importlib
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from grader.explain import View, bounded
from grader.results import Outcome
from grader.rubric.options import ForbidOptions
from grader.sources.load import MAX_PARSED, TooLargeToParse, parse_python

if TYPE_CHECKING:
    from grader.checks.base import CheckContext
    from grader.sources.load import Submission

_CONVS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_CONV_MODULES = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

PRESETS: dict[str, tuple[str, ...]] = {
    # The handouts' "must not use autograd" (cnn-rnn.md, backprop-optim.md).  `unfold` stays allowed.
    "autograd": (
        "torch.autograd",
        "torch.func",
        "functorch",  # torch.func's former name, still importable
        "torch._functorch",
        "torch.vmap",  # an alias of torch.func.vmap
        *(f"torch.nn.functional.{c}" for c in _CONVS),
        *(f"torch.{c}" for c in _CONVS),  # the same kernels, exported at the top level
        "torch.convolution",
        "torch._convolution",
        "torch.ops.aten.convolution",
        "torch.ops.aten.convolution_backward",
        *(f"torch.nn.{m}" for m in _CONV_MODULES),  # modules that call the functional convolution
        "torch.nn.modules.conv",
        ".backward",
        ".grad",
    ),
}

DYNAMIC = "dynamic code"

# Callables that run or look up code by a string, which static reading cannot follow.
_DYNAMIC_CALLABLES = frozenset(
    {
        "eval", "exec", "compile", "__import__",
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__",
        "importlib.import_module", "importlib.__import__",
    }
)
_GETATTR = frozenset({"getattr", "builtins.getattr"})
_NAMESPACE_CALLS = frozenset({"globals", "vars", "locals", "builtins.globals", "builtins.vars", "builtins.locals"})
_ATTRGETTERS = frozenset({"operator.attrgetter", "operator.methodcaller"})
_LOOKUP_METHODS = frozenset({"get", "__getitem__", "pop", "setdefault"})


class FunctionNotFound(LookupError):
    """The submission has no top-level definition (nor import) of the analysed name."""


@dataclass(frozen=True)
class Violation:
    cell: int  # index of the code cell
    line: int  # 1-based, within the cell (for a .py submission: within the file)
    col: int  # 0-based
    api: str  # the dotted name, the ".attr" ban, or DYNAMIC
    text: str  # the offending source line, stripped
    via: tuple[str, ...]  # analysed function first, then the helpers leading to the line
    called: bool = False  # the name is called here (rather than merely referenced)
    note: str = ""  # for dynamic code: what was seen

    def serialize(self) -> dict[str, Any]:
        data = asdict(self)
        data["via"] = list(self.via)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Violation | None:
        """A stored violation (old results too); None for one that is not a record at all."""
        if not isinstance(data, dict):
            return None

        def number(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        via = data.get("via")
        return cls(
            cell=number("cell"),
            line=number("line"),
            col=number("col"),
            api=str(data.get("api") or ""),
            text=bounded(data.get("text") or "", 300) or "",
            via=tuple(str(v) for v in via) if isinstance(via, (list, tuple)) else (),
            called=bool(data.get("called", False)),
            note=str(data.get("note") or ""),
        )

    def describe(self) -> str:
        """`calls torch.autograd.grad`, `reads .grad`, `uses dynamic code (eval)`."""
        if self.api == DYNAMIC:
            return f"uses dynamic code ({self.note})"
        if self.api.startswith("."):
            return f"calls {self.api}()" if self.called else f"uses {self.api}"
        return f"calls {self.api}" if self.called else f"uses {self.api}"


@dataclass(frozen=True)
class ForbidDetails:
    """A forbid check as graded (a question of its own, or any question's `forbid:` gate): every offending
    line, where it is and which API it uses."""

    violations: tuple[Violation, ...] = ()

    def serialize(self) -> dict[str, Any]:
        return {"violations": [v.serialize() for v in self.violations]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForbidDetails:
        found = data.get("violations")
        read = [Violation.from_dict(v) for v in found] if isinstance(found, list) else []
        return cls(tuple(v for v in read if v is not None))

    def explain(self, view: View) -> None:
        for v in self.violations:
            where = f"line {v.line}" if view.python_file else f"cell {v.cell}, line {v.line}"
            chain = f" (via {' → '.join(v.via[1:])})" if len(v.via) > 1 else ""
            view.code.append(f"{where}: {v.text}    # {v.note or v.api}{chain}")


# ----------------------------------------------------------------------------------------------- banned lists


@dataclass(frozen=True)
class Banned:
    prefixes: tuple[str, ...]
    attrs: frozenset[str]

    @classmethod
    def expand(cls, entries: list[str] | tuple[str, ...]) -> Banned:
        flat: list[str] = []
        for entry in entries:
            flat.extend(PRESETS.get(entry.strip(), (entry.strip(),)))
        prefixes = tuple(e for e in flat if e and not e.startswith("."))
        attrs = frozenset(e[1:] for e in flat if e.startswith(".") and len(e) > 1)
        return cls(prefixes, attrs)

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.attrs)

    def match(self, dotted: str) -> bool:
        return any(dotted == p or dotted.startswith(p + ".") for p in self.prefixes)

    def is_ancestor(self, dotted: str) -> bool:
        """`torch` is an ancestor of `torch.autograd`: a computed attribute of it may reach a banned name."""
        return any(p.startswith(dotted + ".") for p in self.prefixes)


# ------------------------------------------------------------------------------------------ the module's names


@dataclass(frozen=True)
class Unit:
    """A top-level binding of the submission that can hold code: a def, a class, or an assigned value."""

    name: str
    cell: int
    node: ast.AST  # FunctionDef / AsyncFunctionDef / ClassDef, or the assigned expression


@dataclass(frozen=True)
class Alias:
    """A name bound to a dotted path by an import or a top-level `x = torch.autograd`."""

    target: str
    cell: int
    node: ast.AST


@dataclass
class Module:
    """What the whole submission binds at top level; later cells override earlier ones, as when run in order."""

    cells: dict[int, list[str]] = field(default_factory=dict)  # cell index -> source lines
    unreadable: dict[int, str] = field(default_factory=dict)  # cell index -> why Python's parser gave up
    units: dict[str, Unit] = field(default_factory=dict)
    aliases: dict[str, list[Alias]] = field(default_factory=dict)
    star: list[str] = field(default_factory=list)  # modules imported with `from m import *`


# Characters of code parsed per submission, all cells together: each cell is bounded by `parse_python`, and
# this keeps a notebook at the size limit (64 MiB) to a few seconds of the grader's time.
MAX_PARSED_TOTAL = 8 * 1024 * 1024


@functools.lru_cache(maxsize=16)
def _parse(cells: tuple[Any, ...]) -> Module:
    # Cached on the cells so that several questions gated by `forbid:` parse a submission once.
    module = Module()
    parsed = 0
    for cell in cells:
        size = len(cell.source.lstrip("\n"))  # a .py file's cells start with blank lines that keep line numbers
        if size <= MAX_PARSED:  # a larger one is refused by parse_python at no cost
            if parsed + size > MAX_PARSED_TOTAL:
                module.unreadable[cell.index] = (
                    f"is past the first {MAX_PARSED_TOTAL:,} characters of code, all the grader reads of a submission"
                )
                continue
            parsed += size  # counted before the parse: one that fails at its end has cost as much
        try:
            tree = parse_python(cell.source)
        except (SyntaxError, ValueError):
            continue  # a cell that does not parse defines nothing when run either
        except TooLargeToParse as exc:
            # What it defines cannot be read, so nothing it defines may pass unread.
            module.unreadable[cell.index] = f"is too large for the grader to read: {exc}"
            continue
        except (RecursionError, MemoryError) as exc:
            # Nested past what the grader's parser takes (the worker may compile it under a raised recursion
            # limit): what it defines cannot be read, so nothing it defines may pass unread.
            module.unreadable[cell.index] = f"is nested too deeply for Python's parser to read ({type(exc).__name__})"
            continue
        module.cells[cell.index] = cell.source.splitlines()
        top = list(_top_level(tree.body))
        for stmt in top:
            _bind(module, cell.index, stmt)
        # Imports inside functions resolve names too (a student may import in one helper and use the name in
        # another); they never replace a top-level binding.
        top_ids = {id(stmt) for stmt in top}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top_ids:
                _add_imports(module.aliases, module.star, cell.index, node, replace=False)
    return module


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at module level, including those inside top-level `if`/`try`/`with`/loops."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
            yield from _top_level(stmt.body)
            yield from _top_level(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            yield from _top_level(stmt.body)  # type: ignore[attr-defined]
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                yield from _top_level(handler.body)
            yield from _top_level(stmt.orelse)  # type: ignore[attr-defined]
            yield from _top_level(stmt.finalbody)  # type: ignore[attr-defined]


def _bind(module: Module, cell: int, stmt: ast.stmt) -> None:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        _set_unit(module, Unit(stmt.name, cell, stmt))
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        _add_imports(module.aliases, module.star, cell, stmt, replace=True)
        for alias in stmt.names:
            module.units.pop((alias.asname or alias.name).split(".")[0], None)
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            if isinstance(target, ast.Name):
                _bind_value(module, cell, target.id, stmt.value)


def _bind_value(module: Module, cell: int, name: str, value: ast.expr) -> None:
    path = _dotted(value)
    if path is not None and path[0] in module.aliases and path[0] not in module.units:
        # `ag = torch.autograd`: an alias, resolved through the import of its root.
        rest = ".".join(path[1:])
        targets = [a.target + ("." + rest if rest else "") for a in module.aliases[path[0]]]
        module.aliases[name] = [Alias(t, cell, value) for t in targets]
        module.units.pop(name, None)
        return
    # Any other value may hold code (`helper = lambda ...`, `ops = {"g": torch.autograd.grad}`); it is read
    # only if an analysed function names it.
    _set_unit(module, Unit(name, cell, value))


def _set_unit(module: Module, unit: Unit) -> None:
    module.units[unit.name] = unit
    module.aliases.pop(unit.name, None)


def _add_imports(
    aliases: dict[str, list[Alias]], star: list[str], cell: int, stmt: ast.Import | ast.ImportFrom, *, replace: bool
) -> None:
    for name, target in _import_bindings(stmt):
        if name == "*":
            star.append(target)
            continue
        entry = Alias(target, cell, stmt)
        if replace or name not in aliases:
            aliases[name] = [entry]
        elif all(a.target != target for a in aliases[name]):
            aliases[name].append(entry)  # bound differently in different places: any may be the live one


def _import_bindings(stmt: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(local name, dotted target): `import torch.nn.functional as F` -> (F, torch.nn.functional)."""
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                root = alias.name.split(".")[0]  # `import torch.autograd` binds `torch`
                yield root, root
        return
    if stmt.level:  # relative imports refer to the student's own package, never to torch
        return
    for alias in stmt.names:
        if alias.name == "*":
            yield "*", stmt.module or ""
        else:
            yield alias.asname or alias.name, f"{stmt.module}.{alias.name}"


def _unparse(node: ast.AST) -> str:
    """Source text for a message; `ast.unparse` recurses, so a deeply nested expression gets a placeholder."""
    try:
        text = ast.unparse(node)
    except (RecursionError, MemoryError):
        return "<a deeply nested expression>"
    return text if len(text) <= 200 else text[:197] + "..."


def _dotted(node: ast.AST) -> list[str] | None:
    """`torch.autograd.grad` -> ["torch", "autograd", "grad"]; None unless a pure Name/Attribute chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


# ------------------------------------------------------------------------------------------------- scopes


def _local_names(node: ast.AST) -> tuple[set[str], dict[str, list[str]]]:
    """Names a function binds (they shadow the module's) and the imports inside it.

    Nested functions and lambdas are merged into one scope: slightly coarse, but it only ever shadows more,
    and a variable named like an import (`grad = ...`) is then correctly not the import.
    """
    bound: set[str] = set()
    imports: dict[str, list[str]] = {}
    declared_global: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, (ast.Store, ast.Del)):
            bound.add(inner.id)
        elif isinstance(inner, ast.arg):
            bound.add(inner.arg)
        elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and inner is not node:
            bound.add(inner.name)  # (two arms: mypy narrows each one's type)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            bound.add(inner.name)
        elif isinstance(inner, (ast.Global, ast.Nonlocal)):
            declared_global.update(inner.names)
        elif isinstance(inner, (ast.Import, ast.ImportFrom)):
            for name, target in _import_bindings(inner):
                if name != "*":
                    imports.setdefault(name, []).append(target)
    return bound - declared_global - set(imports), imports


@dataclass
class Scope:
    module: Module
    bound: set[str]
    imports: dict[str, list[str]]

    def unit(self, name: str) -> Unit | None:
        if name in self.bound or name in self.imports:
            return None
        return self.module.units.get(name)

    def resolve(self, name: str) -> list[str]:
        """Dotted paths a free name may denote; [] for a local variable or a value of the submission."""
        if name in self.imports:
            return self.imports[name]
        if name in self.bound or name in self.module.units:
            return []  # the submission's own code (a unit is read, not matched) or a local variable
        if name in self.module.aliases:
            return [a.target for a in self.module.aliases[name]]
        # Unbound: a builtin (`eval`), a name from a star import, or a module the grader's namespace provides.
        return [name] + [f"{m}.{name}" for m in self.module.star if _may_export(m, name)]


def _may_export(module: str, name: str) -> bool:
    """Whether `from module import *` may bind `name`; without this every unbound name would look banned.

    Builtins are never taken from a star import; torch's own modules (the grader depends on torch) are asked,
    so that the answer does not depend on what this process happened to import; any other module is assumed
    to export the name.  No module of the student's choosing outside torch is imported.
    """
    if hasattr(builtins, name):
        return False
    loaded = sys.modules.get(module)
    if loaded is None and module.split(".")[0] == "torch":
        try:
            loaded = importlib.import_module(module)
        except Exception:  # noqa: BLE001  (a misspelt or private module: fall back to assuming it exports the name)
            loaded = None
    if loaded is None:
        return True
    exported = getattr(loaded, "__all__", None)
    return name in exported if isinstance(exported, (list, tuple)) else hasattr(loaded, name)


# ------------------------------------------------------------------------------------------------- the walk


@dataclass
class Walker:
    """Reads one piece of code: reports violations and collects the submission units it names."""

    banned: Banned
    scope: Scope
    cell: int
    via: tuple[str, ...]
    lines: list[str]
    found: list[Violation] = field(default_factory=list)
    reached: list[str] = field(default_factory=list)
    _calls: set[int] = field(default_factory=set)

    def report(self, node: ast.AST, api: str, note: str = "", col: int | None = None) -> None:
        line = getattr(node, "lineno", 0)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        col = getattr(node, "col_offset", 0) if col is None else col
        called = id(node) in self._calls
        self.found.append(Violation(self.cell, line, col, api, text, self.via, called, note))

    def visit(self, root: ast.AST) -> None:
        # An explicit stack, not recursion: a correct `return x + x + ... + x` of 5,000 terms is a BinOp
        # nested 5,000 deep.  Children are pushed in reverse so that nodes are read in source order.
        stack = [root]
        while stack:
            node = stack.pop()
            if self._visit_one(node):
                stack.extend(reversed(list(ast.iter_child_nodes(node))))

    def _visit_one(self, node: ast.AST) -> bool:
        """Check one node; False when its children need no reading."""
        if isinstance(node, ast.Call):
            self._calls.add(id(node.func))
            self._dynamic_call(node)
            if (isinstance(node.func, ast.Attribute) and node.func.attr in _LOOKUP_METHODS
                    and self._namespace_lookup(node.func.value)):  # globals().get("eval")
                self.report(node, DYNAMIC, f"lookup in {_unparse(node.func.value)}")
        elif isinstance(node, ast.Subscript) and self._namespace_lookup(node.value):
            self.report(node, DYNAMIC, f"lookup in {_unparse(node.value)}")
        elif isinstance(node, (ast.Name, ast.Attribute)) and self._chain(node):
            return False  # a pure dotted chain, reported whole: its inner parts would only repeat it
        return True

    def _chain(self, node: ast.Name | ast.Attribute) -> bool:
        """Check a Name/Attribute; True when it was a pure dotted chain reported as such."""
        path = _dotted(node)
        if path is not None and not (isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)):
            root, rest = path[0], path[1:]
            unit = self.scope.unit(root)
            if unit is not None:
                self.reached.append(unit.name)
            for target in self.scope.resolve(root):
                dotted = ".".join([target, *rest])
                if dotted in _DYNAMIC_CALLABLES or target == "__builtins__":
                    self.report(node, DYNAMIC, dotted)
                    return True
                if self.banned.match(dotted):
                    self.report(node, dotted)
                    return True
        if isinstance(node, ast.Attribute) and node.attr in self.banned.attrs:
            # Point at the attribute itself: in `a.b.grad.zero_()` the expression starts at `a`.
            same_line = getattr(node, "end_lineno", None) == node.lineno and node.end_col_offset is not None
            col = node.end_col_offset - len(node.attr) if same_line else None  # type: ignore[operator]
            self.report(node, "." + node.attr, col=col)
        return False

    def _dynamic_call(self, call: ast.Call) -> bool:
        """getattr / attrgetter / __getattribute__ with a name that reaches a banned API."""
        func_targets = self._targets(call.func)
        if func_targets & _GETATTR or (isinstance(call.func, ast.Attribute) and call.func.attr == "__getattribute__"):
            obj: ast.expr | None
            if isinstance(call.func, ast.Attribute):  # x.__getattribute__("grad") or object.__getattribute__(x, "grad")
                obj, names = (call.args[0] if len(call.args) > 1 else call.func.value), call.args[-1:]
            else:
                obj, names = (call.args[0] if call.args else None), call.args[1:2]
            return self._dynamic_attr(call, "getattr", obj, names[0] if names else None)
        if func_targets & _ATTRGETTERS:
            for arg in call.args:
                if (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                        and set(arg.value.split(".")) & self.banned.attrs):
                    self.report(call, DYNAMIC, f"{_unparse(call.func)}({arg.value!r})")
                    return True
        return False

    def _dynamic_attr(self, call: ast.Call, how: str, obj: ast.expr | None, name: ast.expr | None) -> bool:
        obj_text = _unparse(obj) if obj is not None else "?"
        obj_targets = self._targets(obj) if obj is not None else set()
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            attr = name.value
            hits = [t for t in obj_targets if self.banned.match(f"{t}.{attr}")]
            if attr in self.banned.attrs or hits:
                reaches = f" reaches {hits[0]}.{attr}" if hits else ""
                self.report(call, DYNAMIC, f"{how}({obj_text}, {attr!r}){reaches}")
                return True
        elif name is not None and any(self.banned.is_ancestor(t) or self.banned.match(t) for t in obj_targets):
            # A computed attribute of `torch` may be `autograd`: it cannot be read, so it is not allowed.
            self.report(call, DYNAMIC, f"{how}({obj_text}, <computed name>)")
            return True
        return False

    def _namespace_lookup(self, value: ast.expr) -> bool:
        """globals()[...], vars(m)[...], __builtins__[...], m.__dict__[...], sys.modules[...]."""
        if isinstance(value, ast.Call) and self._targets(value.func) & _NAMESPACE_CALLS:
            return True
        if isinstance(value, ast.Attribute) and value.attr == "__dict__":
            return True
        return bool(self._targets(value) & {"__builtins__", "builtins.__dict__", "sys.modules"})

    def _targets(self, node: ast.AST) -> set[str]:
        path = _dotted(node)
        if path is None:
            return set()
        rest = path[1:]
        return {".".join([t, *rest]) for t in self.scope.resolve(path[0])}


# --------------------------------------------------------------------------------------------- the analysis


def _segments(unit: Unit) -> Iterator[tuple[str, ast.AST, ast.AST]]:
    """(label, node to read, node whose scope applies): a class is read method by method."""
    if not isinstance(unit.node, ast.ClassDef):
        yield unit.name, unit.node, unit.node
        return
    cls = unit.node
    for expr in [*cls.bases, *(k.value for k in cls.keywords), *cls.decorator_list]:
        yield unit.name, expr, expr
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{unit.name}.{stmt.name}", stmt, stmt
        else:
            yield unit.name, stmt, stmt


def find_violations(submission: Submission, function_name: str, banned: list[str]) -> list[Violation]:
    """Every use of a banned API by `function_name` or by code of the submission it reaches.

    Raises FunctionNotFound when the submission neither defines nor imports the name.
    """
    rules = Banned.expand(banned)
    module = _parse(tuple(submission.cells))
    if module.unreadable and rules:
        return [_unreadable(module, function_name)]
    root = module.units.get(function_name)
    if root is None:
        if function_name in module.aliases:
            return _imported_answer(module, function_name, rules)
        raise FunctionNotFound(function_name)
    if not rules:
        return []
    found: list[Violation] = []
    paths: dict[str, tuple[str, ...]] = {root.name: (root.name,)}
    queue = deque([root.name])
    while queue:  # breadth first, so that each unit's chain is a shortest one
        unit = module.units[queue.popleft()]
        for label, node, scope_node in _segments(unit):
            via = (*paths[unit.name][:-1], label)
            bound, imports = _local_names(scope_node) if isinstance(scope_node, _SCOPES) else (set(), {})
            walker = Walker(rules, Scope(module, bound, imports), unit.cell, via, module.cells[unit.cell])
            walker.visit(node)
            found.extend(walker.found)
            for name in walker.reached:
                if name not in paths:  # visited once: recursion and mutual recursion end here
                    paths[name] = (*via, name)
                    queue.append(name)
    return _unique(found)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.expr)


def _unreadable(module: Module, function_name: str) -> Violation:
    cell = min(module.unreadable)
    note = f"cell {cell} {module.unreadable[cell]}; simplify it"
    return Violation(cell, 0, 0, DYNAMIC, "", (function_name,), note=note)


def _imported_answer(module: Module, name: str, rules: Banned) -> list[Violation]:
    """`from torch.nn.functional import conv1d as conv1d_forward`: the answer *is* a banned API."""
    found = []
    for alias in module.aliases[name]:
        if rules.match(alias.target):
            node = alias.node
            line = getattr(node, "lineno", 0)
            lines = module.cells.get(alias.cell, [])
            text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            found.append(Violation(alias.cell, line, getattr(node, "col_offset", 0), alias.target, text, (name,)))
    return found


def _unique(found: list[Violation]) -> list[Violation]:
    seen: set[tuple[int, int, int, str]] = set()
    out = []
    for v in found:
        key = (v.cell, v.line, v.col, v.api)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


# ------------------------------------------------------------------------------------------------ reporting


def _where(submission: Submission, v: Violation) -> str:
    # A .py submission's cells are padded so that lines are the file's; its cell numbers mean nothing to a student.
    place = f"line {v.line}" if submission.path.suffix == ".py" else f"cell {v.cell}, line {v.line}"
    if not v.line:  # a whole cell (one the parser could not read)
        place = f"cell {v.cell}"
    return f"{place}: `{v.text}`" if v.text else place


def _forbidden_label(apis: list[str]) -> str:
    return ", ".join(apis) if apis else "these APIs"


def describe(submission: Submission, violations: list[Violation], apis: list[str]) -> str:
    first = violations[0]
    helpers = first.via[1:]
    via = ""
    if len(helpers) == 1:
        via = f" via helper `{helpers[0]}`"
    elif helpers:
        via = " via helpers " + " → ".join(f"`{h}`" for h in helpers)
    more = len(violations) - 1
    tail = f" ({more} more use{'s' if more > 1 else ''} in the details)" if more else ""
    return (
        f"{first.via[0]} {first.describe()}{via} ({_where(submission, first)}); "
        f"the handout forbids {_forbidden_label(apis)} here{tail}"
    )


def _failed(submission: Submission, violations: list[Violation], apis: list[str]) -> Outcome:
    return Outcome.failed(describe(submission, violations, apis), **ForbidDetails(tuple(violations)).serialize())


def forbid_outcome(ctx: CheckContext, apis: list[str]) -> Outcome | None:
    """The gate for a question's common `forbid:` key: a failing Outcome on a violation, else None.

    A missing answer is left to the question's own check, which reports it in its own words.
    """
    if not apis:
        return None
    try:
        violations = find_violations(ctx.submission, ctx.answer, apis)
    except FunctionNotFound:
        return None
    return _failed(ctx.submission, violations, apis) if violations else None


class ForbidCheck:
    """A question of its own: full marks when the function uses none of the forbidden APIs."""

    Options = ForbidOptions

    def run(self, ctx: CheckContext) -> Outcome:
        options = ctx.question.options
        assert isinstance(options, ForbidCheck.Options)
        name = options.function or ctx.answer
        try:
            violations = find_violations(ctx.submission, name, options.apis)
        except FunctionNotFound:
            return Outcome.error(f"`{name}` is not defined")
        if violations:
            return _failed(ctx.submission, violations, options.apis)
        return Outcome.passed("uses none of the forbidden APIs")


__all__ = ["DYNAMIC", "PRESETS", "ForbidCheck", "ForbidDetails", "FunctionNotFound", "Violation", "find_violations", "forbid_outcome"]
