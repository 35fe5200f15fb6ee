"""The TA workspace without a browser: answer groups, rubric items and the scores made of them, edits that
follow every student, adjustments, `grader manual export/import` alongside, and the token gate."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

import pytest

from grader.classroom.gradebook import FILENAME, Gradebook
from grader.cli.manual import export_pending, import_scores
from grader.errors import GraderError
from grader.workspace.marking import Workspace, normalise
from tests.workspace_helpers import make_class

starlette = pytest.importorskip("starlette", reason="the TA workspace needs the grade extra (starlette)")
from starlette.testclient import TestClient  # noqa: E402

from grader.workspace.app import COOKIE, make_app  # noqa: E402

DROPOUT = "Dropout is on only in train(); BatchNorm uses batch statistics."


def gradebook_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def stored(out: Path, student: str, qid: str) -> dict:
    result = json.loads((out / student / "grading.json").read_text(encoding="utf-8"))
    return next(q for q in result["questions"] if q["qid"] == qid)


@pytest.fixture
def klass(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    make_class(out, {
        "ann": (DROPOUT, "They do not add complexity."),
        "ben": ("dropout is ON only in train()  batchnorm uses batch statistics", None),
        "cat": ("No idea.", "They do not add complexity"),
    })
    return out


@pytest.fixture
def ws(klass: Path) -> Iterator[Workspace]:
    workspace = Workspace(klass)
    yield workspace
    workspace.close()


def test_normalised_answers_group_case_punctuation_and_spacing_alike() -> None:
    assert normalise("Dropout is ON, in train().") == normalise("dropout  is on in TRAIN") == "dropout is on in train"


def test_groups_put_near_identical_answers_together_largest_first(ws: Workspace) -> None:
    groups = ws.groups("q2.1")
    assert [g.students for g in groups] == [("ann", "ben"), ("cat",)]
    assert [p.label for p in ws.progress()] == ["q2.1: 0/3 graded", "q2.2: 0/3 graded"]


def test_an_item_applied_to_a_group_scores_every_member(ws: Workspace, klass: Path) -> None:
    item = ws.add_item("q2.1", -0.5, "BatchNorm's running statistics not named")
    ws.apply("q2.1", ["ann", "ben"], item.id)
    assert gradebook_rows(klass)["ann"]["q2.1"] == gradebook_rows(klass)["ben"]["q2.1"] == "1.5"
    assert stored(klass, "ann", "q2.1")["details"]["ta_comment"] == "-0.5: BatchNorm's running statistics not named"
    assert "-0.5: BatchNorm&#39;s running statistics not named" in (klass / "ben" / "report.html").read_text(encoding="utf-8")
    assert next(p.label for p in ws.progress()) == "q2.1: 2/3 graded"
    assert stored(klass, "cat", "q2.1")["status"] == "pending"


def test_editing_an_item_rescores_every_student_it_is_applied_to(ws: Workspace, klass: Path) -> None:
    bias = ws.add_item("q2.1", -1, "forgets the bias")
    vague = ws.add_item("q2.1", -0.5, "vague")
    ws.apply("q2.1", ["ann", "ben"], bias.id)
    ws.apply("q2.1", ["cat"], bias.id)
    ws.apply("q2.1", ["cat"], vague.id)
    assert [gradebook_rows(klass)[s]["q2.1"] for s in ("ann", "ben", "cat")] == ["1", "1", "0.5"]
    assert sorted(ws.edit_item(bias.id, -0.25, "forgets the bias term")) == ["ann", "ben", "cat"]
    assert [gradebook_rows(klass)[s]["q2.1"] for s in ("ann", "ben", "cat")] == ["1.75", "1.75", "1.25"]
    assert stored(klass, "cat", "q2.1")["details"]["ta_comment"] == "-0.25: forgets the bias term\n-0.5: vague"


def test_scores_stay_within_zero_and_the_points(ws: Workspace, klass: Path) -> None:
    wrong = ws.add_item("q2.1", -3, "wrong")
    bonus = ws.add_item("q2.1", 1, "a fine example")
    ws.apply("q2.1", ["cat"], wrong.id)
    ws.apply("q2.1", ["ann", "ben"], bonus.id)
    assert [gradebook_rows(klass)[s]["q2.1"] for s in ("ann", "ben", "cat")] == ["2", "2", "0"]


def test_taking_an_item_off_and_a_comment_keep_the_record(ws: Workspace, klass: Path) -> None:
    item = ws.add_item("q2.2", -2, "no answer")
    ws.apply("q2.2", ["ben"], item.id)
    ws.comment("q2.2", ["ben"], "see the lecture notes")
    assert stored(klass, "ben", "q2.2")["score"] == 0
    assert stored(klass, "ben", "q2.2")["details"]["ta_comment"] == "-2: no answer\nsee the lecture notes"
    ws.apply("q2.2", ["ben"], item.id, on=False)
    assert stored(klass, "ben", "q2.2")["score"] == 2
    assert stored(klass, "ben", "q2.2")["details"]["ta_comment"] == "see the lecture notes"


def test_an_adjustment_with_a_reason_changes_an_auto_graded_question(ws: Workspace, klass: Path) -> None:
    ws.adjust("ann", "q1.1", 0.5, "regrade request: half credit", ta="tess")
    q = stored(klass, "ann", "q1.1")
    assert (q["score"], q["details"]["override"]["reason"]) == (0.5, "regrade request: half credit")
    # The record `grader override` keeps (who, when; carried through re-grading by grader.classroom.tawork).
    with Gradebook(klass / FILENAME) as book:
        assert [(o.qid, o.score, o.ta, o.reason) for o in book.overrides("ann")] == [
            ("q1.1", 0.5, "tess", "regrade request: half credit")]
    assert gradebook_rows(klass)["ann"]["q1.1"] == "0.5"
    assert "regrade request: half credit" in (klass / "ann" / "report.html").read_text(encoding="utf-8")
    assert [(a.qid, a.score, a.ta) for a in ws.store.adjustments("ann")] == [("q1.1", 0.5, "tess")]
    with pytest.raises(GraderError, match="needs a reason"):
        ws.adjust("ann", "q1.1", 1, " ")
    with pytest.raises(GraderError, match="outside 0..1"):
        ws.adjust("ann", "q1.1", 2, "too much")


def test_manual_export_and_import_keep_working_beside_items(ws: Workspace, klass: Path, tmp_path: Path) -> None:
    item = ws.add_item("q2.1", 0, "correct")
    ws.apply("q2.1", ["ann", "ben"], item.id)
    export_pending(tmp_path / "todo.csv", klass)
    with open(tmp_path / "todo.csv", encoding="utf-8") as fh:
        todo = [(row["student"], row["question"]) for row in csv.DictReader(fh)]
    assert todo == [("ann", "q2.2"), ("ben", "q2.2"), ("cat", "q2.1"), ("cat", "q2.2")]
    (tmp_path / "scores.csv").write_text("student,question,score,comment\ncat,q2.1,1,half\n", encoding="utf-8")
    import_scores(tmp_path / "scores.csv", klass)
    assert [gradebook_rows(klass)[s]["q2.1"] for s in ("ann", "ben", "cat")] == ["2", "2", "1"]


def test_two_hundred_identical_answers_are_graded_in_one_action(tmp_path: Path) -> None:
    out = tmp_path / "big"
    make_class(out, {f"s{i:03d}": ("Dropout only in train()." if i % 2 else "dropout ONLY in train", None)
                     for i in range(200)})
    ws = Workspace(out)
    (group,) = ws.groups("q2.1")
    item = ws.add_item("q2.1", 0, "correct")
    ws.apply("q2.1", list(group.students), item.id)  # the one action: item 1 on the group
    rows = gradebook_rows(out)
    assert len(rows) == 200 and {row["q2.1"] for row in rows.values()} == {"2"}
    assert ws.progress()[0].label == "q2.1: 200/200 graded"
    ws.close()


def test_a_request_without_the_token_is_refused(ws: Workspace) -> None:
    client = TestClient(make_app(ws, "s3cret"))
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.post("/q/q2.1/items", data={"points": "-1", "text": "x"}).status_code == 403
    assert ws.store.items("q2.1") == []
    first = client.get("/?token=s3cret", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"  # the token leaves the address bar
    assert "samesite=strict" in first.headers["set-cookie"].lower() and "httponly" in first.headers["set-cookie"].lower()
    assert client.cookies.get(COOKIE) == "s3cret"
    page = client.get("/")
    assert page.status_code == 200 and "q2.1: 0/3 graded" in page.text


def test_grading_over_http_with_a_stale_page_says_so(ws: Workspace, klass: Path) -> None:
    a, b = TestClient(make_app(ws, "t", ta="ann-ta")), TestClient(make_app(ws, "t", ta="bob-ta"))
    for client in (a, b):
        client.get("/?token=t")
    seen = ws.store.version("q2.1")
    b.post("/q/q2.1/items", data={"points": "-1", "text": "forgets the bias", "seen": str(seen)})
    (item,) = ws.store.items("q2.1")
    group = ws.groups("q2.1")[0]
    after = a.post("/q/q2.1/apply", data={"group": group.key, "item": str(item.id), "on": "1", "seen": str(seen)})
    assert after.status_code == 200 and "your change was applied on top of theirs" in after.text
    assert gradebook_rows(klass)["ann"]["q2.1"] == "1"
    assert a.post("/q/q9.9/items", data={"points": "1", "text": "x"}).status_code == 400
    assert a.post("/q/q2.1/items", data={"points": "lots", "text": "x"}).status_code == 400
    assert a.post("/q/q2.1/apply", data={"group": group.key, "item": "one"}).status_code == 400


def test_the_class_at_a_glance_filters_by_pending_late_and_score(ws: Workspace, klass: Path) -> None:
    from grader.sources.discover import Entry
    from grader.sources.roster import Identity
    from grader.workspace.marking import ClassFilter

    with Gradebook(klass / FILENAME) as book:
        book.record_entries({"cat": Entry(klass / "cat.py", (klass / "cat.py",), Identity("cat"), late=True)})
    correct = ws.add_item("q2.1", 0, "correct")
    ws.apply("q2.1", ["ann", "ben"], correct.id)
    ws.adjust("ann", "q2.2", 1, "half of it")
    names = lambda keep: [row.student for row in ws.students(keep)]  # noqa: E731
    assert names(ClassFilter()) == ["ann", "ben", "cat"]
    assert names(ClassFilter(pending=True)) == ["ben", "cat"]
    assert names(ClassFilter(late=True)) == ["cat"]
    assert names(ClassFilter(min_score=3)) == ["ann", "ben"] and names(ClassFilter(min_score=3.5)) == ["ann"]
    assert names(ClassFilter(max_score=1)) == ["cat"] and names(ClassFilter(needs_ta=True)) == []
    client = TestClient(make_app(ws, "t"))
    client.get("/?token=t")
    page = client.get("/", params={"pending": "on", "max": "2"})
    assert "1 of 3 students" in page.text and "/s/ann" not in page.text and "/s/ben" not in page.text and "/s/cat" in page.text
    assert "q2.1: 2/3 graded" in page.text and "q2.2: 1/3 graded" in page.text


def test_grader_serve_prints_the_address_with_its_token_and_refuses_without_it(klass: Path) -> None:
    import re
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from http.cookiejar import CookieJar

    proc = subprocess.Popen([sys.executable, "-m", "grader.cli.main", "serve", str(klass), "--ta", "tess"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"open (http://127\.0\.0\.1:\d+)/\?token=(\S+)$", line.strip())
        assert found, line
        base, token = found.groups()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/", timeout=60)
        assert refused.value.code == 403
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with browser.open(f"{base}/?token={token}", timeout=60) as page:  # redirected to /, the cookie set
            assert page.url == f"{base}/" and "q2.1: 0/3 graded" in page.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_review_page_shows_the_submission_as_text_never_as_markup(ws: Workspace, klass: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Answer q2.1: <img src=x onerror=alert(1)>"),
                nbformat.v4.new_code_cell("print('</pre><script>alert(2)</script>')")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello <b>out</b>\n")]
    (klass / "ann.py").write_text("def f(x):\n    return '<script>alert(3)</script>'\n", encoding="utf-8")
    nbformat.write(nb, klass / "ben.ipynb")
    stored_ben = json.loads((klass / "ben" / "grading.json").read_text(encoding="utf-8"))
    stored_ben["path"] = str(klass / "ben.ipynb")
    (klass / "ben" / "grading.json").write_text(json.dumps(stored_ben), encoding="utf-8")
    client = TestClient(make_app(ws, "t"))
    client.get("/?token=t")
    ann, ben = client.get("/s/ann").text, client.get("/s/ben").text
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in ann and "<script>alert" not in ann
    assert '<span style="color: #008000; font-weight: bold">def</span>' in ann  # highlighted
    assert '<pre class="markdown">Answer q2.1: &lt;img src=x onerror=alert(1)&gt;</pre>' in ben
    assert '<pre class="output">hello &lt;b&gt;out&lt;/b&gt;\n</pre>' in ben and "<script>alert" not in ben
    assert client.get("/s/nobody").status_code == 404 and client.get("/s/ann/report-ta").status_code == 200


def test_items_applied_before_a_regrade_can_be_written_again(ws: Workspace, klass: Path) -> None:
    from tests.workspace_helpers import make_class

    item = ws.add_item("q2.1", -0.5, "vague")
    ws.apply("q2.1", ["ann", "ben"], item.id)
    make_class(klass, {"ann": (DROPOUT, "x"), "ben": (DROPOUT, "y"), "cat": ("No idea.", "z")})  # graded again
    assert stored(klass, "ann", "q2.1")["status"] == "pending" and ws.unwritten("q2.1") == ["ann", "ben"]
    client = TestClient(make_app(ws, "t"))
    client.get("/?token=t")
    assert "write their item scores again" in client.get("/q/q2.1").text
    page = client.post("/q/q2.1/rewrite", data={"seen": str(ws.store.version("q2.1"))})
    assert "write their item scores again" not in page.text and ws.unwritten("q2.1") == []
    assert [gradebook_rows(klass)[s]["q2.1"] for s in ("ann", "ben", "cat")] == ["1.5", "1.5", "0"]


@pytest.mark.parametrize("verb", ["serve", "similarity"])
def test_a_folder_that_is_no_graded_class_is_one_line_and_exit_2(verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import main

    assert main([verb, str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grader: error: ") and "nowhere" in err[0]
