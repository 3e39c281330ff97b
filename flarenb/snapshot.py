"""The static snapshot of a log view: what a saved notebook keeps of a job's logs (``text/plain`` and ``text/html``).

Pure functions over plain data — the job's id, name and status, its sites and their states, the last lines of
each site — so the rendering is tested without a widget (:class:`flarenb.widget.LogView` passes its state in).

While the job is followed, the snapshot is the title only: what is on screen then is a moment of a live run. Once
following ended, it is the header (final status, problem, submit time, duration, site states) and the last
``tail`` lines of each site, server first; when the job has per-round metrics, the header says "round k+1 of N"
and each metric gets one text line (its last values) and, in the HTML, a small inline SVG line chart (the aggregate
bold, each site thin; :func:`metric_charts`, drawn by :mod:`flarenb.svgchart`). Remote text (site names, states,
reasons, lines, metric names) passes :func:`flarenb._text.terminal_safe` (no escape sequence or control character
reaches a saved output) and is escaped in the HTML (an SVG holds escaped names and numeric coordinates only);
every log line starts with :data:`LINE_PREFIX`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from . import svgchart
from ._text import terminal_safe
from .vocab import site_order

__all__ = ["LINE_PREFIX", "Chart", "Snapshot", "header", "metric_charts", "render", "round_text", "site_lines", "title"]

#: Prefix of every log line in the static snapshot (lets an nbval sanitizer mask log text, which a real
#: distributed run never reproduces byte for byte, while the snapshot's structure is still compared).
LINE_PREFIX = "│ "

NO_LINES = "(no lines)"


class _HasText(Protocol):
    @property
    def text(self) -> str: ...


Line = str | _HasText  # a line's text, or a line with its ``text`` (a :class:`flarenb.intake.LogLine`)


class Chart(NamedTuple):
    """One metric in the snapshot: its line of text (the last values) and its inline SVG (markup, all escaped)."""

    metric: str
    text: str
    svg: str


class Snapshot(NamedTuple):
    """A rendered snapshot: its header (may span two lines), one block of text lines per site, one chart per
    metric."""

    header: str
    blocks: list[tuple[str, list[str]]]
    charts: list[Chart] | tuple[Chart, ...] = ()

    def lines(self) -> list[str]:
        """The ``text/plain`` lines: the header, the metrics (one line each), then ``===== site =====`` and the
        site's lines, per site."""
        out = [self.header]
        if self.charts:
            out.append(METRICS_TITLE)
            out.extend(c.text for c in self.charts)
        for site, lines in self.blocks:
            out.append(f"===== {site} =====")
            out.extend(lines)
        return out

    def text(self) -> str:
        """The ``text/plain`` output (no trailing newline)."""
        return "\n".join(self.lines())

    def html(self) -> str:
        """The ``text/html`` output: the same text, escaped, in ``<pre>`` blocks."""
        parts = [
            '<div class="flarenb-logview-static">',
            f"<pre><strong>{html.escape(self.header)}</strong></pre>",
        ]
        if self.charts:
            parts.append('<div class="flarenb-metrics-static" style="display:flex;flex-wrap:wrap;gap:8px">')
            parts.extend(c.svg for c in self.charts)
            parts.append("</div>")
        for site, site_lines in self.blocks:
            parts.append(f"<pre>===== {html.escape(site)} =====\n")
            parts.append(html.escape("\n".join(site_lines)))
            parts.append("</pre>")
        parts.append("</div>")
        return "".join(parts)


def title(job_id: str, job_name: str = "") -> str:
    """``flarenb job NAME (ID)``, or ``flarenb job ID`` without a name."""
    return f"flarenb job {job_name} ({job_id})" if job_name else f"flarenb job {job_id}"


def round_text(progress: Mapping[str, Any] | None) -> str:
    """``round k+1 of N`` (``round k+1`` without a total) of a ``progress`` trait; "" while it is ``{}``."""
    rnd, total = (progress or {}).get("round"), (progress or {}).get("total")
    if not isinstance(rnd, int) or not _int(rnd):
        return ""
    return f"round {rnd + 1} of {total}" if _int(total) else f"round {rnd + 1}"


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def header(
    job_id: str,
    job_name: str = "",
    *,
    live: bool,
    status: str = "",
    problem: str | None = None,
    submit_time: str | None = None,
    duration: str | None = None,
    sites: Sequence[str] = (),
    site_states: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Mapping[str, Any] | None = None,
) -> str:
    """The snapshot's header (not yet made terminal-safe): the title and, once following ended, the final status,
    the round reached ("round k+1 of N"), the problem, submit time and duration, and a second line with the state of
    each site that has one."""
    text = title(job_id, job_name)
    if live:
        text += " — following live; this snapshot is replaced when the job ends"
        return text + (f" — {problem}" if problem else "")
    text += f" — {status}"
    if round_text(progress):
        text += f" — {round_text(progress)}"
    if problem:
        text += f" — {problem}"
    if submit_time:
        text += f" — submitted {submit_time}"
    if duration:
        text += f" — duration {duration}"
    states = []
    for site in sites:
        st = (site_states or {}).get(site)
        if st:
            label = str(st.get("state")) + (f" ({st['reason']})" if st.get("reason") else "")
            states.append(f"{site}: {label}")
    if states:
        text += "\nsites: " + " · ".join(states)
    return text


