"""A real local FLARE: start (or reuse), inspect and stop an NVFlare POC deployment.

The server and every client run as separate processes, started by NVFlare's own POC tooling
(``nvflare poc prepare`` / ``nvflare poc start`` / ``nvflare poc stop``). :func:`start` is idempotent: a rerun of
the cell, or a new kernel, finds the running POC and reuses it within seconds; it never wipes a running one
(unlike ``nvflare.recipe.PocEnv``).

The workspace is ``$NVFLARE_POC_WORKSPACE`` if set, else a flarenb-owned folder
(``$XDG_DATA_HOME/flarenb/poc``, by default ``~/.local/share/flarenb/poc``).

After ``prepare`` flarenb points the server's system-level ``JobLogReceiver`` at the server workspace root
(instead of the system temp dir, where stock NVFlare strands staging files), so that logs streamed by a job's
clients land where ``get_job_logs`` reads them while the job runs. Jobs submitted through flarenb add the
client-side streamer (see :mod:`flarenb.jobconfig`).

The POC's processes run with ``TMPDIR=<workspace>/flarenb-tmp``: the server keeps every uploaded job zip (even of
failed submits) and log-staging folders in its temp folder, which flarenb empties whenever it starts or stops the
POC, instead of leaving them in the system temp folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import procs as _procs
from . import session as _session
from . import validate
from ._display import StatusLine
from .errors import FlareError, PocError
from .pocworkspace import ADMIN, DEFAULT_PORT, PROJECT, TMP_NAME, Poc, default_workspace, is_poc_workspace, poc_of_kit
from .procs import alive as _alive

__all__ = [
    "ADMIN",
    "DEFAULT_CLIENTS",
    "DEFAULT_PORT",
    "PROJECT",
    "TMP_NAME",
    "Poc",
    "PocStatus",
    "default_workspace",
    "is_poc_workspace",
    "poc_of_kit",
    "prepare",
    "start",
    "status",
    "stop",
]

DEFAULT_CLIENTS = 2
START_TIMEOUT = 90.0
MAX_CLIENTS = 100  # each client is a process of ~90 MiB


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _check_ports(ports: list[int]) -> None:
    busy = [p for p in ports if not _port_free(p)]
    if busy:
        raise PocError(
            f"Port {', '.join(map(str, busy))} needed by the local FLARE is in use by another program",
            "Stop that program (or another FLARE: nvflare poc stop), or start on another port with --port N",
        )


def _nvflare(args: list[str], poc: Poc, timeout: float, tmp: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, NVFLARE_POC_WORKSPACE=str(poc.workspace))
    if tmp:  # the POC's processes inherit it (see the module docstring)
        poc.tmp_dir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(poc.tmp_dir)
    cmd = [sys.executable, "-m", "nvflare.cli", *args]
    try:
        return subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise PocError(f"'nvflare {' '.join(args)}' did not finish within {timeout:g} s", "Try again") from None


def _site_names(clients: int | None, sites: list[str] | None) -> list[str]:
    if sites:
        if isinstance(sites, str):
            sites = sites.split(",")
        names = [validate.site_name(s.strip() if isinstance(s, str) else s, reserved=("server",)) for s in sites]
        dupes = sorted({s for s in names if names.count(s) > 1})
        if dupes:
            raise PocError(
                f"Duplicate site names: {', '.join(dupes)}",
                "Use distinct names, e.g. --sites hospital-a,hospital-b",
            )
        return names
    if isinstance(clients, bool) or not isinstance(clients, (int, type(None))):
        raise PocError(f"--clients must be a whole number, got {clients!r}", "Example: %flare poc start --clients 2")
    n = DEFAULT_CLIENTS if clients is None else clients
    if n < 1:
        raise PocError(f"--clients must be at least 1, got {n}", "Example: %flare poc start --clients 2")
    if n > MAX_CLIENTS:
        raise PocError(f"--clients must be at most {MAX_CLIENTS}, got {n}", "Example: %flare poc start --clients 2")
    return [f"site-{i + 1}" for i in range(n)]


def _active_kit_id() -> str | None:
    try:
        from nvflare.tool.kit.kit_config import get_active_startup_kit_id, load_cli_config

        return get_active_startup_kit_id(load_cli_config())
    except Exception:
        return None


def _restore_active_kit(previous: str | None) -> None:
    """``nvflare poc prepare`` makes the POC admin kit the active one; keep the user's own choice instead."""
    if not previous or _active_kit_id() == previous:
        return
    try:
        from nvflare.tool.kit.kit_config import load_cli_config, save_cli_config, set_active_startup_kit

        save_cli_config(set_active_startup_kit(load_cli_config(), previous))
    except Exception:
        pass


def _configure_log_receiver(poc: Poc) -> None:
    """Point the server's system-level JobLogReceiver at the server workspace root (see module docstring)."""
    server_ws = poc.site_dir(poc.server_name)
    for name in ("resources.json", "resources.json.default"):
        path = server_ws / "local" / name
        if not path.is_file():
            continue
        conf = json.loads(path.read_text())
        for comp in conf.get("components", []):
            if str(comp.get("path", "")).endswith("JobLogReceiver"):
                comp.setdefault("args", {})["dest_dir"] = str(server_ws)
        path.write_text(json.dumps(conf, indent=2))


