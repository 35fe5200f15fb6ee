"""Mutants of reference code and formulas (`grader.authoring.mutants`): the transformations, their ids, the allow-list,
and grading them through the engine in a warm worker."""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from grader.authoring.mutants import (
    AllowEntry,
    Grader,
    Mutant,
    MutantResult,
    Verdict,
    allow,
    formula_mutants,
    load_allow_list,
    mutate,
    plan,
    unused_entries,
)
from grader.errors import RubricError
from grader.rubric.schema import Rubric, load_rubric
from tests.conftest import DATA


def mutants_of(source: str, cap: int = 1000) -> dict[str, str]:
    """The change (`BinOp:Add->Sub`, the id without its target and statement) -> the mutated function's body
    (the first such mutant), for a one-function module."""
    tree = ast.parse(textwrap.dedent(source)).body[0]
    out: dict[str, str] = {}
    for m in mutate(tree, "f", "function", ("q1",), cap=cap):
        out.setdefault(m.id.split(":", 1)[1].split("@")[0], m.source.split("\n", 1)[1].strip())
    return out


@pytest.mark.parametrize(
    "body, label, mutated",
    [
        ("return a + b", "BinOp:Add->Sub", "return a - b"),
        ("return a + b", "BinOp:right-dropped", "return a"),
        ("return a + b", "BinOp:left-dropped", "return b"),
        ("return a @ b", "BinOp:MatMult->Mult", "return a * b"),
        ("return a + b", "Return:transposed", "return (a + b).T"),
        ("return a if a < b else b", "Compare:Lt->LtE", "return a if a <= b else b"),
        ("return a if a < b else b", "Compare:Lt->Gt", "return a if a > b else b"),
        ("return a * 2", "Constant:2+1", "return a * 3"),
        ("return a * 2", "Constant:2-1", "return a * 1"),
        ("return g(a, flag=False)", "Constant:False->True", "return g(a, flag=True)"),
        ("return a[1:b]", "Slice:lower+1", "return a[1 + 1:b]"),
        ("return a[1:b]", "Slice:upper-1", "return a[1:b - 1]"),
        ("return [a for _ in range(b)]", "Call:range-stop+1", "return [a for _ in range(b + 1)]"),
        ("return a.sum()", "Call:sum->mean", "return a.mean()"),
        ("return torch.sigmoid(a)", "Call:sigmoid-removed", "return a"),
        ("return a.relu()", "Call:relu-removed", "return a"),
        ("return a - a.max()", "BinOp:max-subtraction-dropped", "return a"),
        ("return -a", "UnaryOp:USub-dropped", "return a"),
        ("a += b\n    return a", "AugAssign:Add->Sub", "a -= b\n    return a"),
        ("a += b\n    return a", "AugAssign:dropped", "pass\n    return a"),
        ("a = a - b\n    return a", "Assign:in-place", "a -= b\n    return a"),
        ("a = b * a\n    return a", "Assign:in-place", "a *= b\n    return a"),
    ],
)
def test_each_transformation(body: str, label: str, mutated: str) -> None:
    got = mutants_of(f"def f(a, b):\n    {body}\n")
    assert got[label] == mutated, got


def test_a_reversal_step_is_dropped_not_shifted() -> None:
    got = mutants_of("def f(a):\n    return a[::-1]\n")
    assert got["UnaryOp:USub-dropped"] == "return a[::1]"
    assert not any(label.startswith("Constant") for label in got)


def test_identities_duplicates_and_what_does_not_compile_are_dropped() -> None:
    # `a + 0 + 0` gives the same text by several routes (either `+ 0` dropped): kept once; annotations and
    # defaults are not the function's computation and stay as they are.
    tree = ast.parse("def f(a: int = 3) -> int:\n    return a + 0 + 0\n").body[0]
    mutants = mutate(tree, "f", "function", ("q1",))
    sources = [m.source for m in mutants]
    assert len(sources) == len(set(sources)) and ast.unparse(tree) not in sources
    assert all("def f(a: int=3) -> int:" in s for s in sources)


