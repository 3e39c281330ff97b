"""A finished job's logs from its download, for users the server does not let read logs.

NVFlare 2.9's default policy grants ``get_job_log`` only to ``project_admin``, while a ``lead`` may download its own
jobs — and the download holds every site's ``log.txt`` (the server's at ``workspace/log.txt``, each client's
streamed copy at ``workspace/<site>/log.txt``: byte for byte what ``get_job_logs`` returns). So when
``get_job_log`` is refused, ``%flare logs`` / ``job.logs()`` / the live view read the job's download instead:

* :func:`downloaded` — one download per job and connection, fetched once (on first use), kept in a private
  temporary folder removed at exit;
* :meth:`DownloadedLogs.reply` — the same ``{'logs': {site: text}, 'unavailable': {site: reason}}`` shape as
  ``Session.get_job_logs``, so :func:`flarenb.logs.get_logs` applies the same flags;
* :func:`job_logs` — what ``job.logs()`` runs: the admin API first, the download when ``get_job_log`` is refused
  (one line in the output says so), a one-line :class:`~flarenb.rights.RightRefused` while the job still runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from .rights import is_refusal, refused, right_of, rights_of

_SERVER_DIRS = {"app_server", "server", "metrics", "models", "cross_site_val", "local", "startup"}
_root: Path | None = None
_cache: dict[tuple[str, str, str], DownloadedLogs] = {}
_lock = threading.Lock()


def _private_root() -> Path:
    global _root
    with _lock:
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix="flarenb-joblogs-"))
            atexit.register(forget_all)
        return _root


def forget_all() -> None:
    """Remove every cached download (only the folder this module created)."""
    global _root
    with _lock:
        root, _root = _root, None
        _cache.clear()
    if root is not None and root.name.startswith("flarenb-joblogs-") and root.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(root, ignore_errors=True)


class DownloadedLogs:
    """The logs in one job's download (see the module docstring)."""

    def __init__(self, flare: Any, job_id: str):
        self.flare, self.job_id = flare, job_id
        self.path: Path | None = None
        self._lock = threading.Lock()

    def fetch(self) -> Path:
        """Download the job once (later calls reuse it). NVFlare's exceptions propagate (refusal, not done...)."""
        with self._lock:
            if self.path is None:
                dest = Path(tempfile.mkdtemp(prefix="job-", dir=_private_root()))
                got = self.flare.call(lambda s: s.download_job_result(self.job_id, str(dest)))
                self.path = Path(str(got or dest / self.job_id))
            return self.path

    def site_files(self, log_file_name: str = "log.txt") -> dict[str, Path]:
        """``{site: file}`` of the logs in the download ("server" first)."""
        ws = self.fetch() / "workspace"
        out: dict[str, Path] = {}
        if (ws / log_file_name).is_file():
            out["server"] = ws / log_file_name
        try:
            entries = sorted(os.listdir(ws))
        except OSError:
            entries = []
        for name in entries:
            f = ws / name / log_file_name
            if name not in _SERVER_DIRS and not name.startswith("app_") and f.is_file():
                out[name] = f
        return out

    def reply(self, target: str = "all", log_file_name: str | None = None) -> dict:
        """What ``Session.get_job_logs(job_id, target, log_file_name)`` would return, read from the download."""
        files = self.site_files(log_file_name or "log.txt")
        wanted = list(files) if target in ("all", "@ALL") else [target]
        logs, unavailable = {}, {}
        for site in wanted:
            f = files.get(site)
            if f is None:
                unavailable[site] = "no log for this site in the job's download"
            else:
                logs[site] = f.read_bytes().decode("utf-8", "replace")
        return {"logs": logs, "unavailable": unavailable}

    def source_line(self) -> str:
        return f"from the job's download ({self.path}): the get_job_log right is not granted"


def downloaded(flare: Any, job_id: str) -> DownloadedLogs:
    """The (cached) download-backed logs of ``job_id`` for this connection."""
    from .jobs import job_key

    key = job_key(flare, str(job_id))
    with _lock:
        d = _cache.get(key)
        if d is None:
            d = _cache[key] = DownloadedLogs(flare, job_id)
        return d


def download_refused(flare: Any, job_id: str) -> Exception:
    """The one-line error when neither ``get_job_log`` nor ``download_job`` is granted."""
    rights_of(flare).note("download_job", False, "refused by the server", job_id)
    return refused(
        flare,
        "get_job_log",
        f"read the logs of job {job_id}",
        fallback="nor download_job, which would serve them from the job's download",
    )


def job_logs(job: Any, site: str = "server", tail=None, since=None, max_bytes=None, fmt: str = "text"):
    """``job.logs()``: the admin API, else (``get_job_log`` refused) the job's download. See the module docstring."""
    from nvflare.fuel.flare_api import api_spec as A

    from .jobs import _errors
    from .logs import check_flags, get_logs
    from .vocab import is_terminal

    check_flags(job.id, site, tail, since, max_bytes, fmt)  # bad flags: one line, before any server round trip
    f = job.connection
    rights = rights_of(f)

    def live(target, log_file_name=None):
        kw = {"log_file_name": log_file_name} if log_file_name else {}
        return f.call(lambda s: s.get_job_logs(job.id, target=target, **kw))

    with _errors(job.id, f):
        if not rights.refused_for("get_job_log", job.id):
            try:
                result = get_logs(live, job.id, site=site, tail=tail, since=since, max_bytes=max_bytes, fmt=fmt)
                rights.note("get_job_log", True, f"used on job {job.id}", job.id)
                return result
            except A.AuthorizationError as e:
                if right_of(e) != "get_job_log":
                    raise
                rights.note("get_job_log", False, "refused by the server", job.id)
        status = str(f.call(lambda s: s.get_job_meta(job.id)).get("status"))
        if not is_terminal(status):
            raise refused(
                f,
                "get_job_log",
                f"read the logs of job {job.id} while it runs ({status})",
                fallback=f"once it ends they come from its download (%flare wait {job.id}, then ask again)",
            )
        dl = downloaded(f, job.id)
        try:
            dl.fetch()
        except A.AuthorizationError:
            raise download_refused(f, job.id) from None
        rights.note("download_job", True, f"used on job {job.id}", job.id)
        result = get_logs(dl.reply, job.id, site=site, tail=tail, since=since, max_bytes=max_bytes, fmt=fmt)
    source = dl.source_line()
    if isinstance(result, dict):
        result["source"] = {"kind": "download", "path": str(dl.path), "reason": "get_job_log not granted"}
    else:
        result.source = source
    return result


__all__ = ["DownloadedLogs", "downloaded", "forget_all", "is_refusal", "job_logs"]
