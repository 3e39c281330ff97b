"""The process that runs one simulation: ``python -m flarenb._simrun SIM_DIR``.

Started by :func:`flarenb.sim.submit` in its own session (``start_new_session=True``), away from the kernel, so a
kernel restart neither stops nor orphans it half-way. It reads ``SIM_DIR/state.json`` (the workspace was prepared by
:func:`flarenb.sim.submit`, with the standard component policy), runs NVFlare's simulator — the very
command ``FedJob.simulator_run`` runs (``nvflare/job_config/fed_job_config.py``) — with its console output in
``SIM_DIR/simulator.out``, and writes the outcome to ``SIM_DIR/result.json`` when it ends (exit code, status, end
time), which is how any kernel, even a new one, learns how the simulation ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: a line of the server's log that says the run failed even if the simulator's exit code does not
FAILURE_MARKS = ("FATAL_SYSTEM_ERROR", "Aborting current RUN due to")


def command(state: dict) -> list[str]:
    cmd = [sys.executable, "-m", "nvflare.private.fed.app.simulator.simulator", state["job_dir"]]
    cmd += ["-w", state["workspace"]]
    cmd += ["-c", ",".join(state["clients"]), "-n", str(len(state["clients"]))]
    cmd += ["-t", str(state.get("threads") or len(state["clients"]))]
    if state.get("gpu"):
        cmd += ["-gpu", str(state["gpu"])]
    if state.get("log_config"):
        cmd += ["-l", str(state["log_config"])]
    return cmd


def outcome(returncode: int, workspace: Path, aborted: bool) -> str:
    """The job status a finished simulation reports, from its exit code and its server log."""
    if aborted:
        return "FINISHED:ABORTED"
    if returncode != 0:
        return "FINISHED:EXECUTION_EXCEPTION"
    try:
        text = (workspace / "server" / "log.txt").read_text(errors="replace")
    except OSError:
        text = ""
    return "FINISHED:EXECUTION_EXCEPTION" if any(m in text for m in FAILURE_MARKS) else "FINISHED:COMPLETED"


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main(sim_dir: str) -> int:
    root = Path(sim_dir)
    state = json.loads((root / "state.json").read_text())
    workspace = Path(state["workspace"])
    write_json(root / "started.json", {"pid": os.getpid(), "start_time": time.time()})
    with open(root / "simulator.out", "ab") as out:
        proc = subprocess.Popen(command(state), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        returncode = proc.wait()
    aborted = (root / "abort").exists()
    result = {"returncode": returncode, "status": outcome(returncode, workspace, aborted), "end_time": time.time()}
    if not (root / "result.json").exists():
        write_json(root / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
