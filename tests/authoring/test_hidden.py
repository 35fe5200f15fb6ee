"""Hidden stays hidden: a hidden question's own seed stream, `grader kit`'s refusal, `grader validate`'s warning."""
from __future__ import annotations

from pathlib import Path

import pytest

from grader.authoring.hidden import Leak, question_data, shared_with_hidden
from grader.checks.base import question_seed
from grader.checks.support.cases import generate_cases
from grader.cli.kit import kit
from grader.errors import GraderError
from grader.kit.schema import read_kit
from grader.rubric.schema import load_rubric

DATA = Path(__file__).resolve().parents[1] / "data" / "hidden"


def test_a_hidden_question_draws_from_a_seed_stream_of_its_own() -> None:
    rubric = load_rubric(DATA / "shared_random.yaml")
    public, hidden = rubric.questions
    assert question_seed(rubric, public) == 0
    assert question_seed(rubric, hidden) not in (0, question_seed(rubric, hidden, 7))
    assert question_seed(rubric, hidden) == question_seed(load_rubric(DATA / "shared_random.yaml"), hidden)  # stable
    reference = rubric.load_reference()
    seen = [generate_cases(reference.cases_random, question_seed(rubric, q), q.id) for q in (public, hidden)]
    assert not any(a["x"].equal(b["x"]) for a in seen[0] for b in seen[1])


def test_a_kit_of_a_shared_generator_that_draws_from_its_seed_holds_nothing_hidden(tmp_path: Path) -> None:
    rubric = load_rubric(DATA / "shared_random.yaml")
    assert shared_with_hidden(rubric) == []
    assert kit(DATA / "shared_random.yaml", tmp_path / "kit.json") == 0
    (question,) = read_kit(tmp_path / "kit.json").questions
    hidden = question_data(rubric, rubric.questions[1], rubric.load_reference())
    assert len(hidden.arrays) == 6  # three inputs and three outputs: `kit` found none of them in the kit
    assert question.id == "q1.1"


def test_kit_refuses_to_write_a_hidden_questions_inputs(tmp_path: Path) -> None:
    with pytest.raises(GraderError) as caught:
        kit(DATA / "shared_fixed.yaml", tmp_path / "kit.json")
    assert str(caught.value) == (
        "no kit written: it would hold hidden test data (q1.1 (public) holds 4 test inputs or outputs of q1.2 "
        "(hidden)); give each hidden question a case generator of its own"
    )
    assert not (tmp_path / "kit.json").exists()


def test_validate_warns_when_a_public_question_would_show_a_hidden_ones_inputs() -> None:
    assert shared_with_hidden(load_rubric(DATA / "shared_fixed.yaml")) == [Leak("q1.2", "q1.1", 4)]
