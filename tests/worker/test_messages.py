"""The worker protocol's records (grader/worker/messages.py): one per op, the same JSON on both sides."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

from grader.execution.replies import Reply, parse_reply
from grader.worker import codec, protocol
from grader.worker.main import Worker
from grader.worker.messages import (
    REQUESTS,
    BuildModel,
    Call,
    DescribeGroups,
    Exec,
    Get,
    Hello,
    Integrity,
    MalformedRequest,
    ModelDigest,
    Names,
    Pick,
    Release,
    ReplyFields,
    Request,
    TrainRun,
    parse_request,
)

EXAMPLES: list[Request] = [
    Hello(),
    Exec(index=3, source="x = 1", timeout=2.5, wall=7.5),
    Call(name="f", args=[1, codec.encode([2.0, "a"])], kwargs={"k": 3}, timeout=4, echo_args=True, seed=7, keep=True),
    Call(handle=2, timeout=1.0),
    Get(name="answer"),
    Names(),
    Integrity(),
    Release(handles=[1, 4]),
    Pick(handle=5, item=codec.encode(1), keep=True),
    BuildModel(spec=codec.encode({"kind": "mlp"})),
    ModelDigest(model=6),
    DescribeGroups(groups=7, model=8),
    TrainRun(factory="make", train="train", images=[], labels=[], epochs=2, seed=0, device="cpu", timeout=30),
]


@pytest.mark.parametrize("request_", EXAMPLES, ids=lambda r: f"{r.op}")
def test_a_request_reads_back_as_the_record_it_was(request_: Request) -> None:
    wire = json.loads(codec.dumps(request_.to_json()))
    assert wire["op"] == request_.op
    assert parse_request(wire) == request_


def test_fields_left_as_none_are_not_sent() -> None:
    assert Call(name="f", timeout=2).to_json() == {
        "op": "call", "name": "f", "args": [], "kwargs": {}, "timeout": 2, "echo_args": False, "keep": False,
    }
    assert Exec(index=1, source="pass", timeout=3).with_wall(9).to_json() == {
        "op": "exec", "index": 1, "source": "pass", "timeout": 3, "wall": 9,
    }


def test_every_op_the_worker_serves_has_a_record() -> None:
    assert set(Worker(-1, -1).ops) == set(REQUESTS)
    assert all(op == kind.op for op, kind in REQUESTS.items())


def test_the_worker_reply_keys_cover_the_graders_schema() -> None:
    assert set(Reply.model_fields) <= set(ReplyFields.__annotations__)


@pytest.mark.parametrize(
    "raw, problem",
    [
        ([1, 2], "a request is a JSON object"),
        ({"op": "launch_missiles"}, "unknown request"),
        ({"name": "answer"}, "unknown request"),
        ({"op": "get"}, "`get` request without `name`"),
        ({"op": "exec", "index": "1", "source": "x", "timeout": 1}, "`exec` request: `index` is not of type int"),
        ({"op": "exec", "index": True, "source": "x", "timeout": 1}, "`exec` request: `index` is not of type int"),
        ({"op": "call", "name": "f", "timeout": "soon"}, "`call` request: `timeout` is not of type float"),
        ({"op": "release", "handles": 3}, "`release` request: `handles` is not of type list[int]"),
    ],
)
def test_a_malformed_request_says_what_is_wrong(raw: Any, problem: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        parse_request(raw)
    assert str(caught.value) == problem


def _ask(rfd: int, wfd: int, message: dict[str, Any], request_id: int) -> Reply:
    nonce = bytes([request_id]) * protocol.NONCE_SIZE
    payload = json.dumps(message).encode()
    protocol.write_frame(wfd, protocol.frame(payload, request_id, nonce, protocol.REPLY_LIMIT))
    header = protocol.Header.unpack(protocol.read_exactly(rfd, protocol.HEADER.size))
    assert (header.request_id, header.nonce) == (request_id, nonce)
    return parse_reply(protocol.read_exactly(rfd, header.size))


def test_the_worker_answers_a_malformed_request_with_an_error_and_serves_the_next() -> None:
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    worker = Worker(req_r, resp_w)
    worker.namespace["answer"] = 42
    serving = threading.Thread(target=worker.serve, daemon=True)
    serving.start()
    try:
        bad = _ask(resp_r, req_w, {"op": "get"}, 1)
        assert (bad.ok, bad.error) == (False, "`get` request without `name`")
        unknown = _ask(resp_r, req_w, {"op": "format_disk"}, 2)
        assert (unknown.ok, unknown.error) == (False, "unknown request")
        good = _ask(resp_r, req_w, Get(name="answer").to_json(), 3)
        assert (good.ok, good.exists, codec.decode(good.value)) == (True, True, 42)
    finally:
        os.close(req_w)  # the worker's loop ends when the grader's side closes
        serving.join(10)
        for fd in (req_r, resp_r, resp_w):
            os.close(fd)
    assert not serving.is_alive()


def test_the_worker_imports_no_pydantic_and_nothing_of_the_graders_side() -> None:
    probe = (
        "import sys, grader.worker.main, grader.worker.extensions, grader.worker.messages\n"
        "print(sorted(m for m in sys.modules if m == 'pydantic' or m.startswith('grader.') and not m.startswith('grader.worker')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