def test_ids_are_stable_and_the_cap_is_a_deterministic_choice() -> None:
    source = "def f(a, b):\n    return (a + 1) * (b - 2) / (a + b) - a[1:b] + a.sum()\n"
    tree = ast.parse(source).body[0]
    everything = mutate(tree, "f", "function", ("q1",), cap=1000)
    first, second = mutate(tree, "f", "function", ("q1",), cap=5), mutate(ast.parse(source).body[0], "f", "function", ("q1",), cap=5)
    assert len(everything) > 5 and [m.id for m in first] == [m.id for m in second]
    assert len(first) == 5 and {m.id for m in first} <= {m.id for m in everything}
    assert len({m.id for m in everything}) == len(everything)


def test_a_mutant_shows_its_diff_and_digest() -> None:
    (m,) = [m for m in mutate(ast.parse("def f(a):\n    x = 1\n    return a + x\n").body[0], "f", "function", ("q1",))
            if m.id == "f:BinOp:Add->Sub@return a + x"]
    assert m.diff() == ["-    return a + x", "+    return a - x"]
    assert m.digest.startswith("src:") and len(m.digest) == 16


def test_formula_mutants_drop_floor_swap_symbols_and_shift() -> None:
    rubric = load_rubric(DATA.parent.parent / "rubrics" / "cnn-rnn.yaml")
    q = next(q for q in rubric.questions if q.id == "q1.1")
    by_label = {m.id.split(":", 1)[1].split("@")[0]: m.source for m in formula_mutants(q, cap=1000)}
    assert by_label["Call:floor-dropped"] == "(H + 2 * P - D * (K - 1) - 1) / S + 1"
    assert by_label["Call:floor->ceiling"].startswith("ceiling(")
    assert by_label["Name:H->K"].startswith("floor((K + 2 * P")
    assert by_label["whole+1"] == "(floor((H + 2 * P - D * (K - 1) - 1) / S) + 1) + 1"
    assert all(m.id.startswith("conv_output_size:") and m.questions == ("q1.1",) for m in formula_mutants(q))


# -- which questions read which function ------------------------------------------------------------------------

REFERENCE = '''
import torch

def helper(x):
    return x * 2

def first(x):
    return helper(x) + 1

def second(x):
    return first(x) - helper(x)

def cases(gen):
    return [{"x": torch.randn(3, generator=gen, dtype=torch.float64)}]
'''

RUBRIC = """
assignment: owners
reference: reference.py
questions:
  - {id: q1.1, title: first, points: 1, kind: function, answer: first, cases: cases}
  - {id: q1.2, title: second, points: 1, kind: function, answer: second, cases: cases}
"""


@pytest.fixture
def owners_rubric(tmp_path: Path) -> Rubric:
    (tmp_path / "reference.py").write_text(REFERENCE)
    (tmp_path / "rubric.yaml").write_text(RUBRIC)
    return load_rubric(tmp_path / "rubric.yaml")


def test_an_answer_belongs_to_its_question_a_helper_to_every_question_reaching_it(owners_rubric: Rubric) -> None:
    questions = {m.target: m.questions for m in plan(owners_rubric).mutants}
    assert questions == {"helper": ("q1.1", "q1.2"), "first": ("q1.1",), "second": ("q1.2",)}


