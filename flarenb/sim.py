"""The simulator as a job target: ``%flare submit recipe --sim`` / ``flarenb.sim.submit(recipe)``.

A simulation runs NVFlare's simulator in its own process tree (:mod:`flarenb._simrun`), so the cell returns at
once; :class:`Simulation` is the same handle as a :class:`~flarenb.jobs.Job` — ``status``, ``meta()``,
``wait()``, ``logs()``, ``view()``, ``abort()``, ``download()``, ``delete()`` — read from files on this machine.

Every simulation has its own folder under the flarenb data folder (``$XDG_DATA_HOME/flarenb/simulations``, by
default ``~/.local/share/flarenb/simulations``; :mod:`flarenb.simfolder` finds, reads and removes them)::

    sim-<12 hex>/state.json     id, name, submit token, clients, workspace, pid, submit time
                 started.json   written by the runner when it starts
                 result.json    written when it ends: exit code, status, end time
                 job/<name>/    exactly the job folder that runs
                 workspace/     the simulator's workspace: <site>/log.txt written live, server/simulate_job/...
                 simulator.out  the simulator's console output

Reruns are idempotent as submits are (:mod:`flarenb.submission`): the id is derived from a token made of the
cell, the job's content hash and the simulation's settings, so the same cell with the same content reattaches —
in this kernel or a new one — changed content or settings run anew, and ``new=True`` always runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import simprocs
from . import threads as _threads
from .errors import FlareError
from .jobs import JobFailed, JobWaitTimeout, failure_of
from .simfolder import PREFIX, SITE_FILES, data_dir, is_sim_id  # noqa: F401 - SITE_FILES: re-exported
from .simfolder import duration_text as _duration
from .simfolder import iso_time as _iso
from .simfolder import mtime as _mtime
from .simfolder import read_json as _read
from .simfolder import remove as _remove
from .vocab import is_terminal

DEFAULT_CLIENTS = 2
STARTING_GRACE = 30.0

#: runners started by this kernel, reaped when they end (a runner of an earlier kernel is init's child)
_children: dict[str, subprocess.Popen] = {}
#: what to call once when such a runner has ended (:func:`on_runner_exit`)
_on_exit: dict[str, list[Callable[[], None]]] = {}
_on_exit_lock = threading.Lock()


class SimError(FlareError):
    pass


def site_names(clients: int | None = None, sites: list[str] | None = None) -> list[str]:
    if clients is not None and sites:
        raise SimError("--clients and --sites cannot be combined", "Use --clients N or --sites a,b")
    if sites:
        names = [s.strip() for s in sites if s.strip()]
        bad = [s for s in names if not s.replace("-", "").replace("_", "").replace(".", "").isalnum()]
        if not names or bad or len(set(names)) != len(names) or "server" in names:
            raise SimError(f"Invalid site names {sites!r}", "Use distinct names of letters, digits, '-', '_' or '.'")
        return names
    n = DEFAULT_CLIENTS if clients is None else clients
    if n < 1:
        raise SimError(f"--clients must be at least 1, got {n}", "Example: --clients 2")
    return [f"site-{i}" for i in range(1, n + 1)]


@dataclass
class Simulation:
    """A local simulation (see the module docstring). ``repr`` says whether it was just started or reattached."""

    id: str
    name: str = ""
    submit_token: str | None = None
    reattached: bool = False
    status_at_submit: str | None = None
    root: Path = field(default_factory=Path, repr=False)

    # -- state ------------------------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        return _read(self.root / "state.json")

    @property
    def workspace(self) -> Path:
        return Path(self.state.get("workspace") or self.root / "workspace")

    @property
    def clients(self) -> list[str]:
        return list(self.state.get("clients") or [])

    @property
    def sites(self) -> list[str]:
        return ["server", *self.clients]

    def site_log(self, site: str, name: str = "log.txt") -> Path:
        return self.workspace / site / name

    def running(self) -> bool:
        """True while the simulation's runner process lives and has not reported its end."""
        if (self.root / "result.json").exists():
            return False
        child = _children.get(self.id)
        if child is not None:
            if child.poll() is None:
                return True
            _children.pop(self.id, None)  # reaped: no zombie left behind
        st = self.state
        if "pid" not in st:  # being started (by another kernel, maybe): give it a few seconds
            return time.time() - float(st.get("submit_time") or 0) < STARTING_GRACE
        return simprocs.alive(st.get("pid"), st.get("pid_ticks"))

    @property
    def status(self) -> str:
        result = _read(self.root / "result.json")
        if result.get("status"):
            return str(result["status"])
        if self.running():
            return "RUNNING" if self.site_log("server").exists() else "SUBMITTED"
        result = _read(self.root / "result.json")  # it may have ended between the two reads
        return str(result.get("status") or "FINISHED:ABANDONED")

    def meta(self) -> dict:
        """The job meta of the simulation, in the shape of ``nvflare job meta`` (plus ``workspace``, ``pid``)."""
        st, status = self.state, self.status
        started = _read(self.root / "started.json").get("start_time")
        end = _read(self.root / "result.json").get("end_time")
        if is_terminal(status) and end is None:
            end = _mtime(self.root / "simulator.out")
        ref = end if is_terminal(status) else time.time()
        return {
            "job_id": self.id,
            "name": self.name,
            "status": status,
            "submit_time": st.get("submit_time"),
            "submit_time_iso": _iso(st.get("submit_time")),
            "start_time": _iso(started),
            "end_time": _iso(end),
            "duration": _duration(ref - started if started and ref else None),
            "deploy_map": {"app": ["@ALL"]},
            "clients": self.clients,
            "threads": st.get("threads"),
            "workspace": str(self.workspace),
            "pid": st.get("pid"),
            "submit_token": st.get("token"),
            "where": "simulator",
        }

    # -- the same verbs as a Job ------------------------------------------------------------------------
    def wait(self, timeout: float = 0, interval: float = 1.0, progress: bool = False) -> dict:
        """Block until the simulation ends; return its meta. Raise ``JobFailed`` / ``JobWaitTimeout``."""
        from ._display import StatusLine
        from .jobs import JobMeta

        if timeout < 0:
            raise SimError(f"--timeout must be >= 0, got {timeout:g}", "Use 0 to wait without a limit")
        if interval <= 0:
            raise SimError(f"--interval must be > 0, got {interval:g}", "Example: --interval 2")
        show = StatusLine(progress)
        start = time.monotonic()
        while True:
            status = self.status
            elapsed = time.monotonic() - start
            show(f"simulation {self.id}: {status} ({elapsed:.0f} s)")
            if is_terminal(status):
                break
            if timeout and elapsed >= timeout:
                raise JobWaitTimeout(
                    f"Simulation {self.id} is still {status} after {timeout:g} s",
                    f"Wait longer with %flare wait {self.id} --timeout N, or stop it with %flare abort {self.id}",
                )
            time.sleep(min(interval, 0.5, max(0.05, timeout - elapsed)) if timeout else min(interval, 0.5))
        code = failure_of(status)
        if code:
            reason = _read(self.root / "result.json").get("reason")
            raise JobFailed(
                f"Simulation {self.id} ended {status} ({code})" + (f": {reason}" if reason else ""),
                f"See which site failed with %flare logs {self.id} --site all (the simulator's own output: "
                f"{self.root / 'simulator.out'})",
            )
        return JobMeta(self.meta(), job_id=self.id)

    def monitor(self, timeout: float = 0, interval: float = 1.0) -> dict:
        return self.wait(timeout=timeout, interval=interval, progress=True)

    def fetch(self, target: str, log_file_name: str | None = None) -> dict:
        """``Session.get_job_logs``'s reply shape, read from the simulation's workspace."""
        name = log_file_name or "log.txt"
        targets = self.sites if target == "all" else [target]
        logs, unavailable = {}, {}
        for site in targets:
            path = self.site_log(site, name)
            if site not in self.sites:
                unavailable[site] = f"no site {site!r} in this simulation (sites: {', '.join(self.sites)})"
            elif path.is_file():
                logs[site] = path.read_text(errors="replace")
            else:
                unavailable[site] = f"{name} not written yet" if not is_terminal(self.status) else f"no {name}"
        return {"logs": logs, "unavailable": unavailable}

    def logs(self, site: str = "server", tail=None, since=None, max_bytes=None, format: str = "text"):
        """A snapshot of the logs with ``nvflare job logs`` semantics (:func:`flarenb.logs.get_logs`)."""
        from .logs import get_logs

        return get_logs(self.fetch, self.id, site=site, tail=tail, since=since, max_bytes=max_bytes, fmt=format)

    def view(self):
        """The live per-site log widget (one lane per site, tailing the workspace's logs)."""
        from .simview import SimView

        return SimView(self)

    def abort(self) -> str:
        """Stop the simulation's whole process tree; its workspace and logs stay."""
        status = self.status
        if is_terminal(status):
            raise SimError(f"Simulation {self.id} is not running ({status})", "There is nothing to abort")
        (self.root / "abort").touch()
        st = self.state
        root_pid = st.get("pid") if simprocs.alive(st.get("pid"), st.get("pid_ticks")) else None
        simprocs.kill_tree(self.id, root_pid)
        child = _children.pop(self.id, None)
        if child is not None:
            child.wait(timeout=10)
        if not (self.root / "result.json").exists():
            from ._simrun import write_json

            ended = {"returncode": None, "status": "FINISHED:ABORTED", "end_time": time.time()}
            write_json(self.root / "result.json", ended)
        return f"aborted simulation {self.id}"

    def delete(self) -> str:
        """Remove the simulation and its workspace (not while it runs)."""
        if not is_terminal(self.status):
            raise SimError(f"Simulation {self.id} has not ended yet", f"Abort it first with %flare abort {self.id}")
        _remove(self)
        return f"deleted simulation {self.id}"

    def download(self, output_dir: str | None = None, force: bool = False):
        """Copy the result to ``output_dir/<id>`` as ``nvflare job download`` lays it out; the same ``Download``."""
        from .simstore import download

        return download(self, output_dir=output_dir, force=force)

    # -- display ----------------------------------------------------------------------------------------
    def summary(self) -> str:
        sites = ", ".join(self.clients)
        if self.reattached:
            st = self.state
            return (
                f"reattached to simulation {self.id} ({self.status_at_submit or '?'}, started at "
                f"{_iso(st.get('submit_time')) or '?'}; clients {sites})"
            )
        return f"started simulation {self.id}" + (f" ({self.name})" if self.name else "") + f" with clients {sites}"

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p, cycle):
        p.text(self.summary())

    def record(self) -> dict:
        return {
            "job_id": self.id,
            "job_name": self.name,
            "submit_token": self.submit_token,
            "target": "simulator",
            "reattached": self.reattached,
        }

    def _repr_mimebundle_(self, include=None, exclude=None):
        import html

        text = self.summary()
        data = {"text/plain": text, "text/html": f"<div class='flarenb-job'>{html.escape(text)}</div>"}
        return data, {"flarenb": self.record()}


