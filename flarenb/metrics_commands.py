"""``%flare metrics JOB [--site S] [--metric M] [--format json]``: a job's per-round metrics (also on a simulation id).

The Python calls behind it: :meth:`flarenb.jobs.Job.metrics`, and
:func:`flarenb.metric_sources.sim_metrics` for ``sim-…`` ids.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import commands as _commands
from . import jobs as _jobs
from . import metric_sources as _sources
from . import sim as _sim
from .registry import command


def _job_or_sim_id(value: str) -> str:
    return value if _sim.is_sim_id(value) else _commands._job_id(value)


def _metrics_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id", metavar="JOB_ID", type=_job_or_sim_id, help="job id (or a simulation's sim-… id)")
    p.add_argument("--site", help="only this site ('aggregated' for the server's aggregate)")
    p.add_argument("--metric", help="only this metric")
    p.add_argument("--format", choices=["text", "json"], default="text", help="text (default) or json")
    _commands._conn_flags(p)


@command("metrics", "a job's per-round metrics per site (live on the local POC and the simulator)", _metrics_flags)
def _metrics_cmd(ns: argparse.Namespace) -> Any:
    if _sim.is_sim_id(ns.job_id):
        found = _sources.sim_metrics(ns.job_id).filter(site=ns.site, metric=ns.metric)
    else:
        found = _jobs.Job(id=ns.job_id, flare=_commands._conn(ns)).metrics(site=ns.site, metric=ns.metric)
    return found.to_json() if ns.format == "json" else found
