"""The colours of a question's status: one palette for every view of a result.

The reports' CSS (`--ok`, `--part`, `--bad`, `--ta`, `--grader`, grader.feedback.report), the terminal's tables
(grader.feedback.terminal), the kit's HTML in a notebook (grader.kit.show) and the charts (grader.svg: the pass
marks in the passed colour, a threshold line in the failed one) all read it, so that a status looks the same
wherever it is shown.  It is a shared leaf rather than part of grader.feedback because grader.svg, which draws
charts the check kinds' details carry (a training loss curve), sits below the stages.
"""
from __future__ import annotations

from dataclasses import dataclass

from grader.results import Status

__all__ = ["STATUS_COLOURS", "Colour"]


@dataclass(frozen=True)
class Colour:
    hex: str  # HTML, CSS and SVG; each stays distinct in greyscale print
    terminal: str  # the nearest of the terminal's own colours, which its theme keeps readable on light and dark


STATUS_COLOURS: dict[Status, Colour] = {
    Status.PASSED: Colour("#2e7d32", "green"),
    Status.PARTIAL: Colour("#b26a00", "yellow"),
    Status.FAILED: Colour("#c62828", "red"),
    Status.ERROR: Colour("#c62828", "red"),
    Status.PENDING: Colour("#1565c0", "blue"),
    Status.GRADER_ERROR: Colour("#6a1b9a", "magenta"),  # the grader's failure, not the student's: a TA looks
}
