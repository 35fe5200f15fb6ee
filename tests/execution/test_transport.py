"""The grader side of the worker boundary: nothing a student's worker sends makes the grader fail, hang or grow.

Each vector is real student code run in a real worker: it patches the worker's reply encoder (it shares the
worker's process, so it can), writes on the reply pipe itself, stops the worker reading, prints without end,
or returns values the grader has to convert.  Every case asserts the exact result a student would see.
"""
from __future__ import annotations

import json
import shutil
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from grader.checks.support.compare import compare, describe
from grader.execution.replies import MalformedReply, parse_reply
from grader.execution.sandbox import PlainLauncher
from grader.execution.session import WorkerSession
from grader.grading.submission import grade_submission
from grader.results import Status, SubmissionResult
from grader.rubric.schema import Limits, Rubric, load_rubric
from grader.sources.load import load_submission
from grader.worker import codec, protocol
from tests.conftest import DATA, by_id, worker_process

LIMITS = Limits(cell_timeout=3, call_timeout=3, wall_seconds=120)
MB = 1 << 20


@pytest.fixture
def session(write_py: Callable[[str], Path]) -> Iterator[Callable[[str], WorkerSession]]:
    """A session on a small .py submission, its cells already run."""
    opened: list[WorkerSession] = []

    def start(source: str, limits: Limits = LIMITS) -> WorkerSession:
        s = WorkerSession(load_submission(write_py(source)), limits)
        opened.append(s)
        s.run_cells()
        return s

    yield start
    for s in opened:
        s.close()


def forging(encode_reply: str) -> str:
    """A submission whose `f` replaces the worker's reply encoder (for its own reply and all later ones)."""
    return f"""
import json
import grader.worker.main as worker_main
answer = 42
def f():
    worker_main._encode_reply = lambda reply, limit: {encode_reply}
    return 1
"""


# -- size and shape of replies -------------------------------------------------------------------------------------


def test_an_oversized_forged_reply_is_never_read(session):
    s = session(forging('b"[" * (30 * 2**20) + b"]" * (30 * 2**20)'))
    tracemalloc.start()
    try:
        result = s.call("f", timeout=20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.ok, result.failure_message()) == (False, "your function returned 60 MB; the limit for this question is 16 MB")
    assert peak < 8 * MB  # the 60 MB stayed in the pipe: the grader read the header only
    assert s.get("answer").value == 42  # a fresh worker answers the next request


def test_an_honest_value_over_the_bound_is_refused_by_the_worker_which_lives_on(session):
    s = session("import torch\nbig = torch.zeros(5 * 2**20)\ndef f():\n    return big\nanswer = 42")
    pid = worker_process(s).pid
    result = s.call("f", timeout=20)
    assert result.failure_message() == "your function returned 26.7 MB; the limit for this question is 16 MB"
    assert s.get("big").error == "`big` is 26.7 MB as data; the limit for this question is 16 MB"
    assert s.get("answer").value == 42 and worker_process(s).pid == pid


def test_a_bigger_bound_for_requests_that_return_big_values(session):
    s = session("import torch\ndef f(x):\n    return x + 1")
    result = s.call("f", [torch.zeros(4 * 2**20)], timeout=20)  # 16 MB in, 16 MB out: within 16 MB + twice the request
    assert result.ok and result.value.shape == (4 * 2**20,)
    small = s.call("f", [torch.zeros(4)], reply_limit=100).failure_message()  # an explicit bound wins
    assert small.startswith("your function returned ") and small.endswith(" bytes; the limit for this question is 100 bytes")


def test_forged_frames_for_other_requests_are_skipped_unparsed(session):
    # The student writes well-formed frames (right magic, any id, a wrong nonce) on the reply pipe, then answers.
    s = session("""
import os, struct, sys
def f():
    junk = b"[" * (8 * 2**20)
    for request_id in range(1, 20):
        os.write(int(sys.argv[2]), struct.pack(">4sIQ12sI", b"DLGW", len(junk), request_id, bytes(12), 0) + junk)
    return 7
""")
    tracemalloc.start()
    try:
        result = s.call("f", timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.ok, result.value) == (True, 7)
    assert peak < 8 * MB  # 150 MB of forged frames were dropped a chunk at a time


