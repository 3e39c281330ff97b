"""A real, provisioned (non-POC) FLARE on this machine: what users actually run, for tests.

:class:`Deployment` provisions a small project with ``nvflare provision`` (a server, clients, admin users of
several roles) in a temporary folder, on a free port, starts every participant with its own
``startup/sub_start.sh --once`` (no watchdog), waits until an admin can log in and every client is registered,
and stops exactly the processes it started.

Per deployment (see the project's NVFlare facts note):

* the server's job and snapshot storage, which ``nvflare provision`` hard-codes to ``/tmp/nvflare/...`` (shared by
  every NVFlare on the machine), move into the server's workspace (``update_storage_locations``);
* ``TMPDIR`` (where job-level log receivers stage files) and ``HOME`` point into the temporary folder;
* ``extra_rights`` adds rights to the server's ``local/authorization.json`` per role, e.g.
  ``{"lead": {"get_job_log": "n:submitter", "app_command": "n:submitter"}}``.

Nothing here touches ``~/.nvflare``. Use it as a context manager, or through the pytest plugin's
``flarenb_deployment`` fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import FlareError
from .procs import processes_mentioning as _processes_mentioning

PROJECT = "flarenb_test"
SERVER = "localhost"  # the server's name is the host its clients and admins connect to
CLIENTS = ("hospital-a", "hospital-b", "hospital-c")
#: admin users and their roles in NVFlare's default authorization policy
USERS = {"admin@example.org": "project_admin", "lead@example.org": "lead", "member@example.org": "member"}
ORG = "example"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0

_BUILDERS = [
    {"path": "nvflare.lighter.impl.workspace.WorkspaceBuilder", "args": {"template_file": "master_template.yml"}},
    {"path": "nvflare.lighter.impl.static_file.StaticFileBuilder", "args": {"config_folder": "config"}},
    {"path": "nvflare.lighter.impl.cert.CertBuilder"},
    {"path": "nvflare.lighter.impl.signature.SignatureBuilder"},
]


class DeploymentError(FlareError):
    """The provisioned deployment could not be provisioned, started or stopped."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_config(
    clients: tuple[str, ...] | list[str], users: dict[str, str], port: int, project: str = PROJECT
) -> dict[str, Any]:
    """The ``project.yml`` (api_version 3) of a one-machine project."""
    participants: list[dict[str, Any]] = [{"name": SERVER, "type": "server", "org": ORG, "fed_learn_port": port}]
    participants += [{"name": c, "type": "client", "org": ORG} for c in clients]
    participants += [{"name": u, "type": "admin", "org": ORG, "role": role} for u, role in users.items()]
    return {
        "api_version": 3,
        "name": project,
        "description": "flarenb test deployment",
        "participants": participants,
        "builders": _BUILDERS,
    }


def authorization_with(default: dict[str, Any], extra_rights: dict[str, dict[str, str]]) -> dict[str, Any]:
    """``default`` (an ``authorization.json``) with ``extra_rights`` ({role: {right: condition}}) added."""
    policy = json.loads(json.dumps(default))
    perms = policy.setdefault("permissions", {})
    for role, rights in extra_rights.items():
        current = perms.get(role)
        if current == "any":
            continue
        if not isinstance(current, dict):
            current = {}
        current.update(rights)
        perms[role] = current
    return policy


