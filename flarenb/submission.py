"""Idempotent submission with NVFlare's retry-safe submit tokens.

The default token is **cell-scoped and content-addressed**::

    flarenb-<scope hash>-<content hash>

* *scope*: ``--name NAME`` if given; else the id of the notebook cell being run (JupyterLab and VS Code send it
  with every execute request); else — nbclient, nbval, a plain console — the cell's source text. Where the
  kernel knows its notebook (``JPY_SESSION_NAME``), the notebook path is part of the scope too. Outside IPython
  the scope is the job's name.
* *content*: NVFlare's own ``canonical_job_content_hash`` of exactly the folder that is uploaded.

So the same cell submitting the same job content always gets the same token — a rerun, "Restart & Run All" or a
new kernel reattaches to the job it already submitted — while changed content gets a new token, hence a new job.
``new=True`` adds a random nonce (a fresh job for identical content); ``submit_token=T`` uses T verbatim. The
server scopes every token by study and submitter, so two users (or two studies) never share a job.

A submit interrupted by a dropped connection or a timeout is recovered through ``list_jobs(submit_token=...)``
and retried with the same token: never two jobs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from . import jobconfig
from .errors import FlareError
from .jobs import Job, _check_token, _flare, _line

#: Files and folders that must never enter the uploaded job: they change NVFlare's content hash between runs.
VOLATILE = ("__pycache__", ".ipynb_checkpoints", ".DS_Store", ".git", ".__nvfl_sig.json", ".__nvfl_submitter.crt")
VOLATILE_SUFFIXES = (".pyc", ".pyo")
RETRIES = 3


class SubmitError(FlareError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "flarenb", "jobs")


# -- what is submitted --------------------------------------------------------------------------------
def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in VOLATILE or n.endswith(VOLATILE_SUFFIXES)}


def _is_exportable(obj: Any) -> bool:
    return hasattr(obj, "export") or hasattr(obj, "export_job")


def export(target: Any, workdir: Path) -> Path:
    """A job folder for ``target``: a job folder path, or an NVFlare ``Recipe`` / ``FedJob`` exported here."""
    if isinstance(target, (str, os.PathLike)):
        path = Path(target).expanduser()
        if not path.exists():
            raise SubmitError(
                f"Job folder {target} does not exist",
                "Pass a job folder (with meta.json) or the name of a variable holding a Recipe or FedJob",
            )
        if not path.is_dir() or not (path / "meta.json").is_file():
            raise SubmitError(
                f"{target} is not an NVFlare job folder (no meta.json)",
                "Export your job first (recipe.export(job_dir=...)) or pass the Recipe/FedJob variable itself",
            )
        return path.resolve()
    if not _is_exportable(target):
        raise SubmitError(
            f"Cannot submit a {type(target).__name__}",
            "Pass a job folder, an NVFlare Recipe or a FedJob",
        )
    import contextlib
    import io

    out = workdir / "export"
    with contextlib.redirect_stdout(io.StringIO()):
        if hasattr(target, "export"):
            target.export(job_dir=str(out))
        else:
            target.export_job(str(out))
    folders = [p for p in out.iterdir() if (p / "meta.json").is_file()] if out.is_dir() else []
    if len(folders) != 1:
        raise SubmitError(f"Exporting the {type(target).__name__} did not produce one job folder", "Check the job")
    return folders[0]


def stage(job_dir: Path, dest: Path, stream_logs: bool, sites: list[str] | None) -> Path:
    """Copy ``job_dir`` to ``dest`` without volatile files; add live client-log streaming if asked."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(job_dir, dest, ignore=_ignore, symlinks=False)
    if stream_logs:
        jobconfig.enable_live_logs(dest, sites=sites)
    return dest


def content_hash(job_dir: Path) -> str:
    from nvflare.apis.utils.job_submit_token import canonical_job_content_hash

    return canonical_job_content_hash(str(job_dir))


# -- the token ------------------------------------------------------------------------------------------
def cell_scope() -> str:
    """Where this submit comes from: the cell id, else the cell source (see the module docstring)."""
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    kernel = getattr(ip, "kernel", None)
    parent = {}
    if kernel is not None:
        try:
            parent = kernel.get_parent("shell") or {}
        except TypeError:
            parent = kernel.get_parent() or {}
    cell_id = (parent.get("metadata") or {}).get("cellId")
    if cell_id:
        return f"cell:{notebook}:{cell_id}"
    code = (parent.get("content") or {}).get("code")
    if code is None and ip is not None:
        history = ip.user_ns.get("In") or []
        code = history[-1] if history else None
    if code is not None:
        return f"source:{notebook}:{code.strip()}"
    return ""


def derive_token(scope: str, content: str, nonce: str = "") -> str:
    """``flarenb-<12 hex of the scope>-<20 hex of the content (and nonce)>``: valid, short, deterministic."""
    s = hashlib.sha256(scope.encode()).hexdigest()[:12]
    c = hashlib.sha256(f"{content}|{nonce}".encode()).hexdigest()[:20]
    return f"flarenb-{s}-{c}"