def test_a_deeply_nested_forged_reply_is_malformed_not_a_recursion_error(session):
    s = session(forging('b\'{"ok": true, "value": \' + b"[" * 50_000 + b"]" * 50_000 + b"}"'))
    result = s.call("f")
    assert result.failure_message() == "the worker's reply was malformed: it is nested deeper than 104 levels"


REPLACED_FIELDS = [
    ('{"ok": []}', "field `ok`: Input should be a valid boolean"),
    ('{"ok": false, "error": {"a": 1}}', "field `error`: Input should be a valid string"),
    ('{"ok": false, "error": "e", "traceback": "one line"}', "field `traceback`: Input should be a valid list"),
    ('{"ok": true, "value": 1, "duration": 1e300}', "field `duration`: Input should be less than or equal to 1000000000"),
    ('{"ok": true, "value": 1, "duration": 1' + "0" * 5000 + "}", "it holds an integer of 5001 digits"),
    ('{"ok": true, "value": 1, "args_after": {"x": 1}}', "field `args_after`: Input should be a valid list"),
    ('{"ok": true, "too_large": "big"}', "field `too_large`: Input should be a valid integer"),
    ('{"ok": false, "error": "' + "x" * 5000 + '"}', "field `error`: String should have at most 4000 characters"),
    ("[1, 2]", "not a JSON object"),
]


@pytest.mark.parametrize("raw, problem", REPLACED_FIELDS)
def test_reply_fields_of_other_types_are_a_clear_result(session, raw, problem):
    s = session(forging(f"{raw!r}.encode()"))
    result = s.call("f")
    assert (result.ok, result.failure_message()) == (False, f"the worker's reply was malformed: {problem}")
    assert s.get("answer").error == f"`answer` could not be read: the worker's reply was malformed: {problem}"


def test_a_surrogate_in_a_forged_reply_becomes_a_replacement_character(session):
    s = session(forging('b\'{"ok": false, "error": "bad \\\\ud800 value"}\''))
    assert s.call("f").failure_message() == "bad \ufffd value"


# -- deadlines on writing ------------------------------------------------------------------------------------------


def test_a_worker_that_stops_reading_cannot_block_the_grader(session):
    big_cell = "blob = '" + "x" * MB + "'"  # far more than a pipe holds: the write must wait, with a deadline
    source = f"""
import time
import grader.worker.main as worker_main
worker_main.read_message = lambda fd: time.sleep(10**6)
# %%
{big_cell}
# %%
answer = 42
"""
    s = session(source, Limits(cell_timeout=2, call_timeout=2, wall_seconds=120))
    failures = {f.index: (f.reason, f.message) for f in s.failures.values()}
    stopped = "your code stopped the worker from reading the grader's requests, so it was stopped"
    assert failures[1] == ("timeout", f"the cell could not be sent: {stopped}")
    assert failures[2] == ("timeout", "the cell ran past its wall-clock time limit (8 s; it waited, slept or left the "
                                      "computing to other threads or processes rather than using its 2 s of CPU time) "
                                      "and was stopped (run a second time, as a wall-clock limit can be a busy "
                                      "machine's doing)")


# -- values the grader converts ------------------------------------------------------------------------------------

WEIRD_VALUES = """
import sys
import torch
sys.set_int_max_str_digits(0)
answer = 10**5000
pair = (10**400, 2)
flag = 10**400
ratio = float("nan")
def scale(x, k):
    return torch.complex(x, x).to(torch.complex64)
def cube_vjp(x, g):
    return (3 * x**2 * g).to_sparse()
def cube_jac(x):
    raise ValueError("bad \\ud800 value")
"""


