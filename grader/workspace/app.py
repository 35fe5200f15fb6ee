"""The workspace's web app (Starlette): pages over `marking.Workspace`, behind a token.

Security model: it binds 127.0.0.1 unless told otherwise; every request carries the token (in the URL
once, then an HttpOnly SameSite=Strict cookie) or is refused with 403; it reads and writes only the class
folder and never runs a student's code (submissions are shown as text).
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from grader.classroom.similarity import Pair
from grader.classroom.ta_scores import parse_score
from grader.errors import GraderError
from grader.workspace.marking import ClassFilter, Workspace

__all__ = ["COOKIE", "make_app", "new_token"]

COOKIE = "grader_token"
_env = jinja2.Environment(
    loader=jinja2.PackageLoader("grader.feedback", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)


def _python(code: str) -> Markup:
    """Python code highlighted (Pygments, which `rich` brings): escaped HTML spans, nothing of it runs."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return Markup(highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, nowrap=True)))


_env.filters["python"] = _python


def new_token() -> str:
    return secrets.token_urlsafe(24)


class _TokenGate(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.query_params.get("token")
        if given is not None and secrets.compare_digest(given, self.token):
            # The token leaves the address bar (and the history) at once; the cookie carries it from here.
            query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response: Response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        if not secrets.compare_digest(request.cookies.get(COOKIE, ""), self.token):
            return PlainTextResponse("forbidden: open the address `grader serve` printed (it carries the token)\n",
                                     status_code=403)
        return await call_next(request)


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


def make_app(ws: Workspace, token: str, ta: str = "") -> Starlette:  # noqa: C901 (one route per page)
    """The app over one class folder; `ta` names the TA whose changes it records."""

    async def home(request: Request) -> Response:
        keep = _class_filter(request)
        return _page("workspace_home.html.j2", ws=ws, progress=ws.progress(), rows=ws.students(keep), keep=keep,
                     total=len(ws.results()))

    async def question(request: Request) -> Response:
        qid = request.path_params["qid"]
        return _page(
            "workspace_question.html.j2", ws=ws, qid=qid, groups=ws.groups(qid), items=ws.store.items(qid),
            version=ws.store.version(qid), note=request.query_params.get("note", ""),
            progress=next(p for p in ws.progress() if p.qid == qid), unwritten=ws.unwritten(qid),
        )

    async def version(request: Request) -> Response:
        return JSONResponse({"version": ws.store.version(request.path_params["qid"])})

    async def add_item(request: Request) -> Response:
        qid = request.path_params["qid"]
        form = await request.form()
        stale = _stale(ws, qid, form.get("seen"))
        ws.add_item(qid, parse_score("points", form.get("points")), str(form.get("text") or ""), ta)
        return _back(qid, stale, str(form.get("anchor") or ""))

    async def edit_item(request: Request) -> Response:
        form = await request.form()
        item = ws.store.item(int(request.path_params["item_id"]))
        stale = _stale(ws, item.qid, form.get("seen"))
        ws.edit_item(item.id, parse_score("points", form.get("points")), str(form.get("text") or ""), ta)
        return _back(item.qid, stale, "")

    async def apply(request: Request) -> Response:
        qid = request.path_params["qid"]
        form = await request.form()
        stale = _stale(ws, qid, form.get("seen"))
        group = ws.group(qid, str(form.get("group") or ""))
        ws.apply(qid, list(group.students), int(str(form.get("item"))), form.get("on") == "1", ta)
        return _back(qid, stale, str(form.get("anchor") or ""))

    async def comment(request: Request) -> Response:
        qid = request.path_params["qid"]
        form = await request.form()
        stale = _stale(ws, qid, form.get("seen"))
        group = ws.group(qid, str(form.get("group") or ""))
        ws.comment(qid, list(group.students), str(form.get("comment") or ""), ta)
        return _back(qid, stale, str(form.get("anchor") or ""))

    async def rewrite(request: Request) -> Response:
        qid = request.path_params["qid"]
        form = await request.form()
        stale = _stale(ws, qid, form.get("seen"))
        ws.rescore(qid, ws.unwritten(qid), ta)
        return _back(qid, stale, "")

    async def student(request: Request) -> Response:
        name = request.path_params["student"]
        results = ws.results()
        if name not in results:
            return PlainTextResponse(f"no student {name!r}\n", status_code=404)
        source = _source_text(Path(results[name].path))
        return _page("workspace_student.html.j2", ws=ws, result=results[name], source=source,
                     adjustments=ws.store.adjustments(name), note=request.query_params.get("note", ""))

    async def ta_report(request: Request) -> Response:
        name = request.path_params["student"]
        if name not in ws.results():
            return PlainTextResponse(f"no student {name!r}\n", status_code=404)
        path = ws.out / name / "report-ta.html"
        return HTMLResponse(path.read_text(encoding="utf-8") if path.is_file() else "<p>no report-ta.html</p>")

    async def adjust(request: Request) -> Response:
        name, qid = request.path_params["student"], request.path_params["qid"]
        form = await request.form()
        ws.adjust(name, qid, parse_score("score", form.get("score")), str(form.get("reason") or ""), ta)
        return RedirectResponse(f"/s/{quote(name)}?note=adjusted#{quote(qid)}", status_code=303)

    async def similar(request: Request) -> Response:
        from grader.classroom.similarity import class_pairs

        pairs = class_pairs(ws.out)
        a, b = request.query_params.get("a"), request.query_params.get("b")
        chosen = next((p for p in pairs if (p.a, p.b) == (a, b)), None)
        sides = _sides(ws.out, chosen) if chosen else None
        return _page("workspace_similarity.html.j2", ws=ws, pairs=pairs, chosen=chosen, sides=sides)

    async def refuse(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"{exc}\n", status_code=400)

    routes = [
        Route("/", home),
        Route("/q/{qid}", question),
        Route("/api/version/{qid}", version),
        Route("/q/{qid}/items", add_item, methods=["POST"]),
        Route("/items/{item_id:int}", edit_item, methods=["POST"]),
        Route("/q/{qid}/apply", apply, methods=["POST"]),
        Route("/q/{qid}/comment", comment, methods=["POST"]),
        Route("/q/{qid}/rewrite", rewrite, methods=["POST"]),
        Route("/similarity", similar),
        Route("/s/{student}", student),
        Route("/s/{student}/report-ta", ta_report),
        Route("/s/{student}/{qid}/adjust", adjust, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={GraderError: refuse, ValueError: refuse})
    app.add_middleware(_TokenGate, token=token)
    return app


def _sides(out: Path, pair: Pair) -> list[list[tuple[int, str, bool]]]:
    """Both students' code as (line number, text, matched) rows, the starter's code already left out of the match."""
    from grader.classroom.similarity import class_prints

    code = {p.name: p.code for p in class_prints(out) if p.name in (pair.a, pair.b)}
    sides = []
    for name, spans in ((pair.a, [m.a_lines for m in pair.matches]), (pair.b, [m.b_lines for m in pair.matches])):
        lines = code.get(name, "").splitlines()
        sides.append([(i, text, any(lo <= i <= hi for lo, hi in spans)) for i, text in enumerate(lines, start=1)])
    return sides


def _class_filter(request: Request) -> ClassFilter:
    query = request.query_params

    def bound(key: str) -> float | None:
        raw = query.get(key, "").strip()
        return parse_score(key, raw) if raw else None

    return ClassFilter(needs_ta="needs_ta" in query, pending="pending" in query, flagged="flagged" in query,
                       late="late" in query, min_score=bound("min"), max_score=bound("max"))


def _stale(ws: Workspace, qid: str, seen: Any) -> bool:
    """Whether someone else changed `qid` since the page that posted was drawn."""
    try:
        return seen is not None and int(str(seen)) != ws.store.version(qid)
    except ValueError:
        return False


def _back(qid: str, stale: bool, anchor: str) -> Response:
    note = "?note=stale" if stale else ""
    return RedirectResponse(f"/q/{quote(qid)}{note}" + (f"#{quote(anchor)}" if anchor else ""), status_code=303)


def _source_text(path: Path) -> list[tuple[str, str]]:
    """The submission as (kind, text) blocks, for reading only: a notebook's cells and text outputs, or a file."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [("note", f"the submission {path} is not readable from here")]
    if path.suffix.lower() != ".ipynb":
        return [("code", raw)]
    try:
        cells = json.loads(raw).get("cells", [])
    except (ValueError, AttributeError):
        return [("code", raw)]
    blocks = []
    for cell in cells if isinstance(cells, list) else []:
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        blocks.append(("markdown" if cell.get("cell_type") == "markdown" else "code", text))
        for output in cell.get("outputs", []) or []:
            shown = output.get("text") or (output.get("data") or {}).get("text/plain") or output.get("evalue") or ""
            if shown:
                blocks.append(("output", "".join(shown) if isinstance(shown, list) else str(shown)))
    return blocks