# -- submitting -----------------------------------------------------------------------------------------
def submit(
    target: Any,
    *,
    name: str | None = None,
    new: bool = False,
    submit_token: str | None = None,
    stream_logs: bool = True,
    flare=None,
    scope: str | None = None,
) -> Job:
    """Submit ``target`` once: rerunning returns the job it already submitted (see the module docstring).

    ``target`` is a job folder, an NVFlare ``Recipe`` or a ``FedJob``. ``name`` scopes the token explicitly,
    ``new=True`` forces a fresh job, ``submit_token`` is used verbatim. ``stream_logs=False`` submits the job
    exactly as it is (client logs are then not readable live through the admin API).
    """
    if submit_token is not None:
        _check_token(submit_token)  # refused before anything is exported or uploaded
        if new or name:
            other = "--new" if new else "--name"
            raise SubmitError(f"{other} and --submit-token cannot be combined", "Use one of them")
    f = _flare(flare)
    with tempfile.TemporaryDirectory(prefix="flarenb-export-") as tmp:
        source = export(target, Path(tmp))
        sites = _deployment_sites(f) if stream_logs else None
        job_name = _job_name(source)
        staged = stage(source, Path(tmp) / "stage" / job_name, stream_logs, sites)
        digest = content_hash(staged)
        derived = submit_token is None
        if derived:
            if scope is None:
                scope = f"name:{name}" if name else (cell_scope() or f"job:{job_name}")
            submit_token = derive_token(scope, digest, uuid.uuid4().hex if new else "")
        kept = cache_dir() / f"{job_name}-{digest.split(':')[-1][:12]}"
        if not kept.exists():  # keep exactly what was uploaded, for inspection
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staged, kept, dirs_exist_ok=True)
        return _submit_once(f, kept if kept.is_dir() else staged, submit_token, job_name, content_in_token=derived)


def _deployment_sites(f) -> list[str] | None:
    """The client sites that replace ``@ALL`` in the deploy map: the POC's configured sites, else the clients
    connected to the server now (sorted: the same set gives the same content, hence the same token)."""
    poc = getattr(f, "poc", None)
    if poc is not None:
        return sorted(poc.clients)
    try:
        return sorted(f.system_info().client_names) or None
    except Exception:  # not allowed to see them, or no answer: keep @ALL (logs are then live per site)
        return None


def _job_name(job_dir: Path) -> str:
    import json

    try:
        name = json.loads((job_dir / "meta.json").read_text()).get("name") or job_dir.name
    except (OSError, ValueError):
        name = job_dir.name
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in str(name)).strip("-.") or "job"
    return safe[:64]


def _lookup(f, token: str) -> dict | None:
    """The job already submitted with ``token`` (None if the token is unused)."""
    from nvflare.fuel.flare_api.api_spec import SubmitTokenJobDeleted

    try:
        rows = f.call(lambda s: s.list_jobs(submit_token=token))
    except SubmitTokenJobDeleted as e:
        raise SubmitError(
            f"Job {e.job_id}, submitted earlier with token {token}, was deleted",
            "Resubmit with --new (or pass another --submit-token)",
        ) from None
    return rows[0] if rows else None


def _submit_once(f, job_dir: Path, token: str, job_name: str, content_in_token: bool) -> Job:
    """Submit with ``token`` unless it already named a job.

    A derived token contains the content hash, so a job found by it has this very content: reattach without
    uploading. An explicit token may have been used with other content: upload anyway and let the server
    decide (same content: the same job id; other content: ``SubmitTokenConflict``).
    """
    from nvflare.fuel.flare_api import api_spec as A

    existing = _lookup(f, token)
    if existing and content_in_token:
        return _job_from_row(f, existing, token, reattached=True)
    last_error: BaseException | None = None
    for _attempt in range(RETRIES):
        try:
            job_id = f.call(lambda s: s.submit_job(str(job_dir), submit_token=token), retry=False)
            if existing and existing.get("job_id") == job_id:
                return _job_from_row(f, existing, token, reattached=True)
            meta = _meta_or_empty(f, job_id)
            return Job(
                id=job_id,
                name=job_name,
                flare=f,
                submit_token=token,
                submit_time=meta.get("submit_time_iso") or meta.get("submit_time"),
                status_at_submit=str(meta.get("status", "SUBMITTED")),
            )
        except A.SubmitTokenConflict as e:
            raise SubmitError(
                f"Submit token {token} already submitted job {e.existing_job_id} with different content",
                "Drop --submit-token to let flarenb derive one, or pass a new token to submit anew",
            ) from None
        except A.SubmitTokenJobDeleted as e:
            raise SubmitError(
                f"Job {e.job_id}, submitted earlier with token {token}, was deleted",
                "Resubmit with --new (or pass another --submit-token)",
            ) from None
        except A.InvalidJobDefinition as e:
            raise SubmitError(f"The server rejected the job: {_line(e)}", "Fix the job folder and submit again") from None
        except (A.NoConnection, A.SessionClosed, ConnectionError, TimeoutError, A.NoReply) as e:
            # The upload may or may not have reached the server: ask it, by token, before trying again.
            last_error = e
            f.close()
            try:
                existing = _lookup(f, token)
            except FlareError:
                raise
            except Exception as lookup_error:  # still no connection: try again
                last_error = lookup_error
                continue
            if existing:
                return _job_from_row(f, existing, token, reattached=False)
    raise SubmitError(
        f"Could not submit the job: the connection failed {RETRIES} times ({_line(last_error)})",
        "Check the server (%flare info) and run the cell again: it cannot create a duplicate",
    )


def _meta_or_empty(f, job_id: str) -> dict:
    try:
        return f.call(lambda s: s.get_job_meta(job_id))
    except Exception:
        return {}


def _job_from_row(f, row: dict, token: str, reattached: bool) -> Job:
    return Job(
        id=row["job_id"],
        name=str(row.get("job_name", "")),
        flare=f,
        submit_token=token,
        reattached=reattached,
        submit_time=row.get("submit_time"),
        status_at_submit=str(row.get("status", "")),
    )
