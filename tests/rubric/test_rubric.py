"""One place validates rubrics; its errors name the file, the question and the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.errors import GraderError, RubricError
from grader.rubric.schema import load_rubric

ROOT = Path(__file__).resolve().parents[2]
GOOD_Q = "{id: q1.1, title: t, points: 1, kind: value, answer: a}"


@pytest.mark.parametrize(
    "text, question, key, fragment",
    [
        ("assignment: x\nreference: r.py\nquestions:\n  - {id: q1.1, title: t, points: 1, kind: nope}\n", "q1.1", "kind", "unknown check kind 'nope'"),
        ("assignment: x\nreference: r.py\nquestions:\n  - {id: q1.1, title: t, points: -1, kind: value}\n", "q1.1", "points", "greater than or equal"),
        ("assignment: x\nreference: r.py\nquestions:\n  - {id: q1.1, title: t, points: 1, kind: function, answer: f}\n", "q1.1", "cases", "Field required"),
        ("assignment: x\nreference: r.py\nquestions:\n  - {id: q1.1, title: t, points: 1, kind: value, answer: a, tolerance: 1}\n", "q1.1", "tolerance", "Extra inputs"),
        (f"assignment: x\nreference: r.py\nquestions:\n  - {GOOD_Q}\n  - {GOOD_Q}\n", None, "questions", "appears twice"),
        (f"assignment: x\nreference: r.py\ntotal: 5\nquestions:\n  - {GOOD_Q}\n", None, "total", "add up to 1"),
        (f"assignment: x\nreference: r.py\nlimits: {{cell_timeout: 0}}\nquestions:\n  - {GOOD_Q}\n", None, "limits.cell_timeout", "greater than 0"),
        (f"assignment: x\nquestions:\n  - {GOOD_Q}\n", None, "reference", "Field required"),
        ("assignment: x\nreference: r.py\nquestions:\n  - {id: 1.1, title: t, points: 1, kind: value}\n", "1.1", "id", "valid string"),
    ],
)
def test_rubric_errors_point_at_the_fault(tmp_path, text, question, key, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    err = info.value
    assert err.path == str(path)
    assert err.question == question
    assert err.key == key
    assert fragment in str(err)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "a: [\n"])
def test_not_a_rubric(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RubricError):
        load_rubric(path)


def test_missing_rubric_file(tmp_path):
    with pytest.raises(GraderError, match="cannot read rubric"):
        load_rubric(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "rubrics").glob("*.yaml")))
def test_shipped_rubrics_load_and_add_up(name):
    rubric = load_rubric(ROOT / "rubrics" / name)
    assert rubric.max_score == rubric.spec.total
    assert rubric.reference_path.is_file()


def test_loading_a_rubric_imports_neither_torch_nor_the_check_kinds() -> None:
    # The CLI loads and validates the rubric before anything else; the checks (and torch, ~2 s) are paid only
    # by the processes that grade.  A fresh interpreter, since this test process has long imported both.
    code = (
        "import sys\n"
        "from grader.rubric.schema import load_rubric\n"
        "for name in ('cnn-rnn', 'backprop-optim', 'layers', 'resnet-adversarial'):\n"
        "    load_rubric(f'rubrics/{name}.yaml')\n"
        "kinds = sorted(m for m in sys.modules if m.startswith('grader.checks.') and m not in "
        "('grader.checks.base', 'grader.rubric.options', 'grader.checks.formula', 'grader.formula.problem'))\n"
        "print('torch' in sys.modules, kinds)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "False []"
