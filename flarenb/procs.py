"""Which processes belong to a local FLARE: the only ones POC shutdown may signal.

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

__all__ = ["KIT_SCRIPTS", "NVFLARE_MODULES", "alive", "is_poc_process", "poc_processes"]

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


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _argv(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0") if raw else None


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def poc_processes(prod_dir: str | os.PathLike[str], uid: int | None = None) -> list[int]:
    """Pids of the current user's (or ``uid``'s) processes that are NVFlare POC processes of ``prod_dir``.

    Linux only (``/proc``); elsewhere an empty list (the caller falls back to the kits' pid files).
    """
    if not os.path.isdir("/proc"):
        return []
    me = os.getuid() if uid is None else uid
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        if _owner(pid) != me:
            continue
        argv = _argv(pid)
        if argv and is_poc_process(argv, prod_dir):
            found.append(pid)
    return found
