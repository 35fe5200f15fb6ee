"""The function kind's keys for layer-style assignments: a selected output (`output`), chained calls
(`output_of` in the cases) and post-conditions on arguments (`after`), each with right and wrong students."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from grader.checks.support.cases import as_numpy, case, grid, label, output_of, with_ties
from grader.errors import GraderError, RubricError
from grader.grading.submission import grade_submission
from grader.hints import library_hint
from grader.results import Status, SubmissionResult
from grader.rubric.options import FunctionOptions
from grader.rubric.schema import Rubric, load_rubric
from tests.conftest import DATA

# Every question of tests/data/chain answered right, with caches and dicts of the student's own making.
RIGHT = """
import torch

def square_forward(x):
    return x * x, {"input": x, "note": "my own cache"}

def square_backward(dout, cache):
    return 2 * cache["input"] * dout

def update_mean(x, state):
    state["mean"] = state["mean"] * 0.9 + x.mean(dim=0) * 0.1
    state["my_counter"] = 7          # keys the post-condition does not name are the student's business

def summary(x):
    return {"count": -1, "loss": (x ** 2).sum(), "extra": object()}

def scale_by(x, factors):
    return x * factors
"""

# One problem per question.
WRONG = """
import torch

def square_forward(x):
    return x ** 3, x

def square_backward(dout, cache):
    return cache * dout

def update_mean(x, state):
    state["mean"] = state["mean"] * 0.1 + x.mean(dim=0) * 0.9

def summary(x):
    return {"total": (x ** 2).sum()}

def scale_by(x, factors):
    return x + factors
