"""`grader validate`: rubric checks before anything runs, known scores, mutation analysis, exit statuses; and
this project's own CI validating the three shipped rubrics."""
from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from grader.authoring.validate import check_rubric, forbid_entry_problem, read_examples
from grader.cli.main import main
from grader.cli.validate import validate
from grader.errors import GraderError, RubricError
from grader.rubric.schema import load_rubric
from tests.conftest import ROOT

REFERENCE = '''
import torch

answer = 42
formula = "n + 1"

def double(x):
    return 2 * x

def cases_double(gen):
    # Weak on purpose: zero in, zero out, whatever the factor.
    return [{"x": torch.zeros(3, dtype=torch.float64)}]

def cases_strong(gen):
    return [{"x": torch.randn(3, generator=gen, dtype=torch.float64)}]

def two_args(gen, extra):
    return [{"x": torch.zeros(1)}]

def takes_y(y):
    return y

def one_arg(inputs):
    return True
'''

HEADER = "assignment: t\nreference: reference.py\nlimits: {cell_timeout: 10, call_timeout: 5}\nquestions:\n"
GOOD = "  - {id: q1.1, title: double, points: 2, kind: function, answer: double, cases: cases_strong}\n"


def write(tmp_path: Path, questions: str, reference: str = REFERENCE) -> Path:
    (tmp_path / "reference.py").write_text(textwrap.dedent(reference))
    path = tmp_path / "rubric.yaml"
    path.write_text(HEADER + questions)
    return path


# -- stage 1: what grading would find only on a submission -----------------------------------------------------


@pytest.mark.parametrize(
    "question, key, fragment",
    [
        ("{id: q1.1, title: t, points: 1, kind: function, answer: double, cases: two_args}", "cases", "must take one argument"),
        ("{id: q1.1, title: t, points: 1, kind: function, answer: takes_y, cases: cases_strong}", "answer", "cannot be called as takes_y(x=...) on case 1"),
        ("{id: q1.1, title: t, points: 1, kind: function, answer: double, reference: answer, cases: cases_strong}", "reference", "is a int, not a function"),
        ("{id: q1.1, title: t, points: 1, kind: function, answer: double, cases: cases_strong, forbid: [torch.autogradd]}", "forbid", "names nothing importable"),
        ("{id: q1.1, title: t, points: 1, kind: function, answer: double, cases: cases_strong, forbid: ['torch..grad']}", "forbid", "is not a preset"),
        ("{id: q1.1, title: t, points: 1, kind: formula, expected: 'n + 1', symbols: {n: {min: 0}}, forbid: [autograd]}", "forbid", "would be ignored"),
        ("{id: q1.1, title: t, points: 1, kind: value}", "answer", "needs `answer`"),
        ("{id: q1.1, title: t, points: 1, kind: property, answer: double, cases: cases_strong, predicate: one_arg}", "predicate", "cannot be called as one_arg(inputs, answer)"),
        ("{id: q1.1, title: t, points: 1, kind: gradient, answer: double, cases: cases_strong, forward: double, wrt: w}", "wrt", "`w` is not an argument of the cases"),
        ("{id: q1.1, title: t, points: 1, kind: gradient, answer: double, cases: cases_strong, forward: double, wrt: x, upstream: g}", "upstream", "`g` is not an argument"),
    ],
)
def test_rubric_problems_are_found_before_anything_runs(tmp_path: Path, question: str, key: str, fragment: str) -> None:
    problems = check_rubric(load_rubric(write(tmp_path, f"  - {question}\n")))
    assert [(p.question, p.key) for p in problems][:1] == [("q1.1", key)], problems
    assert fragment in str(problems[0])


@pytest.mark.parametrize(
    "entry, ok",
    [("autograd", True), (".backward", True), ("torch.autograd.grad", True), ("torch.nn.functional.conv1d", True),
     ("torch.autogradd", False), ("nosuchmodule.x", False), ("torch..x", False), (".", False), ("a b", False)],
)
def test_forbid_entries_are_presets_attributes_or_importable_names(entry: str, ok: bool) -> None:
    assert (forbid_entry_problem(entry) is None) is ok


def test_a_bad_rubric_is_exit_2_with_every_problem_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "  - {id: q1.1, title: t, points: 1, kind: value}\n"
                           "  - {id: q1.2, title: t, points: 1, kind: function, answer: double, cases: two_args}\n")
    assert main(["validate", str(path), "--sandbox", "off"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("grader: error: ") for line in err)
    assert "q1.1: answer:" in err[1] and "q1.2: cases:" in err[0]


# -- stage 2: examples ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("ghost.py: {total: 1}\n", "ghost.py: no such file"),
        ("good.py: {total: 2, q9.9: 1}\n", "good.py: q9.9: no question q9.9"),
        ("good.py: {q1.1: 3}\n", "good.py: q1.1: 3 is outside 0..2"),
        ("good.py: {total: lots}\n", "good.py: points must be numbers"),
        ("[1, 2]\n", "expected {file:"),
    ],
)
def test_expected_yaml_errors_name_the_file_the_example_and_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    rubric = load_rubric(write(tmp_path, GOOD))
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "good.py").write_text("def double(x):\n    return 2 * x\n")
    (folder / "expected.yaml").write_text(text)
    with pytest.raises(RubricError, match="expected.yaml") as info:
        read_examples(folder, rubric)
    assert fragment in str(info.value)


