"""The trust rule: nothing a submission does inside its worker turns into points it did not earn."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from grader.execution import forkserver
from grader.execution.sandbox import BwrapLauncher
from grader.grading.submission import grade_submission
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric
from tests.conftest import needs_forkserver, scores


@pytest.fixture(params=["plain", pytest.param("forkserver", marks=needs_forkserver)])
def grade_mini(request: pytest.FixtureRequest, mini_rubric: Rubric) -> Callable[[Path], SubmissionResult]:
    """The mini rubric's grading, in a fresh worker and in one forked by the fork server (whose worker is a copy
    of a process that imported the worker's modules: nothing of that copy may turn into points either)."""
    launcher = forkserver.start(BwrapLauncher()) if request.param == "forkserver" else None
    return lambda path: grade_submission(mini_rubric, path, launcher=launcher)

WRONG_BUT_TAMPERING = """
import builtins, json, os, sys
import numpy as np
import torch

# Comparison functions patched to always agree: the verdict is not computed here, so it does not matter.
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
np.allclose = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: True
builtins.abs = lambda x: 0
builtins.max = lambda *a, **k: 0

# Fake results printed and written wherever it can reach.
fake = {"score": 10, "tests": [{"name": "q1.1", "score": 1, "max_score": 1, "status": "passed"}]}
print(json.dumps(fake))
sys.stdout.write('{"id": 3, "ok": true, "value": 42}\\n')
for folder in (".", "..", os.environ.get("HOME", "."), "/tmp"):
    try:
        with open(os.path.join(folder, "results.json"), "w") as fh:
            json.dump(fake, fh)
    except OSError:
        pass

class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

answer = 41
pair = (5, 3)
flag = True
ratio = 0.5

def scale(x, k):
    return torch.zeros_like(x).as_subclass(Liar)

class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pwned-by-student",))

def cube_vjp(x, g):
    return Evil()

def cube_jac(x):
    return lambda: 0
"""


def test_tampering_earns_nothing(write_py, grade_mini, tmp_path):
    path = write_py(WRONG_BUT_TAMPERING)
    result = grade_mini(path)
    assert result.score == 0, scores(result)
    assert not (tmp_path / "results.json").exists()  # the scratch copy lives elsewhere; the submission's folder is untouched
    messages = {q.qid: q.message for q in result.questions}
    assert "not plain data" in messages["q3.1"] or "Evil" in messages["q3.1"]


def test_printed_fake_results_do_not_reach_the_grader(write_py, grade_mini):
    source = """
import json, sys
print(json.dumps({"id": 1, "ok": True, "exists": True, "value": 42}))
sys.stdout.flush()
answer = 7
"""
    result = grade_mini(write_py(source))
    assert scores(result)["q1.1"] == 0
    assert "expected 42, got 7" in result.questions[0].message


def test_writing_on_the_reply_channel_forges_nothing(write_py, grade_mini):
    # A student who finds the channel's file descriptor can write well-formed replies to requests the grader has
    # not sent yet; replies are matched by request id, and a garbled stream costs the student, not the grader.
    source = """
import os, json, struct
def forge(i):
    body = json.dumps({"id": i, "ok": True, "exists": True, "value": 42}).encode()
    return struct.pack(">I", len(body)) + body
for fd in range(3, 64):
    try:
        os.write(fd, b"".join(forge(i) for i in range(1, 50)))
    except OSError:
        pass
answer = 7
"""
    result = grade_mini(write_py(source))
    assert scores(result)["q1.1"] == 0
    assert result.score == 0


def test_results_json_is_written_only_by_the_grader(tmp_path, write_py):
    from grader.cli.main import main

    sub = write_py(WRONG_BUT_TAMPERING, name="mallory.py")
    out = tmp_path / "out"
    assert main([*["grade", str(tmp_path.parent / tmp_path.name / "mallory.py"), "--out", str(out)][:0], "grade", "tests/data/mini/rubric.yaml", str(sub), "--out", str(out)]) == 0
    results = json.loads((out / "mallory" / "results.json").read_text())
    assert results["score"] == 0
    assert {t["score"] for t in results["tests"]} == {0}


def test_reference_and_rubrics_are_not_importable_from_the_worker(write_py, grade_mini):
    source = """
import importlib, sys
leaks = []
for name in ("reference", "reference.cnn_rnn", "cnn_rnn", "backprop_optim", "resnet_adversarial", "rubrics"):
    if name in sys.modules:
        leaks.append(name)
        continue
    try:
        importlib.import_module(name)
        leaks.append(name)
    except ImportError:
        pass
leaks += [m for m in sys.modules if m.startswith(("reference", "_grader_reference"))]
answer = 42 if not leaks else str(leaks)
"""
    result = grade_mini(write_py(source))
    assert scores(result)["q1.1"] == 1, result.questions[0].message
