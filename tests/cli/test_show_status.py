from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from grader.classroom.classbook import find_result, read_results
from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.main import main
from grader.cli.show import show
from grader.cli.status import classify, status
from grader.errors import GraderError
from grader.sources.discover import Entry
from grader.sources.roster import Identity
from tests.lms_helpers import ERR, GERR, PEND, TIMEOUT, F, P, result, write_class


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = write_class(tmp_path / "out", [
        result("alice", "a.py", {"q1": (5, P), "q2": (5, P)}),
        result("bob", "b.py", {"q1": (0, F), "q2": (0, PEND)}),
        result("carol", "c.py", {"q1": (0, ERR), "q2": (0, ERR)}, load_error="c.py is empty"),
        result("dan", "d.py", {"q1": (5, P), "q2": (0, ERR)}, cell_failures=(TIMEOUT,)),
        result("eve", "e.py", {"q1": (5, P), "q2": (0, GERR)}),
    ])
    with Gradebook(folder / FILENAME) as book:
        book.record_entries({"alice": Entry(Path("a.py"), (Path("a.py"),), Identity("s001", "Alice Smith", "s001"))})
    return folder


def test_status_counts_and_lists(out: Path) -> None:
    s = classify(read_results(out))
    assert s.total == 5
    assert s.graded == ("alice", "dan")  # dan's timeout is noted, but nothing waits for anyone
    assert s.pending == (("bob", "q2"),)
    assert s.unreadable == (("carol", "c.py is empty"),)
    assert s.timed_out == (("dan", "cell 3 timeout"),)
    assert s.needs_ta == (("eve", "grader error (q2)"),)
    text = io.StringIO()
    assert status(out, text) == 0
    printed = text.getvalue()
    for label, count in (("graded", 2), ("pending TA scores", 1), ("unreadable", 1), ("timed out", 1), ("needs a TA", 1)):
        assert re.search(rf"^  {label}: +{count}$", printed, re.M), label
    assert "\nneeds a TA:\n  eve: grader error (q2)\n" in printed


def test_status_needs_a_ta_lists_a_flagged_student_as_index_html_does(tmp_path: Path) -> None:
    out = write_class(tmp_path / "out", [result("fay", "f.py", {"q1": (5, P)}, flags=("patches torch.allclose",))])
    s = classify(read_results(out))
    assert s.needs_ta == (("fay", "flagged (the score stands; look at the code): patches torch.allclose"),)
    assert s.graded == ()


def test_show_prints_as_check_does(out: Path) -> None:
    text = io.StringIO()
    assert show(out, "bob", text) == 0
    printed = text.getvalue()
    assert printed.startswith("bob: b.py")
    assert "q1 question q1" in printed and "wrong" in printed and "TA" in printed
    assert printed.rstrip().endswith("total: 0/10")


@pytest.mark.parametrize("name", ["alice", "ALICE", "s001", "alice smith"])
def test_show_finds_a_student_by_folder_or_identity(out: Path, name: str) -> None:
    assert find_result(out, name).student == "alice"


def test_unknown_student_is_one_clear_error(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GraderError, match=r"no student 'al' in .*; did you mean Alice Smith \(s001, folder alice\)\?"):
        find_result(out, "al")
    assert main(["show", str(out), "zoe"]) == 2
    assert "grader: error: no student 'zoe'" in capsys.readouterr().err


def test_commands_only_read(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def files() -> dict[str, int]:
        # SQLite's WAL readers make the -wal/-shm side files; the database itself is never written.
        return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.endswith(("-wal", "-shm"))}

    before = files()
    assert main(["status", str(out)]) == 0
    assert main(["show", str(out), "alice"]) == 0
    assert files() == before  # no log file, nothing rewritten
    assert "5 submissions" in capsys.readouterr().out


def test_a_folder_without_gradebook(tmp_path: Path) -> None:
    assert main(["status", str(tmp_path)]) == 2


def test_a_reader_that_goes_away_is_no_internal_error(out: Path) -> None:
    """`grader status OUT | head -1`: the pipe closes before the grader has written; it stops quietly."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "grader.cli.main", "status", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has started and imported the grader
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "internal error" not in err and "Traceback" not in err
