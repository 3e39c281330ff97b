"""Jobs on a FLARE server: the :class:`Job` handle and the lifecycle commands of ``nvflare job``.

Every function takes the connection (:class:`flarenb.Flare`, default: the current one) and returns a Python
object. Errors are :class:`~flarenb.errors.FlareError` with one line naming the problem and the next step;
``wait`` raises on a terminal failure or a timeout (as the CLI exits 1 and 3), so "Run All" stops there.
"""

from __future__ import annotations

import html
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import _nvflare, validate
from . import metrics as _metrics
from . import session as _session
from ._display import StatusLine
from ._text import terminal_safe
from .downloads import Download, download
from .errors import FlareError
from .vocab import is_terminal, one_line


class JobFailed(FlareError):
    """The job ended in a failure state (as ``nvflare job wait`` exits 1)."""


class JobWaitTimeout(FlareError):
    """The job did not end within the timeout (as ``nvflare job wait`` exits 3)."""


def failure_of(status: str) -> str | None:
    """The CLI's error code for a terminal failure status (None for success or a non-terminal status)."""
    failure = _nvflare.job_terminal_failure_error(str(status))
    return failure[0] if failure else None


def _flare(flare) -> _session.Flare:
    return flare if flare is not None else _session.current()


@contextmanager
def _errors(job_id: str | None, flare: _session.Flare):
    """Turn NVFlare's exceptions into one-line FlareErrors."""
    from nvflare.fuel.flare_api import api_spec as A

    try:
        yield
    except A.JobNotFound:
        raise FlareError(
            f"Job {job_id} not found in study '{flare.study}'",
            "List the jobs with %flare list, or pass --study NAME if it is in another study",
        ) from None
    except A.JobNotDone:
        raise FlareError(
            f"Job {job_id} has not ended yet",
            f"Abort it with %flare abort {job_id}, wait until it has ended (%flare wait {job_id}), then try again",
        ) from None
    except A.JobNotRunning:
        raise FlareError(f"Job {job_id} is not running", "See its state with %flare meta " + str(job_id)) from None
    except A.AuthorizationError as e:
        from .rights import ACTIONS, refused, right_of

        right = right_of(e)
        if right is None:
            raise FlareError(
                f"Not allowed: {one_line(e)}", "Ask the project admin for the right role or study"
            ) from None
        raise refused(flare, right, ACTIONS.get(right, f"run {right}")) from None
    except A.InvalidTarget as e:
        raise FlareError(f"Unknown site: {one_line(e)}", "See the connected sites with %flare info") from None
    except (A.NoReply, A.InternalError, A.CommandError) as e:
        raise FlareError(f"The FLARE server could not do it: {one_line(e)}", "Try again; see %flare info") from None


def _fmt_time(value: Any) -> str:
    if value in (None, ""):
        return "?"
    if isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value)


def job_key(flare: Any, job_id: str) -> tuple:
    """``(kit path, study, job id)`` of ``job_id`` on the connection ``flare``: :attr:`Job.key`, the one key of
    everything kept per job in this kernel."""
    return (flare.kit.path, flare.study, job_id)


