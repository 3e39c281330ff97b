"""Process discovery on this machine, in one place: POC shutdown, a job's liveness, a deployment's and a
simulation's processes all ask here (Linux ``/proc``; elsewhere every scan finds nothing).

Which processes belong to a local FLARE — the only ones POC shutdown may signal:

A process belongs to the POC whose kits are in ``prod_dir`` only if all of these hold:

* it runs as the current user;
* its command line is one of NVFlare's POC process signatures (see a running POC's ``ps``):

  - ``python -m nvflare.private.fed.app.server.server_train -m <prod_dir>/<server> ...`` (the server),
  - ``python -m nvflare.private.fed.app.client.client_train -m <prod_dir>/<site> ...`` (a client),
  - ``python -m nvflare.private.fed.app.server.runner_process -m <prod_dir>/<server> ...`` and
    ``... client.worker_process -m <prod_dir>/<site> ...`` (a job's processes),
  - ``bash <prod_dir>/<site>/startup/sub_start.sh`` or ``start.sh`` (the kit's watchdog scripts);
* the workspace in it is ``prod_dir`` plus one folder, compared as whole path components: ``prod_00_backup`` or
  ``prod_00/server/log.txt`` given to ``tail -f`` are not matches.

The matching (:func:`is_poc_process`) is pure, so it is tested on plain argument lists.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "KIT_SCRIPTS",
    "NVFLARE_MODULES",
    "alive",
    "argv",
    "environ_has",
    "is_poc_process",
    "job_processes",
    "pids",
    "poc_processes",
    "processes_mentioning",
    "start_ticks",
    "state_and_parent",
]

NVFLARE_MODULES = frozenset(
    {
        "nvflare.private.fed.app.server.server_train",
        "nvflare.private.fed.app.client.client_train",
        "nvflare.private.fed.app.server.runner_process",
        "nvflare.private.fed.app.client.worker_process",
    }
)
KIT_SCRIPTS = frozenset({"sub_start.sh", "start.sh"})
_SHELLS = frozenset({"sh", "bash", "dash"})


def _parts(path: str | os.PathLike[str]) -> tuple[str, ...]:
    return Path(os.path.realpath(path)).parts


def _site_folder(path: str, prod: tuple[str, ...]) -> tuple[str, ...] | None:
    """The components of ``path`` after ``prod`` if ``path`` is strictly inside it, else None."""
    if not path.startswith(os.sep):  # NVFlare always passes absolute paths
        return None
    parts = _parts(path)
    if len(parts) <= len(prod) or parts[: len(prod)] != prod:
        return None
    return parts[len(prod) :]


def is_poc_process(argv: list[str], prod_dir: str | os.PathLike[str]) -> bool:
    """True if ``argv`` is one of NVFlare's POC processes for the kits in ``prod_dir`` (see the module docstring)."""
    prod = _parts(prod_dir)
    if not argv:
        return False
    # python [-u] -m <nvflare module> ... -m <prod_dir>/<site> ...
    for i, arg in enumerate(argv[:-1] if os.path.basename(argv[0]).startswith("python") else ()):
        if arg == "-m" and argv[i + 1] in NVFLARE_MODULES:
            rest = argv[i + 2 :]
            for j, flag in enumerate(rest[:-1]):
                if flag == "-m":
                    rel = _site_folder(rest[j + 1], prod)
                    return rel is not None and len(rel) == 1
            return False
    # bash <prod_dir>/<site>/startup/sub_start.sh
    if os.path.basename(argv[0]) in _SHELLS and len(argv) >= 2:
        rel = _site_folder(argv[1], prod)
        return rel is not None and len(rel) == 3 and rel[1] == "startup" and rel[2] in KIT_SCRIPTS
    return False


def pids() -> list[int]:
    """Every pid on this machine but this process's own (empty where there is no ``/proc``)."""
    if not os.path.isdir("/proc"):
        return []
    me = os.getpid()
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (field 3 on), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def state_and_parent(pid: int) -> tuple[str, int] | None:
    """The process's state letter ("R", "S", "Z", ...) and parent pid, or None when it is gone."""
    fields = _stat_fields(pid)
    try:
        return (fields[0], int(fields[1])) if fields else None
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22): a pid plus this value
    names one process, even after the pid was reused."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    st = state_and_parent(pid)
    return st is None or st[0] != "Z"


def argv(pid: int) -> list[str] | None:
    """The process's command line, or None (gone, or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0") if raw else None


def environ_has(pid: int, entry: bytes) -> bool:
    """True if ``entry`` (``b"NAME=value"``) is in the process's environment (readable: the user's own)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:
        return False


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def poc_processes(prod_dir: str | os.PathLike[str], uid: int | None = None) -> list[int]:
    """Pids of the current user's (or ``uid``'s) processes that are NVFlare POC processes of ``prod_dir``.

    Linux only (``/proc``); elsewhere an empty list (the caller falls back to the kits' pid files).
    """
    me = os.getuid() if uid is None else uid
    found = []
    for pid in pids():
        if _owner(pid) != me:
            continue
        args = argv(pid)
        if args and is_poc_process(args, prod_dir):
            found.append(pid)
    return found


SERVER_JOB_MODULE = "nvflare.private.fed.app.server.runner_process"
CLIENT_JOB_MODULE = "nvflare.private.fed.app.client.worker_process"


def job_processes(job_id: str) -> dict[str, int]:
    """``{site: pid}`` of a job's processes on this machine: the server's ``runner_process`` (as "server") and
    each client's ``worker_process`` (named by its ``-c`` argument)."""
    found: dict[str, int] = {}
    for pid in pids():
        args = argv(pid)
        if not args or job_id not in args:
            continue
        if SERVER_JOB_MODULE in args:
            found["server"] = pid
        elif CLIENT_JOB_MODULE in args and "-c" in args[:-1]:
            found[args[args.index("-c") + 1]] = pid
    return found


def processes_mentioning(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``marker`` (e.g. a deployment's unique folder)."""
    found = []
    for pid in pids():
        args = argv(pid)
        st = state_and_parent(pid)
        if args and st is not None and st[0] != "Z" and marker in " ".join(args):
            found.append(pid)
    return found
