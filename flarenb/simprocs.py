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

from .procs import environ_has, pids, start_ticks, state_and_parent

__all__ = ["ENV_MARK", "alive", "kill_tree", "processes", "start_ticks"]

ENV_MARK = "FLARENB_SIM_ID"


def alive(pid: int | None, ticks: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``ticks`` is given, is the process started then."""
    if not pid:
        return False
    st = state_and_parent(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return ticks is None or start_ticks(pid) == ticks


def processes(sim_id: str, root: int | None = None) -> set[int]:
    """Every live process of the simulation ``sim_id``: marked in its environment, or a descendant of ``root``."""
    mark = f"{ENV_MARK}={sim_id}".encode() if sim_id else None
    children: dict[int, list[int]] = {}
    found: set[int] = set()
    for pid in pids():
        st = state_and_parent(pid)
        if st is None or st[0] in ("Z", "X"):
            continue
        children.setdefault(st[1], []).append(pid)
        if mark is not None and environ_has(pid, mark):
            found.add(pid)
    todo = [root] if root and alive(root) else []
    todo += list(found)
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(c for c in children.get(pid, []) if c not in found)
    return found


def kill_tree(sim_id: str, root: int | None = None, grace: float = 3.0, exclude: set[int] | None = None) -> set[int]:
    """Stop every process of the simulation (but those in ``exclude``): SIGTERM, then SIGKILL whatever is left after
    ``grace`` seconds.

    Returns the pids that were signalled. New children spawned meanwhile are found by the repeated scans."""
    signalled: set[int] = set()
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        pids = processes(sim_id, root) - (exclude or set())
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
