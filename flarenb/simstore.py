"""The simulations on disk: list them, clean the ended ones, copy a result as ``nvflare job download`` does."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from . import _nvflare
from .jobs import Download
from .sim import SITE_FILES, SimError, Simulation, _mtime, _read, _remove, data_dir, get, is_sim_id
from .vocab import is_terminal


def all_simulations(root: Path | None = None) -> list[Simulation]:
    base = root or data_dir()
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out = []
    for n in names:
        if is_sim_id(n) and (base / n / "state.json").is_file():
            out.append(get(n, base))
    return out


def rows(name: str | None = None, id: str | None = None) -> list[dict]:
    """``nvflare job list`` rows of the local simulations (``where: simulator``), oldest first."""
    out = []
    for s in all_simulations():
        if (name and not s.name.startswith(name)) or (id and not s.id.startswith(id)):
            continue
        m = s.meta()
        row = {k: m[k] for k in ("job_id", "status", "submit_time", "duration")}
        row.update(job_name=s.name, submit_time=m["submit_time_iso"], where="simulator", _t=m["submit_time"] or 0)
        out.append(row)
    out.sort(key=lambda r: r.pop("_t"))
    return out


class Cleaned(list):
    def __str__(self) -> str:
        if not self:
            return "No simulations removed."
        return f"removed {len(self)} simulation(s): " + ", ".join(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def clean(older_than: float | None = None) -> Cleaned:
    """Remove ended simulations (those that ended more than ``older_than`` days ago); never a running one."""
    if older_than is not None and older_than < 0:
        raise SimError(f"--older-than must be >= 0 days, got {older_than:g}", "Example: --older-than 7")
    cutoff = time.time() - older_than * 86400 if older_than is not None else None
    removed = Cleaned()
    for sim in all_simulations():
        if not is_terminal(sim.status) or sim.running():
            continue
        end = _read(sim.root / "result.json").get("end_time") or _mtime(sim.root / "state.json") or 0
        if cutoff is not None and end > cutoff:
            continue
        _remove(sim)
        removed.append(sim.id)
    return removed


def download(sim: Simulation, output_dir: str | None = None, force: bool = False) -> Download:
    """Copy the result to ``output_dir/<id>`` as ``nvflare job download`` lays it out; the same ``Download``."""
    status = sim.status
    if not is_terminal(status):
        raise SimError(
            f"Simulation {sim.id} has not ended yet ({status})",
            f"Wait for it with %flare wait {sim.id}, then download",
        )
    dest = Path(os.path.abspath(output_dir or "."))
    target = dest / sim.id
    if target.exists():
        if not force:
            raise SimError(f"{target} already exists", "Pass --force to replace it, or choose another --output-dir")
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    ws = sim.workspace
    run = ws / "server" / "simulate_job"
    if run.is_dir():
        shutil.copytree(run, target / "workspace", symlinks=True)
    for site in sim.sites:
        for name in SITE_FILES:
            src = ws / site / name
            if src.is_file():
                to = target / "workspace" / name if site == "server" else target / site / name
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, to)
    target.mkdir(parents=True, exist_ok=True)
    artifacts, missing = _nvflare.discover_job_download_artifacts(str(target))
    model = target / "workspace" / "models" / "server.npy"
    if "global_model" not in artifacts and model.is_file():  # numpy jobs: NPModelPersistor's file
        artifacts["global_model"] = str(model)
        missing = [m for m in missing if m != "global_model"]
    return Download(job_id=sim.id, path=str(target), artifacts=artifacts, missing=list(missing))
