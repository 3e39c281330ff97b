"""A POC workspace on this machine: where it is, what it holds (its sites, ports, kits, pid files, job logs).

The workspace is ``$NVFLARE_POC_WORKSPACE`` if set, else a flarenb-owned folder
(``$XDG_DATA_HOME/flarenb/poc``, by default ``~/.local/share/flarenb/poc``). Starting and stopping it:
:mod:`flarenb.poc`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .procs import alive as _alive

__all__ = ["ADMIN", "DEFAULT_PORT", "PROJECT", "TMP_NAME", "Poc", "default_workspace", "is_poc_workspace", "poc_of_kit"]

DEFAULT_PORT = 8002  # NVFlare's POC server port
PROJECT = "example_project"
ADMIN = "admin@nvidia.com"
TMP_NAME = "flarenb-tmp"


def default_workspace() -> Path:
    env = (os.environ.get("NVFLARE_POC_WORKSPACE") or "").strip()
    if env:
        return Path(env).expanduser().resolve()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home, "flarenb", "poc").resolve()


@dataclass(frozen=True)
class Poc:
    """A POC workspace on this machine (prepared; maybe running)."""

    workspace: Path

    @property
    def project_file(self) -> Path:
        return self.workspace / "project.yml"

    @property
    def prepared(self) -> bool:
        return self.project_file.is_file() and self.prod_dir.is_dir()

    @property
    def tmp_dir(self) -> Path:
        """The temp folder of the POC's processes (see the module docstring)."""
        return self.workspace / TMP_NAME

    def clean_tmp(self) -> None:
        """Empty :attr:`tmp_dir` (only while no POC process runs)."""
        import shutil

        tmp = self.tmp_dir
        if tmp.is_dir() and not tmp.is_symlink() and tmp.parent == self.workspace:
            shutil.rmtree(tmp, ignore_errors=True)

    @property
    def prod_dir(self) -> Path:
        return self.workspace / PROJECT / "prod_00"

    def site_dir(self, site: str) -> Path:
        return self.prod_dir / site

    @property
    def admin_kit(self) -> Path:
        return self.site_dir(ADMIN)

    def _participants(self) -> list[dict]:
        import yaml

        try:
            config = yaml.safe_load(self.project_file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return []
        return [p for p in config.get("participants", []) if isinstance(p, dict)]

    @property
    def server_name(self) -> str:
        for p in self._participants():
            if p.get("type") == "server":
                return str(p["name"])
        return "server"

    @property
    def clients(self) -> list[str]:
        return [str(p["name"]) for p in self._participants() if p.get("type") == "client"]

    @property
    def ports(self) -> list[int]:
        for p in self._participants():
            if p.get("type") == "server":
                fl = int(p.get("fed_learn_port", DEFAULT_PORT))
                admin = int(p.get("admin_port", fl + 1))
                return sorted({fl, admin})
        return [DEFAULT_PORT]

    def _pid(self, site: str) -> int | None:
        for name in ("pid.fl", "daemon_pid.fl"):
            try:
                pid = int((self.site_dir(site) / name).read_text().strip())
            except (OSError, ValueError):
                continue
            if _alive(pid):
                return pid
        return None

    @property
    def server_pid(self) -> int | None:
        return self._pid(self.server_name)

    def pids(self) -> dict[str, int | None]:
        return {site: self._pid(site) for site in [self.server_name, *self.clients]}

    @property
    def running(self) -> bool:
        return self.prepared and self.server_pid is not None

    def job_log(self, site: str, job_id: str, name: str = "log.txt") -> Path:
        """Where ``site`` writes its log of ``job_id`` (written live, readable without the admin API)."""
        return self.site_dir(site) / job_id / name


def poc_of_kit(kit_path: str | os.PathLike) -> Poc | None:
    """The POC whose admin startup kit is ``kit_path`` (``<workspace>/example_project/prod_00/admin@nvidia.com``)."""
    kit = Path(kit_path).expanduser().resolve()
    if kit.name != ADMIN or kit.parent.name != "prod_00" or kit.parent.parent.name != PROJECT:
        return None
    poc = Poc(kit.parent.parent.parent)
    return poc if poc.prepared else None


def is_poc_workspace(path: str | os.PathLike) -> bool:
    """True if ``path`` is a real folder with NVFlare's POC layout (``nvflare poc clean``'s own check:
    ``setup_service_config`` reads ``project.yml``, ``is_poc_ready`` finds the server and admin kits)."""
    from nvflare.tool.poc.poc_commands import is_poc_ready, setup_service_config

    folder = str(path)
    if os.path.islink(folder) or not os.path.isdir(folder):
        return False
    try:
        project_config, service_config = setup_service_config(folder)
        return bool(project_config) and bool(service_config) and is_poc_ready(folder, service_config, project_config)
    except Exception:  # why: a missing or unreadable project.yml means "not a POC workspace", whatever NVFlare raises
        return False
