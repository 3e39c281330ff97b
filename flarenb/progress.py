"""Round progress and the metrics chart data of a live view: pure functions over plain data.

From a job's :class:`~flarenb.metrics.Metrics` (NVFlare's ``round_metrics.jsonl``), the view's sites and their
states, the moment each round's record was first seen (monotonic seconds) and the number of rounds in the job's
config, build the two model traits the front end draws (:class:`flarenb.widget.LogView`):

* ``progress``: ``{}`` while no round has results, else ``{"round": k (0-based, the latest round with results),
  "total": N | None, "sites": {site: "reported" | "training" | "silent"}, "round_seconds": s | None,
  "eta_seconds": s | None}``. A site in round k's record has ``reported``; another site is ``training``, unless
  its log view says it is quiet or unavailable (``silent``). ``round_seconds`` is the median gap between rounds
  seen at different moments, once there are two such gaps; ``eta_seconds`` is given only when the total is known
  and the rounds are regular (every gap within ±50 % of the median) — never a guess.
* ``metrics``: ``{"series": [{"metric", "site" (a site or "aggregated"), "points": [[round, value], ...]}]}``
  with numeric, finite values only (text and booleans are left out), or ``{}``. It is resent whole as it grows, so
  it is bounded: at most :data:`MAX_SERIES` series of at most :data:`MAX_POINTS` points (the chart's width: the
  first, the last and each bucket's lowest and highest value between them, so spikes survive), each value rounded
  to :data:`SIGNIFICANT` digits (the charts show 4); ``job.metrics()`` has every value. A live feed keeps a
  :class:`SeriesIndex` up to date record by record instead of rebuilding it from all records per push.

``num_rounds(run_dir)`` reads the total from the job's server config in its run folder.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .metrics import AGGREGATED, MetricRecord, Metrics

__all__ = ["SeriesIndex", "metrics_payload", "num_rounds", "progress", "round_seconds", "site_progress"]

SERVER = "server"  # the view's lane of the server: it trains nothing
SILENT_STATES = frozenset({"quiet", "unavailable"})  # a view state (flarenb.vocab) in which a site is "silent"
REGULAR = 0.5  # rounds are regular when every gap is within ±50 % of the median
SERVER_CONFIG = "config_fed_server.json"
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_SERIES = 256  # series in the metrics trait
MAX_POINTS = 300  # points of one series in the metrics trait (js/src/charts.ts draws at most as many)
SIGNIFICANT = 7  # significant digits of a value in the metrics trait


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


# ------------------------------------------------------------------------------------------ metrics
def _thin(values: list[float], most: int) -> list[int]:
    """The indexes of at most ``most`` of ``values`` (by round): the first, the last, and the lowest and highest
    value of each bucket between them, in order (as ``downsample`` in js/src/charts.ts: the chart draws them as
    they are)."""
    n = len(values)
    if n <= max(most, 2):
        return list(range(n))
    inner, buckets = n - 2, max(1, (most - 2) // 2)
    value = values.__getitem__
    out = [0]
    for b in range(buckets):
        start, end = 1 + (b * inner) // buckets, 1 + ((b + 1) * inner) // buckets
        if end <= start:
            continue
        lo, hi = min(range(start, end), key=value), max(range(start, end), key=value)
        out.extend([lo] if lo == hi else [min(lo, hi), max(lo, hi)])
    out.append(n - 1)
    return out


def _compact(v: float) -> float:
    return float(f"{v:.{SIGNIFICANT}g}")


class SeriesIndex:
    """The numeric points of each (metric, site), in order of first appearance, kept up to date as records come
    (:meth:`add`); :meth:`payload` is the ``metrics`` trait. ``version`` counts the changes."""

    def __init__(self, records: Iterable[MetricRecord] = ()) -> None:
        self._points: dict[tuple[str, str], dict[int, float]] = {}
        self._order: dict[str, int] = {}  # metric -> order of first appearance
        self.version = 0
        self.add(records)

    def add(self, records: Iterable[MetricRecord]) -> None:
        for r in records:
            value = _number(r.value)
            if value is None:
                continue
            self._order.setdefault(r.metric, len(self._order))
            self._points.setdefault((r.metric, r.site), {})[r.round] = _compact(value)
            self.version += 1

    def payload(self, max_series: int = MAX_SERIES, max_points: int = MAX_POINTS) -> dict:
        if not self._points:
            return {}
        order = self._order
        keys = sorted(self._points, key=lambda k: (order[k[0]], k[1] != AGGREGATED, k[1]))
        series = []
        for m, s in keys[:max_series]:
            by_round = self._points[(m, s)]
            rounds, values = list(by_round), list(by_round.values())
            if rounds != sorted(rounds):  # a round came late (a file read again): by round
                rounds.sort()
                values = [by_round[r] for r in rounds]
            points = [[rounds[i], values[i]] for i in _thin(values, max_points)]
            series.append({"metric": m, "site": s, "points": points})
        return {"series": series}


def metrics_payload(metrics: Metrics | None, max_series: int = MAX_SERIES, max_points: int = MAX_POINTS) -> dict:
    """The ``metrics`` trait: one series per (metric, site) with numeric values, in order of first appearance
    (aggregated first within a metric), bounded (see the module docstring); ``{}`` when there is none."""
    if metrics is None:
        return {}
    return SeriesIndex(metrics.records).payload(max_series, max_points)


# ------------------------------------------------------------------------------------------ progress
def round_seconds(arrivals: Mapping[int, float]) -> tuple[float | None, bool]:
    """(the median gap between consecutive rounds seen at different moments — None before two such gaps —,
    whether the rounds are regular)."""
    rounds = sorted(arrivals)
    gaps = [
        arrivals[b] - arrivals[a] for a, b in itertools.pairwise(rounds) if b == a + 1 and arrivals[b] > arrivals[a]
    ]
    if len(gaps) < 2:
        return None, False
    median = statistics.median(gaps)
    regular = median > 0 and all(abs(g - median) <= REGULAR * median for g in gaps)
    return median, regular


def site_progress(
    sites: Iterable[str], reported: Iterable[str], states: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """``{site: "reported" | "training" | "silent"}`` of the training sites (the view's sites but the server, and
    every site in the metrics), in the order given."""
    done = set(reported)
    out: dict[str, str] = {}
    for site in [*sites, *sorted(done)]:
        if site in out or site in (SERVER, AGGREGATED):
            continue
        st = (states or {}).get(site)
        state = st.get("state") if isinstance(st, Mapping) else st
        out[site] = "reported" if site in done else "silent" if state in SILENT_STATES else "training"
    return out


def progress(
    metrics: Metrics | None,
    *,
    sites: Iterable[str] = (),
    states: Mapping[str, Any] | None = None,
    arrivals: Mapping[int, float] | None = None,
    total: int | None = None,
) -> dict:
    """The ``progress`` trait (see the module docstring); ``{}`` while no round has results.

    ``sites``: the view's sites (the server is left out); ``states``: the view's ``site_states`` (``{site:
    {"state": ...}}`` or ``{site: state}``); ``arrivals``: ``{round: monotonic seconds it was first seen}``;
    ``total``: the number of rounds (from the job's config), if known.
    """
    rounds = metrics.rounds if metrics is not None else []
    if not rounds:
        return {}
    latest = rounds[-1]
    reported = {r.site for r in metrics.records if r.round == latest and r.site != AGGREGATED} if metrics else set()
    total = total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else None
    if total is not None and latest + 1 > total:  # the config said less than the job ran (e.g. resumed): unknown
        total = None
    per_round, regular = round_seconds(arrivals or {})
    eta = None
    if per_round is not None and regular and total is not None and total - latest - 1 > 0:
        eta = per_round * (total - latest - 1)
    return {
        "round": latest,
        "total": total,
        "sites": site_progress(sites, reported, states),
        "round_seconds": per_round,
        "eta_seconds": eta,
    }


# ------------------------------------------------------------------------------------------ total rounds
def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _default_rounds(path: object) -> int | None:
    """The default ``num_rounds`` of one of NVFlare's own workflow classes (a recipe leaves a default out of the
    config it exports). Only ``nvflare.*`` is imported: a job's custom code is never run in the kernel."""
    if not isinstance(path, str) or not path.startswith("nvflare.") or path.count(".") < 2:
        return None
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        for klass in inspect.getmro(cls):  # a subclass may pass it on in **kwargs
            param = inspect.signature(vars(klass).get("__init__", object.__init__)).parameters.get("num_rounds")
            if param is not None:
                return _int(param.default)
    except Exception:
        return None
    return None


