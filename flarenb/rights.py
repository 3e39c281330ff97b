"""What the connected user may do: the role in the startup kit, and the server's rights that flarenb uses.

NVFlare authorizes every admin command against the server's ``local/authorization.json``
(``nvflare/fuel/sec/authz.py``; commands map to rights in ``nvflare/security/security.py``). The default policy of
2.9 grants ``get_job_log`` and ``app_command`` only to ``project_admin``: a ``lead`` may submit and download its own
jobs, but not read their logs while they run. flarenb uses every right the user has, and when one is missing says
exactly which, and what an administrator adds (README, "For administrators").

* :func:`role_of` reads the role from the admin kit's certificate (as ``nvflare config inspect`` does);
* :func:`rights_of` is the per-connection cache of what the server granted: learnt from every refusal
  (:meth:`Rights.note`) and from cheap probes (:meth:`Rights.probe`) that never change anything on the server;
* :class:`RightRefused` is the one-line error naming the user, the role and the missing right.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from .errors import FlareError
from .vocab import is_terminal

#: the rights flarenb uses, and what each unlocks
RIGHTS: dict[str, str] = {
    "submit_job": "submit jobs (%flare submit)",
    "get_job_log": "logs while a job runs (%flare logs, the live view's lanes)",
    "app_command": "the fast log cursor into a running job",
    "download_job": "download a finished job; also its logs when get_job_log is not granted",
}
#: what a refused right stopped, for the one-line error
ACTIONS: dict[str, str] = {
    "submit_job": "submit jobs",
    "get_job_log": "read job logs",
    "app_command": "send app commands to a running job",
    "download_job": "download this job",
    "manage_job": "manage this job (abort, delete, log-config)",
    "clone_job": "clone this job",
    "view": "view jobs",
    "operate": "see the server's status",
}
ADMIN_DOC = "see 'For administrators' in flarenb's README"
PROBE_SITE = "flarenb-rights-probe"  # an unknown site: the server authorizes, then answers "unavailable"
_REFUSED_RE = re.compile(r"not authorized for '([A-Za-z0-9_.-]+)")
_ACTION_RE = re.compile(r"for the action '([A-Za-z0-9_.-]+)")


def is_refusal(error: BaseException) -> bool:
    """True for NVFlare's ``AuthorizationError`` (the server refused a command to this user)."""
    return type(error).__name__ == "AuthorizationError" or isinstance(error, RightRefused)


def right_of(error: BaseException) -> str | None:
    """The right a refusal was about (``get_job_log``, ``submit_job``, ...), from NVFlare's message."""
    if isinstance(error, RightRefused):
        return error.right
    text = str(error)
    m = _REFUSED_RE.search(text) or _ACTION_RE.search(text)
    if not m:
        return None
    try:
        from nvflare.security.security import COMMAND_CATEGORIES

        return str(COMMAND_CATEGORIES.get(m.group(1), m.group(1)))
    except ImportError:
        return m.group(1)


def role_of(kit: Any) -> str | None:
    """The role in the admin kit's certificate (``project_admin``, ``org_admin``, ``lead``, ``member``), if known."""
    try:
        from nvflare.tool.kit.kit_config import inspect_startup_kit_metadata

        role = inspect_startup_kit_metadata(str(kit.path)).get("role")
    except Exception:
        return None
    return str(role) if role else None


class RightRefused(FlareError):
    """The server's policy does not grant this user a right flarenb needs for what was asked."""

    def __init__(self, right: str, user: str, role: str | None, what: str, fallback: str | None = None):
        self.right, self.user, self.role = right, user, role
        who = f"{user} (role {role})" if role else user
        message = f"{who} may not {what}: the server's policy does not grant the {right} right"
        if fallback:
            message += f"; {fallback}"
        where = f"the {role} role" if role else "your role"
        if right == "submit_job":
            hint = (
                "Use a startup kit whose role may submit (lead or project_admin in NVFlare's default policy), or ask "
                f'your FLARE administrator to add "submit_job": "any" to {where} in the server\'s '
                f"local/authorization.json ({ADMIN_DOC})"
            )
        else:
            hint = (
                f'Ask your FLARE administrator to add "{right}": "n:submitter" (own jobs) to {where} in the server\'s '
                f"local/authorization.json ({ADMIN_DOC})"
            )
        super().__init__(message, hint)


def refused(flare: Any, right: str, what: str, fallback: str | None = None) -> RightRefused:
    """A :class:`RightRefused` for the user of ``flare`` (and the refusal noted in its rights cache)."""
    rights = rights_of(flare)
    rights.note(right, False, "refused by the server")
    return RightRefused(right, flare.kit.username, rights.role, what, fallback)


@dataclass
class Verdict:
    granted: bool | None  # None: not known yet
    how: str = ""


