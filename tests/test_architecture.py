"""The package's shape: no import cycles between grader's own modules.

Every ``import`` / ``from ... import`` in every module of ``grader/`` counts,
the ones inside functions too; only those under ``if TYPE_CHECKING:`` are left
out (they never run). Relative imports are resolved, and ``from pkg import mod``
counts as an import of ``pkg.mod`` where ``mod`` is a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "grader"


def module_names() -> dict[str, Path]:
    """Every module of grader, by dotted name (a package by its own name)."""
    names: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that can run: everything but ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                walk(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the grader modules it imports."""
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")
                    if node.level > 1:
                        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts)
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                targets.append(source)
                for alias in node.names:
                    candidate = f"{source}.{alias.name}"
                    if candidate in modules:
                        targets.append(candidate)
            for target in targets:
                # 'import grader.a.b' names grader.a.b; keep the longest known module
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _cycle_in(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through a component, for the failure message."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}

    def dfs(node: str) -> bool:
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                path.append(start)
                return True
            if nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                if dfs(nxt):
                    return True
                path.pop()
        return False

    dfs(start)
    return path


def test_graph_sees_the_package() -> None:
    graph = import_graph()
    assert "grader.cli.main" in graph
    assert "grader.worker.main" in graph
    assert graph["grader.cli.main"], "the walk found no imports in grader.cli.main"


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    report = "\n".join(" -> ".join(_cycle_in(graph, c)) + f"   ({len(c)} modules)" for c in cycles)
    print(report)
    assert not cycles, f"import cycles in grader/:\n{report}"


def test_no_module_imports_another_modules_private_names() -> None:
    # `mod._name` on another module or class is ruff's SLF001 (pyproject.toml); this is `from mod import _name`.
    modules = module_names()
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.level or (node.module or "").startswith("grader")):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{name}:{node.lineno} imports {alias.name} from {'.' * node.level}{node.module or ''}")
    assert not found, "\n".join(found)


# The pipeline's stages, lowest first; a module may import its own stage's modules and those of lower stages
# only.  Modules directly in grader/ are the shared leaves (errors, results, ...), below everything, and so is
# the package itself (its public names are imported lazily, by name); the facades named in FACADES sit on top
# (they re-export a stage's API for users).
STAGES = [
    "grader",  # the shared leaves
    "grader.worker",
    "grader.formula",
    "grader.rubric",
    "grader.sources",
    "grader.execution",
    "grader.checks",
    "grader.grading",
    "grader.feedback",
    "grader.classroom",
    "grader.authoring",
    "grader.kit",
    "grader.workspace",
    "grader.cli",
]
FACADES = {"grader.cases"}  # the authors' case helpers


def stage_of(module: str) -> int:
    if module in FACADES:
        return len(STAGES)
    parts = module.split(".")
    if module == "grader":
        return 0
    for depth in (2, 1):
        prefix = ".".join(parts[:depth])
        if prefix in STAGES and (depth == 2 or len(parts) == 2):
            return STAGES.index(prefix)
    raise AssertionError(f"{module} is in no stage of STAGES: add its package there")


def test_every_module_is_in_a_stage() -> None:
    for name in module_names():
        stage_of(name)


def test_stages_depend_only_downwards() -> None:
    graph = import_graph()
    upward = [
        f"{name} ({STAGES[stage_of(name)] if stage_of(name) < len(STAGES) else 'facade'}) imports {target} "
        f"({STAGES[stage_of(target)] if stage_of(target) < len(STAGES) else 'facade'})"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if stage_of(target) > stage_of(name)
    ]
    assert not upward, "imports against the stage order:\n" + "\n".join(upward)


def test_the_worker_imports_nothing_of_the_graders_side() -> None:
    graph = import_graph()
    found = [f"{name} imports {target}" for name, targets in graph.items() if name.startswith("grader.worker")
             for target in targets if not target.startswith("grader.worker")]
    assert not found, "\n".join(found)
