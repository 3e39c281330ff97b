"""Several runs' metrics side by side: ``flarenb.compare_metrics({"lr=0.01": job_a, "lr=0.1": job_b}, "loss")``.

Each run is a :class:`flarenb.Job`, a simulation, a job or simulation id, or :class:`flarenb.Metrics` already read
(``job.metrics()``). Per metric, the comparison holds one series per run — the aggregated values by default, or
one site's with ``site=`` — over NVFlare's rounds (0-based, as in ``job.metrics()``), numeric values only. It
shows as one inline SVG chart per metric (one line per run, axes, a legend; drawn by :mod:`flarenb.svgchart`, so
no plotting library is needed and nothing is fetched) and, as text, one table per metric (a row per round, a column
per run). Run labels, site and metric names are text: terminal-safe in the text, escaped in the HTML.

A run still going is compared with the rounds it has so far (its label says ``(running)``); compare again later
for the rest.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import svgchart
from ._text import terminal_safe
from .errors import FlareError
from .metrics import AGGREGATED, Metrics

__all__ = ["Comparison", "compare_metrics"]

CHART_W, CHART_H = 360, 180
MAX_RUNS = svgchart.MAX_SERIES
RUNNING = " (running)"

Points = list[tuple[int, float]]


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _metrics_of(run: Any) -> Metrics:
    """The metrics of one run (see the module docstring for what a run may be)."""
    if isinstance(run, Metrics):
        return run
    if isinstance(run, str):
        if run.startswith("sim-"):
            from .metric_sources import sim_metrics

            return sim_metrics(run)
        from .jobs import get_job

        return get_job(run).metrics()
    read = getattr(run, "metrics", None)
    if callable(read):
        found = read()
        if isinstance(found, Metrics):
            return found
    run_id = getattr(run, "id", None)
    if isinstance(run_id, str) and run_id.startswith("sim-"):
        from .metric_sources import sim_metrics

        return sim_metrics(run_id)
    raise FlareError(
        f"Cannot read the metrics of a {type(run).__name__}",
        "Pass a flarenb Job, a simulation, a job id or job.metrics()",
    )


@dataclass
class Comparison:
    """What :func:`compare_metrics` returns: ``series[metric][label]`` is ``[(round, value), ...]``."""

    site: str
    labels: list[str]
    series: dict[str, dict[str, Points]]
    running: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> list[str]:
        return list(self.series)

    def _name(self, label: str) -> str:
        return label + (RUNNING if label in self.running else "")

    def _title(self, metric: str) -> str:
        return f"{metric} ({self.site}) per round"

    # -- text -------------------------------------------------------------------------------------------------
    def table(self, metric: str) -> str:
        """One metric as text: a row per round, a column per run (blank where a run has no value)."""
        by_run = self.series[metric]
        rounds = sorted({rnd for pts in by_run.values() for rnd, _ in pts})
        values = {label: dict(pts) for label, pts in by_run.items()}
        rows = [["round", *(terminal_safe(self._name(label)) for label in self.labels)]]
        for rnd in rounds:
            cells = [f"{values[label][rnd]:.6g}" if rnd in values[label] else "" for label in self.labels]
            rows.append([str(rnd), *cells])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        if not rounds:
            lines.append("(no values yet)")
        return terminal_safe(self._title(metric)) + "\n" + "\n".join(lines)

    def __str__(self) -> str:
        return "\n\n".join(self.table(m) for m in self.series)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    # -- charts -----------------------------------------------------------------------------------------------
    def svg(self, metric: str | None = None) -> str:
        """The chart of ``metric`` (the first one by default) as a standalone SVG document's markup."""
        metric = self.metrics[0] if metric is None else metric
        if metric not in self.series:
            raise FlareError(f"This comparison has no metric {metric!r}", f"It has: {', '.join(self.metrics)}")
        by_run = self.series[metric]
        rows = [(self._name(label), [(float(r), v) for r, v in by_run[label]]) for label in self.labels]
        return svgchart.line_chart(
            self._title(metric),
            rows,
            width=CHART_W,
            height=CHART_H,
            axes=True,
            legend=True,
            css_class="flarenb-compare-chart",
            max_series=MAX_RUNS,
            line_width=2,
            markers=True,
        )

    def _repr_html_(self) -> str:
        charts = "".join(self.svg(m) for m in self.series)
        more = len(self.labels) - MAX_RUNS
        note = f"<p>{html.escape(f'… {more} more runs are in the text table only')}</p>" if more > 0 else ""
        return (
            f'<div class="flarenb-compare"><div style="display:flex;flex-wrap:wrap;gap:8px">{charts}</div>{note}</div>'
        )


def _wanted(metric: str | Sequence[str] | None, found: list[str], site: str, sites: set[str]) -> list[str]:
    if not found and sites - {site}:
        others = ", ".join(sorted(sites - {site}))
        raise FlareError(f"These runs have no numeric metrics at {site!r}", f"Sites with metrics: {others} (site=...)")
    if metric is None:
        if not found:
            raise FlareError("These runs have no numeric metrics yet", "Compare again once a round has ended")
        return found
    wanted = [metric] if isinstance(metric, str) else list(metric)
    missing = [m for m in wanted if m not in found]
    if missing:
        have = ", ".join(found) if found else "none yet"
        raise FlareError(f"No run has the metric {missing[0]!r}", f"Metrics found: {have}")
    return wanted


def compare_metrics(
    runs: Mapping[str, Any],
    metric: str | Sequence[str] | None = None,
    *,
    site: str = AGGREGATED,
) -> Comparison:
    """Compare the per-round metrics of several runs, one line per run (see the module docstring).

    ``runs``: ``{label: run}``; ``metric``: one metric name, several, or every metric the runs have (the
    default); ``site``: whose values ("aggregated", the server's aggregate, by default).
    """
    if not isinstance(runs, Mapping) or not runs:
        raise FlareError("compare_metrics needs the runs by label", 'Pass {"lr=0.01": job_a, "lr=0.1": job_b}')
    labels = [str(label) for label in runs]
    per_run: dict[str, dict[str, Points]] = {}
    running: set[str] = set()
    found: dict[str, None] = {}  # metric names at ``site``, in order of first appearance
    sites: set[str] = set()  # every site with a numeric value
    for label, run in zip(labels, runs.values(), strict=True):
        m = _metrics_of(run)
        if not m.complete:
            running.add(label)
        series: dict[str, dict[int, float]] = {}
        for r in m.records:
            value = _number(r.value)
            if value is not None:
                sites.add(r.site)
            if r.site == site and value is not None:
                series.setdefault(r.metric, {})[r.round] = value
                found.setdefault(r.metric)
        per_run[label] = {name: sorted(pts.items()) for name, pts in series.items()}
    names = _wanted(metric, list(found), site, sites)
    return Comparison(
        site=site,
        labels=labels,
        series={name: {label: per_run[label].get(name, []) for label in labels} for name in names},
        running=running,
    )
