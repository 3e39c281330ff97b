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
and retried with the same token: never two jobs. A job with a file over NVFlare's per-file limit for tokens is
submitted without one and matched by a marker in its meta instead (:mod:`flarenb.marker`). What is uploaded
(export, staging, content hash) is :mod:`flarenb.jobsource`; the hash cache and the bounded job cache are
:mod:`flarenb.workarea` and :mod:`flarenb.jobfiles`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from . import jobfiles, marker, workarea
from .errors import FlareError
from .jobs import Job, _check_token, _flare
from .jobsource import content_hash, export, stage, stage_job  # noqa: F401 - content_hash, stage: re-exported
from .jobsource import job_name as _job_name
from .submiterrors import (
    RETRIES,
    SubmitError,
    connection_errors,
    connection_failed,
    not_allowed,
    rejected,
    server_failed,
)

_NOTED: set[str] = set()  # tokens whose marker path was announced in this process
_UNHASHABLE: set[str] = set()  # tokens the server could not hash (its limit is lower): reruns go to the marker


def cache_dir() -> Path:
    """Where flarenb keeps what it uploaded, for inspection (see :mod:`flarenb.workarea`)."""
    return workarea.jobs_dir()


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
    parent: dict = {}
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
    env: Any = None,
) -> Job:
    """Submit ``target`` once: rerunning returns the job it already submitted (see the module docstring).

    ``target`` is a job folder, an NVFlare ``Recipe`` or a ``FedJob``. ``name`` scopes the token explicitly,
    ``new=True`` forces a fresh job, ``submit_token`` is used verbatim. ``stream_logs=False`` submits the job
    exactly as it is (client logs are then not readable live through the admin API).
    ``env`` is one of NVFlare's ``SimEnv`` (a background simulation), ``PocEnv`` or ``ProdEnv`` (see
    :mod:`flarenb.envs`).
    """
    if env is not None:
        if flare is not None:
            raise SubmitError("Pass either env or flare, not both", "Drop one of them")
        from .envs import submit_to_env

        return submit_to_env(
            target, env, name=name, new=new, submit_token=submit_token, stream_logs=stream_logs, scope=scope
        )
    if submit_token is not None:
        _check_token(submit_token)  # refused before anything is exported or uploaded
        if new or name:
            other = "--new" if new else "--name"
            raise SubmitError(f"{other} and --submit-token cannot be combined", "Use one of them")
    f = _flare(flare)
    with workarea.work_dir() as work:
        source = export(target, work)
        sites = _deployment_sites(f) if stream_logs else None
        job_name = _job_name(source)
        staged = stage_job(source, work / "stage" / job_name, stream_logs, sites)
        digest = staged.content_hash()
        derived = submit_token is None
        if submit_token is None:
            if scope is None:
                scope = f"name:{name}" if name else (cell_scope() or f"job:{job_name}")
            submit_token = derive_token(scope, digest, uuid.uuid4().hex if new else "")
        big = jobfiles.over_limit(staged.files)
        if big:
            _note(submit_token, _over_limit_reason(big))
            job = _submit_marked(f, staged, submit_token, job_name, digest)
        elif submit_token in _UNHASHABLE:
            job = _submit_marked(f, staged, submit_token, job_name, digest)
        else:
            try:
                job = _submit_once(f, staged, submit_token, job_name, content_in_token=derived)
            except _TokenUnhashable:  # the server's limit is lower than this NVFlare's: same fallback
                _UNHASHABLE.add(submit_token)
                _note(submit_token, "the FLARE server could not hash this job for a server-side submit token")
                job = _submit_marked(f, staged, submit_token, job_name, digest)
        workarea.remember(staged, job_name, digest, submit_token=submit_token, job_id=job.id)
        return job


def _over_limit(limit: int | None) -> str:
    return jobfiles.human(limit) if limit else "?"