@dataclass
class Rights:
    """What the server granted the user of one connection (see the module docstring)."""

    user: str
    role: str | None
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    refused_jobs: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, right: str, granted: bool, how: str, job_id: str | None = None) -> None:
        with self._lock:
            self.verdicts[right] = Verdict(granted, how)
            if job_id is not None:
                jobs = self.refused_jobs.setdefault(right, set())
                (jobs.discard if granted else jobs.add)(job_id)

    def granted(self, right: str) -> bool | None:
        v = self.verdicts.get(right)
        return None if v is None else v.granted

    def refused_for(self, right: str, job_id: str) -> bool:
        """True once the server refused ``right`` on this very job (rights may depend on who submitted it)."""
        return job_id in self.refused_jobs.get(right, ())

    def probe(self, flare: Any, job_id: str | None = None) -> Rights:
        """Ask the server, without changing anything, about the rights not known yet (on ``job_id``, else on the
        user's newest own job). Each right is probed at most once per connection."""
        todo = [r for r in ("get_job_log", "app_command", "download_job") if self.granted(r) is None]
        if not todo:
            return self
        job = job_id or _newest_own_job(flare, self.user)
        if job is None:
            return self
        from nvflare.fuel.flare_api import api_spec as A

        try:
            status = str(flare.call(lambda s: s.get_job_meta(job)).get("status", ""))
        except Exception:
            return self
        ended = is_terminal(status)
        probes = {
            "get_job_log": lambda s: s.get_job_logs(job, target=PROBE_SITE),
            # app_command on a running job would log an error in that job: probe it on ended jobs only
            "app_command": (lambda s: s.do_app_command(job, "flarenb.rights-probe", {})) if ended else None,
            # download_job of a running job is refused after authorization (JobNotDone): nothing is transferred
            "download_job": None if ended else (lambda s: _download_probe(s, job)),
        }
        for right in todo:
            fn = probes[right]
            if fn is None:
                continue
            try:
                flare.call(fn)
            except A.AuthorizationError:
                self.note(right, False, f"probed on job {job}", job)
                continue
            except (A.JobNotRunning, A.JobNotDone, A.InternalError, A.NoReply):
                pass  # authorized: the command failed later, for another reason
            except Exception:
                continue  # no answer: still unknown
            self.note(right, True, f"probed on job {job}", job)
        return self

    def lines(self) -> list[tuple[str, str, str]]:
        """``[(right, "yes" | "no" | "not checked yet", what it unlocks)]``."""
        out = []
        for right, what in RIGHTS.items():
            g = self.granted(right)
            if g is None and right == "submit_job" and self.role:
                g = _default_submit(self.role)
                state = "not checked yet" if g is None else ("yes" if g else "no") + " (default policy)"
            else:
                state = "not checked yet" if g is None else ("yes" if g else "no")
            out.append((right, state, what))
        return out

    def __str__(self) -> str:
        head = f"user: {self.user}" + (f" (role {self.role})" if self.role else "")
        rows = [f"  {r:<13} {s:<24} {w}" for r, s, w in self.lines()]
        missing = [r for r, s, _ in self.lines() if s.split(" ")[0] == "no"]  # not "not checked yet"
        tail = [f"  missing rights: {ADMIN_DOC}"] if missing else []
        return "\n".join([head, "rights:", *rows, *tail])


def _download_probe(session: Any, job: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="flarenb-probe-") as tmp:  # in case the job ended meanwhile
        session.download_job_result(job, tmp)


def _default_submit(role: str) -> bool | None:
    return {"project_admin": True, "lead": True, "org_admin": False, "member": False}.get(role)


def _newest_own_job(flare: Any, user: str, look_at: int = 5) -> str | None:
    try:
        rows = flare.call(lambda s: s.list_jobs()) or []
    except Exception:
        return None
    rows = sorted(rows, key=lambda r: str(r.get("submit_time", "")), reverse=True)[:look_at]
    for row in rows:
        jid = str(row.get("job_id"))
        try:
            meta = flare.call(lambda s, jid=jid: s.get_job_meta(jid))
        except Exception:
            continue
        if meta.get("submitter_name") == user:
            return jid
    return None


_cache: weakref.WeakKeyDictionary[Any, Rights] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def rights_of(flare: Any) -> Rights:
    """The rights cache of this connection (one per :class:`flarenb.Flare`)."""
    with _cache_lock:
        r = _cache.get(flare)
        if r is None:
            r = _cache[flare] = Rights(user=flare.kit.username, role=role_of(flare.kit))
        return r


@dataclass
class ConnectionInfo:
    """What ``%flare info`` shows: the server and its clients (if this user may see them), the user's role and
    rights."""

    system: Any
    system_error: str | None
    rights: Rights

    def __str__(self) -> str:
        first = str(self.system) if self.system is not None else f"FLARE server: {self.system_error}"
        return f"{first}\n{self.rights}"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def connection_info(flare: Any) -> ConnectionInfo:
    """The server's status, the user's role, and which rights are available (probed once per connection)."""
    system, error = None, None
    try:
        system = flare.system_info()
    except FlareError:
        raise
    except Exception as e:
        if not is_refusal(e):
            raise
        error = f"status not shown: the {right_of(e) or 'operate'} right is not granted"
    return ConnectionInfo(system, error, rights_of(flare).probe(flare))