def prepare(poc: Poc, sites: list[str], port: int | None = None) -> None:
    """``nvflare poc prepare`` for these sites (wipes the stopped workspace), then flarenb's configuration.

    ``port`` moves the server off NVFlare's default 8002: the generated ``project.yml`` is re-provisioned
    with it (``nvflare poc prepare -i``), so two local FLAREs (say, a test session's and yours) can coexist.
    """
    if poc.running:
        raise PocError("The local FLARE is running", "Stop it first with %flare poc stop")
    _check_preparable(poc)
    previous = _active_kit_id()
    result = _nvflare(["poc", "prepare", "-c", *sites, "--force"], poc, timeout=120)
    if result.returncode != 0 or not poc.prepared:
        raise PocError(f"nvflare poc prepare failed: {_tail(result)}", "Check the workspace folder is writable")
    if port is not None and port not in poc.ports:
        import tempfile

        import yaml

        config = yaml.safe_load(poc.project_file.read_text())
        for p in config.get("participants", []):
            if p.get("type") == "server":
                p["fed_learn_port"] = int(port)
                p.pop("admin_port", None)
        with tempfile.TemporaryDirectory(prefix="flarenb-project-") as tmp:
            project = Path(tmp) / "project.yml"
            project.write_text(yaml.safe_dump(config, sort_keys=False))
            result = _nvflare(["poc", "prepare", "-i", str(project), "--force"], poc, timeout=120)
        if result.returncode != 0 or not poc.prepared or port not in poc.ports:
            raise PocError(f"nvflare poc prepare with port {port} failed: {_tail(result)}", "Try another --port")
    _restore_active_kit(previous)
    _configure_log_receiver(poc)


def _check_preparable(poc: Poc) -> None:
    """``nvflare poc prepare --force`` deletes the workspace folder first: only ever let it at a missing or empty
    folder, or one that already is a POC workspace."""
    ws = poc.workspace
    if not os.path.lexists(ws):
        return
    if not ws.is_dir() or ws.is_symlink():
        raise PocError(f"The POC workspace {ws} is not a folder", "Choose another --workspace")
    if any(ws.iterdir()) and not is_poc_workspace(ws):
        raise PocError(
            f"{ws} is not empty and not a POC workspace: preparing a local FLARE there would delete what it holds",
            "Choose a new or empty folder with --workspace",
        )


def _tail(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or "").strip() or (result.stdout or "").strip()
    return text.splitlines()[-1] if text else f"exit code {result.returncode}"


def start(
    clients: int | None = None,
    sites: list[str] | None = None,
    workspace: str | os.PathLike | None = None,
    study: str = _session.DEFAULT_STUDY,
    timeout: float = START_TIMEOUT,
    progress: bool = True,
    port: int | None = None,
) -> _session.Flare:
    """Start (or reuse) the local FLARE and make it the current connection.

    ``clients=N`` names the sites ``site-1`` .. ``site-N`` (default 2); ``sites=[...]`` names them yourself.
    A running POC with the same sites is reused as it is; one with other sites is an error (stop it first).
    ``port`` is the server's port (default: NVFlare's 8002, or what the workspace was prepared with).
    """
    timeout = validate.seconds("--timeout", timeout, minimum=1.0, maximum=3600.0, example="--timeout 90")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise PocError(f"--port must be a TCP port number 1-65535, got {port!r}", "Example: --port 8002")
    poc = Poc(Path(workspace).expanduser().resolve() if workspace else default_workspace())
    explicit = clients is not None or bool(sites)
    wanted = _site_names(clients, sites)
    show = StatusLine(progress)

    if poc.running:
        if explicit and sorted(poc.clients) != sorted(wanted):
            raise PocError(
                f"The local FLARE at {poc.workspace} is running with sites {', '.join(poc.clients)}",
                "Stop it with %flare poc stop to change its sites, or start it without --clients/--sites",
            )
        flare = _connect(poc, study, timeout)
        flare.wait_for_clients(poc.clients, timeout, show)
        show(f"Local FLARE reused: {len(poc.clients)} clients connected ({', '.join(poc.clients)})")
        return flare

    reprepare = (
        not poc.prepared or (explicit and sorted(poc.clients) != sorted(wanted)) or (port and port not in poc.ports)
    )
    # the folder and the port are checked before anything is prepared: a refused start changes nothing on disk
    if reprepare:
        _check_preparable(poc)
    _check_ports([port] if port else poc.ports if not reprepare else [DEFAULT_PORT])
    if reprepare:
        show(f"Preparing a local FLARE with {', '.join(wanted)} in {poc.workspace} …")
        prepare(poc, wanted, port=port)
        _check_ports(poc.ports)
    show("Starting the local FLARE: server …")
    poc.clean_tmp()
    result = _nvflare(["poc", "start", "--no-wait"], poc, timeout=120, tmp=True)
    if result.returncode != 0:
        _kill_all(poc)
        raise PocError(f"nvflare poc start failed: {_tail(result)}", "Run %flare poc stop, then start again")
    try:
        flare = _connect(poc, study, timeout)
        flare.wait_for_clients(poc.clients, timeout, show)
    except BaseException:
        _session.set_current(None) if _session._current and _session._current.poc == poc else None
        stop(workspace=poc.workspace, progress=False)
        raise
    show(f"Local FLARE started: {len(poc.clients)} clients connected ({', '.join(poc.clients)})")
    return flare


