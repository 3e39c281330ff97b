"""Rerun-safe submit for jobs NVFlare cannot give a submit token: a marker in the job's ``meta.json``.

NVFlare's server hashes an uploaded job for its submit-token record with ``canonical_job_content_hash``, which
refuses any file over ``_MAX_HASH_ZIP_MEMBER_SIZE`` (10 MiB in 2.9): a job shipping a model of that size fails
with an opaque internal error when submitted with a token. For such a job flarenb submits without a server-side
token and keeps the same promise with a record the server keeps anyway — the job's own meta:

* the staged ``meta.json`` gets ``"flarenb_submit": {"submit_token": T, "content_hash": H}`` (a custom key; the
  server stores it with the job's meta and returns it from ``list_jobs(detailed=True)``);
* before uploading, flarenb lists the user's jobs of that name in the study and reattaches to the one carrying
  ``T`` (H must match, as the server checks for a token: other content with an explicit token is a conflict);
* check-then-submit runs under a lock per token on this machine (:func:`flarenb.workarea.token_lock`): two
  kernels of this machine never both submit.

What the server does not give this path: two *machines* submitting the same token within the same second or so
can both find nothing and both submit; a deleted job is not remembered (a rerun submits it anew, where a token
would refuse); a kernel killed after its upload completed but before the server stored the job can, if the rerun
lists the jobs within that instant, submit a second one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KEY = "flarenb_submit"


def mark(meta_file: Path, token: str, content_hash: str) -> None:
    """Write the marker into the staged ``meta.json`` (a file of the stage, never the user's)."""
    meta = json.loads(meta_file.read_text())
    meta[KEY] = {"submit_token": token, "content_hash": content_hash}
    meta_file.write_text(json.dumps(meta, indent=4) + "\n")


def job_name(meta_file: Path) -> str | None:
    try:
        name = json.loads(meta_file.read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return str(name) if name else None


def find(flare: Any, token: str, name: str | None) -> list[dict]:
    """The user's jobs in the study carrying the marker ``token``, oldest first (``[]`` if none)."""
    rows = flare.call(lambda s: s.list_jobs(detailed=True, name_prefix=name or None))
    user = getattr(getattr(flare, "kit", None), "username", None)
    found = []
    for row in rows or []:
        marker = row.get(KEY)
        if not isinstance(marker, dict) or marker.get("submit_token") != token:
            continue
        if row.get("cloned_from") or (user and row.get("submitter_name") not in (None, user)):
            continue
        found.append(row)
    return sorted(found, key=lambda r: str(r.get("submit_time_iso") or r.get("submit_time") or ""))


def content_of(row: dict) -> str | None:
    marker = row.get(KEY)
    return marker.get("content_hash") if isinstance(marker, dict) else None


def as_row(meta: dict) -> dict:
    """A detailed job meta in the shape of ``list_jobs`` rows (``job_id``, ``job_name``, ...)."""
    return {
        "job_id": meta.get("job_id"),
        "job_name": meta.get("name", ""),
        "status": meta.get("status", ""),
        "submit_time": meta.get("submit_time_iso") or meta.get("submit_time"),
    }
