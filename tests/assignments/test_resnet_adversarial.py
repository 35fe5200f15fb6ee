"""The resnet-adversarial assignment end to end: rubric, reference and the example submissions' exact scores."""
from __future__ import annotations

from pathlib import Path

import pytest
import torchvision

from grader.grading.submission import grade_submission
from grader.results import Status, SubmissionResult
from grader.rubric.schema import Rubric, load_rubric

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "submissions" / "resnet-adversarial"


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(ROOT / "rubrics" / "resnet-adversarial.yaml")


def test_rubric_splits_30_points_into_26_auto_and_4_manual(rubric: Rubric) -> None:
    manual = sum(q.spec.points for q in rubric.questions if q.spec.kind == "manual")
    assert (rubric.max_score, manual) == (30, 4)


def test_reference_counts_match_torchvision(rubric: Rubric) -> None:
    ref = rubric.load_reference()
    model = torchvision.models.resnet18(weights=None, num_classes=1000)
    assert ref.resnet18_total_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows = ref.resnet18_layer_params()
    assert (len(rows), sum(n for _, n in rows)) == (41, ref.resnet18_total_params)
    assert rows[:2] == [("Conv2d", 9408), ("BatchNorm2d", 128)]


ALL = {"q1.1": 2, "q1.2": 1, "q1.3": 4, "q2.1": 1, "q2.2": 3, "q2.3": 2, "q3.1": 3, "q3.2": 3, "q3.3": 3, "q4.1": 2, "q5.1": 2, "q6.1": 0, "q6.2": 0}
EXPECTED = [
    ("alice_correct.ipynb", 26, {}),
    # name-based rule ('bn' in name) misses ResNet-18's downsample BatchNorms; other right answers (S*V, a reflection)
    ("bob_names.py", 22, {"q1.3": 0}),
    # is_convex True, (A, B) unchanged, x changed in place, per-tensor clipping, a transform that is not random
    ("carol_near_misses.ipynb", 16, {"q2.1": 0, "q2.3": 0, "q3.2": 0, "q4.1": 0, "q5.1": 0}),
    # frozen params in the groups, the smallest singular values, model left in train(), a float64 transform
    ("dave_side_effects.py", 14, {"q1.3": 0, "q2.2": 0, "q3.1": 0, "q5.1": 0}),
]


@pytest.fixture(scope="module")
def graded(rubric: Rubric) -> dict[str, SubmissionResult]:
    return {name: grade_submission(rubric, EXAMPLES / name) for name, _, _ in EXPECTED}


@pytest.mark.parametrize(("name", "total", "lost"), EXPECTED, ids=[row[0] for row in EXPECTED])
def test_example_scores(graded: dict[str, SubmissionResult], name: str, total: float, lost: dict[str, float]) -> None:
    result = graded[name]
    assert {q.qid: q.score for q in result.questions} == {**ALL, **lost}
    assert result.score == total
    assert not result.cell_failures


@pytest.mark.parametrize(("name", "answered"), [("alice_correct.ipynb", {"q6.1", "q6.2"}), ("carol_near_misses.ipynb", {"q6.1"}), ("bob_names.py", set())])
def test_free_text_answers_wait_for_a_ta(graded: dict[str, SubmissionResult], name: str, answered: set[str]) -> None:
    manual = [q for q in graded[name].questions if q.kind == "manual"]
    assert [q.status for q in manual] == [Status.PENDING, Status.PENDING]
    assert {q.qid for q in manual if q.details["answer"]} == answered
