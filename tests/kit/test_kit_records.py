"""A kit question's record is read as its kind's `kit_record` (grader.rubric.kinds); an unknown kind is an error."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from grader.kit.schema import ForbidData, KitQuestion, NotChecked, ValueData

QUESTION: dict[str, Any] = {"id": "q1.1", "title": "t", "points": 1.0}


@pytest.mark.parametrize(("check", "record"), [
    ({"kind": "forbid", "apis": ["autograd"]}, ForbidData),
    ({"kind": "value", "expected": 3, "rtol": 0.0, "atol": 0.0}, ValueData),
    ({"kind": "property", "reason": "checked only when graded"}, NotChecked),  # kits do not check property
])
def test_a_record_is_read_as_its_kinds_and_written_back_whole(check: dict[str, Any], record: type) -> None:
    q = KitQuestion.model_validate({**QUESTION, "check": check})
    assert type(q.check) is record
    assert q.serialize()["check"] == {**check, **({"function": None} if record is ForbidData else {})}


@pytest.mark.parametrize(("check", "message"), [
    ({"kind": "nope"}, "unknown check kind 'nope'"),
    ({"kind": "value", "rtol": 0.0, "atol": 0.0}, "Field required"),  # no expected value
    ({"kind": "manual"}, "Field required"),  # a NotChecked record without its reason
])
def test_a_bad_record_is_an_error(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KitQuestion.model_validate({**QUESTION, "check": check})