@pytest.fixture(scope="module")
def weird(mini_rubric: Rubric, tmp_path_factory: pytest.TempPathFactory) -> SubmissionResult:
    path = tmp_path_factory.mktemp("weird") / "weird.py"
    path.write_text(WEIRD_VALUES)
    return grade_submission(mini_rubric, path, launcher=PlainLauncher())


@pytest.mark.parametrize(
    "qid, message",
    [
        ("q1.1", "`answer` is wrong: expected the number 42, got an integer of about 5001 digits, too large to check"),
        ("q1.2", "`pair` is wrong: [0]: expected 5, got an integer of 401 digits"),
        ("q1.3", "`flag` is wrong: expected False, got an integer of 401 digits"),
        ("q1.4", "`ratio` is wrong: expected 0.25, got nan"),
        ("q2.1", "on inputs x=<3x4>, k=1: expected a tensor of shape (3, 4), got "
                 + "a complex tensor (complex64, shape (3, 4)): this question expects real values"),
        ("q3.1", "on inputs x=<1>, g=<1>: expected a tensor of shape (1,), got "
                 + "a sparse tensor (sparse_coo, shape (1,)): return a dense one (.to_dense())"),
        ("q3.2", "`cube_jac(x=<3>)` failed: ValueError: bad \ufffd value"),
    ],
)
def test_odd_values_are_wrong_answers_explained(weird, qid, message):
    q = by_id(weird, qid)
    assert (q.status, q.message) == (Status.FAILED, message)


def test_odd_values_serialise_as_utf8(weird):
    assert weird.score == 0
    json.dumps(weird.serialize(), ensure_ascii=False).encode("utf-8")


# -- output ----------------------------------------------------------------------------------------------------------

LOUD = """
import sys
for _ in range(70):
    print("x" * 2**20)
sys.stderr.write("y" * 2**20)
print("still printing")
""" + """
import torch
answer = 42
pair = (5, 2)
flag = False
ratio = 0.25
def scale(x, k):
    print("called", x.shape)
    return x * k
def cube_vjp(x, g):
    return 3 * x**2 * g
def cube_jac(x):
    return torch.diag(3 * x**2)
"""


@pytest.mark.parametrize("earlier_mb", [0, 63])  # 63: earlier workers' output already fills the log near its limit
def test_printing_without_end_never_raises_and_the_log_stays_bounded(mini_rubric, write_py, tmp_path, earlier_mb):
    from grader.worker.main import OUTPUT_CAP

    log = tmp_path / "student.stdout.txt"
    log.write_bytes(b"")
    if earlier_mb:
        with log.open("r+b") as fh:
            fh.truncate(earlier_mb * MB)
    result = grade_submission(mini_rubric, write_py(LOUD), log_path=log)
    assert result.score == 10 and result.cell_failures == ()
    size = log.stat().st_size
    assert size <= min(earlier_mb * MB + OUTPUT_CAP + 4096, mini_rubric.limits.file_size_mb * MB)
    assert b"[output truncated: only the first " in log.read_bytes()[-2 * OUTPUT_CAP:]


# -- the total time limit ------------------------------------------------------------------------------------------


def test_answers_after_the_total_time_limit_say_not_checked(tmp_path, write_py):
    folder = tmp_path / "rubric"
    shutil.copytree(DATA / "mini", folder)
    text = (folder / "rubric.yaml").read_text().replace("  call_timeout: 3\n", "  call_timeout: 3\n  wall_seconds: 8\n")
    (folder / "rubric.yaml").write_text(text)
    source = "answer = 42\n# %%\nimport time\n" + "# %%\ntime.sleep(2.5)\n" * 6
    result = grade_submission(load_rubric(folder / "rubric.yaml"), write_py(source))
    for q in result.questions:
        assert (q.qid, q.status, q.message) == (
            q.qid, Status.ERROR, "not checked: the submission used up its total time limit (8 s)"
        )


