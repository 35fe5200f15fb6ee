"""The `backprop-optim` assignment: example submissions scored exactly, the reference checked independently."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from grader.checks.function import side_effect
from grader.checks.support.cases import generate_cases
from grader.execution.session import CallResult
from grader.grading.submission import grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric, load_rubric

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "submissions" / "backprop-optim"
Graded = dict[str, tuple[SubmissionResult, float]]  # file name -> result, seconds it took
FULL = {"q1.1": 5, "q2.1": 2, "q2.2": 2, "q3.1": 1, "q3.2": 2, "q4.1": 1, "q4.2": 1, "q4.3": 2, "q5.1": 5}


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(ROOT / "rubrics" / "backprop-optim.yaml")


@pytest.fixture(scope="module")
def reference(rubric: Rubric) -> Any:
    return rubric.load_reference()


# -- example submissions ------------------------------------------------------------------------------------
EXPECTED = [
    # submission, its score per question where it differs from full marks, total
    (EXAMPLES / "dana_correct.ipynb", {}, 21.0),
    (EXAMPLES / "erin_wrong.py", {"q2.2": 0, "q3.1": 0, "q3.2": 0}, 16.0),
    (EXAMPLES / "frank_mutates.py", {"q1.1": 0, "q2.1": 0, "q2.2": 0}, 12.0),
    (EXAMPLES / "gina_linear.py", {"q5.1": 0}, 16.0),
    (ROOT / "reference" / "backprop_optim.py", {}, 21.0),  # the reference, graded as a submission
]


@pytest.fixture(scope="module")
def graded(rubric: Rubric) -> Graded:
    out = {}
    for path, _, _ in EXPECTED:
        out[path.name] = grade_submission(rubric, path, device="cpu")
    return out


@pytest.mark.parametrize("path, lost, total", EXPECTED, ids=[p.name for p, _, _ in EXPECTED])
def test_example_scores(graded: Graded, path: Path, lost: dict[str, float], total: float) -> None:
    result = graded[path.name]
    assert result.cell_failures == ()
    assert {q.qid: q.score for q in result.questions} == {**FULL, **lost}
    assert result.score == total


@pytest.mark.parametrize(
    "name, qid, message",
    [
        ("frank_mutates.py", "q2.1", "`theta0` was changed in place; the handout requires inputs to be left unchanged"),
        ("frank_mutates.py", "q2.2", "`grads[1]` was changed in place; the handout requires inputs to be left unchanged"),
        ("frank_mutates.py", "q1.1", "calls torch.autograd.grad"),
        ("erin_wrong.py", "q2.2", "item [0] of your result: 4 of 4 values differ"),
        ("erin_wrong.py", "q3.2", "expected 19, got 11"),
        ("gina_linear.py", "q5.1", "below 0.5, no credit"),
        ("dana_correct.ipynb", "q5.1", "at least 0.95, 100% of the credit"),
    ],
)
def test_example_messages(graded: Graded, name: str, qid: str, message: str) -> None:
    result = graded[name]
    assert message in next(q for q in result.questions if q.qid == qid).message


# -- the reference, checked by independent means ------------------------------------------------------------
def test_hand_backprop_matches_autograd(reference: Any) -> None:
    cases = generate_cases(reference.cases_mlp_backprop, 0, "q1.1")
    assert {len(c["A_list"]) for c in cases} >= {1, 2, 3, 4, 5}
    for case in cases:
        by_hand = reference.mlp_backprop(**case)
        by_autograd = reference.mlp_gradients(**case)
        for got, want in zip(by_hand[0] + by_hand[1], by_autograd[0] + by_autograd[1]):
            assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_momentum_forms_agree(reference: Any) -> None:
    # With a constant step the two forms are the same iteration: an independent check of both references.
    for case in generate_cases(reference.cases_momentum, 0, "q2"):
        one, two = reference.momentum_form1(**case), reference.momentum_form2(**case)
        assert len(one) == len(case["grads"])
        assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(one, two))


def _receptive_field_by_autograd(kernels: list[int], strides: list[int]) -> int:
    """The span of input positions that reach the first output unit of a real stack of 1-D convolutions.

    A span, not a count: with a stride above its kernel size a layer skips positions inside the span.
    """
    length = 1
    for k, s in zip(reversed(kernels), reversed(strides)):
        length = s * (length - 1) + k
    x = torch.zeros(1, 1, length + 3 * max(strides), dtype=torch.float64, requires_grad=True)
    y = x
    for k, s in zip(kernels, strides):
        y = torch.nn.functional.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s)
    (grad,) = torch.autograd.grad(y[0, 0, 0], x)
    reached = torch.nonzero(grad[0, 0]).reshape(-1)
    return int(reached.max() - reached.min()) + 1


def test_receptive_field_matches_a_real_stack(reference: Any) -> None:
    for case in generate_cases(reference.cases_receptive_field, 0, "q3.2"):
        assert reference.receptive_field(**case) == _receptive_field_by_autograd(case["kernels"], case["strides"])


def test_inception_params_count_real_modules(reference: Any) -> None:
    def count(*convs: tuple[int, int, int]) -> int:
        return sum(p.numel() for k, c_in, c_out in convs for p in torch.nn.Conv2d(c_in, c_out, k).parameters())

    model_1 = count((1, 256, 128), (3, 256, 192), (5, 256, 96))
    model_2 = count((1, 256, 128), (1, 256, 64), (3, 64, 192), (1, 256, 64), (5, 64, 96))
    assert reference.inception_params == (model_1, model_2) == (1089952, 330272)


# -- the function kind's `pure` option ------------------------------------------------------------------------
def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize(
    "sent, after, problem",
    [
        ({"theta0": _t(1, 2)}, [_t(1, 2)], None),
        ({"theta0": _t(1, 2)}, [_t(1, 2.5)], "`theta0` was changed in place"),
        ({"theta0": _t(1), "grads": [_t(1), _t(2), _t(3)]}, [_t(1), [_t(1), _t(2), _t(3)]], None),
        ({"theta0": _t(1), "grads": [_t(1), _t(2)]}, [_t(1), [_t(1), _t(0)]], "`grads[1]` was changed in place"),
        ({"grads": [_t(1)]}, [[_t(1), _t(1)]], "your list `grads` was appended to (1 item before the call, 2 after)"),
        ({"grads": [_t(1)], "alpha": 0.1}, [[_t(1)], 0.1], None),
        ({"theta0": _t(1, 2)}, [], "the inputs could not be read back after the call"),
    ],
)
def test_side_effects_are_named(sent: dict[str, Any], after: list[Any], problem: str | None) -> None:
    changed = side_effect(sent, sent, CallResult(True, args_after=after))
    assert (changed[1] if changed else None) == problem