# -- the allow-list ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("- {question: q9.9, mutant: first:BinOp#1:Add->Sub, reason: r}\n", "entry #1: question: no question q9.9"),
        ("- {question: q1.1, mutant: first:BinOp#1:Add->Sub}\n", "entry #1: reason: Field required"),
        ("- {question: q1.1, mutant: x, reason: r, why: extra}\n", "entry #1: why: Extra inputs"),
        ("question: q1.1\n", "a list of"),
        ("- [unclosed\n", "cannot read"),
    ],
)
def test_allow_list_errors_name_the_file_and_entry(owners_rubric: Rubric, tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text(text)
    with pytest.raises(RubricError, match="allow.yaml") as info:
        load_allow_list(path, owners_rubric)
    assert fragment in str(info.value)


def test_allow_list_matches_by_id_or_digest_and_reports_stale_entries(owners_rubric: Rubric) -> None:
    m = Mutant("first:BinOp#1:Add->Sub", "first", "function", "a", "b", ("q1.1",))
    survived = [MutantResult(m, "q1.1", Verdict.SURVIVED, 1, 1)]
    by_id = AllowEntry(question="q1.1", mutant=m.id, reason="equivalent because ...")
    by_digest = AllowEntry(question="q1.1", mutant=m.digest, reason="the same, by digest")
    stale = AllowEntry(question="q1.2", mutant=m.id, reason="another question")
    for entry in (by_id, by_digest):
        (result,) = allow(survived, [entry])
        assert (result.verdict, result.message) == (Verdict.ALLOWED, entry.reason)
    assert unused_entries(allow(survived, [by_id, stale]), [by_id, stale]) == [stale]
    killed = [MutantResult(m, "q1.1", Verdict.KILLED, 0, 1)]
    assert allow(killed, [by_id])[0].verdict is Verdict.KILLED  # an allow-list never hides a kill


# -- grading mutants through the engine --------------------------------------------------------------------------


def test_mutants_in_a_warm_worker_killed_survived_and_the_reference_put_back(mini_rubric: Rubric) -> None:
    original = "def scale(x, k):\n    return x * k"
    wrong = Mutant("scale:wrong", "scale", "function", original, "def scale(x, k):\n    return x * (k + 1)", ("q2.1",))
    same = Mutant("scale:same", "scale", "function", original, "def scale(x, k):\n    return k * x", ("q2.1", "q2.2"))
    broken = Mutant("scale:broken", "scale", "function", original, "def scale(x, k):\n    return x *", ("q2.1",))
    value = Mutant("answer:+1", "answer", "value", "answer = 42", "answer = 43", ("q1.1",))
    grader = Grader(mini_rubric)
    try:
        results = {(r.mutant.id, r.question): r for m in (wrong, same, broken, value, same) for r in grader.grade(m)}
    finally:
        grader.close()
    assert results["scale:wrong", "q2.1"].verdict is Verdict.KILLED
    assert "expected" in results["scale:wrong", "q2.1"].message
    assert results["scale:same", "q2.1"].verdict is results["scale:same", "q2.2"].verdict is Verdict.SURVIVED
    assert results["scale:broken", "q2.1"].verdict is Verdict.KILLED
    assert "failed when defined" in results["scale:broken", "q2.1"].message
    assert results["answer:+1", "q1.1"].verdict is Verdict.KILLED


def test_a_formula_mutant_proved_equal_is_equivalent_not_a_survivor() -> None:
    rubric = load_rubric(DATA.parent.parent / "rubrics" / "cnn-rnn.yaml")
    expected = "floor((H + 2*P - D*(K - 1) - 1)/S) + 1"
    same = Mutant("conv_output_size:same", "conv_output_size", "formula", expected, "1 + floor((H + 2*P - D*(K - 1) - 1)/S)", ("q1.1",))
    wrong = Mutant("conv_output_size:wrong", "conv_output_size", "formula", expected, "floor((H - K)/S) + 1", ("q1.1",))
    grader = Grader(rubric)
    (equivalent,), (killed,) = grader.grade(same), grader.grade(wrong)
    assert equivalent.verdict is Verdict.EQUIVALENT and killed.verdict is Verdict.KILLED
    assert "expected" in killed.message


# -- the swapped momentum, stable ids, siblings ------------------------------------------------------------------

MOMENTUM = '''
import torch

def momentum(v, g, m):
    return m * v + (1 - m) * g

def cases_07(gen):
    return [{"v": torch.randn(3, generator=gen, dtype=torch.float64), "g": torch.randn(3, generator=gen, dtype=torch.float64), "m": 0.7}]

def cases_05(gen):
    return [{"v": torch.randn(3, generator=gen, dtype=torch.float64), "g": torch.randn(3, generator=gen, dtype=torch.float64), "m": 0.5}]
'''

MOMENTUM_RUBRIC = """
assignment: momentum
reference: reference.py
limits: {cell_timeout: 10, call_timeout: 5}
questions:
  - {id: q1.1, title: momentum 0.7, points: 1, kind: function, answer: momentum, cases: cases_07}
  - {id: q1.2, title: momentum 0.5, points: 1, kind: function, answer: momentum, cases: cases_05}
"""

SWAPPED = "momentum:BinOp:factors-swapped@return m * v + (1 - m) * g"


def test_a_swapped_momentum_is_made_and_killed_by_0_7_not_by_0_5_and_no_survivor_of_its_sibling(tmp_path: Path) -> None:
    from grader.authoring.mutants import credit_siblings

    (tmp_path / "reference.py").write_text(MOMENTUM)
    (tmp_path / "rubric.yaml").write_text(MOMENTUM_RUBRIC)
    rubric = load_rubric(tmp_path / "rubric.yaml")
    (swapped,) = [m for m in plan(rubric).mutants if m.id == SWAPPED]
    assert swapped.diff() == ["-    return m * v + (1 - m) * g", "+    return (1 - m) * v + m * g"]
    assert swapped.questions == ("q1.1", "q1.2")
    grader = Grader(rubric)
    try:
        results = grader.grade(swapped)
    finally:
        grader.close()
    assert [(r.question, r.verdict) for r in results] == [("q1.1", Verdict.KILLED), ("q1.2", Verdict.SURVIVED)]
    credited = credit_siblings(results)
    assert [(r.question, r.verdict) for r in credited] == [("q1.1", Verdict.KILLED), ("q1.2", Verdict.SIBLING)]
    assert credited[1].message == "killed by q1.1, which checks the same function"


def test_a_constant_and_its_complement_and_a_dropped_one_minus() -> None:
    got = mutants_of("def f(v, g):\n    return 0.9 * v + (1 - 0.9) * g\n")
    assert got["Constant:0.9->1-0.9"] == "return (1 - 0.9) * v + (1 - 0.9) * g"
    assert got["BinOp:one-minus-dropped"] == "return 0.9 * v + 0.9 * g"
    assert mutants_of("def f(a, b):\n    return a @ b\n")["BinOp:operands-swapped"] == "return b @ a"
    assert mutants_of("def f(x, W):\n    return conv(x, W)\n")["Call:arguments-swapped"] == "return conv(W, x)"
    assert "Call:arguments-swapped" not in mutants_of("def f(x):\n    return torch.maximum(x, y).transpose(0, 1)\n")


def test_editing_a_line_above_a_site_keeps_its_id_and_the_allow_list_entry() -> None:
    before = "def momentum(v, g, m):\n    return m * v + (1 - m) * g\n"
    after = "def momentum(v, g, m):\n    v = v * 1.0 + 0 * g\n    scale = (1 - 0) * 2\n    return m * v + (1 - m) * g\n"
    old = {m.id: m for m in mutate(ast.parse(before).body[0], "momentum", "function", ("q1.1",), cap=1000)}
    new = {m.id: m for m in mutate(ast.parse(after).body[0], "momentum", "function", ("q1.1",), cap=1000)}
    entry = AllowEntry(question="q1.1", mutant=SWAPPED, reason="a test")
    assert SWAPPED in old and SWAPPED in new and entry.matches("q1.1", new[SWAPPED])
    assert old[SWAPPED].diff()[1:] == new[SWAPPED].diff()[1:]  # the same change, on the same line
    assert {i for i in old if i.endswith("@return m * v + (1 - m) * g")} <= set(new)  # every mutant of that line
