"""Student kits: self-checks of the public questions without the reference or the rubric.

`grader kit RUBRIC --out FILE` writes a kit (`build_kit`, `write_kit`); `grader check SUBMISSION --kit FILE`
checks a submission in a worker as grading does (`check_submission`); in a notebook:

    from grader import kit
    ok = kit.load("cnn-rnn.kit.zip")
    ok.check("q1.3")      # one question, shown as a small table (HTML in Jupyter/Colab, text elsewhere)
    ok.check_all()

Only `grader.kit.build` imports a reference; a student's install never needs one.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.kit.build import build_kit
    from grader.kit.notebook import Kit, load
    from grader.kit.result import KitReport, Unchecked
    from grader.kit.run import check_submission
    from grader.kit.schema import KitFile, read_kit, write_kit

# Imported on first use, so that reading a kit (`grader.kit.schema`) does not import torch and the checks: the
# check daemon starts its worker while it imports those; `build_kit`, the author's side, stays out of a student's.
_PUBLIC = {
    "Kit": "grader.kit.notebook", "load": "grader.kit.notebook", "KitReport": "grader.kit.result",
    "Unchecked": "grader.kit.result", "check_submission": "grader.kit.run", "KitFile": "grader.kit.schema",
    "read_kit": "grader.kit.schema", "write_kit": "grader.kit.schema", "build_kit": "grader.kit.build",
}
__all__ = ["Kit", "KitFile", "KitReport", "Unchecked", "build_kit", "check_submission", "load", "read_kit", "write_kit"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'grader.kit' has no attribute {name!r}")