def on_runner_exit(sim_id: str, call: Callable[[], None]) -> bool:
    """Call ``call()`` once, on the reaper thread, the moment the runner of ``sim_id`` ends (its ``result.json`` is
    written by then): the simulation's end as an event, with no polling. Only for a runner this kernel started;
    False (never called) when it did not, or when the runner has ended already."""
    with _on_exit_lock:
        child = _children.get(sim_id)
        if child is None or child.returncode is not None:
            return False
        _on_exit.setdefault(sim_id, []).append(call)
        return True


def _reap(sim_id: str, proc: subprocess.Popen) -> None:
    """Wait for a runner to end (no zombie left behind), then call what :func:`on_runner_exit` registered."""
    proc.wait()
    with _on_exit_lock:
        calls = _on_exit.pop(sim_id, [])
    for call in calls:
        try:
            call()
        except Exception:  # a listener's failure must not stop the others (nor leave the thread with a traceback)
            import logging

            logging.getLogger("flarenb.sim").exception("flarenb: a listener of simulation %s's end failed", sim_id)


def get(sim_id: str, root: Path | None = None) -> Simulation:
    """The simulation ``sim_id`` (a ``SimError`` if there is none); all of them: :mod:`flarenb.simstore`."""
    d = (root or data_dir()) / sim_id
    st = _read(d / "state.json")
    if not is_sim_id(sim_id) or not st:
        raise SimError(f"No local simulation {sim_id}", "List them with %flare list")
    return Simulation(id=sim_id, name=str(st.get("name", "")), submit_token=st.get("token"), root=d)


