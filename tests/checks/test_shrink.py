"""Every smaller input a report shows keeps the contract: the reference takes it, its arguments fit one another
(nested ones included) as the original case's did, and the student's own function still fails on it.

The shipped examples are graded once per assignment; each failing question's reproducer is then checked
against the reference, the handout's shape contract and, in a worker of its own, the student's function.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from grader.checks.function import Plan, reference_side
from grader.checks.gradient import expected_gradient, gradient_error
from grader.checks.property import Answer
from grader.checks.support.cases import generate_cases, label, rebuilder, sized, sizes_of
from grader.checks.support.compare import Tolerance, compare
from grader.checks.support.shrink import Budget, Contract, shrink, size_map
from grader.execution.session import WorkerSession
from grader.grading.submission import grade_submission
from grader.rubric.options import FunctionOptions, GradientOptions, PropertyOptions
from grader.rubric.schema import Question, Rubric, load_rubric
from grader.sources.load import load_submission

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ["cnn-rnn", "backprop-optim", "resnet-adversarial", "layers"]


@dataclass(frozen=True)
class Shown:
    """One failing question's reproducer, as a report shows it."""

    assignment: str
    submission: Path
    question: Question
    reproduce: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.assignment}/{self.submission.name}/{self.question.id}"


@functools.cache
def _rubric(assignment: str) -> Rubric:
    return load_rubric(ROOT / "rubrics" / f"{assignment}.yaml")


@functools.cache
def _reproducers(assignment: str) -> tuple[Shown, ...]:
    rubric = _rubric(assignment)
    shown = []
    for path in sorted((ROOT / "submissions" / assignment).iterdir()):
        if path.suffix not in (".py", ".ipynb"):
            continue
        result = grade_submission(rubric, path)
        for q in result.questions:
            repro = q.details.get("reproduce")
            if isinstance(repro, dict) and repro.get("inputs"):
                question = next(x for x in rubric.questions if x.id == q.qid)
                shown.append(Shown(assignment, path, question, repro))
    return tuple(shown)


def _values(inputs: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"torch": torch, "np": np}
    exec(inputs, namespace)  # noqa: S102 - the grader's own `name = value` text of our own examples
    return {k: v for k, v in namespace.items() if k not in ("torch", "np", "__builtins__")}


def _original(rubric: Rubric, question: Question, text: str) -> dict[str, Any]:
    opts = question.options
    seed = rubric.spec.seed if getattr(opts, "seed", None) is None else opts.seed  # type: ignore[attr-defined]
    cases = generate_cases(getattr(rubric.load_reference(), opts.cases), seed, question.id)  # type: ignore[attr-defined]
    return next(c for c in cases if label(c) == text)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_shown_reproducer_keeps_the_contract_and_fails_the_students_function(assignment: str) -> None:
    rubric = _rubric(assignment)
    reference = rubric.load_reference()
    for shown in _reproducers(assignment):
        if not shown.reproduce["inputs"].strip():
            continue  # a call without arguments: nothing to shrink
        q, opts = shown.question, shown.question.options
        values = _values(shown.reproduce["inputs"])
        original = _original(rubric, q, shown.reproduce["original"])
        assert list(values) == list(original), shown.name
        inputs_fit = sizes_of(original) or size_map(original, values) is not None
        assert inputs_fit, f"{shown.name}: sizes cut apart: {label(values)} from {label(original)}"
        answer = q.spec.answer or ""
        with WorkerSession(load_submission(shown.submission), rubric.limits) as session:
            session.run_cells()
            got = session.call(answer, list(values.values()), timeout=30)
            if isinstance(opts, PropertyOptions):
                assert got.ok, shown.name
                holds, _ = getattr(reference, opts.predicate)(values, Answer(got.value, session, 30))
                assert not holds, f"{shown.name}: the answer has the property on the shown input"
        if isinstance(opts, GradientOptions):
            forward = getattr(reference, opts.forward)
            out = forward(**{k: v for k, v in values.items() if k != opts.upstream})
            if opts.upstream is not None:
                assert out.shape == values[opts.upstream].shape, f"{shown.name}: upstream of another shape"
            want = expected_gradient(forward, values, opts, values[opts.wrt])
            assert got.ok, shown.name
            error, _ = gradient_error(want, got.value)
            assert error is None or error > opts.max_rel_error, f"{shown.name}: passes on the shown input"
        elif not isinstance(opts, PropertyOptions):
            assert isinstance(opts, FunctionOptions), shown.name
            fn = getattr(reference, opts.reference or answer)
            plan = Plan.of(opts)
            want, _ = reference_side(reference, fn, values, plan, shown.name)
            before, _ = reference_side(reference, fn, original, plan, shown.name)
            assert size_map(before, want, None if sizes_of(original) else size_map(original, values), free=False) is not None
            assert got.ok, shown.name
            if plan.outputs is None and not plan.after and not opts.pure:
                assert compare(want, got.value, Tolerance(opts.rtol, opts.atol)) is not None, f"{shown.name}: passes"
        assert shown.reproduce.get("problem") or not shown.reproduce["shrunk"], shown.name