def _connect(poc: Poc, study: str, timeout: float) -> _session.Flare:
    cur = _session._current
    if cur is not None and cur.poc == poc and cur.study == study:
        return cur
    kit = _session.Kit(path=str(poc.admin_kit), username=ADMIN, source="poc")
    flare = _session.Flare(kit, study=study, timeout=5.0, poc=poc)
    deadline = time.monotonic() + timeout
    while True:  # the server needs ~6-8 s after 'poc start' before it accepts logins
        try:
            flare.session  # noqa: B018
            break
        except FlareError:
            if not poc.running or time.monotonic() > deadline:
                flare.close()
                raise PocError(
                    f"The local FLARE server did not accept a login within {timeout:g} s",
                    f"See {poc.site_dir(poc.server_name) / 'log.txt'}; run %flare poc stop and start again",
                ) from None
            time.sleep(0.5)
    flare.timeout = _session.DEFAULT_TIMEOUT
    _session.set_current(flare)
    return flare


@dataclass
class PocStatus:
    workspace: Path
    prepared: bool
    running: bool
    pids: dict

    def __str__(self) -> str:
        if not self.prepared:
            return f"No local FLARE in {self.workspace}. Start one with %flare poc start"
        state = "running" if self.running else "stopped"
        procs = ", ".join(f"{site} {'pid ' + str(pid) if pid else 'not running'}" for site, pid in self.pids.items())
        return f"Local FLARE in {self.workspace}: {state} ({procs})"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def status(workspace: str | os.PathLike | None = None) -> PocStatus:
    poc = Poc(Path(workspace).expanduser().resolve() if workspace else default_workspace())
    return PocStatus(poc.workspace, poc.prepared, poc.running, poc.pids() if poc.prepared else {})


def stop(
    workspace: str | os.PathLike | None = None, clean: bool = False, timeout: float = 60.0, progress: bool = True
) -> PocStatus:
    """Stop the local FLARE (all its processes; its ports are free afterwards).

    ``clean=True`` also deletes the workspace — only if it is a prepared POC workspace (NVFlare's layout:
    ``project.yml`` and the server and admin kits under ``<workspace>/<project>/prod_00``); any other existing folder
    is refused with a one-line error before anything is stopped or deleted.
    """
    timeout = validate.seconds("--timeout", timeout, minimum=1.0, maximum=3600.0, example="--timeout 60")
    poc = Poc(Path(workspace).expanduser().resolve() if workspace else default_workspace())
    if clean and os.path.lexists(poc.workspace) and not is_poc_workspace(poc.workspace):
        raise PocError(
            f"{poc.workspace} is not a prepared POC workspace (no project.yml with its server and admin kits);"
            " nothing was stopped or deleted",
            "Check --workspace; %flare poc stop --clean only deletes a folder made by %flare poc start",
        )
    show = StatusLine(progress)
    cur = _session._current
    if cur is not None and cur.poc == poc:
        _session.set_current(None)
    if poc.prepared and poc.running:
        show("Stopping the local FLARE …")
        _nvflare(["poc", "stop"], poc, timeout=timeout)
    if poc.prepared:
        _wait_gone(poc, timeout)
        if not _poc_processes(poc):
            poc.clean_tmp()
    if clean and poc.workspace.exists():
        if poc.prepared:
            _nvflare(["poc", "clean", "--force"], poc, timeout=timeout)
        if poc.workspace.exists():
            import shutil

            shutil.rmtree(poc.workspace, ignore_errors=True)
    st = status(poc.workspace)
    show("Local FLARE stopped" + (" and deleted" if clean else ""))
    return st


def _poc_processes(poc: Poc) -> list[int]:
    """This user's NVFlare processes of this workspace (server, clients, job processes, ``sub_start.sh``
    watchdogs), matched by NVFlare's process signatures (:mod:`flarenb.procs`), never by a substring."""
    if not os.path.isdir("/proc"):  # not Linux: the pid files are all we know
        return [pid for pid in poc.pids().values() if pid]
    return [pid for pid in _procs.poc_processes(poc.prod_dir) if _alive(pid)]


def _kill_all(poc: Poc, sig: int = signal.SIGTERM) -> None:
    for pid in _poc_processes(poc):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _wait_gone(poc: Poc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _poc_processes(poc) or not all(_port_free(p) for p in poc.ports):
        if time.monotonic() > deadline:
            _kill_all(poc, signal.SIGKILL)
            time.sleep(0.5)
            return
        if time.monotonic() > deadline - timeout / 2:
            _kill_all(poc)
        time.sleep(0.25)
