"""Writing a job's files to the user's disk: the job result (``%flare download``) and the per-site logs of a view.

A download only ever creates or replaces what a download wrote:

* the job id is checked first (:func:`flarenb.validate.job_id`: a UUID, so ``output_dir/<job_id>`` is always a
  strict child of the output folder), then the server is asked whether the job exists — before the disk is touched;
* the result is downloaded into a fresh temporary sibling (``output_dir/.flarenb-tmp-*``) and swapped into place
  only once it is complete, so a failed download leaves the previous one as it was;
* ``force=True`` replaces only a real folder (not a link) that carries the marker ``.flarenb-download.json`` for
  this job, written by an earlier flarenb download. Anything else at that path is left alone, with a one-line error.

The per-site log files (:func:`write_site_logs`) are written as UTF-8; a file that could not get the site's
complete log says so on its first line, and the returned :class:`SiteLogFiles` lists why in ``incomplete``.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import _nvflare, validate
from ._text import terminal_safe
from .errors import FlareError
from .vocab import one_line

MARKER = ".flarenb-download.json"
_TMP_PREFIX = ".flarenb-tmp-"


@dataclass
class Download:
    """A downloaded job result with the CLI's artifact discovery."""

    job_id: str
    path: str
    artifacts: dict
    missing: list
    replaced: bool = False
    #: sites that ran the job but whose log is not in the result (``{site: what to do}``), e.g. when NVFlare's log
    #: streaming lost it at the end of the job (NVFlare issue #5207)
    missing_logs: dict = field(default_factory=dict)

    @property
    def global_model(self) -> str | None:
        return self.artifacts.get("global_model")

    @property
    def client_logs(self) -> dict:
        return self.artifacts.get("client_logs", {})

    def metric_per_round(self, name: str) -> list[tuple[int, float]]:
        """``[(round, aggregated value), ...]`` of one metric, from the job's ``round_metrics.jsonl``."""
        path = self.artifacts.get("round_metrics")
        if not path:
            raise FlareError(
                f"Job {self.job_id} reported no per-round metrics", "Send metrics with FLModel(metrics=...)"
            )
        out = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    for m in row.get("aggregated_metrics", []):
                        if m.get("name") == name:
                            out.append((int(row["round"]), float(m["value"])))
        return out

    def __str__(self) -> str:
        """The paths relative to the working directory — the notebook's folder in a kernel — when inside it."""
        lines = [
            f"downloaded job {self.job_id} to {_shown(self.path)}"
            + (" (replaced the earlier download)" if self.replaced else "")
        ]
        for key, value in self.artifacts.items():
            if isinstance(value, dict):
                for site, path in sorted(value.items()):
                    lines.append(f"  {key}[{site}]: {_shown(path)}")
            else:
                lines.append(f"  {key}: {_shown(value)}")
        if self.missing:
            lines.append(f"  missing: {', '.join(map(str, self.missing))}")
        for site, note in sorted(self.missing_logs.items()):
            lines.append(f"  INCOMPLETE: no log of {site} in the result; {note}")
        return terminal_safe("\n".join(lines))

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def _shown(path: object) -> str:
    """``path`` relative to the working directory when it is inside it, else as it is."""
    text = str(path)
    if not os.path.isabs(text):
        return text
    try:
        rel = os.path.relpath(text)
    except ValueError:  # another drive (Windows)
        return text
    return text if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _is_download_of(path: str, job_id: str) -> bool:
    """True if ``path`` is a real folder holding the marker of a flarenb download of ``job_id``."""
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    marker = os.path.join(path, MARKER)
    if os.path.islink(marker) or not os.path.isfile(marker):
        return False
    try:
        with open(marker, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("job_id") == job_id


def _check_replaceable(target: str, job_id: str, force: bool) -> bool:
    """Whether ``target`` exists (and may be replaced); a one-line error if it exists and must not be."""
    if not os.path.lexists(target):
        return False
    if not force:
        raise FlareError(f"{target} already exists", "Pass --force to replace it, or choose another --output-dir")
    if not _is_download_of(target, job_id):
        raise FlareError(
            f"{target} exists but is not a flarenb download of job {job_id} (no {MARKER}); it was left as it is",
            "Move it away or choose another --output-dir",
        )
    return True


def _output_dir(output_dir: str | os.PathLike | None) -> str:
    dest = os.path.abspath(os.fspath(output_dir) if output_dir is not None else ".")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise FlareError(f"--output-dir {dest} is not a folder", "Choose a folder (it is created if missing)")
    try:
        os.makedirs(dest, exist_ok=True)
    except ValueError:  # a NUL in the path
        raise FlareError(f"--output-dir {dest!r} is not a valid path", "Choose a folder") from None
    except OSError as e:
        raise FlareError(f"Cannot create --output-dir {dest}: {e.strerror or e}", "Choose a writable folder") from None
    return dest


def download(job_id: str, output_dir: str | os.PathLike | None = None, force: bool = False, flare=None) -> Download:
    """Download a job's result to ``output_dir/<job_id>`` (``nvflare job download``); see the module docstring."""
    from . import jobs as _jobs

    job_id = validate.job_id(job_id)
    f = _jobs._flare(flare)
    with _jobs._errors(job_id, f):
        meta = f.call(lambda s: s.get_job_meta(job_id)) or {}  # the job exists (else JobNotFound) before disk work
    dest = _output_dir(output_dir)
    target = os.path.join(dest, job_id)
    _check_replaceable(target, job_id, force)
    try:
        tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=dest)
    except OSError as e:
        raise FlareError(
            f"Cannot write in --output-dir {dest}: {e.strerror or e}", "Choose a writable folder"
        ) from None
    try:
        with _jobs._errors(job_id, f):
            got = f.call(lambda s: s.download_job_result(job_id, tmp))
        got = os.path.abspath(str(got or ""))
        if not got or os.path.dirname(got) != tmp or not os.path.isdir(got):
            raise FlareError(f"The FLARE server returned no result for job {job_id}", "Try again; see %flare meta")
        with open(os.path.join(got, MARKER), "w", encoding="utf-8") as fh:
            json.dump({"job_id": job_id, "study": getattr(f, "study", None), "downloaded_at": _now()}, fh)
        replaced = _swap(got, target, tmp, job_id, force)
    except OSError as e:
        raise FlareError(
            f"Downloading job {job_id} into {dest} failed: {e.strerror or e}", "Check the folder"
        ) from None
    finally:
        _remove_own_tmp(tmp, dest)
    artifacts, missing = _artifacts(target)
    lost = _missing_logs(meta, artifacts.get("client_logs", {}), job_id, getattr(f, "poc", None))
    return Download(job_id, target, artifacts, missing, replaced=replaced, missing_logs=lost)