def test_the_demos_reproducers_of_bob_fit_the_handout() -> None:
    """bob's q1.5 once showed 3 input channels against a 1-channel kernel, q2.3 a 1x1 `grad_H` with T = 2."""
    shown = {s.question.id: _values(s.reproduce["inputs"]) for s in _reproducers("cnn-rnn") if s.submission.stem == "bob_partial"}
    assert set(shown) == {"q1.5", "q2.3"}
    conv = shown["q1.5"]
    C, N = conv["x"].shape
    F, C_w, K = conv["W"].shape
    assert C_w == C and conv["grad_y"].shape == (F, (N - K) // conv["stride"] + 1)
    rnn = shown["q2.3"]
    T, n = rnn["x"].shape
    m = rnn["Wh"].shape[0]
    assert rnn["Wh"].shape == (m, m) and rnn["Wc"].shape == rnn["Wx"].shape == (m, n) and rnn["grad_H"].shape == (T, m)



def test_arrays_inside_dicts_and_lists_are_cut_with_the_rest() -> None:
    case = {"x": torch.ones(4, 3), "param": {"mean": torch.ones(3), "seen": [torch.ones(4)]}}
    result = shrink(case, lambda c: True, Budget(calls=100), Contract(reference=lambda c: c["x"].sum(0)))
    assert result.case["x"].shape == (1, 1)
    assert result.case["param"]["mean"].shape == (1,) and result.case["param"]["seen"][0].shape == (1,)


def test_a_candidate_the_reference_answers_in_another_shape_is_never_tried() -> None:
    # A conv-like output of N - K + 1 columns: cutting N alone changes an output size the inputs do not hold.
    def reference(c: dict[str, Any]) -> torch.Tensor:
        n, k = c["x"].shape[0], c["w"].shape[0]
        return torch.zeros(n - k + 1)

    tried: list[dict[str, Any]] = []

    def fails(c: dict[str, Any]) -> bool:
        tried.append(c)
        return True

    gen = torch.Generator().manual_seed(0)
    case = {"x": torch.randn(7, generator=gen, dtype=torch.float64), "w": torch.randn(3, generator=gen, dtype=torch.float64)}
    shrink(case, fails, Budget(calls=100), Contract(reference=reference))
    assert tried and all(c["x"].shape == (7,) and c["w"].shape == (3,) for c in tried)  # whole numbers only


def test_an_input_outside_the_functions_domain_is_never_tried() -> None:
    # A cross-entropy: probabilities rounded to whole numbers (0 or 1) make log(0); such a candidate is refused
    # where the original answer was finite, and the student never sees it as "the smallest failing input".
    def cost(c: dict[str, Any]) -> float:
        al, y = c["AL"], c["Y"]
        return float(-(y * np.log(al) + (1 - y) * np.log(1 - al)).sum() / y.shape[1])

    tried: list[dict[str, Any]] = []

    def fails(c: dict[str, Any]) -> bool:
        tried.append(c)
        return True

    case = {"AL": np.array([[0.9, 0.7, 0.2]]), "Y": np.array([[1.0, 0.0, 1.0]])}
    result = shrink(case, fails, Budget(calls=100), Contract(reference=cost))
    assert tried and all(np.all((c["AL"] > 0) & (c["AL"] < 1)) for c in tried)
    assert np.all((result.case["AL"] > 0) & (result.case["AL"] < 1))


def test_a_case_with_sizes_is_rebuilt_from_smaller_sizes_and_refused_sizes_are_skipped() -> None:
    def cases(gen: torch.Generator, sizes: dict[str, int] | None = None) -> list[dict[str, Any]]:
        chosen = [sizes] if sizes else [{"N": 5, "K": 3}]
        made = []
        for s in chosen:
            if s["K"] > s["N"]:
                raise ValueError("a kernel longer than its input")
            made.append(sized(s, {"x": torch.randn(s["N"], generator=gen), "w": torch.randn(s["K"], generator=gen)}))
        return made

    case = cases(torch.Generator().manual_seed(0))[0]
    result = shrink(case, lambda c: c["w"].shape[0] >= 2, Budget(calls=100), Contract(rebuild=rebuilder(cases, 0)))
    assert sizes_of(result.case) == {"N": 2, "K": 2}
    assert result.case["x"].shape == (2,) and result.case["w"].shape == (2,)


def test_a_generator_without_sizes_gives_no_rebuilder() -> None:
    assert rebuilder(lambda gen: [{"x": 1}], 0) is None


def test_a_missing_one_over_t_is_not_called_a_bias_or_a_batch_size() -> None:
    """Softmax with a temperature, the chain rule's 1/T forgotten: the values are T = 2 times the expected ones
    on a batch of 2, which once read as "a division by the batch size"; no named cause survives a batch of one."""
    data = ROOT / "tests" / "data" / "temperature"
    result = grade_submission(load_rubric(data / "rubric.yaml"), data / "forgot_t.py")
    (q,) = result.questions
    assert q.score == 0
    assert q.message.startswith("on inputs [T=2] z=<2x3>, T=2.0, grad_y=<2x3>: ")  # a gradient keeps its case's label
    shown = q.details["reproduce"]
    text = " ".join([q.message, str(q.details.get("diagnosis")), shown.get("problem", "")])
    assert "bias" not in text and "batch size" not in text and "Likely cause" not in text
    assert "diagnosis" not in q.details
    values = _values(shown["inputs"])
    assert values["z"].shape == values["grad_y"].shape  # a valid input of the forward pass
