"""Small inline SVG charts for reports: a score histogram, a loss curve with threshold lines, a meter.

Reports are single files read offline, on phones and on paper, so charts are plain SVG strings drawn here
rather than a plotting library or a script.  Every text that reaches the SVG goes through `escape`, and every
number through `_num`, so student-derived values (a NaN loss, a huge float) can never break the markup.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

from grader.palette import STATUS_COLOURS
from grader.results import Status

__all__ = ["Mark", "histogram", "loss_curve", "meter"]

# Chosen to stay distinct in greyscale print; a threshold line and a pass mark in their statuses' colours
# (grader.palette, as the reports' CSS).
_INK = "#222"
_GRID = "#ddd"
_BAR = "#4a6fa5"
_LINE = STATUS_COLOURS[Status.FAILED].hex
_MARK = STATUS_COLOURS[Status.PASSED].hex


@dataclass(frozen=True)
class Mark:
    """A labelled horizontal (curve) or vertical (meter) reference line, e.g. a pass threshold."""

    label: str
    value: float


def _num(x: float) -> str:
    """Coordinates with two decimals: short markup, and never 'nan' or 'inf' in an attribute."""
    if not math.isfinite(x):
        return "0"
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _label(x: float) -> str:
    return f"{x:.3g}"


def _open(width: int, height: int, title: str) -> list[str]:
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px" role="img" aria-label="{t}" font-family="system-ui,sans-serif" font-size="11">',
        f"<title>{t}</title>",
    ]


def histogram(values: Sequence[float], *, lo: float, hi: float, bins: int = 10, title: str = "scores") -> str:
    """Counts of `values` in `bins` equal bins over [lo, hi]; the top bin includes `hi` (full marks)."""
    width, height, left, bottom, top = 480, 200, 34, 28, 12
    bins = max(1, bins)
    span = (hi - lo) or 1.0
    counts = [0] * bins
    for v in values:
        if math.isfinite(v):
            counts[min(bins - 1, max(0, int((v - lo) / span * bins)))] += 1
    peak = max(counts) or 1
    plot_w, plot_h = width - left - 8, height - bottom - top
    out = _open(width, height, title)
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="{_INK}"/>')
    for tick in sorted({0, peak}):
        y = top + plot_h - tick / peak * plot_h
        out.append(f'<text x="{left - 4}" y="{_num(y + 4)}" text-anchor="end" fill="{_INK}">{tick}</text>')
    bar_w = plot_w / bins
    for i, count in enumerate(counts):
        x0 = lo + span * i / bins
        x1 = lo + span * (i + 1) / bins
        h = count / peak * plot_h
        x = left + i * bar_w
        name = f"{_label(x0)}–{_label(x1)}: {count}"
        out.append(
            f'<rect x="{_num(x + 1)}" y="{_num(top + plot_h - h)}" width="{_num(bar_w - 2)}" height="{_num(h)}" '
            f'fill="{_BAR}"><title>{escape(name)}</title></rect>'
        )
        if count:
            out.append(
                f'<text x="{_num(x + bar_w / 2)}" y="{_num(top + plot_h - h - 2)}" text-anchor="middle" '
                f'fill="{_INK}">{count}</text>'
            )
    for i in range(bins + 1):
        if bins <= 10 or i % 2 == 0:
            x = left + i * bar_w
            out.append(
                f'<text x="{_num(x)}" y="{height - 10}" text-anchor="middle" fill="{_INK}">'
                f"{_label(lo + span * i / bins)}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _loss_scale(finite: list[float]) -> tuple[bool, float, float]:
    """(log scale?, low, high).  Diverging runs span decades; a linear axis would flatten the useful part.

    A linear axis of non-negative losses starts at 0: an axis zoomed onto 2.29..2.36 draws a flat run at
    chance level as a steep drop.
    """
    low, high = min(finite), max(finite)
    log = low > 0 and high / low > 100
    if log:
        return True, math.log10(low), math.log10(high)
    if low >= 0:
        low = 0.0
    if high == low:
        return False, low - 1.0, high + 1.0
    return False, low, high


def _finite_runs(values: Sequence[float]) -> list[list[int]]:
    """Indices of consecutive finite values: a gap (nan) breaks the line instead of being bridged."""
    runs: list[list[int]] = [[]]
    for i, v in enumerate(values):
        if math.isfinite(v):
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def loss_curve(
    losses: Sequence[float],
    marks: Sequence[Mark] = (),
    *,
    title: str = "training loss",
    x_label: str = "",
    y_label: str = "",
) -> str:
    """The loss per step/epoch as a polyline; `marks` are horizontal reference lines (the chance level).

    Non-finite losses (nan, inf) are not drawn; a red tick on the x axis shows where they occurred.
    """
    width, height, left, bottom, top, right = 480, 236, 56, 44, 12, 96
    values = [float(v) for v in losses]
    finite = [v for v in values if math.isfinite(v)] + [m.value for m in marks if math.isfinite(m.value)]
    out = _open(width, height, title)
    if not finite:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{_INK}">no finite loss values</text>')
        out.append("</svg>")
        return "\n".join(out)
    log, low, high = _loss_scale(finite)
    plot_w, plot_h = width - left - right, height - bottom - top
    n = max(len(values) - 1, 1)

    def x_of(i: int) -> float:
        return left + i / n * plot_w

    def y_of(v: float) -> float:
        t = math.log10(v) if log else v
        return top + plot_h - (t - low) / ((high - low) or 1.0) * plot_h

    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{_GRID}"/>')
    for t, text in ((low, _label(10**low if log else low)), (high, _label(10**high if log else high))):
        y = top + plot_h - (t - low) / ((high - low) or 1.0) * plot_h
        out.append(f'<text x="{left - 4}" y="{_num(y + 4)}" text-anchor="end" fill="{_INK}">{text}</text>')
    axis_y = top + plot_h + 14
    out.append(f'<text x="{left}" y="{axis_y}" fill="{_INK}">1</text>')
    out.append(f'<text x="{left + plot_w}" y="{axis_y}" text-anchor="end" fill="{_INK}">{len(values)}</text>')
    if x_label or log:
        caption = escape(x_label + (" (loss on a log scale)" if log else ""))
        out.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" fill="{_INK}">{caption}</text>')
    if y_label:
        mid = _num(top + plot_h / 2)
        out.append(
            f'<text x="12" y="{mid}" text-anchor="middle" fill="{_INK}" transform="rotate(-90 12 {mid})">'
            f"{escape(y_label)}</text>"
        )
    for run in _finite_runs(values):
        points = [f"{_num(x_of(i))},{_num(y_of(values[i]))}" for i in run]
        if len(points) == 1:
            cx, cy = points[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{_BAR}"/>')
        else:
            out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{_BAR}" stroke-width="2"/>')
    for i, v in enumerate(values):
        if not math.isfinite(v):
            gap = _num(x_of(i))
            out.append(f'<line x1="{gap}" y1="{top + plot_h}" x2="{gap}" y2="{top + plot_h - 8}" stroke="{_LINE}" stroke-width="2"/>')
    for mark in marks:
        if not math.isfinite(mark.value) or (log and mark.value <= 0):
            continue
        my = _num(y_of(mark.value))
        out.append(
            f'<line x1="{left}" y1="{my}" x2="{left + plot_w}" y2="{my}" stroke="{_LINE}" stroke-dasharray="5 3"/>'
            f'<text x="{left + plot_w + 4}" y="{my}" dy="4" fill="{_LINE}">{escape(mark.label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def meter(value: float, marks: Sequence[Mark] = (), *, lo: float = 0.0, hi: float = 1.0, title: str = "accuracy") -> str:
    """A horizontal bar filled to `value` on [lo, hi], with vertical lines at `marks` (e.g. credit tiers)."""
    width, height, left, right = 480, 64, 8, 8
    bar_y, bar_h = 18, 16
    span = (hi - lo) or 1.0
    plot_w = width - left - right

    def x_of(v: float) -> float:
        return left + min(max((v - lo) / span, 0.0), 1.0) * plot_w

    out = _open(width, height, title)
    out.append(f'<rect x="{left}" y="{bar_y}" width="{plot_w}" height="{bar_h}" fill="#f0f0f0" stroke="{_GRID}"/>')
    if math.isfinite(value):
        out.append(
            f'<rect x="{left}" y="{bar_y}" width="{_num(x_of(value) - left)}" height="{bar_h}" fill="{_BAR}"/>'
            f'<text x="{_num(min(x_of(value), width - 110))}" y="{bar_y - 4}" fill="{_INK}">{escape(title)} {value:.4g}</text>'
        )
    for i, mark in enumerate(sorted((m for m in marks if math.isfinite(m.value)), key=lambda m: m.value)):
        x = x_of(mark.value)
        # Labels alternate rows so that close tiers stay readable; near the right edge they end at the line.
        anchor = "end" if x > width - 50 else "start" if x < 50 else "middle"
        y = bar_y + bar_h + 12 + (i % 2) * 11
        out.append(
            f'<line x1="{_num(x)}" y1="{bar_y - 2}" x2="{_num(x)}" y2="{bar_y + bar_h + 2}" stroke="{_MARK}" stroke-width="2"/>'
            f'<text x="{_num(x)}" y="{y}" text-anchor="{anchor}" fill="{_MARK}">{escape(mark.label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
