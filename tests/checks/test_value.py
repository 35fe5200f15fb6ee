from __future__ import annotations

import pytest

from tests.conftest import scores


@pytest.mark.parametrize(
    "source, expected",
    [
        ("answer = 42\npair = (5, 2)\nflag = False\nratio = 0.25", {"q1.1": 1, "q1.2": 1, "q1.3": 1, "q1.4": 1}),
        ("answer = 42.0\npair = [5, 2]\nflag = 0\nratio = 1/4", {"q1.1": 1, "q1.2": 1, "q1.3": 0, "q1.4": 1}),
        ("import numpy as np\nanswer = np.int64(42)\npair = (np.int32(5), 2)\nflag = np.bool_(False)\nratio = np.float32(0.25)",
         {"q1.1": 1, "q1.2": 1, "q1.3": 1, "q1.4": 1}),
        ("answer = '42'\npair = (2, 5)\nflag = None\nratio = 0.2500001", {"q1.1": 0, "q1.2": 0, "q1.3": 0, "q1.4": 1}),
        ("answer = 43\npair = (5, 2, 1)\nflag = True\nratio = 0.26", {"q1.1": 0, "q1.2": 0, "q1.3": 0, "q1.4": 0}),
    ],
)
def test_value_answers(write_py, grade_mini, source, expected):
    got = scores(grade_mini(write_py(source)))
    assert {k: got[k] for k in expected} == expected
