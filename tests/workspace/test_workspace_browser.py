"""The TA workspace in a real browser (Playwright driving the system Chromium) against a real uvicorn server:
grade a group with an item by key, edit the item and see every affected student's score change, adjust a
score with a reason, two sessions at once, and the token refusing a request without it.  The scores entered
are read back from gradebook.csv, the students' reports and the Canvas export."""
from __future__ import annotations

import csv
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from grader.workspace.marking import Workspace
from tests.workspace_helpers import make_class

uvicorn = pytest.importorskip("uvicorn", reason="the TA workspace needs the grade extra (uvicorn, starlette)")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (the test extra)")
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-token"
DROPOUT = "Dropout is on only in train(); BatchNorm uses batch statistics."

from grader.workspace.app import make_app  # noqa: E402


def scores(out: Path, qid: str) -> dict[str, str]:
    with open(out / "gradebook.csv", encoding="utf-8") as fh:
        return {row["student"]: row[qid] for row in csv.DictReader(fh)}


@pytest.fixture
def klass(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    make_class(out, {"ann": (DROPOUT, "no"), "ben": (DROPOUT.upper(), "no"), "cat": ("No idea.", "no")})
    return out


@pytest.fixture
def server(klass: Path) -> Iterator[str]:
    ws = Workspace(klass)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(make_app(ws, TOKEN, ta="tess"), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(600):  # not a timing assertion: wait for the server to listen
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)
    ws.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def session(browser: object, base: str) -> object:
    page = browser.new_context().new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(30_000)
    page.goto(f"{base}/?token={TOKEN}")
    return page


def test_the_token_refuses_a_request_without_it(browser: object, server: str) -> None:
    page = browser.new_context().new_page()  # type: ignore[attr-defined]
    assert page.goto(f"{server}/").status == 403
    assert page.goto(f"{server}/q/q2.1?token=guess").status == 403
    assert page.goto(f"{server}/?token={TOKEN}").status == 200
    assert page.url == f"{server}/"  # the token left the address bar; the cookie carries it
    assert page.goto(f"{server}/q/q2.1").status == 200


def test_grade_a_group_by_key_then_edit_the_item(browser: object, server: str, klass: Path, tmp_path: Path) -> None:
    page = session(browser, server)
    expect = sync_api.expect
    page.get_by_role("link", name="q2.1: 0/3 graded").click()
    page.get_by_label("new item points").fill("-0.5")
    page.get_by_label("new item text").fill("forgets BatchNorm's running statistics")
    page.get_by_role("button", name="add item").click()
    expect(page.locator("section.group").first).to_have_attribute("data-students", "2")
    page.keyboard.press("1")  # item 1 on the current group, the first: ann and ben
    expect(page.locator("#progress")).to_contain_text("q2.1: 2/3 graded")
    assert scores(klass, "q2.1") == {"ann": "1.5", "ben": "1.5", "cat": "0"}
    page.keyboard.press("j")
    page.keyboard.press("1")  # and on the second group: cat
    expect(page.locator("#progress")).to_contain_text("q2.1: 3/3 graded")
    page.screenshot(path=str(tmp_path / "workspace.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'workspace.png'}")

    page.get_by_label("points of item 1").fill("-1")
    page.get_by_label("text of item 1").fill("forgets the running statistics")
    page.get_by_role("button", name="save item 1").click()
    expect(page.get_by_label("points of item 1")).to_have_value("-1")
    assert scores(klass, "q2.1") == {"ann": "1", "ben": "1", "cat": "1"}
    for student in ("ann", "ben", "cat"):
        report = (klass / student / "report.html").read_text(encoding="utf-8")
        assert "-1: forgets the running statistics" in report and "BatchNorm&#39;s" not in report

    from grader.cli.export import export_canvas

    (tmp_path / "roster.csv").write_text("sid,name\nann,Ann A\nben,Ben B\ncat,Cat C\n", encoding="utf-8")
    export_canvas(klass, tmp_path / "roster.csv", tmp_path / "canvas.csv", title="HW")
    with open(tmp_path / "canvas.csv", encoding="utf-8") as fh:
        rows = {row["Student"]: row["HW"] for row in csv.DictReader(fh)}
    assert rows == {"Points Possible": "5", "Ann A": "2", "Ben B": "2", "Cat C": "2"}  # q1.1's 1 point and q2.1's 1; q2.2 still pending


def test_adjust_a_question_with_a_reason(browser: object, server: str, klass: Path) -> None:
    page = session(browser, server)
    page.get_by_role("link", name="ann").click()
    page.get_by_label("new score for q1.1").fill("0.5")
    page.get_by_label("reason for q1.1").fill("regrade request: the sign was right")
    page.get_by_role("button", name="adjust q1.1").click()
    sync_api.expect(page.locator("#adjusted")).to_be_visible()
    sync_api.expect(page.locator("#adjustments")).to_contain_text("q1.1 → 0.5: regrade request: the sign was right (tess)")
    assert scores(klass, "q1.1")["ann"] == "0.5"
    assert "regrade request: the sign was right" in (klass / "ann" / "report.html").read_text(encoding="utf-8")


def test_two_sessions_at_once_lose_nothing_and_each_hears_of_the_other(browser: object, server: str, klass: Path) -> None:
    alice, bob = session(browser, server), session(browser, server)
    for page in (alice, bob):
        page.goto(f"{server}/q/q2.1")
    sync_api.expect(alice.locator("#stale")).to_be_hidden()
    bob.get_by_label("new item points").fill("-2")
    bob.get_by_label("new item text").fill("wrong")
    bob.get_by_role("button", name="add item").click()
    sync_api.expect(alice.locator("#stale")).to_be_visible()  # Alice's page hears of Bob's item by itself
    bob.locator("section.group").nth(1).get_by_role("button", name="1").click()  # Bob: cat's group, "wrong"
    sync_api.expect(bob.locator("#progress")).to_contain_text("1/3 graded")
    alice.get_by_label("new item points").fill("0")  # Alice, on her stale page, adds an item
    alice.get_by_label("new item text").fill("correct")
    alice.get_by_role("button", name="add item").click()
    sync_api.expect(alice.locator("#stale")).to_contain_text("your change was applied on top of theirs")
    alice.locator("section.group").first.get_by_role("button", name="2").click()
    sync_api.expect(alice.locator("#progress")).to_contain_text("3/3 graded")
    assert scores(klass, "q2.1") == {"ann": "2", "ben": "2", "cat": "0"}