@dataclass
class Deployment:
    """A provisioned FLARE project on this machine (server + clients + admin users), started and stopped here."""

    clients: tuple[str, ...] = CLIENTS
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    extra_rights: dict[str, dict[str, str]] = field(default_factory=dict)
    root: Path | None = None
    port: int = 0
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _flares: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _own_root: bool = field(default=False, repr=False)

    # -- layout --------------------------------------------------------------------------------------
    @property
    def prod_dir(self) -> Path:
        assert self.root is not None, "not provisioned"
        return self.root / "workspace" / PROJECT / "prod_00"

    @property
    def server(self) -> str:
        return SERVER

    @property
    def server_workspace(self) -> Path:
        """The server's workspace (its kit folder): job folders ``<job_id>/`` and ``jobs-storage`` live here."""
        return self.prod_dir / SERVER

    def site_workspace(self, site: str) -> Path:
        return self.prod_dir / site

    @property
    def kits(self) -> dict[str, Path]:
        """The admin startup kit of each user (the folder that contains ``startup/``)."""
        return {user: self.prod_dir / user for user in self.users}

    def kit(self, user: str = "admin@example.org") -> Path:
        if user not in self.users:
            raise DeploymentError(f"No user {user!r} in this deployment", f"Use one of {', '.join(self.users)}")
        return self.prod_dir / user

    @property
    def tmpdir(self) -> Path:
        assert self.root is not None, "not provisioned"
        return self.root / "tmp"

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._procs.items() if p.poll() is None}

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs.values())

    # -- provision, start, stop ----------------------------------------------------------------------
    def provision(self) -> Deployment:
        """``nvflare provision`` into a new temporary folder (or ``root``), then the per-deployment fixes."""
        import yaml

        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="flarenb-deploy-"))
            self._own_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        project = self.root / "project.yml"
        project.write_text(yaml.safe_dump(project_config(self.clients, self.users, self.port), sort_keys=False))
        cmd = [sys.executable, "-m", "nvflare.cli", "provision", "-p", str(project), "-w", str(self.root / "workspace")]
        result = subprocess.run(
            cmd, env=self._env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0 or not (self.server_workspace / "startup").is_dir():
            tail = (result.stderr or result.stdout or "").strip().splitlines()[-1:] or [f"exit {result.returncode}"]
            raise DeploymentError(f"nvflare provision failed: {tail[0]}", f"See {project}")
        self._configure_server()
        return self

    def _configure_server(self) -> None:
        from nvflare.lighter.utils import update_storage_locations

        local = self.server_workspace / "local"
        update_storage_locations(local_dir=str(local), workspace=str(self.server_workspace))
        if self.extra_rights:
            default = json.loads((local / "authorization.json.default").read_text())
            policy = authorization_with(default, self.extra_rights)
            (local / "authorization.json").write_text(json.dumps(policy, indent=2) + "\n")

    def _env(self) -> dict[str, str]:
        assert self.root is not None
        env = dict(os.environ)
        venv_bin = os.path.dirname(sys.executable)  # sub_start.sh runs plain 'python3': the venv's must lead PATH
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        env["TMPDIR"] = str(self.root / "tmp")
        env["HOME"] = str(self.root / "home")
        for key in ("NVFLARE_STARTUP_KIT_DIR", "NVFLARE_POC_WORKSPACE", "NVFL_WORKSPACE"):
            env.pop(key, None)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> Deployment:
        """Start the server, then each client; return once an admin logs in and every client is registered."""
        if self.root is None:
            self.provision()
        if self._procs:
            raise DeploymentError("This deployment was already started", "Stop it first")
        try:
            self._spawn(SERVER)
            for client in self.clients:
                self._spawn(client)
            flare = self.flare(self._first_admin())
            self._wait_login(flare, timeout)
            flare.wait_for_clients(list(self.clients), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, name: str = SERVER, timeout: float = START_TIMEOUT) -> None:
        """Kill one participant this deployment started (SIGKILL: a crash) and start it again; return once an admin
        logs in and every client is registered. Connections reconnect on their next call."""
        p = self._procs.get(name)
        if p is None:
            raise DeploymentError(f"{name} was not started by this deployment", "Start the deployment first")
        if p.poll() is None:
            _kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        self._spawn(name)
        flare = self.flare(self._first_admin())
        self._wait_login(flare, timeout)
        flare.wait_for_clients(list(self.clients), timeout)

    def _first_admin(self) -> str:
        for user, role in self.users.items():
            if role == "project_admin":
                return user
        return next(iter(self.users))

    def _spawn(self, name: str) -> None:
        assert self.root is not None
        script = self.site_workspace(name) / "startup" / "sub_start.sh"
        with open(self.root / f"{name}.out", "ab") as out:
            self._procs[name] = subprocess.Popen(
                ["bash", str(script), "--once"],  # execs python: the pid is the participant's own
                cwd=str(self.site_workspace(name)),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the test runner's process group (no stray terminal signals)
            )

    def _wait_login(self, flare: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise DeploymentError(
                    f"{', '.join(dead)} exited while starting", f"See {self.root}/<participant>.out and log.txt"
                )
            try:
                flare.session  # noqa: B018 - logs in
                return
            except FlareError:
                if time.monotonic() > deadline:
                    raise DeploymentError(
                        f"The server did not accept a login within {timeout:g} s",
                        f"See {self.server_workspace / 'log.txt'}",
                    ) from None
                time.sleep(0.5)

    def flare(self, user: str = "admin@example.org", study: str = "default") -> Any:
        """A :class:`flarenb.Flare` logged in lazily as ``user`` (kept per user and study; closed by :meth:`stop`).

        It does not become flarenb's current connection: pass it to calls, or ``session.set_current`` it.
        """
        from .session import Flare, Kit

        key = (user, study)
        if key not in self._flares:
            kit = Kit(path=str(self.kit(user)), username=user, source="startup_kit")
            self._flares[key] = Flare(kit, study=study, timeout=5.0)
        return self._flares[key]

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every process this deployment started, and the job processes they started; idempotent.

        Job processes run in their own sessions; they are found by this deployment's own (unique) folder in
        their command line, and normally exit by themselves within ~10 s of their parent.
        """
        for flare in self._flares.values():
            flare.close()
        self._flares.clear()
        procs, self._procs = self._procs, {}
        for name in [*self.clients, SERVER]:  # clients first; SIGTERM stops an idle participant at once
            p = procs.get(name)
            if p is not None and p.poll() is None:
                _kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        if self.root is None:
            return
        marker = str(self.root.resolve())
        while leftovers := _processes_mentioning(marker):
            if time.monotonic() > deadline:
                for pid in leftovers:
                    _kill(pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline - timeout / 2:
                for pid in leftovers:
                    _kill(pid, signal.SIGTERM)
            time.sleep(0.25)

    def remove(self) -> None:
        """Delete the temporary folder this deployment created (never a folder it was given)."""
        root = self.root
        if root is None or not self._own_root:
            return
        tmp = Path(tempfile.gettempdir()).resolve()
        resolved = root.resolve()
        if resolved.parent == tmp and resolved.name.startswith("flarenb-deploy-"):
            shutil.rmtree(resolved, ignore_errors=True)
        self.root = None

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.remove()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
