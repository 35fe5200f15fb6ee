"""Code similarity: every obfuscated copy of a shipped example pairs with its source (renamed variables,
reordered functions, added comments, all three), no two independently written correct solutions pair, and
the starter code every student was given pairs nobody.  `measure` gives the precision and recall in docs/ta-workspace.md."""
from __future__ import annotations

import ast
import builtins
import itertools
from pathlib import Path

import pytest

from grader.classroom.similarity import THRESHOLD, code_of, compare, fingerprint

ROOT = Path(__file__).resolve().parents[2]
INDEPENDENT = sorted((Path(__file__).resolve().parents[1] / "data" / "similarity").glob("*.py"))
# The shipped examples with code enough to judge (cnn-rnn/carol_broken's cells do not tokenize).  Three of
# layers' are one solution with planted bugs, so they pair as copies do; ben_own_cache is written apart.
ONE_SOLUTION = {"layers/ana_correct", "layers/cara_swapped_momentum", "layers/dev_wrong_backward"}
EXAMPLES = sorted(p for p in ROOT.glob("submissions/*/*") if p.suffix in (".py", ".ipynb") and p.stem != "carol_broken")


class _Rename(ast.NodeTransformer):
    """Every name the student defines (functions, arguments, variables) gets a new one; imports and builtins stay."""

    def __init__(self, tree: ast.AST) -> None:
        imported = {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in n.names}
        own = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        own |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        own |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
        self.names = {name: f"v{i}_{name[::-1]}x" for i, name in enumerate(sorted(own - imported - set(dir(builtins)) - {"self"}))}

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.names.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node


def renamed(code: str) -> str:
    tree = ast.parse(code)
    return ast.unparse(_Rename(tree).visit(tree))


def reordered(code: str) -> str:
    """Top-level functions and classes in the reverse order, everything else where it was."""
    tree = ast.parse(code)
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    slots = iter(reversed(defs))
    tree.body = [next(slots) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) else n for n in tree.body]
    return ast.unparse(tree)


def commented(code: str) -> str:
    return "\n".join(f"{line}  # step {i}: see the lecture" if line.strip() else "# (blank)" for i, line in enumerate(code.splitlines()))


OBFUSCATIONS = {"renamed": renamed, "reordered": reordered, "commented": commented,
                "all three": lambda code: commented(reordered(renamed(code)))}


def _code(path: Path) -> str:
    code = code_of(path)
    return ast.unparse(ast.parse(code))  # the notebook's cells as one module (they all parse)


def measure(threshold: float = THRESHOLD) -> tuple[float, float, int, int]:
    """(precision, recall, copies, independent pairs) over the shipped examples, their copies and the
    independent solutions: a true pair is a copy with its source."""
    sources = [fingerprint(f"{p.parent.name}/{p.stem}", _code(p)) for p in EXAMPLES]
    copies = [fingerprint(f"{s.name}~{kind}", make(s.code)) for s in sources for kind, make in OBFUSCATIONS.items()]
    independent = [fingerprint(p.stem, p.read_text(encoding="utf-8")) for p in INDEPENDENT]
    found = {(p.a, p.b) for p in compare([*sources, *copies, *independent], threshold=threshold)}

    def same(a: str, b: str) -> bool:
        a, b = a.split("~")[0], b.split("~")[0]
        return a == b or {a, b} <= ONE_SOLUTION

    everyone = [*sources, *copies, *independent]
    truth = {(a.name, b.name) for a, b in itertools.combinations(everyone, 2) if same(a.name, b.name)}
    hits = found & truth
    return len(hits) / max(len(found), 1), len(hits) / len(truth), len(copies), len(found - truth)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
@pytest.mark.parametrize("kind", OBFUSCATIONS)
def test_every_copy_pairs_with_its_source(path: Path, kind: str) -> None:
    code = _code(path)
    source, copy = fingerprint("source", code), fingerprint("copy", OBFUSCATIONS[kind](code))
    assert copy.code != code
    (pair,) = compare([source, copy])
    assert pair.score >= THRESHOLD and pair.matches


def test_independent_correct_solutions_do_not_pair() -> None:
    prints = [fingerprint(p.stem, p.read_text(encoding="utf-8")) for p in INDEPENDENT]
    assert len(prints) == 3 and compare(prints) == []