@dataclass
class Job:
    """A job on a FLARE server. ``repr`` says whether it was just submitted or reattached to."""

    id: str
    name: str = ""
    flare: Any = field(default=None, repr=False)
    submit_token: str | None = None
    reattached: bool = False
    submit_time: str | None = None
    status_at_submit: str | None = None

    def __post_init__(self) -> None:
        self.id = validate.job_id(self.id)

    @property
    def connection(self) -> _session.Flare:
        """The connection this job is on (the one given, else the current one)."""
        return _flare(self.flare)

    @property
    def key(self) -> tuple:
        """``(kit path, study, job id)``: names this job across every connection of this kernel (the key of its
        shared follower, status, views and downloaded logs); see :func:`job_key`."""
        return job_key(self.connection, self.id)

    # -- reads -------------------------------------------------------------------------------------
    def meta(self) -> dict:
        """The job's metadata (``nvflare job meta``)."""
        f = self.connection
        with _errors(self.id, f):
            return f.call(lambda s: s.get_job_meta(self.id))

    @property
    def status(self) -> str:
        return str(self.meta().get("status"))

    def stats(self, site: str = "all") -> dict:
        """Running statistics of the job (``nvflare job stats``)."""
        return stats(self.id, site=site, flare=self.flare)

    def logs(self, site: str = "server", tail=None, since=None, max_bytes=None, format: str = "text"):
        """A snapshot of the job's logs, as ``nvflare job logs`` (see :mod:`flarenb.logs`)."""
        from .dllogs import job_logs

        # the admin API; where the get_job_log right is not granted, the job's download (once it has ended)
        return job_logs(self, site=site, tail=tail, since=since, max_bytes=max_bytes, fmt=format)

    def metrics(self, site: str | None = None, metric: str | None = None) -> _metrics.Metrics:
        """The job's per-round metrics (round, site or "aggregated", metric, value, weight) — live while it runs on
        the local POC or the simulator, from its result once it has ended (see :mod:`flarenb.metric_sources`)."""
        from .metric_sources import metrics

        return metrics(self, site=site, metric=metric)

    def view(self):
        """The live per-site log widget of this job (see :class:`flarenb.LogView`)."""
        from .live import LogView

        return LogView(self)

    # -- waiting -----------------------------------------------------------------------------------
    def wait(self, timeout: float = 0, interval: float = 2.0, progress: bool = False) -> dict:
        """Block until the job ends; return its meta. Raise :class:`JobFailed` / :class:`JobWaitTimeout`."""
        return wait(self.id, timeout=timeout, interval=interval, progress=progress, flare=self.flare)

    def monitor(self, timeout: float = 0, interval: float = 2.0) -> dict:
        """:meth:`wait`, showing the status and elapsed time in the cell while waiting."""
        return wait(self.id, timeout=timeout, interval=interval, progress=True, flare=self.flare)

    # -- changes -----------------------------------------------------------------------------------
    def abort(self) -> str:
        return abort(self.id, flare=self.flare)

    def delete(self) -> str:
        return delete(self.id, flare=self.flare)

    def clone(self) -> Job:
        return clone(self.id, flare=self.flare)

    def download(self, output_dir: str | None = None, force: bool = False) -> Download:
        return download(self.id, output_dir=output_dir, force=force, flare=self.flare)

    def log_config(self, level: str, site: str = "all") -> dict:
        return log_config(self.id, level, site=site, flare=self.flare)

    # -- display -----------------------------------------------------------------------------------
    def summary(self) -> str:
        return terminal_safe(self._summary())

    def _summary(self) -> str:
        if self.reattached:
            return (
                f"reattached to job {self.id} ({self.status_at_submit or '?'}, submitted at "
                f"{_fmt_time(self.submit_time)})"
            )
        return f"submitted job {self.id}" + (f" ({self.name})" if self.name else "")

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p, cycle):
        p.text(self.summary())

    def record(self) -> dict:
        """What a saved notebook keeps in the cell output's metadata about this job."""
        f = self.flare
        return {
            "job_id": self.id,
            "job_name": self.name,
            "submit_token": self.submit_token,
            "study": getattr(f, "study", None),
            "reattached": self.reattached,
        }

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = self.summary()
        data = {"text/plain": text, "text/html": f"<div class='flarenb-job'>{html.escape(text)}</div>"}
        return data, {"flarenb": self.record()}


def get_job(job_id: str, flare=None) -> Job:
    """A handle on an existing job (checks that it exists)."""
    job_id = validate.job_id(job_id)
    f = _flare(flare)
    with _errors(job_id, f):
        meta = f.call(lambda s: s.get_job_meta(job_id))
    return Job(id=job_id, name=str(meta.get("name", "")), flare=f, submit_time=meta.get("submit_time_iso"))


class JobList(list):
    """``nvflare job list`` rows, shown as a table."""

    COLUMNS = ("job_id", "job_name", "status", "submit_time", "duration")

    def _cells(self):
        return [[terminal_safe(row.get(c, "")) for c in self.COLUMNS] for row in self]

    def __str__(self) -> str:
        if not self:
            return "No jobs."
        rows = [list(self.COLUMNS), *self._cells()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No jobs.</p>"
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self._cells())
        return f"<table class='flarenb-jobs'><tr>{head}</tr>{body}</table>"


def list_jobs(
    name: str | None = None,
    id: str | None = None,
    max: int | None = None,
    reverse: bool = False,
    submit_token: str | None = None,
    flare=None,
) -> JobList:
    """Jobs in the connection's study (``nvflare job list -n -i -m -r --submit-token``)."""
    from nvflare.fuel.flare_api.api_spec import SubmitTokenJobDeleted

    if max is not None and max < 0:
        raise FlareError(f"-m/--max must be a positive number, got {max}", "Example: %flare list -m 10")
    if submit_token is not None:
        _check_token(submit_token)
    f = _flare(flare)
    try:
        with _errors(None, f):
            rows = f.call(
                lambda s: s.list_jobs(
                    name_prefix=name, id_prefix=id, limit=max, reverse=reverse, submit_token=submit_token
                )
            )
    except SubmitTokenJobDeleted as e:
        raise FlareError(
            f"The job submitted with token {submit_token} ({e.job_id}) was deleted",
            "Submit again with a new token",
        ) from None
    return JobList(rows)


def _check_token(token: str) -> str:
    from nvflare.apis.utils.job_submit_token import validate_submit_token

    try:
        return validate_submit_token(token)
    except ValueError:
        raise FlareError(
            f"Invalid submit token {token!r}: it must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            "Example: --submit-token my-experiment-1",
        ) from None


class JobMeta(dict):
    """A job's metadata (``nvflare job meta``); shown as its one-line status."""

    def __str__(self) -> str:
        return terminal_safe(f"job {self.get('job_id')}: {self.get('status')}")

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