# -- the launcher's cleanup ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None] | None
    cleanup: Callable[[], None] | None


def test_the_launch_cleanup_runs_once_each_worker_is_reaped(write_py):
    reaped: list[bool] = []
    plain = PlainLauncher()

    class Launcher:
        name = "cleanup-test"
        forks = hides = sets_threads = False

        def launch(self, argv: list[str], scratch: Path, limits: Limits) -> Any:
            base = plain.launch(argv, scratch, limits)
            return _Launch(base.argv, base.env, base.cwd, base.preexec, lambda: reaped.append(worker_process(s).poll() is not None))

    source = "answer = 42\n# %%\nimport os\nos._exit(3)\n# %%\nratio = 0.25\n"
    with WorkerSession(load_submission(write_py(source)), LIMITS, Launcher()) as s:
        s.run_cells()
        assert s.get("ratio").value == 0.25
    assert reaped == [True, True]  # the worker the cell killed, then the replacement at close


# -- the validators, directly --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"[" * 200 + b"]" * 200, "it is nested deeper than 104 levels"),
        (b'{"ok": true, "value": "' + b"[" * 500 + b'"}', None),  # brackets inside a string do not nest
        (b'{"ok": true, "value": [' + b"[]," * 100_001 + b"[]]}", "it holds more than 100000 lists, tuples and dicts"),
        (b'{"ok": true, "value": [' + b"0," * 2_000_001 + b"0]}", "it holds more than 2000000 values"),
        (b'{"ok": true, "value": ' + b"9" * 1001 + b"}", "it holds an integer of 1001 digits"),
        (b'{"ok": true, "value": ' + b"9" * 5000 + b"}", "it holds an integer of 5000 digits"),
        (b"\xff\xfe", "not valid JSON ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"),
        (b'{"ok": tru', "not valid JSON (Expecting value: line 1 column 8 (char 7))"),
        (b'"just a string"', "not a JSON object"),
        (b'{"ok": 1}', "field `ok`: Input should be a valid boolean"),
        (b'{"ok": true, "reason": "pwned"}', "field `reason`: Input should be 'error', 'syntax' or 'timeout'"),
        (b'{"ok": true, "traceback": ["' + b"x" * 1001 + b'"]}', "field `traceback.0`: String should have at most 1000 characters"),
        (b'{"ok": true, "duration": -1}', "field `duration`: Input should be greater than or equal to 0"),
        (b'{"ok": true, "device": ["cuda"]}', "field `device`: Input should be a valid string"),
        (b'{"ok": true, "kwargs_after": {"x": 1}, "value": NaN}', None),
    ],
)
def test_parse_reply_bounds(data, problem):
    if problem is None:
        parse_reply(data)
        return
    with pytest.raises(MalformedReply) as info:
        parse_reply(data)
    assert str(info.value) == problem


def test_parse_reply_replaces_lone_surrogates_everywhere():
    reply = parse_reply(b'{"ok": false, "error": "a\\udc80b", "traceback": ["\\ud800"], "value": {"\\udfff": "\\ud83d\\ude00"}}')
    assert (reply.error, reply.traceback) == ("a\ufffdb", ["\ufffd"])
    assert reply.value == {"\ufffd": "\U0001f600"}  # a proper pair stays one character
    reply.model_dump_json().encode("utf-8")


def test_a_garbled_header_is_told_apart_from_a_forged_one():
    with pytest.raises(protocol.GarbledStream):
        protocol.Header.unpack(b"\x00" * protocol.HEADER.size)
    header = protocol.Header(10, 3, b"n" * protocol.NONCE_SIZE, 99)
    assert protocol.Header.unpack(header.pack()) == header


