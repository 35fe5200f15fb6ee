"""The registry of check kinds: a kind defined here (options, details, check) is registered with `register_kind`,
named by a rubric, and grades a submission; an unknown kind is still a rubric error naming the question and key."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.checks.base import CheckContext
from grader.errors import RubricError
from grader.explain import View, number
from grader.grading.submission import grade_submission
from grader.results import Outcome, Status
from grader.rubric.kinds import BUILT_IN, KindSpec, find_kind, kind_names, load, register_kind, unregister_kind
from grader.rubric.options import Options
from grader.rubric.schema import load_rubric

# -- the toy kind: a number compared with `expected`, full credit when equal, `near_credit` within `slack` --------


class ToyOptions(Options):
    expected: float
    slack: float = 0.0
    near_credit: float = 0.5


@dataclass(frozen=True)
class ToyDetails:
    """A toy question as graded: the student's number and the expected one."""

    got: float | None = None
    expected: float | None = None

    def serialize(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToyDetails:
        got, expected = number(data.get("got")), number(data.get("expected"))
        return cls(None if got is None else float(got), None if expected is None else float(expected))

    def explain(self, view: View) -> None:
        view.fact("your number", self.got)


class ToyCheck:
    Options = ToyOptions

    def run(self, ctx: CheckContext) -> Outcome:
        opts = ctx.question.options_as(ToyOptions)
        got = ctx.session.get(ctx.answer)
        if not got.exists or isinstance(got.value, bool) or not isinstance(got.value, (int, float)):
            return Outcome.error(f"`{ctx.answer}` is not a number")
        details = ToyDetails(float(got.value), opts.expected).serialize()
        if got.value == opts.expected:
            return Outcome.passed("right", **details)
        if abs(got.value - opts.expected) <= opts.slack:
            return Outcome(opts.near_credit, "close", details)
        return Outcome.failed("wrong", **details)


TOY = KindSpec("toy", f"{__name__}:ToyOptions", f"{__name__}:ToyCheck", f"{__name__}:ToyDetails", reads_answer=True)

RUBRIC = """\
assignment: toy
reference: reference.py
questions:
  - {id: q1.1, title: exact, points: 2, kind: toy, answer: a, expected: 3}
  - {id: q1.2, title: close, points: 3, kind: toy, answer: b, expected: 10, slack: 0.5}
  - {id: q1.3, title: wrong, points: 4, kind: toy, answer: c, expected: 1}
  - {id: q1.4, title: missing, points: 1, kind: toy, answer: d, expected: 1}
"""


@pytest.fixture
def toy() -> Iterator[KindSpec]:
    register_kind(TOY)
    yield TOY
    unregister_kind("toy")


def write(folder: Path, rubric: str) -> Path:
    (folder / "reference.py").write_text("a, b, c, d = 3, 10, 1, 1\n")
    (folder / "rubric.yaml").write_text(rubric)
    return folder / "rubric.yaml"


def test_a_registered_kind_loads_and_grades_with_the_exact_score(toy: KindSpec, tmp_path: Path) -> None:
    rubric = load_rubric(write(tmp_path, RUBRIC))
    assert [type(q.options) for q in rubric.questions] == [ToyOptions] * 4
    submission = tmp_path / "student.py"
    submission.write_text("a = 3\nb = 10.25\nc = 7\n")
    result = grade_submission(rubric, submission)
    scores = [(q.qid, q.kind, q.score, q.status) for q in result.questions]
    assert scores == [
        ("q1.1", "toy", 2.0, Status.PASSED), ("q1.2", "toy", 1.5, Status.PARTIAL),
        ("q1.3", "toy", 0.0, Status.FAILED), ("q1.4", "toy", 0.0, Status.ERROR),
    ]
    assert result.score == 3.5
    assert result.questions[1].details == {"got": 10.25, "expected": 10.0}


def test_an_unregistered_kind_is_gone(tmp_path: Path) -> None:
    register_kind(TOY)
    unregister_kind("toy")
    assert find_kind("toy") is None and "toy" not in kind_names()
    with pytest.raises(RubricError, match=r"unknown check kind 'toy'"):
        load_rubric(write(tmp_path, RUBRIC))


def test_unknown_kind_is_a_rubric_error_naming_the_question_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "assignment: x\nreference: reference.py\nquestions:\n"
                           "  - {id: q1.1, title: t, points: 1, kind: nope}\n")
    with pytest.raises(RubricError) as err:
        load_rubric(path)
    assert (err.value.question, err.value.key) == ("q1.1", "kind")
    assert f"unknown check kind 'nope' (known: {', '.join(sorted(BUILT_IN))})" in str(err.value)


def test_a_name_is_registered_once(toy: KindSpec) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_kind(TOY)
    register_kind(TOY, replace=True)  # a plugin that means to replace it says so
    with pytest.raises(ValueError, match="built in"):
        unregister_kind("function")
    assert find_kind("function") is not None


FIELDS_NAMING_CODE = ("options", "check", "details", "problems", "reference_output", "kit_record", "kit_build", "kit_check")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_entry_names_code_that_exists(name: str) -> None:
    from grader.kit.schema import CheckRecord

    spec = find_kind(name)
    assert spec is not None and spec.name == name
    for field in FIELDS_NAMING_CODE:
        target = getattr(spec, field)
        if target is not None:
            assert load(target) is not None, f"{name}.{field}: {target}"
    assert issubclass(load(spec.options), Options)
    assert load(spec.check).Options is load(spec.options)
    assert callable(load(spec.details).from_dict)
    if spec.kit_record is None:
        assert spec.kit_build is None and spec.kit_check is None and spec.kit_unchecked
    else:
        assert issubclass(load(spec.kit_record), CheckRecord) and spec.kit_build is not None
    assert (spec.mutate is None) == bool(spec.not_mutated)
