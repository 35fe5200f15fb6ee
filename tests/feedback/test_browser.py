"""Reports as a person sees them: rendered, opened in headless Chromium, read back and photographed.

Each page is opened twice: as written (Chromium's own log is scanned for uncaught errors), and as a test copy
with a tiny probe injected first in <head> that records `window.onerror`, console errors and any `alert()`
call (the student's `<script>alert(...)` / `onerror=alert(1)` payloads must never run), and writes what it saw
into <body data-probe=...> for `--dump-dom` to read.  Screenshots (desktop and phone widths) are saved in the
test's tmp_path, printed for a person to open.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from html import unescape
from pathlib import Path

import pytest

from grader.feedback.report import Audience, render_index, render_report
from grader.results import SubmissionResult

DATA = Path(__file__).resolve().parents[1] / "data" / "report"


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium; .ci/run does it as root)"
)

PROBE = """<script>
window.__probe = {errors: [], alerts: []};
window.onerror = function (msg) { window.__probe.errors.push(String(msg)); };
var _err = console.error; console.error = function () { window.__probe.errors.push([].join.call(arguments, ' ')); };
window.alert = function (msg) { window.__probe.alerts.push(String(msg)); };
window.addEventListener('load', function () {
  var root = document.documentElement;
  window.__probe.overflow = root.scrollWidth > window.innerWidth + 1;
  document.body.setAttribute('data-probe', JSON.stringify(window.__probe));
});
</script>"""


def _flags(profile: Path) -> list[str]:
    return [
        CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--hide-scrollbars", "--virtual-time-budget=3000",
    ]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _dump(page: Path, profile: Path, width: int = 1000) -> tuple[str, dict[str, object]]:
    """The DOM after load of a probed copy of `page`, and what the probe recorded."""
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(page.read_text().replace("<head>", "<head>\n" + PROBE, 1))
    proc = _run([*_flags(profile), f"--window-size={width},900", "--dump-dom", probed.as_uri()])
    match = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert match, f"the probe did not report; chromium said:\n{proc.stderr[-2000:]}"
    return proc.stdout, json.loads(unescape(match.group(1)))


def _console_errors(page: Path, profile: Path) -> list[str]:
    """Uncaught errors Chromium logs for the page as written (no probe involved)."""
    proc = _run([*_flags(profile), "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()])
    return [line for line in proc.stderr.splitlines() if "Uncaught" in line or ":CONSOLE(" in line]


def _screenshot(page: Path, profile: Path, shot: Path, width: int, height: int) -> tuple[int, int]:
    _run([*_flags(profile), f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri()])
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"no real screenshot at {shot}"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def _text(dom: str) -> str:
    """Visible text of a dumped DOM, roughly: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def load(name: str) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads((DATA / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    results = [load(n) for n in ("alice", "bob", "carol")]
    for r in results:
        folder = out / r.student
        folder.mkdir()
        (folder / "report.html").write_text(render_report(r))
        (folder / "report-ta.html").write_text(render_report(r, audience=Audience.TA))
    (out / "index.html").write_text(render_index(results))
    return out


PAGES = [
    # page, what must be on it, what must never be on it
    ("alice/report.html",
     ["7.5 + 2 pending / 30 points", "0.731", "0.512", "3.10e-01", "m = 3, n = 5", "hidden test: failed", "0.8125",
      "<script>alert('answer')</script>", "return torch.autograd.grad(y, x, g)[0]", "right idea, no mention"],
     ["SECRET", "TA_GUIDE"]),
    ("alice/report-ta.html", ["SECRET_EXPECTED_4242", "TA_GUIDE_dropout_and_batchnorm", "Do not share"], []),
    ("index.html", ["3 submissions", "67% (2/3)", "carol <b>&", "could not be read", "61.8 s", "6.17 / 30"], []),
]


@pytest.mark.parametrize("name, present, absent", PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_without_errors_and_shows_the_numbers(
    site: Path, tmp_path: Path, name: str, present: list[str], absent: list[str]
) -> None:
    page = site / name
    assert _console_errors(page, tmp_path / "profile-a") == []
    dom, probe = _dump(page, tmp_path / "profile-b")
    assert probe["errors"] == [] and probe["alerts"] == [], probe  # no error, and no student script ran
    text = _text(dom)
    for fragment in present:
        assert fragment in text, fragment
    for fragment in absent:
        assert fragment not in text, fragment


@pytest.mark.parametrize("name", ["alice/report.html", "index.html"])
@pytest.mark.parametrize("width, height", [(1000, 2600), (390, 844)], ids=["desktop", "phone"])
def test_screenshots(site: Path, tmp_path: Path, name: str, width: int, height: int) -> None:
    shot = tmp_path / f"{name.replace('/', '_')}-{width}.png"
    size = _screenshot(site / name, tmp_path / "profile", shot, width, height)
    print(f"screenshot: {shot}")
    assert size[0] == width


@pytest.mark.parametrize("width", [390, 1280])
def test_class_summary_has_no_horizontal_scroll_and_its_key_numbers(site: Path, tmp_path: Path, width: int) -> None:
    # The TA opens index.html on a phone too: question rows become compact cards, the pass rate and the
    # commonest failure stay on screen, and the page itself never scrolls sideways.
    dom, probe = _dump(site / "index.html", tmp_path / "profile", width=width)
    assert probe["overflow"] is False
    text = _text(dom)
    for fragment in ("67% (2/3)", "6.17 / 30", "could not be read"):
        assert fragment in text, fragment


def test_student_report_fits_a_phone_screen(site: Path, tmp_path: Path) -> None:
    # Long messages, tracebacks and charts wrap or scroll inside their box; the page itself never scrolls sideways.
    _, probe = _dump(site / "alice" / "report.html", tmp_path / "profile", width=390)
    assert probe["overflow"] is False


@pytest.mark.parametrize(
    "body, caught",
    [
        ("<script>alert('ran')</script>", "alerts"),
        ("<img src=x onerror=\"alert('ran')\">", "alerts"),
        ("<script>undefinedFunction()</script>", "errors"),
        ("<div style='width:2000px'>wide</div>", "overflow"),
    ],
)
def test_the_probe_catches_what_the_tests_rely_on(tmp_path: Path, body: str, caught: str) -> None:
    # The checks above pass on silence; this shows the probe is not silent when something does go wrong.
    page = tmp_path / "bad.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    _, probe = _dump(page, tmp_path / "profile", width=390)
    assert probe[caught], probe


def test_console_scan_sees_an_uncaught_error(tmp_path: Path) -> None:
    page = tmp_path / "throws.html"
    page.write_text("<!doctype html><html><head></head><body><script>throw new Error('boom')</script></body></html>")
    assert any("boom" in line for line in _console_errors(page, tmp_path / "profile"))
