"""A simulation's folder on this machine: where simulations live, how their ids look, reading and removing them.

Every simulation has its own folder ``<data_dir()>/sim-<12 hex>`` (the layout is in :mod:`flarenb.sim`); the
files in it are written by the kernel that started it and by its runner (:mod:`flarenb._simrun`), and read by
any kernel — so a read of a file being written, or of one not written yet, is an empty ``{}``, never an error.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sim import Simulation

__all__ = ["PREFIX", "SITE_FILES", "data_dir", "duration_text", "is_sim_id", "iso_time", "mtime", "read_json", "remove"]

PREFIX = "sim-"
SITE_FILES = ("log.txt", "log.json", "error_log.txt")


def data_dir() -> Path:
    """Where simulations live: ``$XDG_DATA_HOME/flarenb/simulations`` (default ``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base, "flarenb", "simulations")


def is_sim_id(job_id: object) -> bool:
    return isinstance(job_id, str) and job_id.startswith(PREFIX) and len(job_id) == len(PREFIX) + 12


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def iso_time(t: float | None) -> str | None:
    """An epoch time as the server writes its job times (ISO 8601, UTC), so server jobs and simulations sort."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).isoformat() if t else None


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "N/A"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def remove(sim: Simulation) -> None:
    """Remove a simulation's folder and its workspace."""
    ws = sim.workspace
    # a workspace under a SimEnv's own workspace_root: only ever the folder flarenb created for this simulation
    if ws.is_dir() and sim.root not in ws.parents and ws.name == sim.id:
        shutil.rmtree(ws, ignore_errors=True)
    shutil.rmtree(sim.root, ignore_errors=True)
