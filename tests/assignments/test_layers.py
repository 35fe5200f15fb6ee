"""The `layers` assignment: forward passes returning `(out, cache)`, backward passes given the student's own
cache, batch normalisation's running statistics; example submissions scored exactly, the reference checked
against autograd, and the kit gives the points grading gives."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from grader.checks.support.cases import generate_cases
from grader.grading.submission import grade_submission
from grader.kit import build_kit, check_submission, read_kit, write_kit
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric, load_rubric

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "submissions" / "layers"
FULL = {"q1.1": 2, "q1.2": 3, "q2.1": 1, "q2.2": 1, "q3.1": 3, "q3.2": 3, "q4.1": 2, "q4.2": 2}

EXPECTED = [
    # submission, its score per question where it differs from full marks, total
    (EXAMPLES / "ana_correct.py", {}, 17.0),
    (EXAMPLES / "ben_own_cache.ipynb", {}, 17.0),  # dict caches, torch arithmetic: still every point
    (EXAMPLES / "cara_swapped_momentum.py", {"q3.1": 0}, 14.0),  # outputs right, running averages wrong
    # dx not reshaped (0), ReLU'(0) = 1 (0), the gradient to every tied maximum (3 of 4 cases: 1.5 of 2)
    (EXAMPLES / "dev_wrong_backward.py", {"q1.2": 0, "q2.2": 0, "q4.2": 1.5}, 12.5),
    (ROOT / "reference" / "layers.py", {}, 17.0),  # the reference, graded as a submission
]


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(ROOT / "rubrics" / "layers.yaml")


@pytest.fixture(scope="module")
def reference(rubric: Rubric) -> Any:
    return rubric.load_reference()


@pytest.fixture(scope="module")
def graded(rubric: Rubric) -> dict[str, SubmissionResult]:
    return {path.name: grade_submission(rubric, path) for path, _, _ in EXPECTED}


def test_examples_folder_holds_what_the_tests_name() -> None:
    names = {p.name for p in EXAMPLES.iterdir()} - {"HANDOUT.md", "expected.yaml"}
    assert names == {p.name for p, _, _ in EXPECTED if p.parent == EXAMPLES}


@pytest.mark.parametrize("path, lost, total", EXPECTED, ids=[p.name for p, _, _ in EXPECTED])
def test_example_scores(graded: dict[str, SubmissionResult], path: Path, lost: dict[str, float], total: float) -> None:
    result = graded[path.name]
    assert result.cell_failures == ()
    assert {q.qid: q.score for q in result.questions} == {**FULL, **lost}, {q.qid: q.message for q in result.questions}
    assert result.score == total


@pytest.mark.parametrize(
    "name, qid, message",
    [
        ("cara_swapped_momentum.py", "q3.1",
         "on inputs [first step: no running statistics yet] x=<8x3>, gamma=<3>, beta=<3>, bn_param={'mode': 'train'}: "
         "`bn_param['running_mean']` after the call: 3 of 3 values differ"),
        ("dev_wrong_backward.py", "q1.2",
         "on inputs [x of shape (3, 2, 3)] dout=<3x5>, cache=affine_forward(<3x2x3>, <6x5>, <5>)[1]: "
         "output 0 of `affine_backward`: expected shape (3, 2, 3), got shape (3, 6)"),
        ("dev_wrong_backward.py", "q2.2", "on inputs [exact zeros] dout=<3x4>, cache=relu_forward(<3x4>)[1]: 2 of 12 values differ"),
        ("dev_wrong_backward.py", "q4.2", "3 of 4 test inputs correct. on inputs [tied maxima] dout=<2x2x2x2>"),
    ],
)
def test_example_messages(graded: dict[str, SubmissionResult], name: str, qid: str, message: str) -> None:
    assert message in next(q for q in graded[name].questions if q.qid == qid).message


# -- the reference, independently ------------------------------------------------------------------------------


def _cases(reference: Any, name: str) -> list[dict[str, Any]]:
    return generate_cases(getattr(reference, name), 0, name)


def test_inputs_are_numpy_arrays_as_the_handout_says(reference: Any) -> None:
    for case in _cases(reference, "cases_affine_forward") + _cases(reference, "cases_batchnorm"):
        assert all(type(v) is np.ndarray for v in case.values() if not isinstance(v, dict))


def test_affine_and_batchnorm_backward_match_autograd(reference: Any) -> None:
    for case in _cases(reference, "cases_affine_forward"):
        x, w, b = (torch.tensor(case[k], requires_grad=True) for k in ("x", "w", "b"))
        out, cache = reference.affine_forward(case["x"], case["w"], case["b"])
        dout = np.random.default_rng(0).standard_normal(out.shape)
        (x.reshape(x.shape[0], -1) @ w + b).backward(torch.tensor(dout))
        for mine, auto in zip(reference.affine_backward(dout, cache), (x, w, b)):
            np.testing.assert_allclose(mine, auto.grad.numpy(), rtol=1e-10, atol=1e-12)
    for case in _cases(reference, "cases_batchnorm"):
        x, gamma, beta = (torch.tensor(case[k], requires_grad=True) for k in ("x", "gamma", "beta"))
        eps = case["bn_param"].get("eps", 1e-5)
        out, cache = reference.batchnorm_forward(case["x"], case["gamma"], case["beta"], dict(case["bn_param"]))
        auto = torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
        np.testing.assert_allclose(out, auto.detach().numpy(), rtol=1e-10, atol=1e-12)
        dout = np.random.default_rng(1).standard_normal(out.shape)
        auto.backward(torch.tensor(dout))
        for mine, leaf in zip(reference.batchnorm_backward(dout, cache), (x, gamma, beta)):
            np.testing.assert_allclose(mine, leaf.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_running_statistics_follow_the_handout(reference: Any) -> None:
    x = np.arange(6.0).reshape(3, 2)
    bn_param = {"mode": "train", "momentum": 0.8, "running_mean": np.ones(2), "running_var": np.zeros(2)}
    reference.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.8 * 1 + 0.2 * x.mean(0))
    np.testing.assert_allclose(bn_param["running_var"], 0.2 * x.var(0))  # the biased variance


def test_max_pool_matches_torch_and_sends_ties_to_the_first_maximum(reference: Any) -> None:
    for case in _cases(reference, "cases_max_pool"):
        pool = case["pool_param"]
        out, cache = reference.max_pool_forward(case["x"], pool)
        auto = torch.nn.functional.max_pool2d(torch.tensor(case["x"]), (pool["pool_height"], pool["pool_width"]), pool["stride"])
        np.testing.assert_array_equal(out, auto.numpy())
    window = np.array([[[[1.0, 2.0], [2.0, 0.0]]]])
    _, cache = reference.max_pool_forward(window, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = reference.max_pool_backward(np.ones((1, 1, 1, 1)), cache)
    assert dx.tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


def test_every_pool_case_that_should_have_ties_has_them(reference: Any) -> None:
    case = next(c for c in _cases(reference, "cases_max_pool") if c.label == "tied maxima")  # type: ignore[attr-defined]
    x = case["x"]
    windows = x.reshape(*x.shape[:2], 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)
    assert ((windows == windows.max(axis=1, keepdims=True)).sum(axis=1) > 1).mean() > 0.5


# -- the kit -------------------------------------------------------------------------------------------------------


def test_kit_points_equal_grading(rubric: Rubric, graded: dict[str, SubmissionResult], tmp_path: Path) -> None:
    path = tmp_path / "layers.kit.zip"
    write_kit(build_kit(rubric), path)
    kit = read_kit(path)
    assert all(q.checked for q in kit.questions)  # chained calls and post-conditions travel in the kit
    for example, _, _ in EXPECTED[:4]:
        report = check_submission(kit, path, example)
        got = {q.qid: q.score for q in report.result.questions}
        assert got == {q.qid: q.score for q in graded[example.name].questions}, example.name
