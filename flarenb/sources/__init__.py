"""Log sources: what feeds a :class:`flarenb.receiver.Receiver` with a job's per-site logs.

One file per source, one protocol (:class:`~flarenb.sources.base.LogSource`, in ``base.py``), one registry
(:data:`SOURCES`, here): :func:`open_source` builds the first registered source that fits a
:class:`~flarenb.sources.base.JobLogs`. A new source is one new file with a ``KIND`` (``fits``/``open``) and one
entry in :data:`SOURCES`.

* ``localtail.py`` - :class:`LocalTail`: log files on this machine (a running local POC job, a simulation);
* ``composite.py`` - :class:`Composite`: several sources; the entry for a local job that had already ended;
* ``cursor.py`` - :class:`CursorPoll`: a running job on a deployment, by cursor (only the new bytes, through the
  app command of flarenb's job component); it hands over to the admin API after the job or where it cannot work;
* ``adminpoll.py`` - :class:`AdminPoll`: the admin API, any deployment (the last resort).

Every source says how it follows now in one line of plain text (``describe()``; :func:`describe_source` for any
object): the live view shows it as its debug info (``view.source_info``).

:func:`make_transport` (LocalTail when a local workspace holds the sites' folders, else AdminPoll) is kept for
callers that build a source by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..logcursor import LogCursor
from ..receiver import Receiver
from ..vocab import is_terminal
from . import adminpoll, composite, cursor, localtail
from .adminpoll import AdminPoll
from .base import (
    STOP_JOIN_TIMEOUT,
    AliveCheck,
    JobLogs,
    LogSource,
    SourceKind,
    ThreadedSource,
    describe_problem,
    describe_source,
    is_job_not_found,
)
from .composite import Composite
from .cursor import CursorPoll
from .localtail import LocalTail, StrPath, finish_local_tails, local_job_log_paths

is_terminal_status = is_terminal  # the old name, kept importable

__all__ = [
    "SOURCES",
    "STOP_JOIN_TIMEOUT",
    "AdminPoll",
    "AliveCheck",
    "Composite",
    "CursorPoll",
    "JobLogs",
    "LocalTail",
    "LogCursor",
    "LogSource",
    "SourceKind",
    "ThreadedSource",
    "describe_problem",
    "describe_source",
    "finish_local_tails",
    "is_job_not_found",
    "is_terminal_status",
    "local_job_log_paths",
    "make_transport",
    "open_source",
    "pick",
]

#: The registry, in order of preference: the first entry that fits a job's :class:`JobLogs` follows it.
SOURCES: list[SourceKind] = [composite.KIND, localtail.KIND, cursor.KIND, adminpoll.KIND]


def pick(spec: JobLogs) -> SourceKind:
    """The first registered source kind that fits ``spec``."""
    for kind in SOURCES:
        if kind.fits(spec):
            return kind
    raise ValueError("no local log files and no fetch() callable: cannot follow the job's logs")


def open_source(receiver: Receiver, spec: JobLogs) -> LogSource:
    """The (unstarted) source that follows ``spec`` into ``receiver``, picked through the registry."""
    return pick(spec).open(receiver, spec)


def make_transport(
    receiver: Receiver,
    job_id: str,
    fetch: Callable[[str], dict] | None = None,
    status: Callable[[], str | None] | None = None,
    local_root: StrPath | None = None,
    target: str = "all",
    name: str | None = None,
    **kw: Any,
) -> LocalTail | AdminPoll:
    """LocalTail when ``local_root`` holds the sites' folders on this machine, else AdminPoll.

    ``fetch(target)`` / ``status()`` as for AdminPoll (``status`` also ends a LocalTail).
    ``target`` is "all", "server" or a site name. Extra keywords go to the transport.
    """
    name = name or job_id
    if local_root and os.path.isdir(local_root):
        sites = None if target in ("all", "@ALL") else [target]
        paths = local_job_log_paths(local_root, job_id, sites=sites)
        if paths:
            is_finished = (lambda: is_terminal(status())) if status is not None else None
            return LocalTail(receiver, paths, is_finished=is_finished, name=name, **kw)
    if fetch is None:
        raise ValueError("no local log files and no fetch() callable: cannot follow the job's logs")
    return AdminPoll(receiver, fetch, status=status, target=target, name=name, **kw)