def site_lines(lines: Sequence[Line], tail: int, received: int | None = None, dropped: int = 0) -> list[str]:
    """The block of one site: its last ``tail`` lines (terminal-safe, prefixed), after a note of how many earlier
    lines there were (``received`` in all; ``dropped`` of them left the view's history), or ``(no lines)``."""
    n = min(max(0, int(tail)), len(lines))
    shown = [terminal_safe(_text(lines[i])) for i in range(len(lines) - n, len(lines))]
    older = (len(lines) if received is None else received) - len(shown)
    if older > 0:
        note = f" ({dropped} dropped from history: download for the complete log)" if dropped else ""
        shown.insert(0, f"… {older} earlier lines{note}")
    return [LINE_PREFIX + x for x in shown] or [NO_LINES]


def render(
    job_id: str,
    job_name: str = "",
    *,
    live: bool,
    status: str = "",
    problem: str | None = None,
    submit_time: str | None = None,
    duration: str | None = None,
    sites: Sequence[str] = (),
    site_states: Mapping[str, Mapping[str, Any]] | None = None,
    lines: Mapping[str, Sequence[Line]] | None = None,
    received: Mapping[str, int] | None = None,
    dropped: Mapping[str, int] | None = None,
    tail: int = 20,
    progress: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Snapshot:
    """The snapshot of a job's view (see the module docstring).

    ``lines`` holds each site's lines (texts, or lines with a ``text``), oldest first: the last ``tail`` are shown
    (passing only those is enough; the sequence is indexed from its end, so a ``deque`` is fine). ``received`` says
    how many lines each site sent in all (default: as many as given), ``dropped`` how many of them left the view's
    history. Sites are shown server first, then in natural order. ``progress`` and ``metrics`` are the view's traits
    of those names (:mod:`flarenb.progress`).
    """
    sites = site_order(sites)
    head = header(
        job_id,
        job_name,
        live=live,
        status=status,
        problem=problem,
        submit_time=submit_time,
        duration=duration,
        sites=sites,
        site_states=site_states,
        progress=progress,
    )
    if live:
        return Snapshot(terminal_safe(head), [])
    lines, received, dropped = lines or {}, received or {}, dropped or {}
    blocks = [
        (terminal_safe(site), site_lines(lines.get(site, ()), tail, received.get(site), dropped.get(site, 0)))
        for site in sites
    ]
    return Snapshot(terminal_safe(head), blocks, metric_charts(metrics))


def _text(line: Line) -> str:
    return line if isinstance(line, str) else line.text


# ------------------------------------------------------------------------------------------ metric charts
METRICS_TITLE = "===== metrics ====="
MAX_CHARTS = 12  # metrics drawn (the rest are counted in one line)
MAX_SERIES = svgchart.MAX_SERIES  # series per chart
AGGREGATED = "aggregated"


def _series(metrics: Mapping[str, Any] | None) -> dict[str, list[tuple[str, list[tuple[float, float]]]]]:
    """``{metric: [(site, points), ...]}`` of a ``metrics`` trait, in order; the aggregate first in each."""
    found: dict[str, list[tuple[str, list[tuple[float, float]]]]] = {}
    raw = (metrics or {}).get("series")
    for s in raw if isinstance(raw, list) else []:
        if not isinstance(s, Mapping) or not isinstance(s.get("metric"), str) or not isinstance(s.get("site"), str):
            continue
        pts = svgchart.points(s.get("points"))
        if pts:
            found.setdefault(s["metric"], []).append((s["site"], pts))
    for rows in found.values():
        rows.sort(key=lambda r: r[0] != AGGREGATED)
    return found


def _num(v: float) -> str:
    return f"{v:.6g}"


def _svg(metric: str, rows: list[tuple[str, list[tuple[float, float]]]]) -> str:
    return svgchart.line_chart(metric, rows, bold=AGGREGATED)


def _text_line(metric: str, rows: list[tuple[str, list[tuple[float, float]]]]) -> str:
    last = int(max(x for _, pts in rows for x, _ in pts))
    values = ", ".join(f"{site} {_num(pts[-1][1])}" for site, pts in rows[:MAX_SERIES])
    more = f" (+{len(rows) - MAX_SERIES} sites)" if len(rows) > MAX_SERIES else ""
    return terminal_safe(f"{metric} (round {last + 1}): {values}{more}")


def metric_charts(metrics: Mapping[str, Any] | None) -> list[Chart]:
    """One :class:`Chart` per metric of a ``metrics`` trait (at most :data:`MAX_CHARTS`, then one chart-less line
    counting the rest); numeric points only; ``[]`` without any."""
    found = _series(metrics)
    charts = [Chart(m, _text_line(m, rows), _svg(m, rows)) for m, rows in list(found.items())[:MAX_CHARTS]]
    if len(found) > MAX_CHARTS:
        note = f"… {len(found) - MAX_CHARTS} more metrics (job.metrics() has them all)"
        charts.append(Chart("", note, f"<p>{html.escape(note)}</p>"))
    return charts