def test_independent_examples_of_one_assignment_do_not_pair() -> None:
    for folder in ("backprop-optim", "cnn-rnn", "deep-nn", "resnet-adversarial", "layers"):
        prints = [fingerprint(f"{folder}/{p.stem}", _code(p)) for p in EXAMPLES if p.parent.name == folder]
        assert all({p.a, p.b} <= ONE_SOLUTION for p in compare(prints)), folder


def test_the_starter_code_pairs_nobody() -> None:
    starter = (INDEPENDENT[0].read_text(encoding="utf-8"))
    ann = fingerprint("ann", starter + "\n\ndef extra(a):\n    return [i * a for i in range(10) if i % 3]\n")
    ben = fingerprint("ben", starter + "\n\nclass Other:\n    def go(self, q, r):\n        return {q: r, r: q}\n")
    assert [p.a for p in compare([ann, ben])] == ["ann"]
    assert compare([ann, ben], starter=[fingerprint("starter", starter)]) == []


def test_precision_and_recall_as_the_readme_gives_them() -> None:
    precision, recall, copies, false_pairs = measure()
    assert (copies, false_pairs) == (4 * len(EXAMPLES), 0)
    assert (round(precision, 2), round(recall, 2)) == (1.0, 1.0)


def test_grader_similarity_prints_a_line_per_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.similarity import similarity
    from tests.workspace_helpers import make_class

    out = tmp_path / "out"
    make_class(out, {"ann": ("a", "b"), "ben": ("c", "d"), "cat": ("e", "f")})
    original = INDEPENDENT[0].read_text(encoding="utf-8")
    (out / "ann.py").write_text(original, encoding="utf-8")
    (out / "ben.py").write_text(renamed(original), encoding="utf-8")
    (out / "cat.py").write_text(INDEPENDENT[1].read_text(encoding="utf-8"), encoding="utf-8")
    assert similarity(out) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ann\tben\t") and float(lines[0].split("\t")[2]) >= THRESHOLD
    assert lines[1].startswith("1 pair(s) at or above 0.5")
    assert (out / "similarity.json").is_file()



def test_serve_shows_a_pair_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("starlette", reason="the TA workspace needs the grade extra (starlette)")
    from starlette.testclient import TestClient

    from grader.workspace.app import make_app
    from grader.workspace.marking import Workspace
    from tests.workspace_helpers import make_class

    out = tmp_path / "out"
    make_class(out, {"ann": ("a", "b"), "ben": ("c", "d")})
    original = INDEPENDENT[2].read_text(encoding="utf-8")
    (out / "ann.py").write_text(original, encoding="utf-8")
    (out / "ben.py").write_text(commented(reordered(original)), encoding="utf-8")
    ws = Workspace(out)
    client = TestClient(make_app(ws, "t"))
    client.get("/?token=t")
    page = client.get("/similarity", params={"a": "ann", "b": "ben"})
    assert page.status_code == 200 and "ann and ben: 0.83" in page.text  # reordering by ast.unparse also added parentheses
    assert '<pre class="hit"><span class="no">   5</span> def relu(t):</pre>' in page.text
    ws.close()


def test_against_an_earlier_class_pairs_a_copy_of_last_year(tmp_path: Path) -> None:
    from grader.classroom.similarity import class_pairs
    from tests.workspace_helpers import make_class

    now, old = tmp_path / "hw3", tmp_path / "hw3-2025"
    make_class(now, {"ann": ("a", "b"), "ben": ("c", "d")})
    make_class(old, {"zed": ("a", "b")})
    (now / "ann.py").write_text(INDEPENDENT[0].read_text(encoding="utf-8"), encoding="utf-8")
    (now / "ben.py").write_text(INDEPENDENT[1].read_text(encoding="utf-8"), encoding="utf-8")
    (old / "zed.py").write_text(commented(renamed(INDEPENDENT[1].read_text(encoding="utf-8"))), encoding="utf-8")
    assert [(p.a, p.b) for p in class_pairs(now)] == []
    assert [(p.a, p.b) for p in class_pairs(now, against=[old])] == [("ben", "hw3-2025/zed")]
