"""Small inline SVG line charts, written as markup in the kernel: no plotting library, no network, no script.

One renderer for every static chart flarenb draws: the saved snapshot's chart per metric
(:func:`flarenb.snapshot.metric_charts`: the aggregate bold, each site thin) and the comparison of runs
(:func:`flarenb.compare.compare_metrics`: one line per run, with axes and a legend).

Every string in a chart (its title, the series' names) comes from sites or users: it passes
:func:`flarenb._text.terminal_safe` and is HTML-escaped, so it is shown as text and never read as markup. Everything
else in the markup is a number this module formats, or one of its own constants.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ._text import terminal_safe

__all__ = ["COLOURS", "Series", "line_chart", "points"]

CHART_W, CHART_H, PAD = 240, 90, 6
TITLE_H = 16  # the title's line
AXIS_W, AXIS_H = 44, 14  # the y labels' column and the x labels' row, with axes
LEGEND_ROW = 14
INSET = 4  # with axes: the space between the frame and the data
MAX_X_LABELS = 12  # with axes: a label per x up to this many distinct values, else the first and the last
MAX_SERIES = 16
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BOLD_COLOUR = "#222"

Series = tuple[str, Sequence[tuple[float, float]]]  # (name, [(x, y), ...])


def points(raw: object) -> list[tuple[float, float]]:
    """The ``(x, y)`` pairs of ``raw`` with two finite numbers each (anything else is left out)."""
    out = []
    for p in raw if isinstance(raw, list | tuple) else []:
        if isinstance(p, list | tuple) and len(p) == 2:
            x, y = p
            if all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
                out.append((float(x), float(y)))
    return out


def _text(s: str) -> str:
    return html.escape(terminal_safe(s))


def _label(v: float) -> str:
    return f"{v:.4g}"


def line_chart(
    title: str,
    rows: Sequence[Series],
    *,
    width: int = CHART_W,
    height: int = CHART_H,
    bold: str | None = None,
    axes: bool = False,
    legend: bool = False,
    css_class: str = "flarenb-metric-static",
    max_series: int = MAX_SERIES,
    line_width: float = 1,
    markers: bool = False,
) -> str:
    """One ``<svg>`` line chart: ``title`` on top, one polyline per series of ``rows`` (at most ``max_series``;
    a series named ``bold`` drawn thick and dark, the others in :data:`COLOURS` by their position in ``rows``, so
    an empty series keeps the others' colours), each with its name as
    a hover title. ``axes`` adds a frame and the first/last x and lowest/highest y as labels; ``legend`` adds a
    row per series under the plot (a swatch and its name); ``markers`` a dot per point; ``line_width`` is the
    width of the series that are not bold. ``height`` is the plot's, the legend adds to it.
    Only finite numbers are expected in ``rows`` (``points()`` filters them)."""
    shown = [(i, name, pts) for i, (name, pts) in enumerate(rows[:max_series]) if pts]  # colour by position
    xs = [x for _, _, pts in shown for x, _ in pts] or [0.0]
    ys = [y for _, _, pts in shown for _, y in pts] or [0.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    lo_x, hi_x, lo_y, hi_y = x0, x1, y0, y1  # the labels: the data's range
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.5, y1 + (abs(y1) or 1) * 0.5
    left, right = (AXIS_W if axes else PAD), width - PAD
    top, bottom = TITLE_H + PAD, height - PAD - (AXIS_H if axes else 0)

    inset = INSET if axes else 0  # keeps the points off the frame

    def sx(x: float) -> str:
        return f"{left + inset + (x - x0) / (x1 - x0) * (right - left - 2 * inset):.1f}"

    def sy(y: float) -> str:
        return f"{bottom - inset - (y - y0) / (y1 - y0) * (bottom - top - 2 * inset):.1f}"

    total_h = height + (LEGEND_ROW * len(shown) + PAD if legend else 0)
    name = _text(title)
    parts = [
        f'<svg class="{css_class}" data-metric="{name}" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" xmlns="http://www.w3.org/2000/svg" role="img">',
        f"<title>{name}</title>",
        f'<text x="{PAD}" y="12" font-size="11" font-family="sans-serif">{name}</text>',
    ]
    if axes:
        font = 'font-size="9" font-family="sans-serif" fill="#555"'
        parts.append(
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#ccc"/>'
        )
        parts.append(f'<text x="{left - 3}" y="{sy(hi_y)}" text-anchor="end" dy="3" {font}>{_label(hi_y)}</text>')
        if lo_y != hi_y:
            parts.append(f'<text x="{left - 3}" y="{sy(lo_y)}" text-anchor="end" dy="3" {font}>{_label(lo_y)}</text>')
        base = bottom + AXIS_H - 3
        ticks = sorted(set(xs))
        for x in ticks if len(ticks) <= MAX_X_LABELS else [lo_x, hi_x]:
            parts.append(f'<text x="{sx(x)}" y="{base}" text-anchor="middle" {font}>{_label(x)}</text>')
    for row, (i, series, pts) in enumerate(shown):
        thick = series == bold
        colour = BOLD_COLOUR if thick else COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{sx(x)},{sy(y)}" for x, y in pts)
        label = _text(series)
        parts.append(
            f'<polyline data-site="{label}" fill="none" stroke="{colour}" '
            f'stroke-width="{2.5 if thick else line_width}" points="{coords}"><title>{label}'
            "</title></polyline>"
        )
        if markers:
            parts.extend(f'<circle cx="{sx(x)}" cy="{sy(y)}" r="2.5" fill="{colour}"/>' for x, y in pts)
        if legend:
            y = height + PAD + LEGEND_ROW * row + LEGEND_ROW // 2
            parts.append(
                f'<line x1="{left}" y1="{y}" x2="{left + 16}" y2="{y}" stroke="{colour}" '
                f'stroke-width="{2.5 if thick else 2}"/>'
                f'<text x="{left + 22}" y="{y + 4}" font-size="11" font-family="sans-serif">{label}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