def test_a_folder_without_expected_yaml_is_a_grader_error(tmp_path: Path) -> None:
    with pytest.raises(GraderError, match="no expected.yaml"):
        read_examples(tmp_path, load_rubric(write(tmp_path, GOOD)))


# -- the whole command on a small rubric -------------------------------------------------------------------------

WEAK = (
    "  - {id: q1.1, title: double, points: 2, kind: function, answer: double, cases: cases_double}\n"
    "  - {id: q1.2, title: the answer, points: 1, kind: value, answer: answer}\n"
    "  - {id: q1.3, title: n plus one, points: 1, kind: formula, answer: formula, expected: 'n + 1', symbols: {n: {min: 0}}}\n"
)


@pytest.fixture
def weak(tmp_path: Path) -> Path:
    path = write(tmp_path, WEAK)
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "half.py").write_text("def double(x):\n    return x + x\n\nanswer = 41\n")
    (folder / "expected.yaml").write_text("half.py: {total: 2, q1.1: 2, q1.2: 0, q1.3: 0}\n")
    return path


def run(path: Path, examples: Path | None = None, *, mutants: bool = True) -> tuple[int, str]:
    out = io.StringIO()
    code = validate(path, examples, jobs=1, mutants=mutants, stream=out)
    return code, out.getvalue()


def test_a_weak_question_exits_1_and_shows_its_survivors_as_diffs(weak: Path) -> None:
    code, out = run(weak, weak.parent / "examples")
    assert code == 1
    assert "reference: ok 4/4 points as a submission" in out and "blank: ok 0/4 points" in out
    assert "ok half.py: 2/4, as expected" in out
    assert "survivor of q1.1: double:Constant:2+1@return 2 * x" in out
    assert "-    return 2 * x" in out and "+    return 3 * x" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("q1.")}
    assert rows["q1.2"].split()[-1] == "100%" and rows["q1.3"].split()[-1] == "100%"
    assert "WEAK: survivors in q1.1 (exit 1)" in out


def test_an_allow_list_justifies_survivors_and_notes_stale_entries(weak: Path) -> None:
    survivors = [f"double:{change}@return 2 * x" for change in ("Constant:2+1", "Constant:2-1", "Return:transposed", "BinOp:Mult->Div")]
    entries = [{"question": "q1.1", "mutant": m, "reason": "zero in, zero out (a test of the tool)"} for m in survivors]
    entries.append({"question": "q1.2", "mutant": "answer:Constant:42+1@42", "reason": "stale: it is killed"})
    (weak.parent / "mutants").mkdir()
    (weak.parent / "mutants" / "rubric.yaml").write_text(json.dumps(entries))
    code, out = run(weak)
    assert code == 0, out
    assert "survivor of" not in out
    assert "q1.2 answer:Constant:42+1@42 justifies no survivor" in out
    assert "examples: none given" in out and "validate: OK (exit 0)" in out


def test_json_keeps_the_mutation_results_and_lists_the_survivors(weak: Path) -> None:
    out = io.StringIO()
    code = validate(weak, None, jobs=1, stream=out, as_json=True)
    data = json.loads(out.getvalue())
    assert code == 1 and data["ok"] is False
    mutation = data["mutation"]  # once `null` exactly when a mutant survived
    assert mutation is not None and mutation["ok"] is False
    survivors = {(s["question"], s["id"]) for s in mutation["survivors"]}
    assert ("q1.1", "double:Constant:2+1@return 2 * x") in survivors
    assert all(s["question"] == "q1.1" and s["diff"] and s["digest"].startswith("src:") for s in mutation["survivors"])
    q11 = next(q for q in mutation["questions"] if q["qid"] == "q1.1")
    assert q11["counts"]["survived"] == len(mutation["survivors"])


def test_a_wrong_example_score_exits_1(weak: Path) -> None:
    (weak.parent / "examples" / "expected.yaml").write_text("half.py: {total: 3, q1.2: 1}\n")
    code, out = run(weak, weak.parent / "examples", mutants=False)
    assert code == 1
    assert "FAIL half.py: 2/4: total 2 (expected 3); q1.2 0 (expected 1)" in out


def test_a_reference_that_loses_points_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - {id: q1.2, title: t, points: 1, kind: value, answer: answer, expected: 41}\n")
    code, out = run(path, mutants=False)
    assert code == 1
    assert "reference: FAIL 2/3 points as a submission" in out and "q1.2: 0/1" in out


# -- this project's CI: the shipped rubrics pass, every question's mutation score printed ----------------------------

SHIPPED = ["cnn-rnn", "backprop-optim", "resnet-adversarial", "layers", "deep-nn"]


@pytest.mark.parametrize(
    "assignment",
    # resnet-adversarial builds ResNet-18s for its mutants (about 80 s): validated by make test-long and make validate.
    [a if a != "resnet-adversarial" else pytest.param(a, marks=pytest.mark.long) for a in SHIPPED],
)
def test_shipped_rubrics_pass_validate(assignment: str) -> None:
    out = io.StringIO()
    code = validate(ROOT / "rubrics" / f"{assignment}.yaml", ROOT / "submissions" / assignment, jobs=2, stream=out)
    text = out.getvalue()
    assert code == 0, text
    rubric = load_rubric(ROOT / "rubrics" / f"{assignment}.yaml")
    rows = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0].startswith("q")}
    for q in rubric.questions:
        if q.spec.kind not in ("training", "manual"):
            assert rows[q.id].endswith("100%") or rows[q.id].endswith("no mutants"), rows[q.id]
