"""A session whose worker is this process (the kit's self-check), and a transport whose replies are malformed."""
from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from grader.execution.replies import Reply, parse_reply
from grader.execution.session import WorkerSession
from grader.execution.transport import InProcessTransport
from grader.rubric.schema import Limits
from grader.sources.load import Submission
from grader.worker import codec
from grader.worker.codec import Handle
from grader.worker.messages import Hello, Request

NOTEBOOK = Submission(Path("notebook.ipynb"), "notebook", ())


def _boom(x: int) -> int:
    raise ValueError(f"boom {x}")


def _spin() -> None:
    while True:
        pass


@pytest.fixture
def namespace() -> dict[str, Any]:
    weights = torch.arange(3.0)
    return {
        "answer": 42, "weights": weights, "double": lambda x: 2 * x, "boom": _boom, "spin": _spin,
        "scale": lambda t: t.mul_(10), "make": lambda: {"w": weights}, "__name__": "__main__",
    }


@pytest.fixture
def session(namespace: dict[str, Any]) -> Iterator[WorkerSession]:
    with WorkerSession(NOTEBOOK, Limits(), transport=InProcessTransport(namespace)) as s:
        yield s


def test_calls_and_names_are_answered_from_the_namespace(session: WorkerSession) -> None:
    assert session.device in ("cpu", "cuda")
    assert session.call("double", [21]).value == 42
    assert session.get("answer").value == 42
    assert not session.get("nothing").exists
    missing = session.call("nothing", [])
    assert (missing.ok, missing.missing, missing.error) == (False, True, "`nothing` is not defined")


def test_values_come_back_as_plain_data_as_from_a_worker(session: WorkerSession, namespace: dict[str, Any]) -> None:
    got = session.get("weights").value
    assert torch.equal(got, namespace["weights"]) and got is not namespace["weights"]
    result = session.call("scale", [torch.ones(2)], echo_args=True)
    assert result.value.tolist() == [10.0, 10.0] and result.args_after[0].tolist() == [10.0, 10.0]


def test_a_kept_value_is_called_by_its_handle(session: WorkerSession) -> None:
    kept = session.call("make", [], keep=True)
    assert isinstance(kept.value, Handle) and kept.value.type_name == "dict"
    assert session.call("double", [3]).value == 6  # other calls in between leave it kept


def test_the_students_failure_is_reported_as_a_worker_reports_it(session: WorkerSession) -> None:
    result = session.call("boom", [3])
    assert (result.ok, result.error) == (False, "ValueError: boom 3")
    assert result.traceback == ["ValueError: boom 3"]  # no frame of a `<cell …>`: the notebook's code is its own


def test_a_loop_meets_its_limit_and_the_notebooks_alarm_handler_comes_back(session: WorkerSession) -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        result = session.call("spin", [], timeout=0.3)
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert (result.ok, result.timed_out, result.limit) == (False, True, "wall")
    assert result.failure_message().startswith("your code ran past its wall-clock time limit")


def test_closing_leaves_the_notebook_as_it_was(namespace: dict[str, Any]) -> None:
    transport = InProcessTransport(namespace)
    with WorkerSession(NOTEBOOK, Limits(), transport=transport) as s:
        assert s.alive() and s.call("double", [1]).value == 2
    assert transport.alive() and namespace["answer"] == 42


class _Garbling:
    """A transport whose worker answers its hello, then only replies that fail the schema."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    def request(self, request: Request, deadline: float, reply_limit: int | None = None) -> Reply:
        if isinstance(request, Hello):
            return parse_reply(codec.dumps({"ok": True, "device": "cpu"}))
        return parse_reply(self.reply)

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "reply, problem",
    [
        (b'{"ok": "yes"}', "field `ok`: Input should be a valid boolean"),
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"ok": true, "duration": -1}', "field `duration`: Input should be greater than or equal to 0"),
    ],
)
def test_a_malformed_reply_is_a_clear_result_not_a_crash(reply: bytes, problem: str) -> None:
    with WorkerSession(NOTEBOOK, Limits(), transport=_Garbling(reply)) as s:
        called, read = s.call("f", [1]), s.get("x")
        assert s.alive()  # a malformed reply leaves the worker as it is
    assert not called.ok and called.error.startswith(f"the worker's reply was malformed: {problem}")
    assert read.unread and read.error.startswith(f"`x` could not be read: the worker's reply was malformed: {problem}")