# -- starting ---------------------------------------------------------------------------------------------
def submit(
    target: Any,
    *,
    clients: int | None = None,
    sites: list[str] | None = None,
    threads: int | None = None,
    gpu: str | None = None,
    log_config: str | None = None,
    name: str | None = None,
    new: bool = False,
    submit_token: str | None = None,
    scope: str | None = None,
    workspace_root: str | None = None,
) -> Simulation:
    """Run ``target`` (a Recipe, FedJob or job folder) in the simulator, in the background; see the module doc."""
    from . import jobsource
    from . import submission as S

    names = site_names(clients, sites)
    if threads is not None and threads < 1:
        raise SimError(f"--threads must be at least 1, got {threads}", "Example: --threads 2")
    if submit_token is not None:
        from .jobs import _check_token

        _check_token(submit_token)
        if new or name:
            raise SimError(f"{'--new' if new else '--name'} and --submit-token cannot be combined", "Use one of them")
    settings = {"clients": names, "threads": threads, "gpu": gpu, "log_config": log_config}
    with tempfile.TemporaryDirectory(prefix="flarenb-sim-export-") as tmp:
        source = jobsource.export(target, Path(tmp))
        job_name = jobsource.job_name(source)
        staged = jobsource.stage(source, Path(tmp) / "stage" / job_name, stream_logs=False, sites=None)
        digest = jobsource.content_hash(staged)
        if submit_token is None:
            if scope is None:
                scope = f"name:{name}" if name else (S.cell_scope() or f"job:{job_name}")
            nonce = os.urandom(8).hex() if new else ""
            submit_token = S.derive_token(f"sim|{scope}", f"{digest}|{json.dumps(settings, sort_keys=True)}", nonce)
        sim_id = PREFIX + hashlib.sha256(f"{submit_token}|{digest}".encode()).hexdigest()[:12]
        root = data_dir() / sim_id
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            root.mkdir()
        except FileExistsError:
            return _reattach(sim_id, root)
        try:
            shutil.copytree(staged, root / "job" / job_name)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
    ws = Path(workspace_root).expanduser().resolve() / sim_id if workspace_root else root / "workspace"
    state = {
        "id": sim_id,
        "name": job_name,
        "token": submit_token,
        "content_hash": digest,
        "job_dir": str(root / "job" / job_name),
        "workspace": str(ws),
        "clients": names,
        "threads": threads,
        "gpu": gpu,
        "log_config": log_config,
        "submit_time": time.time(),
    }
    from nvflare.recipe.sim_env import SimEnv

    from ._simrun import write_json

    ws.mkdir(parents=True, exist_ok=True)
    SimEnv._ensure_default_component_policy(str(ws))  # as SimEnv.deploy does; here, so the runner starts at once
    write_json(root / "state.json", state)
    env = dict(os.environ, **{simprocs.ENV_MARK: sim_id})
    with open(root / "runner.err", "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flarenb._simrun", str(root)],
            cwd=str(root),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    _children[sim_id] = proc
    # reap the runner the moment it ends, so a finished simulation never leaves a zombie in the kernel
    _threads.start(_reap, f"flarenb-sim-reap-{sim_id}", args=(sim_id, proc))
    state.update(pid=proc.pid, pid_ticks=simprocs.start_ticks(proc.pid))
    write_json(root / "state.json", state)
    return Simulation(id=sim_id, name=job_name, submit_token=submit_token, status_at_submit="SUBMITTED", root=root)


def _reattach(sim_id: str, root: Path) -> Simulation:
    deadline = time.monotonic() + 10  # another kernel may be writing it right now
    while not (root / "state.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    sim = get(sim_id)
    sim.reattached = True
    sim.status_at_submit = sim.status
    return sim