def job_sites(meta: dict) -> list[str]:
    """The clients a job was deployed to, from its stored meta: ``job_deploy_detail`` (``["server: OK",
    "site-1: OK", ...]``, persisted by NVFlare's ``job_runner``), else ``job_clients`` (``[{"name": ...}]``)."""
    sites = []
    for entry in meta.get("job_deploy_detail") or []:
        name, _, outcome = str(entry).partition(": ")
        if outcome == "OK" and name not in ("server", "invalid_clients"):
            sites.append(name)
    for client in meta.get("job_clients") or []:
        named = client.get("name") if isinstance(client, dict) else None
        if isinstance(named, str) and named not in sites:
            sites.append(named)
    return sites


def _missing_logs(meta: dict, client_logs: dict, job_id: str, local_poc) -> dict[str, str]:
    """The clients the job was deployed to without a log in the result, and where to find it."""
    out = {}
    for site in job_sites(meta):
        if site in client_logs:
            continue
        own = local_poc.job_log(site, job_id) if local_poc is not None else None
        if own is not None and own.is_file():
            out[site] = f"its own complete log is {own}"
        else:
            out[site] = f"see %flare logs {job_id} --site {site}, or the site's own workspace"
    return out


def _swap(new: str, target: str, tmp: str, job_id: str, force: bool) -> bool:
    """Move ``new`` to ``target``; an existing earlier download goes into ``tmp`` first (removed with it)."""
    replaced = _check_replaceable(target, job_id, force)  # again: something may have appeared meanwhile
    old = os.path.join(tmp, "previous")
    if replaced:
        os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError as e:
        if replaced:
            os.rename(old, target)
        raise FlareError(f"Cannot move the download into {target}: {e.strerror or e}", "Check the folder") from None
    return replaced