def _over_limit_reason(big: list[jobfiles.JobFile]) -> str:
    first, limit = big[0], jobfiles.token_size_limit()
    more = f" and {len(big) - 1} more" if len(big) > 1 else ""
    size, cap = jobfiles.human(first.size), _over_limit(limit)
    return f"{first.rel} ({size}){more} is over NVFlare's {cap} per-file limit for server-side submit tokens"


def _note(token: str, reason: str) -> None:
    """Say once per process and token, in one line, that the marker path is taken and why."""
    if token in _NOTED:
        return
    _NOTED.add(token)
    print(
        f"flarenb: {reason}, so reruns of this job are matched by a marker in its meta.json instead "
        "(see the README: 'Jobs with big files')",
        file=sys.stdout,
    )


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


class _TokenUnhashable(Exception):
    """The server failed to hash the job for its submit-token record (NVFlare reports an internal ValueError)."""


def _submit_once(f, staged: workarea.StagedJob, token: str, job_name: str, content_in_token: bool) -> Job:
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
            folder = str(staged.folder())
            job_id = f.call(lambda s, p=folder: s.submit_job(p, submit_token=token), retry=False)
            if existing and existing.get("job_id") == job_id:
                return _job_from_row(f, existing, token, reattached=True)
            return _new_job(f, job_id, job_name, token)
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
        except A.AuthorizationError as e:
            from .rights import ACTIONS, refused, right_of

            right = right_of(e) or "submit_job"
            raise refused(f, right, ACTIONS.get(right, f"run {right}")) from None
        except A.InvalidJobDefinition as e:
            raise rejected(e) from None
        except A.InternalError as e:
            if "ValueError" in str(e):
                raise _TokenUnhashable(str(e)) from None
            raise server_failed(f, e) from None
        except connection_errors() as e:
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
    raise connection_failed(last_error)


def _submit_marked(f, staged: workarea.StagedJob, token: str, job_name: str, digest: str) -> Job:
    """Submit without a server-side token, matched by the marker in the job's meta (see :mod:`flarenb.marker`)."""
    from nvflare.fuel.flare_api import api_spec as A

    meta_file = staged.root / "meta.json"
    name = marker.job_name(meta_file)
    with workarea.token_lock(token):
        last_error: BaseException | None = None
        found = _find_marked(f, token, name, digest)
        if found is not None:
            return found
        marker.mark(meta_file, token, digest)
        for _attempt in range(RETRIES):
            try:
                folder = str(staged.folder())
                job_id = f.call(lambda s, p=folder: s.submit_job(p), retry=False)
                return _new_job(f, job_id, job_name, token)
            except A.InternalError as e:
                raise server_failed(f, e) from None
            except A.AuthorizationError as e:
                raise not_allowed(f, e) from None
            except A.InvalidJobDefinition as e:
                raise rejected(e) from None
            except connection_errors() as e:
                last_error = e
                f.close()
                try:
                    found = _find_marked(f, token, name, digest, reattached=False)
                except FlareError:
                    raise
                except Exception as lookup_error:
                    last_error = lookup_error
                    continue
                if found is not None:
                    return found
        raise connection_failed(last_error)


def _find_marked(f, token: str, name: str | None, digest: str, reattached: bool = True) -> Job | None:
    rows = marker.find(f, token, name)
    if not rows:
        return None
    row = rows[0]
    if marker.content_of(row) != digest:
        raise SubmitError(
            f"Submit token {token} already submitted job {row['job_id']} with different content",
            "Drop --submit-token to let flarenb derive one, or pass a new token to submit anew",
        )
    return _job_from_row(f, marker.as_row(row), token, reattached=reattached)


def _new_job(f, job_id: str, job_name: str, token: str) -> Job:
    meta = _meta_or_empty(f, job_id)
    return Job(
        id=job_id,
        name=job_name,
        flare=f,
        submit_token=token,
        submit_time=meta.get("submit_time_iso") or meta.get("submit_time"),
        status_at_submit=str(meta.get("status", "SUBMITTED")),
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