"""


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(DATA / "chain" / "rubric.yaml")


@pytest.fixture
def grade(rubric: Rubric, write_py: Callable[[str], Path]) -> Callable[[str], dict[str, Any]]:
    def run(source: str) -> dict[str, Any]:
        result: SubmissionResult = grade_submission(rubric, write_py(source))
        return {q.qid: q for q in result.questions}

    return run


def test_right_answers_with_their_own_caches_get_every_point(grade: Callable[[str], dict[str, Any]]) -> None:
    got = grade(RIGHT)
    assert {qid: q.score for qid, q in got.items()} == {"q1.1": 1, "q1.2": 1, "q1.3": 1, "q1.4": 1, "q1.5": 1}, {
        qid: q.message for qid, q in got.items()
    }


def test_wrong_answers_are_named_in_the_students_terms(grade: Callable[[str], dict[str, Any]]) -> None:
    got = grade(WRONG)
    assert all(q.score == 0 for q in got.values())
    assert got["q1.1"].message.startswith("on inputs [3x4] x=<3x4>: output 0 of `square_forward`: ")
    assert got["q1.1"].details["output"] == 0
    # The backward got the student's own (correct) cache; its formula is what is wrong.
    assert "on inputs [3x4] dout=<3x4>, cache=square_forward(<3x4>)[1]: 12 of 12 values differ" in got["q1.2"].message
    assert "`state['mean']` after the call: 3 of 3 values differ" in got["q1.3"].message
    assert "`summary` returned a dict without the key 'loss'" in got["q1.4"].message
    assert "values differ" in got["q1.5"].message


@pytest.mark.parametrize(
    "forward, qid, fragment",
    [
        # A forward that returns no tuple: `output: 0` cannot be read, and the chain cannot pick the cache.
        ("def square_forward(x):\n    return x * x", "q1.1", "`square_forward` returned a Tensor, not a tuple, so it has no output 0"),
        ("def square_forward(x):\n    return x * x", "q1.2", "has no output 1; `square_backward` is checked on what your `square_forward` returns"),
        ("def square_forward(x):\n    return (x * x,)", "q1.1", "correct"),
        ("def square_forward(x):\n    return (x * x,)", "q1.2", "returned a tuple of 1 items, so it has no output 1"),
        ("def square_forward(x):\n    raise ValueError('later')", "q1.2", "`square_forward(<3x4>)[1]` failed, so `square_backward` could not be checked: ValueError: later"),
    ],
)
def test_a_broken_forward_is_named_for_the_backward(
    grade: Callable[[str], dict[str, Any]], forward: str, qid: str, fragment: str
) -> None:
    backward = "def square_backward(dout, cache):\n    return 2 * cache * dout\n"
    q = grade(forward + "\n" + backward)[qid]
    assert fragment in q.message


def test_a_missing_forward_is_an_error_of_the_backward(grade: Callable[[str], dict[str, Any]]) -> None:
    q = grade("def square_backward(dout, cache):\n    return 2 * cache * dout\n")["q1.2"]
    assert q.status == Status.ERROR
    assert q.message == "`square_forward` is not defined; `square_backward` is checked on what your `square_forward` returns (its input `cache`)"


def test_post_conditions_and_pure_together(grade: Callable[[str], dict[str, Any]]) -> None:
    no_key = grade("def update_mean(x, state):\n    state['avg'] = 0.9 * state.pop('mean') + 0.1 * x.mean(0)\n")["q1.3"]
    assert "`state` has no key 'mean' after the call" in no_key.message
    touches_x = "def update_mean(x, state):\n    state['mean'] = 0.9 * state['mean'] + 0.1 * x.mean(0)\n    x.zero_()\n"
    changed = grade(touches_x)["q1.3"]
    assert changed.score == 0
    assert "`x` was changed in place; the handout requires inputs to be left unchanged" in changed.message
    # Rebinding instead of updating in place leaves the caller's dict as it was: the post-condition says so.
    rebinds = "def update_mean(x, state):\n    state = {'mean': 0.9 * state['mean'] + 0.1 * x.mean(0)}\n"
    assert "`state['mean']` after the call: 3 of 3 values differ" in grade(rebinds)["q1.3"].message


def test_a_numpy_2_failure_carries_a_hint(grade: Callable[[str], dict[str, Any]]) -> None:
    source = RIGHT.replace(
        "    return 2 * cache[\"input\"] * dout",
        "    import numpy as np\n    n = int(np.array([2]))\n    return n * cache[\"input\"] * dout",
    )
    message = grade(source)["q1.2"].message
    assert "TypeError: only 0-dimensional arrays can be converted to Python scalars" in message
    assert message.splitlines()[-1].startswith("hint: if that array has one element, this is a NumPy 2 change")


@pytest.mark.parametrize(
    "error, fragment",
    [
        ("TypeError: only 0-dimensional arrays can be converted to Python scalars", "NumPy 2"),
        ("AttributeError: module 'numpy' has no attribute 'float'.", "NumPy 1.24"),
        ("AttributeError: module 'numpy' has no attribute 'asscalar'", "a.item()"),
        ("ValueError: operands could not be broadcast together", None),
    ],
)
def test_library_hints(error: str, fragment: str | None) -> None:
    hint = library_hint(error)
    assert (hint is None) if fragment is None else (hint is not None and fragment in hint)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"output": True}, "not true/false"),
        ({"output": []}, "selects nothing"),
        ({"after": {"state": [True]}}, "not true/false"),
    ],
)
def test_selectors_are_validated(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        FunctionOptions.model_validate({"cases": "c", **options})


def test_a_post_condition_on_an_argument_the_cases_lack_is_the_authors_error(tmp_path: Path) -> None:
    text = (DATA / "chain" / "rubric.yaml").read_text().replace("after: {state: mean}", "after: {stats: mean}")
    (tmp_path / "reference.py").write_text((DATA / "chain" / "reference.py").read_text())
    (tmp_path / "rubric.yaml").write_text(text)
    student = tmp_path / "s.py"
    student.write_text(RIGHT)
    result = grade_submission(load_rubric(tmp_path / "rubric.yaml"), student)
    q = next(q for q in result.questions if q.qid == "q1.3")
    assert q.status == Status.GRADER_ERROR


def test_the_rubric_names_a_bad_selector(tmp_path: Path) -> None:
    (tmp_path / "rubric.yaml").write_text(
        "assignment: x\nreference: r.py\nquestions:\n"
        "  - {id: q1.1, title: t, points: 1, kind: function, answer: f, cases: c, output: {a: 1}}\n"
    )
    with pytest.raises(RubricError, match="q1.1.*output"):
        load_rubric(tmp_path / "rubric.yaml")


# -- helpers for case generators --------------------------------------------------------------------------------


def test_case_labels_and_chained_arguments_in_messages() -> None:
    x = torch.zeros(2, 3, dtype=torch.float64)
    labelled = case("tied maxima", x=x, param={"mode": "train", "running_mean": torch.zeros(3)})
    assert label(labelled) == "[tied maxima] x=<2x3>, param={'mode': 'train', 'running_mean': <3>}"
    assert label({"cache": output_of("f", x, output_of("g", x), k=2, item=1)}) == "cache=f(<2x3>, g(<2x3>), k=2)[1]"
    # A parameter named `label` or `item` of the student's function is still a plain argument.
    assert dict(case("x", label=1)) == {"label": 1}


def test_generator_helpers() -> None:
    ties = with_ties(torch.Generator().manual_seed(0), 4, 4, levels=2)
    assert ties.dtype == torch.float64 and set(ties.unique().tolist()) <= {0.0, 1.0}
    assert grid(pad=[0, 1], stride=[1, 2]) == [
        {"pad": 0, "stride": 1}, {"pad": 0, "stride": 2}, {"pad": 1, "stride": 1}, {"pad": 1, "stride": 2},
    ]
    made = as_numpy([case("n", x=torch.ones(2), p={"w": torch.ones(1)}, t=(torch.ones(1),))])
    import numpy as np

    assert type(made[0]["x"]) is np.ndarray and type(made[0]["p"]["w"]) is np.ndarray and made[0].label == "n"
    assert type(made[0]["t"]) is tuple


def test_output_of_without_a_reference_function_is_the_authors_error() -> None:
    from types import ModuleType

    from grader.checks.function import Plan, reference_side

    with pytest.raises(GraderError, match="no function 'nowhere'"):
        reference_side(ModuleType("r"), lambda c: c, {"c": output_of("nowhere")}, Plan(), "r.yaml: q1")


def test_worker_ops_pick_and_release_kept_values() -> None:
    from grader.worker import codec
    from grader.worker.main import Worker
    from grader.worker.messages import Pick, Release

    worker = Worker(-1, -1)
    handle = worker.keep((torch.ones(2), {"cache": [1, 2]}))
    picked = codec.decode(worker.answer(Pick(handle=handle.id, item=codec.encode(1), keep=True))["value"])
    inner = picked["item"]
    assert isinstance(inner, codec.Handle) and worker.handles[inner.id] == {"cache": [1, 2]}
    read = codec.decode(worker.answer(Pick(handle=inner.id, item=codec.encode("cache")))["value"])
    assert read == {"found": True, "item": [1, 2]}
    missing = codec.decode(worker.answer(Pick(handle=handle.id, item=codec.encode(2)))["value"])
    assert missing == {"found": False, "type": "tuple", "size": 2}
    worker.answer(Release(handles=[handle.id, inner.id]))
    assert worker.handles[handle.id] is None and worker.keep(0).id == 3  # ids are never reused
