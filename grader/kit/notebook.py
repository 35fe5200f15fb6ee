"""The in-notebook self-check: `ok = kit.load("cnn-rnn.kit.zip"); ok.check("q1.3")`.

It checks the student's functions where they live, in the notebook's own namespace: no worker, no sandbox, no
cells run again, so one question takes a fraction of a second.  That trusts the student's own code, which is
right for a self-check and never used for grading.  The requests are the worker's own (`grader.worker.main`),
answered in this process (`InProcessTransport`) and decoded as grading decodes them, so the values compared are
the same plain data.

Markdown `Answer qX.Y:` cells are not part of a kernel's state: they are read from the notebook file, which
the front-end names where it can (JupyterLab and Notebook 7: `__session__`; VS Code: `__vsc_ipynb_file__`; a
kernel a Jupyter server started, classic Notebook included: `JPY_SESSION_NAME`), or which `notebook=` gives
(Colab, nbclient: the file you downloaded or saved to Drive).  Where none does, a question that reads an Answer
cell says so and how to give the file, never that the cell is missing.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from grader.errors import GraderError, SubmissionUnreadable
from grader.execution.session import WorkerSession
from grader.execution.transport import InProcessTransport
from grader.kit.result import KitReport
from grader.kit.run import check_questions, report_for, selected
from grader.kit.schema import KitFile, decoded, read_kit
from grader.results import QuestionResult
from grader.rubric.handout import missing_requirements, requirement_line
from grader.sources.load import Cell, Submission, load_submission, strip_magics


class Kit:
    """A loaded kit; `check(qid)` and `check_all()` return a report that shows itself as HTML or text."""

    def __init__(self, data: KitFile, path: Path, notebook: str | Path | None = None) -> None:
        self.data, self.path = data, path
        self.notebook = Path(notebook) if notebook else None

    def __repr__(self) -> str:
        checked = sum(q.checked for q in self.data.questions)
        return (f"<kit {self.data.assignment}: {len(self.data.questions)} public questions, {checked} checked here; "
                f"ok.check('{self.data.questions[0].id}') or ok.check_all()>")

    @property
    def questions(self) -> list[str]:
        return [q.id for q in self.data.questions]

    def inputs(self, question: str, n: int) -> dict[str, Any]:
        """Test input `n` (from 1) of a function or gradient question, as the kit holds it: {argument: value},
        in the handout's argument order, to call your function on (`f(*ok.inputs("q1.3", 2).values())`)."""
        q = self.data.question(question)
        cases = getattr(q.check, "cases", None)
        if not cases or not 1 <= n <= len(cases):
            count = f"test inputs 1 to {len(cases)}" if cases else "no test inputs"
            raise GraderError(f"{question} has {count} in this kit")
        case = cases[n - 1]
        return dict(zip(case.names, (decoded(a) for a in case.args)))

    def check(self, question: str, namespace: dict[str, Any] | None = None, *, device: str = "cpu") -> KitReport | Unknown:
        if question not in self.questions:  # one line, not a traceback through the grader
            return Unknown(f"the kit has no public question {question!r}; it has {', '.join(self.questions)}")
        return self._check(question, namespace, device)

    def check_all(self, namespace: dict[str, Any] | None = None, *, device: str = "cpu") -> KitReport:
        return self._check(None, namespace, device)

    def _check(self, question: str | None, namespace: dict[str, Any] | None, device: str) -> KitReport:
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
            # Time limits use SIGALRM, which only the main thread has (a notebook cell runs there).
            raise GraderError("run the kit check from a notebook cell or a script's main thread (on Linux or macOS)")
        start = time.perf_counter()
        namespace = namespace if namespace is not None else _notebook_namespace()
        submission = self._submission(namespace)
        # The notebook's own process answers, with its live globals: no worker to start, no cells to run again.
        with WorkerSession(submission, self.data.limits, transport=InProcessTransport(namespace)) as session:
            result = check_questions(self.data, self.path, selected(self.data, question), submission, session, device)
        questions = result.questions if submission.sha256 else tuple(_unknown_file(q) for q in result.questions)
        result = replace(result, questions=questions, device=session.device, sandbox="none (the notebook's own process)",
                         execution_time=time.perf_counter() - start)
        return report_for(self.data, question, result)

    def _submission(self, namespace: dict[str, Any]) -> Submission:
        """The code the kernel ran (for the static `forbid` analysis) and the Markdown answers of the file."""
        cells = _history(namespace)
        source = self.notebook or _notebook_file(namespace)
        answers: dict[str, str] = {}
        sha = ""
        if source is not None:
            try:
                loaded = load_submission(source)
            except SubmissionUnreadable:
                loaded = None
            if loaded is not None:
                answers, sha = loaded.answers, loaded.sha256
                if not cells:  # a script, not a kernel: the file is what ran
                    cells = list(loaded.cells)
        path = source or Path("notebook.ipynb")
        return Submission(path, path.stem, tuple(cells), answers, sha)


class Unknown:
    """What `check` returns for a question the kit does not have: one line, shown as it is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return False


def _unknown_file(q: QuestionResult) -> QuestionResult:
    """A question that looked for an Answer cell of a notebook whose file is not known: say how to give it."""
    if f"`Answer {q.qid}:` cell" not in q.message:
        return q
    message = (f"this notebook's file is not known here, so its `Answer {q.qid}:` cell cannot be read: "
               'pass `notebook="my.ipynb"` to `kit.load` so that Answer cells can be read')
    return replace(q, message=message)


def load(path: str | Path, *, notebook: str | Path | None = None) -> Kit:
    """Load a kit file made by `grader kit`.  `notebook`: the .ipynb holding your `Answer qX.Y:` cells, where
    Jupyter does not say which file this is (Colab)."""
    path = Path(path)
    kit = Kit(read_kit(path), path, notebook)
    missing = missing_requirements(kit.data.requires)
    if missing:  # said once, at load: every check that imports it would fail for this reason, not the student's
        warnings.warn(requirement_line(missing, "this assignment"), stacklevel=2)
    return kit


def _notebook_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns  # type: ignore[no-any-return]
    return vars(sys.modules["__main__"])


def _history(namespace: dict[str, Any]) -> list[Cell]:
    """The cells the kernel ran, in order, numbered as Jupyter numbers them (`In [12]` is cell 12)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return []
    if shell is None:
        return []
    raw = list(shell.history_manager.input_hist_raw)
    return [Cell(i, strip_magics(text)) for i, text in enumerate(raw) if isinstance(text, str) and text.strip()]


def _notebook_file(namespace: dict[str, Any]) -> Path | None:
    """The notebook (or script) this kernel runs, where its front-end says: JupyterLab and Notebook 7 set
    `__session__`, VS Code `__vsc_ipynb_file__`, a Jupyter server `JPY_SESSION_NAME` (relative to the kernel's
    folder); a script has `__file__`.  Colab and nbclient say nothing."""
    named = (namespace.get("__session__"), namespace.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME"),
             namespace.get("__file__"))
    for candidate in named:
        if isinstance(candidate, str) and candidate.endswith((".ipynb", ".py")) and Path(candidate).is_file():
            return Path(candidate)
    return None