def _remove_own_tmp(tmp: str, dest: str) -> None:
    """Remove the temporary sibling this download created (and only that)."""
    if os.path.dirname(tmp) == dest and os.path.basename(tmp).startswith(_TMP_PREFIX) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _artifacts(path: str) -> tuple[dict, list]:
    artifacts, missing = _nvflare.discover_job_download_artifacts(path)
    if "global_model" not in artifacts:
        # The CLI knows PyTorch/TF model names; numpy jobs (NPModelPersistor) save <server>/models/server.npy.
        numpy_model = os.path.join(path, "workspace", "models", "server.npy")
        if os.path.isfile(numpy_model):
            artifacts["global_model"] = numpy_model
            missing = [m for m in missing if m != "global_model"]
    return artifacts, list(missing)


# -- per-site log files of a view ----------------------------------------------------------------------------

TRUNCATED_PREFIX = "... output truncated to last"  # what the server puts before a log cut to its last 5 MiB


class SiteLogFiles(list):
    """The written file paths (a list); ``incomplete`` maps a site to why its file lacks part of its log."""

    def __init__(self, paths: Iterable[str] = (), incomplete: dict[str, str] | None = None, sites: Iterable[str] = ()):
        super().__init__(paths)
        self.incomplete: dict[str, str] = dict(incomplete or {})
        self.sites: list[str] = list(sites)

    def __str__(self) -> str:
        rows = [
            f"wrote {path}" + (f" (INCOMPLETE: {self.incomplete[site]})" if site in self.incomplete else "")
            for site, path in zip(self.sites, self, strict=False)  # a bare SiteLogFiles(paths) has no sites
        ]
        return terminal_safe("\n".join(rows))


def _site_log(site: str, ask_server: Callable[[], dict], held: Callable[[], list[str]]) -> tuple[str, str | None]:
    """The site's log text from the server (else the view's lines), and why it is incomplete (None if it is not)."""
    reason = None
    try:
        reply = ask_server() or {}
        text = (reply.get("logs") or {}).get(site)
        if text is None:
            reason = f"the server has no log for it ({(reply.get('unavailable') or {}).get(site, 'not available')})"
    except Exception as e:
        text, reason = None, f"the server could not be asked ({one_line(e)})"
    if text is None:
        lines = held()
        return "".join(x + "\n" for x in lines), f"{reason}; these are the {len(lines)} lines this view kept"
    if text.startswith(TRUNCATED_PREFIX):
        return text, "the server returned only the end of the log (its 5 MiB limit)"
    return text, None


def write_site_logs(
    directory: str | os.PathLike,
    sites: list[str],
    file_name: Callable[[str], str],
    local_file: Callable[[str], Path | None],
    ask_server: Callable[[str], dict],
    held_lines: Callable[[str], list[str]],
) -> SiteLogFiles:
    """Write each site's complete log to ``directory/<file_name(site)>``.

    The source, in order: the site's own log file on this machine (``local_file(site)``, copied byte for byte), what
    the server returns (``ask_server(site)``, a ``get_job_logs`` reply, written as UTF-8), else the lines the view
    holds (``held_lines(site)``). A file that is not the complete log starts with ``[flarenb: INCOMPLETE — why]``.
    Each file is written beside its final name and renamed over it, so an existing link there is replaced, never
    followed.
    """
    folder = Path(directory)
    written: list[str] = []
    incomplete: dict[str, str] = {}
    for site in sites:
        dest = folder / file_name(site)
        if dest.parent != folder:
            raise FlareError(f"Unsafe log file name {file_name(site)!r} for site {site!r}", "Report this as a bug")
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
        os.close(fd)
        try:
            local = local_file(site)
            if local is not None and local.is_file():
                shutil.copyfile(local, tmp)
            else:
                text, why = _site_log(site, functools.partial(ask_server, site), functools.partial(held_lines, site))
                with open(tmp, "w", encoding="utf-8", errors="replace", newline="\n") as fh:
                    if why:
                        fh.write(f"[flarenb: INCOMPLETE — {why}]\n")
                        incomplete[site] = why
                    fh.write(text if not text or text.endswith("\n") else text + "\n")
            os.replace(tmp, dest)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        written.append(str(dest))
    return SiteLogFiles(written, incomplete, sites)