def rounds_in_config(config: object) -> int | None:
    """``num_rounds`` of the first workflow of a parsed ``config_fed_server.json`` that has one (its args, else
    the default of NVFlare's workflow class)."""
    workflows = config.get("workflows") if isinstance(config, dict) else None
    for wf in workflows if isinstance(workflows, list) else []:
        if not isinstance(wf, dict):
            continue
        args = wf.get("args")
        found = _int(args.get("num_rounds")) if isinstance(args, dict) else None
        if found is None and not (isinstance(args, dict) and "num_rounds" in args):
            found = _default_rounds(wf.get("path"))
        if found is not None:
            return found
    return None


def num_rounds(run_dir: str | Path | None) -> int | None:
    """The number of rounds of the job whose run folder (the server's ``<job_id>/`` or ``simulate_job/``, or a
    download's ``workspace/``) is ``run_dir``: from ``app_server/config/config_fed_server.json`` (or any
    ``app_*``); None when it cannot be told."""
    if run_dir is None:
        return None
    root = Path(run_dir)
    try:
        apps = [root / "app_server"] + sorted(p for p in root.glob("app_*") if p.name != "app_server")
    except OSError:
        return None
    for app in apps:
        path = app / "config" / SERVER_CONFIG
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
                continue
            found = rounds_in_config(json.loads(path.read_bytes()))
        except (OSError, ValueError):
            continue
        if found is not None:
            return found
    return None
