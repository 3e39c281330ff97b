"""The processes of a local simulation: find them all, and stop them all.

NVFlare's simulator starts each client in a ``simulator_worker`` subprocess with ``preexec_fn=os.setsid``
(``nvflare/private/fed/app/simulator/simulator_runner.py``), so a client leaves the simulation's process group and
session: killing the group would orphan it. flarenb therefore marks the simulation's root process with an
environment variable (``FLARENB_SIM_ID=<id>``) that every descendant inherits — whatever its session, and even
after it was re-parented to init — and also walks the parent links down from the root.
"""

from __future__ import annotations

import os
import signal
import time

ENV_MARK = "FLARENB_SIM_ID"


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22): a pid plus this value
    names one process, even after the pid was reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if len(fields) > 19 else None


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int | None, ticks: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``ticks`` is given, is the process started then."""
    if not pid:
        return False
    st = _stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return ticks is None or start_ticks(pid) == ticks


def _has_mark(pid: int, mark: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return mark in f.read().split(b"\0")
    except OSError:
        return False


def processes(sim_id: str, root: int | None = None) -> set[int]:
    """Every live process of the simulation ``sim_id``: marked in its environment, or a descendant of ``root``."""
    mark = f"{ENV_MARK}={sim_id}".encode()
    children: dict[int, list[int]] = {}
    found: set[int] = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        st = _stat(pid)
        if st is None or st[0] in ("Z", "X") or pid == me:
            continue
        children.setdefault(st[1], []).append(pid)
        if _has_mark(pid, mark):
            found.add(pid)
    todo = [root] if root and alive(root) else []
    todo += list(found)
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(c for c in children.get(pid, []) if c not in found)
    return found


def kill_tree(sim_id: str, root: int | None = None, grace: float = 3.0) -> set[int]:
    """Stop every process of the simulation: SIGTERM, then SIGKILL whatever is left after ``grace`` seconds.

    Returns the pids that were signalled. New children spawned meanwhile are found by the repeated scans."""
    signalled: set[int] = set()
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        pids = processes(sim_id, root)
        if not pids:
            return signalled
        for pid in pids:
            try:
                os.kill(pid, sig)
                signalled.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        if sig == signal.SIGKILL and time.monotonic() > deadline + 10:
            return signalled  # something unkillable (D state): give up rather than hang the cell
        time.sleep(0.1)
        if time.monotonic() >= deadline:
            sig = signal.SIGKILL
