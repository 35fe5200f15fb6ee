"""`grader show` and `grader status` read stored results only: they import neither torch nor SymPy, whatever kinds
the results are of (each kind's Details record lives apart from its check, grader.rubric.kinds)."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from grader.results import QuestionResult, Status, SubmissionResult
from grader.rubric.kinds import BUILT_IN
from tests.lms_helpers import write_class

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "tests" / "data" / "report"

# The commands run as the console script runs them, then say which heavy modules the process imported.
SCRIPT = """
import sys
from grader.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("IMPORTED", sorted(m for m in ("torch", "sympy") if m in sys.modules))
sys.exit(code)
"""

EXTRA = (  # kinds alice's stored result lacks, with details as their checks write them
    QuestionResult("q9.1", "a property", "property", 0.0, 2.0, Status.FAILED, "not sorted", "public",
                   {"case": "x=[3, 1]", "predicate": "the output is not sorted", "traceback": []}),
    QuestionResult("q9.2", "no autograd", "forbid", 0.0, 2.0, Status.FAILED, "uses autograd", "public",
                   {"violations": [{"cell": 1, "line": 2, "col": 4, "api": "torch.autograd.grad", "text": "g = grad(y)",
                                    "via": ["f"], "called": True, "note": ""}]}),
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    alice = SubmissionResult.from_dict(json.loads((REPORT / "alice.json").read_text()))
    alice = replace(alice, questions=alice.questions + EXTRA)
    assert {q.kind for q in alice.questions} == set(BUILT_IN)  # every kind's Details record is read
    return write_class(tmp_path_factory.mktemp("out"), [alice])


def run(*args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("command", [["show", "{out}", "alice"], ["status", "{out}"]])
def test_show_and_status_import_neither_torch_nor_sympy(out: Path, command: list[str]) -> None:
    code, printed = run(*(part.format(out=out) for part in command))
    assert code == 0, printed
    assert "IMPORTED []" in printed, printed


def test_show_explains_every_kind(out: Path) -> None:
    code, printed = run("show", str(out), "alice")
    assert code == 0, printed
    assert "the property check says: the output is not sorted" in printed  # property's record, read and explained
    assert "g = grad(y)" in printed  # forbid's
    assert "accuracy measured by the grader" in printed  # training's
