"""A job's per-round metrics, as NVFlare 2.9 records them: pure parsing and the table users see.

Every Recipe built on NVFlare's ``BaseFedJob`` installs ``MetricsArtifactWriter``, which appends one JSON object per
round to ``<server run folder>/metrics/round_metrics.jsonl``::

    {"round": 0, "aggregated_metrics": [{"name": "accuracy", "value": 0.8}],
     "sites": [{"name": "site-1", "metrics": [{"name": "accuracy", "value": 0.7}], "weight": 10, ...}], ...}

Metric names are *values*, not keys, so a site cannot shape the structure. This module turns those objects into
flat :class:`MetricRecord` rows (round, site or ``"aggregated"``, metric, value, weight), reads a file that is still
being written (:class:`JsonlTail`: complete lines only, a torn last line waits for its end) and presents them
(:class:`Metrics`: text table, escaped HTML table, ``to_pandas()``, the JSON data ``--format json`` prints).
Where the file comes from (the POC's run folder, the simulator's workspace, a download) is
:mod:`flarenb.metric_sources`; nothing here touches a server.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ._text import terminal_safe

AGGREGATED = "aggregated"  # the site column of the aggregated (server-side) metrics
ROUND_FILE = "round_metrics.jsonl"
SUMMARY_FILE = "metrics_summary.json"
MAX_LINE = 4 * 1024 * 1024  # NVFlare caps a round record at 1 MiB; a longer "line" is not a record

Value = float | int | str | bool | None


@dataclass(frozen=True)
class MetricRecord:
    """One value: ``round`` (0-based, as NVFlare counts), ``site`` (a site name or ``"aggregated"``)."""

    round: int
    site: str
    metric: str
    value: Value
    weight: float | None = None


def _value(v: Any) -> Value:
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    return str(v)


def _weight(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _named(items: Any) -> Iterator[tuple[str, Value]]:
    if not isinstance(items, list):
        return
    for m in items:
        if isinstance(m, dict) and isinstance(m.get("name"), str):
            yield m["name"], _value(m.get("value"))


def records_of(row: Any) -> list[MetricRecord]:
    """The records of one ``round_metrics.jsonl`` object (``[]`` for anything that is not one)."""
    if not isinstance(row, dict) or isinstance(row.get("round"), bool) or not isinstance(row.get("round"), int):
        return []
    rnd = row["round"]
    out = [MetricRecord(rnd, AGGREGATED, name, value) for name, value in _named(row.get("aggregated_metrics"))]
    for site in row.get("sites") or []:
        if not isinstance(site, dict) or not isinstance(site.get("name"), str):
            continue
        weight = _weight(site.get("weight"))
        out.extend(MetricRecord(rnd, site["name"], name, value, weight) for name, value in _named(site.get("metrics")))
    return out


class JsonlTail:
    """Complete JSON lines out of a file that is being appended to, fed in chunks of any size.

    A torn last line is held until its newline arrives; a line that is not JSON (or longer than
    :data:`MAX_LINE`) is counted in ``bad`` and skipped, never raised.
    """

    def __init__(self) -> None:
        self.offset = 0  # bytes consumed from the start of the file (complete lines only)
        self.bad = 0
        self._partial = b""

    def feed(self, data: bytes) -> list[Any]:
        buf = self._partial + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) > MAX_LINE:
                self.offset, self.bad, self._partial = self.offset + len(buf), self.bad + 1, b""
            else:
                self._partial = buf
            return []
        complete, self._partial = buf[: cut + 1], buf[cut + 1 :]
        self.offset += len(complete)
        out = []
        for line in complete.splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                self.bad += 1
        return out


def read_rows(data: bytes) -> list[Any]:
    """Every complete JSON line of ``data`` (a whole file)."""
    return JsonlTail().feed(data if data.endswith(b"\n") else data + b"\n")


def _fmt(v: Value) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


@dataclass
class Metrics:
    """A job's per-round metrics: a table of :class:`MetricRecord` (see the module docstring).

    ``complete`` is true once the job has ended and the records are all there are; ``source`` says where they were
    read ("local", "simulator", "download"); ``notice`` is one line worth showing with them (e.g. why a running
    remote job has no records yet).
    """

    job_id: str
    records: list[MetricRecord] = field(default_factory=list)
    complete: bool = False
    source: str = ""
    notice: str = ""
    summary: dict | None = None

    COLUMNS = ("round", "site", "metric", "value", "weight")

    @classmethod
    def from_rows(cls, job_id: str, rows: Iterable[Any], **kw: Any) -> Metrics:
        return cls(job_id, [r for row in rows for r in records_of(row)], **kw)

    # -- queries -----------------------------------------------------------------------------------------------
    def filter(self, site: str | None = None, metric: str | None = None) -> Metrics:
        """Only ``site`` ("aggregated" for the server's aggregate) and/or only ``metric``."""
        keep = [r for r in self.records if (site is None or r.site == site) and (metric is None or r.metric == metric)]
        return Metrics(self.job_id, keep, self.complete, self.source, self.notice, self.summary)

    @property
    def rounds(self) -> list[int]:
        return sorted({r.round for r in self.records})

    @property
    def names(self) -> list[str]:
        return sorted({r.metric for r in self.records})

    @property
    def sites(self) -> list[str]:
        """``"aggregated"`` first, then the sites in name order."""
        found = {r.site for r in self.records}
        return ([AGGREGATED] if AGGREGATED in found else []) + sorted(found - {AGGREGATED})

    def series(self, metric: str, site: str = AGGREGATED) -> list[tuple[int, Value]]:
        """``[(round, value), ...]`` of one metric at one site (the aggregate by default)."""
        return [(r.round, r.value) for r in self.records if r.metric == metric and r.site == site]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[MetricRecord]:
        return iter(self.records)

    # -- output ------------------------------------------------------------------------------------------------
    def to_dicts(self) -> list[dict]:
        return [asdict(r) for r in self.records]

    def to_json(self) -> dict:
        """The ``data`` that ``%flare metrics --format json`` prints (the CLI's envelope puts it under "data")."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "complete": self.complete,
            "source": self.source,
            "records": self.to_dicts(),
        }
        if self.notice:
            out["notice"] = self.notice
        return out

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with the columns of :attr:`COLUMNS` (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            from .errors import FlareError

            raise FlareError("to_pandas() needs pandas", "pip install pandas") from None
        return pd.DataFrame(self.to_dicts(), columns=list(self.COLUMNS))

    def _cells(self) -> list[list[str]]:
        return [
            [str(r.round), r.site, r.metric, _fmt(r.value), _fmt(r.weight)]
            for r in sorted(self.records, key=lambda r: (r.round, r.site != AGGREGATED, r.site, r.metric))
        ]

    def _caption(self) -> str:
        if not self.records:
            head = f"job {self.job_id}: no per-round metrics" + ("" if self.complete else " yet")
        else:
            rounds = self.rounds
            head = f"job {self.job_id}: {len(self.records)} values, rounds {rounds[0]}–{rounds[-1]}" + (
                "" if self.complete else " so far (running)"
            )
        return head + (f"\n{self.notice}" if self.notice else "")

    def __str__(self) -> str:
        caption = terminal_safe(self._caption())
        if not self.records:
            return caption
        rows = [list(self.COLUMNS)] + [[terminal_safe(c) for c in row] for row in self._cells()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
        return caption + "\n" + table

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        caption = html.escape(self._caption()).replace("\n", "<br>")
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self._cells())
        return f"<div class='flarenb-metrics'><p>{caption}</p><table><tr>{head}</tr>{body}</table></div>"