def test_reply_limits_by_op():
    assert protocol.reply_limit("exec", 10 * MB) == protocol.REPLY_LIMIT
    assert protocol.reply_limit("call", 10 * MB) == protocol.VALUE_REPLY_LIMIT + 20 * MB
    assert protocol.reply_limit("train_run", 0) == protocol.VALUE_REPLY_LIMIT


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"$bigint": "-" + "9" * 1000}, -int("9" * 1000)),
        ({"$bigint": "9" * 1001}, codec.Opaque("int", "an integer of about 1001 digits, too large to check", True)),
        ({"$bigint": {"digits": 10**12}}, codec.Opaque("int", "an integer of about 1000000000 digits, too large to check", True)),
        ({"$complex": {"kind": "number", "dtype": "complex", "shape": []}},
         codec.Opaque("complex", "a complex number: this question expects real values", True)),
        ({"$sparse": {"layout": "jagged", "shape": [2]}},
         codec.Opaque("sparse tensor", "a tensor with layout jagged (jagged, shape (2,)): return a dense one (.to_dense())", True)),
    ],
)
def test_decode_odd_but_valid(data, expected):
    assert codec.decode(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        {"$bigint": "١٢"},  # digits, but not ASCII ones: int() would take them, the codec does not
        {"$bigint": "12a"},
        {"$bigint": {"digits": "many"}},
        {"$complex": {"kind": "tensor", "dtype": 5, "shape": [3]}},
        {"$sparse": {"layout": "sparse_coo", "shape": [10**40]}},
        {"$tensor": {"dtype": "float32", "shape": [0, 10**40], "data": ""}},
        {"$tensor": {"dtype": "float32", "shape": [1], "data": "not base64!"}},
        {"$tensor": {"dtype": "float32", "shape": [2], "data": "AAAAAA=="}},
    ],
)
def test_decode_rejects_malformed_values_with_a_codec_error(data):
    with pytest.raises(codec.CodecError):
        codec.decode(data)


def test_encode_describes_what_is_not_a_real_dense_array():
    assert codec.decode(codec.encode(np.ones(3, dtype=np.complex128))).text == (
        "a complex array (complex128, shape (3,)): this question expects real values"
    )
    assert codec.decode(codec.encode(torch.ones(2, 2).to_sparse_csr())).text == (
        "a sparse tensor (sparse_csr, shape (2, 2)): return a dense one (.to_dense())"
    )
    assert codec.decode(codec.encode(1 + 2j)).text == "a complex number: this question expects real values"
    assert codec.decode(codec.encode(10**5000)) == codec.Opaque(
        "int", "an integer of about 5001 digits, too large to check", True
    )
    assert codec.decode(codec.encode(torch.ones(2, dtype=torch.bfloat16))).dtype == torch.float32


@pytest.mark.parametrize(
    "expected, got, message",
    [
        ((5, 2), (10**400, 2), "[0]: expected 5, got an integer of 401 digits"),
        (0.25, 10**400, "expected 0.25, got an integer of 401 digits"),
        (0.25, -(10**400), "expected 0.25, got an integer of 401 digits"),
        (5, float("inf"), "expected 5, got inf"),
        (5, float("nan"), "expected 5, got nan"),
        (0.5, float("inf"), "expected 0.5, got inf"),
        ("relu", torch.zeros(3), "expected 'relu', got tensor of shape (3,) (float32)"),
        (None, np.zeros(2), "expected None, got array of shape (2,) (float64)"),
        ({i: 0 for i in range(12)}, {}, "expected keys ['0', '1', '10', '11', '2', '3', '4', '5', '6', '7', … 2 more], got []"),
    ],
)
def test_compare_never_raises_on_student_values(expected, got, message):
    bad = compare(expected, got)
    assert bad is not None and bad.summary() == message


def test_describe_shows_a_diagnostic_as_it_is():
    assert describe(codec.Opaque("int", "an integer of about 9 digits, too large to check", True)) == (
        "an integer of about 9 digits, too large to check"
    )
    assert describe(codec.Opaque("Evil", "<Evil object>")) == "a Evil object (<Evil object>)"
