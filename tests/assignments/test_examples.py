"""The shipped example submissions get exactly the scores they deserve."""
from __future__ import annotations

import pytest

from grader.execution import forkserver
from grader.execution.sandbox import BwrapLauncher
from grader.grading.submission import grade_submission
from tests.conftest import ROOT, needs_forkserver, scores

CNN = ROOT / "submissions" / "cnn-rnn"


@pytest.mark.parametrize(
    "name, total, per_question",
    [
        ("alice_correct.ipynb", 30, {}),
        # Forgets padding/dilation, uses autograd through a helper, ignores the stride in grad_x, takes the wrong
        # dimension, stops the gradient at one time step and has no Jacobian.
        ("bob_partial.py", 14, {"q1.1": 0, "q1.2": 1, "q1.3": 3, "q1.4": 0, "q1.5": 0, "q2.1": 0, "q2.2": 3,
                                "q2.3": 0, "q3.1": 1, "q3.2": 4, "q3.3": 0, "q4.1": 1, "q4.2": 1}),
        ("carol_broken.ipynb", 0, {}),
        ("mallory_tamper.py", 0, {}),
    ],
)
@pytest.mark.parametrize("kind", ["plain", pytest.param("forkserver", marks=needs_forkserver)])
def test_cnn_rnn_examples(cnn_rubric, name, total, per_question, kind):
    launcher = forkserver.start(BwrapLauncher()) if kind == "forkserver" else None
    result = grade_submission(cnn_rubric, CNN / name, launcher=launcher)
    got = scores(result)
    assert result.score == total, got
    for qid, points in per_question.items():
        assert got[qid] == points, (qid, got)


def test_examples_folder_holds_what_the_tests_name():
    assert sorted(p.name for p in CNN.iterdir() if p.suffix in (".py", ".ipynb")) == sorted(
        ["alice_correct.ipynb", "bob_partial.py", "carol_broken.ipynb", "mallory_tamper.py"]
    )


def test_bob_is_told_why(cnn_rubric):
    result = grade_submission(cnn_rubric, CNN / "bob_partial.py")
    messages = {q.qid: q.message for q in result.questions}
    assert "torch.autograd.grad" in messages["q1.4"] and "_vjp" in messages["q1.4"]
    assert "yours" in messages["q1.1"] and "expected" in messages["q1.1"]
    assert messages["q3.3"] == "`attention_rnn_jacobian` is not defined"


def test_the_reference_passes_its_own_rubric(cnn_rubric, tmp_path):
    # Authoring check: the reference, graded as a submission, earns every point (no autograd where banned).
    source = (ROOT / "reference" / "cnn_rnn.py").read_text()
    path = tmp_path / "reference_as_student.py"
    path.write_text(source)
    result = grade_submission(cnn_rubric, path)
    assert result.score == cnn_rubric.max_score, {q.qid: q.message for q in result.questions if q.score < q.max_score}
