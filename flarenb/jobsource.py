"""What a submit uploads: a job folder, or an NVFlare ``Recipe`` / ``FedJob`` exported to one, staged.

:func:`export` turns the target into a job folder; :func:`stage_job` copies it without volatile files or links out
of it (:mod:`flarenb.workarea`, :mod:`flarenb.jobfiles`), adding live client logs to its configuration if asked
(:mod:`flarenb.jobconfig`); :func:`content_hash` is NVFlare's hash of it, as the server computes it for a submit
token. Used by :mod:`flarenb.submission` (a FLARE server) and :mod:`flarenb.sim` (the simulator).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import jobconfig, jobfiles, workarea
from .submiterrors import SubmitError

__all__ = ["content_hash", "export", "job_name", "stage", "stage_job"]


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


def _edit(stream_logs: bool, sites: list[str] | None):
    return (lambda folder: jobconfig.enable_live_logs(folder, sites=sites)) if stream_logs else None


def stage_job(job_dir: Path, dest: Path, stream_logs: bool, sites: list[str] | None) -> workarea.StagedJob:
    """Stage ``job_dir`` in ``dest`` without volatile files or links out of it; add live client logs if asked."""
    return workarea.stage(jobfiles.scan(job_dir), dest, _edit(stream_logs, sites))


def stage(job_dir: Path, dest: Path, stream_logs: bool, sites: list[str] | None) -> Path:
    """:func:`stage_job`, complete on disk (hard links where possible): the folder that would be uploaded."""
    return stage_job(job_dir, dest, stream_logs, sites).folder()


def content_hash(job_dir: Path) -> str:
    """NVFlare's content hash of a job folder (as the server computes it for a submit token)."""
    return jobfiles.content_hash((f.rel, f.path) for f in jobfiles.scan(job_dir))


def job_name(job_dir: Path) -> str:
    """A safe name for the job folder to stage: the ``name`` in its ``meta.json`` (else the folder's name)."""
    import json

    try:
        name = json.loads((job_dir / "meta.json").read_text()).get("name") or job_dir.name
    except (OSError, ValueError):
        name = job_dir.name
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in str(name)).strip("-.") or "job"
    return safe[:64]