MIN_INTERVAL = 0.1  # seconds: a smaller --interval polls the server at this rate, not faster


def wait(job_id: str, timeout: float = 0, interval: float = 2.0, progress: bool = False, flare=None) -> JobMeta:
    """Wait for ``job_id`` to end (``nvflare job wait``; ``progress=True`` is ``nvflare job monitor``).

    ``timeout`` 0 waits without a limit; ``interval`` is the poll period in seconds (at least ``MIN_INTERVAL``).
    """
    job_id = validate.job_id(job_id)
    timeout = validate.seconds("--timeout", timeout, maximum=365 * 86400.0, example="--timeout 600 (0: no limit)")
    interval = validate.seconds("--interval", interval, allow_minimum=False, maximum=3600.0, example="--interval 2")
    interval = max(interval, MIN_INTERVAL)
    f = _flare(flare)
    show = StatusLine(progress)
    start = time.monotonic()
    while True:
        with _errors(job_id, f):
            meta = f.call(lambda s: s.get_job_meta(job_id))
        status = str(meta.get("status"))
        elapsed = time.monotonic() - start
        show(f"job {job_id}: {status} ({elapsed:.0f} s)")
        if is_terminal(status):
            break
        if timeout and elapsed >= timeout:
            raise JobWaitTimeout(
                f"Job {job_id} is still {status} after {timeout:g} s",
                f"Wait longer with %flare wait {job_id} --timeout N, or stop it with %flare abort {job_id}",
            )
        time.sleep(min(interval, max(MIN_INTERVAL, timeout - elapsed)) if timeout else interval)
    code = failure_of(status)
    if code:
        raise JobFailed(
            f"Job {job_id} ended {status} ({code})",
            f"See which site failed with %flare logs {job_id} --site all",
        )
    return JobMeta(meta, job_id=job_id)


def abort(job_id: str, flare=None) -> str:
    """Abort a running job (``nvflare job abort``)."""
    job_id = validate.job_id(job_id)
    f = _flare(flare)
    with _errors(job_id, f):
        status = str(f.call(lambda s: s.get_job_meta(job_id)).get("status"))
        if is_terminal(status):
            raise FlareError(f"Job {job_id} is not running ({status})", "There is nothing to abort")
        f.call(lambda s: s.abort_job(job_id))
    return f"aborted job {job_id}"


def delete(job_id: str, flare=None) -> str:
    """Delete a job and its stored data (``nvflare job delete``)."""
    job_id = validate.job_id(job_id)
    f = _flare(flare)
    with _errors(job_id, f):
        f.call(lambda s: s.delete_job(job_id))
    return f"deleted job {job_id}"


def clone(job_id: str, flare=None) -> Job:
    """Submit a copy of a job (``nvflare job clone``)."""
    job_id = validate.job_id(job_id)
    f = _flare(flare)
    with _errors(job_id, f):
        new_id = f.call(lambda s: s.clone_job(job_id), retry=False)
    return get_job(new_id, flare=f)


def stats(job_id: str, site: str = "all", flare=None) -> dict:
    """Running statistics of a job (``nvflare job stats --site``)."""
    job_id = validate.job_id(job_id)
    f = _flare(flare)
    if site == "server":
        target_type, targets = "server", None
    elif site == "all":
        target_type, targets = "all", None
    else:
        target_type, targets = "client", [site]
    from nvflare.fuel.flare_api.api_spec import JobNotFound, JobNotRunning

    with _errors(job_id, f):
        try:
            return f.call(lambda s: s.show_stats(job_id, target_type, targets))
        except (JobNotFound, JobNotRunning):
            pass  # why: an unknown job, one that ended, or one whose processes are still starting
        status = str(f.call(lambda s: s.get_job_meta(job_id)).get("status"))
    if is_terminal(status):
        raise FlareError(f"Job {job_id} is not running ({status})", "Statistics exist only while a job runs")
    raise FlareError(f"Job {job_id} is {status} but has no statistics yet", "Try again in a few seconds")


LOG_MODES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "concise", "msg_only", "full", "verbose", "reload")


def log_config(job_id: str, level: str, site: str = "all", flare=None) -> dict:
    """Change the log level or mode of a running job (``nvflare job log-config``)."""
    job_id = validate.job_id(job_id)
    if level not in LOG_MODES and level.upper() not in LOG_MODES[:5]:
        raise FlareError(f"Unknown log level or mode {level!r}", f"Use one of: {', '.join(LOG_MODES)}")
    level = level.upper() if level.upper() in LOG_MODES[:5] else level
    f = _flare(flare)
    with _errors(job_id, f):
        status = str(f.call(lambda s: s.get_job_meta(job_id)).get("status"))
        if is_terminal(status):
            raise FlareError(f"Job {job_id} is not running ({status})", "Log levels can only change while it runs")
        f.call(lambda s: s.configure_job_log(job_id, level, target=site))
    return {"job_id": job_id, "config": level, "sites": [site], "status": "applied"}
