"""The process that runs one simulation: ``python -m flarenb._simrun SIM_DIR``.

Started by :func:`flarenb.sim.submit` in its own session (``start_new_session=True``), away from the kernel, so a
kernel restart neither stops nor orphans it half-way. It reads ``SIM_DIR/state.json`` (the workspace was prepared by
:func:`flarenb.sim.submit`, with the standard component policy), runs NVFlare's simulator — the very
command ``FedJob.simulator_run`` runs (``nvflare/job_config/fed_job_config.py``) — with its console output in
``SIM_DIR/simulator.out``, and writes the outcome to ``SIM_DIR/result.json`` when it ends (exit code, status, end
time), which is how any kernel, even a new one, learns how the simulation ended.

NVFlare's simulator sometimes fails to start a client process (measured on these machines, about one run in ten
under load: ``ClientTaskWorker run error: EOFError: Ran out of input``, then ``Failed to create connection to the
child process in SimulatorClientRunner``) and then waits forever. This process watches the console for that line:
it stops the hung simulator's processes and starts it once more (the simulator clears its workspace on start); a
second hang ends the simulation as failed, with the reason in ``result.json`` and in ``simulator.out``.
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
#: a line of the simulator's console that says it hangs: it could not start a client process and waits forever
HANG_MARKS = (b"Failed to create connection to the child process",)
#: how often the simulator is started when it hangs at start-up
ATTEMPTS = 2
HUNG = "NVFlare's simulator could not start a client process and stopped responding"


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


def run_watched(cmd: list[str], out_path: Path, period: float = 1.0) -> int | None:
    """Run ``cmd`` with its output appended to ``out_path``; its exit code, or None if it hung (a HANG_MARKS line
    appeared in what it wrote): then its processes have been stopped."""
    with open(out_path, "ab") as out:
        start = out.tell()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seen = start
    tail = b""
    while True:
        try:
            return proc.wait(timeout=period)
        except subprocess.TimeoutExpired:
            pass
        with open(out_path, "rb") as f:
            f.seek(seen)
            new = f.read()
        seen += len(new)
        tail = (tail + new)[-4096:]
        if any(mark in tail for mark in HANG_MARKS):
            stop_tree(proc)
            return None


def stop_tree(proc: subprocess.Popen) -> None:
    """Stop ``proc`` and every process it started (clients leave its session: found by the simulation's mark)."""
    from .simprocs import ENV_MARK, kill_tree

    kill_tree(os.environ.get(ENV_MARK, ""), proc.pid, exclude={os.getpid()})
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def note(out_path: Path, text: str) -> None:
    with open(out_path, "a") as out:
        out.write(f"[flarenb] {text}\n")


def main(sim_dir: str) -> int:
    root = Path(sim_dir)
    state = json.loads((root / "state.json").read_text())
    workspace = Path(state["workspace"])
    write_json(root / "started.json", {"pid": os.getpid(), "start_time": time.time()})
    out_path = root / "simulator.out"
    returncode: int | None = None
    for attempt in range(1, ATTEMPTS + 1):
        returncode = run_watched(command(state), out_path)
        if returncode is not None or (root / "abort").exists():
            break
        if attempt < ATTEMPTS:
            note(out_path, f"{HUNG}; starting it again ({attempt + 1} of {ATTEMPTS})")
    aborted = (root / "abort").exists()
    if returncode is None and not aborted:
        reason = f"{HUNG}, {ATTEMPTS} times; submit the simulation again"
        note(out_path, reason)
        result = {"returncode": None, "status": "FINISHED:EXECUTION_EXCEPTION", "end_time": time.time()}
        result["reason"] = reason
    else:
        status = outcome(returncode if returncode is not None else -1, workspace, aborted)
        result = {"returncode": returncode, "status": status, "end_time": time.time()}
    if not (root / "result.json").exists():
        write_json(root / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
