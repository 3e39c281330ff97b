"""Where a job's per-round metrics are read from (see :mod:`flarenb.metrics` for the records themselves).

* **Local POC, while the job runs**: the server's run folder on this machine,
  ``<poc>/example_project/prod_00/<server>/<job_id>/metrics/round_metrics.jsonl`` — the file NVFlare's
  ``MetricsArtifactWriter`` appends to, read as it is (complete lines only).
* **Simulator**: ``<workspace>/server/simulate_job/metrics/round_metrics.jsonl``, live and after.
* **A finished job anywhere** (the POC's run folder has moved into the job store by then): the job's download,
  fetched once per job and connection (:func:`flarenb.dllogs.downloaded`), ``workspace/metrics/``.
* **Experiment tracking** the user added with ``add_experiment_tracking(recipe, "mlflow")``: its store in the same
  run folder (``mlflow.db``, or a file store ``mlruns/``), in each of the three places above, joins the records
  (metric names ``mlflow/<key>``, see :mod:`flarenb.mlflow_store`).
* **A running job on a remote deployment**: by cursor — the app command of flarenb's job component (the jobs
  flarenb submits; :func:`flarenb.sources.cursor.read_metrics`) returns the file as it is so far. A job without the
  component, or a user without the ``app_command`` right: no records yet and a one-line notice that they arrive
  when the job ends.

No path from a caller is opened: every path is built from the job id (validated by :class:`flarenb.jobs.Job`) and
folders flarenb knows (the managed POC, the simulation's own workspace, its private download folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import mlflow_store
from .metrics import ROUND_FILE, SUMMARY_FILE, Metrics, read_rows
from .vocab import is_terminal

REMOTE_RUNNING_NOTICE = (
    "This job runs on a remote deployment: its metrics can be read once it ends "
    "(NVFlare serves round_metrics.jsonl only in the job's result; flarenb's job component serves it live, "
    "for jobs flarenb submits to users with the app_command right)."
)


def _read_file(path: Path) -> bytes | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes()
    except OSError:
        return None


def _summary(folder: Path) -> dict | None:
    data = _read_file(folder / SUMMARY_FILE)
    if data is None:
        return None
    try:
        out = json.loads(data)
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def from_folder(job_id: str, folder: Path, *, complete: bool, source: str, notice: str = "") -> Metrics:
    """The metrics in one ``metrics/`` folder (empty if the file is not there yet), then the scalars of the MLflow
    store in the run folder around it (:mod:`flarenb.mlflow_store`), if there is one."""
    data = _read_file(folder / ROUND_FILE)
    rows = read_rows(data) if data else []
    found = Metrics.from_rows(
        job_id, rows, complete=complete, source=source, notice=notice, summary=_summary(folder) if complete else None
    )
    found.records.extend(mlflow_store.read_folder(folder.parent) or [])
    return found


def poc_metrics_dir(poc: Any, job_id: str) -> Path:
    """The metrics folder of ``job_id``'s run on the local POC (exists only while it runs)."""
    return Path(poc.prod_dir) / poc.server_name / job_id / "metrics"


def sim_metrics_dir(sim: Any) -> Path:
    return Path(sim.workspace) / "server" / "simulate_job" / "metrics"


def sim_metrics(sim_id: str) -> Metrics:
    """A local simulation's metrics, live while it runs."""
    from . import sim as _sim

    s = _sim.get(sim_id)
    return from_folder(s.id, sim_metrics_dir(s), complete=is_terminal(s.status), source="simulator")


def job_metrics(job: Any) -> Metrics:
    """``job``'s metrics from the best place this kernel can read them (see the module docstring)."""
    flare = job.connection
    meta = job.meta()
    status = str(meta.get("status"))
    if not is_terminal(status):
        poc = getattr(flare, "poc", None)
        if poc is not None and poc.running:
            return from_folder(job.id, poc_metrics_dir(poc, job.id), complete=False, source="local")
        return remote_running(job, meta)

    from .dllogs import downloaded
    from .jobs import _errors

    with _errors(job.id, flare):
        root = downloaded(flare, job.id).fetch()
    return from_folder(job.id, root / "workspace" / "metrics", complete=True, source="download")


def remote_running(job: Any, meta: dict) -> Metrics:
    """A running remote job's metrics so far, by cursor where the job answers it (else none, and the notice)."""
    from .jobconfig import answers_cursor
    from .rights import rights_of
    from .sources.cursor import ask_job, read_metrics, server_log_readiness, why_unavailable
    from .vocab import one_line

    if not answers_cursor(meta) or rights_of(job.connection).granted("app_command") is False:
        return Metrics(job.id, complete=False, source="", notice=REMOTE_RUNNING_NOTICE)
    if server_log_readiness(job.connection, job.id)() == "waiting":  # asked now, its log would hold an ERROR
        return Metrics(job.id, complete=False, source="cursor")
    try:
        data = read_metrics(ask_job(job.connection, job.id))
    except Exception as e:
        why = why_unavailable(e) or one_line(e, 200)
        return Metrics(job.id, complete=False, source="", notice=f"{REMOTE_RUNNING_NOTICE} Live: {why}.")
    return Metrics.from_rows(job.id, read_rows(data) if data else [], complete=False, source="cursor")


def metrics(job: Any, site: str | None = None, metric: str | None = None) -> Metrics:
    """What :meth:`flarenb.jobs.Job.metrics` returns: :func:`job_metrics`, one-line errors, filtered."""
    from .jobs import _errors

    with _errors(job.id, job.connection):
        found = job_metrics(job)
    return found.filter(site=site, metric=metric)
