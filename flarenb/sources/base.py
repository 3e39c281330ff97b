"""What every log source is: the :class:`LogSource` protocol, what a source is built for (:class:`JobLogs`), what
a registry entry is (:class:`SourceKind`), and the threaded base of the polling sources.

Failures are shown, never swallowed: a poll that raises sets the receiver's ``problem`` to one line
(:func:`describe_problem`: "server unreachable: ...", "not authorised: ...", "cannot read the logs: ...") until a
poll succeeds again, is logged once per distinct problem (not per tick), and keeps the streams open so the view
resumes when the source is back. A job that no longer exists (deleted, or unknown) ends every stream with the
reason "job not found".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from .. import threads
from ..receiver import Receiver
from ..vocab import one_line

__all__ = [
    "STOP_JOIN_TIMEOUT",
    "AliveCheck",
    "JobLogs",
    "LogSource",
    "SourceKind",
    "ThreadedSource",
    "describe_problem",
    "describe_source",
    "is_job_not_found",
]

log = logging.getLogger(__name__)
STOP_JOIN_TIMEOUT = 2.0  # seconds: stop() never blocks longer on a thread stuck in an admin call

_UNREACHABLE = ("NoConnection", "SessionClosed", "ConnectError", "ConnectionError", "TimeoutError")
_REFUSED = ("AuthenticationError", "AuthorizationError", "PermissionError")

_T = TypeVar("_T", bound="ThreadedSource")
#: ``alive(site)``: whether the site's sending process still runs (None: unknown)
AliveCheck = Callable[[str], bool | None]


@runtime_checkable
class LogSource(Protocol):
    """Feeds a :class:`~flarenb.receiver.Receiver` with a job's per-site logs (built unstarted, for one receiver).

    * ``start()`` - run on daemon thread(s) named ``flarenb-<kind>-<name>``; returns the source;
    * ``stop()`` - stop and join the thread(s) (idempotent; does not end the receiver's streams);
    * ``finish()`` - the job ended: drain what is left, then end every stream;
    * ``finished`` - True once end of stream was delivered; ``bytes_read`` - bytes transferred;
    * ``alive`` - the liveness check it was built with (``alive(site) -> bool | None``), or None;
    * ``describe()`` - how it follows now, in one line of plain text (what it reads, how it wakes up or how often
      it polls); the live view shows it as its debug info (:func:`describe_source` for any source).

    The threaded sources also have ``poll_once()`` (one polling step: what the thread repeats; tests call it).
    """

    kind: str

    @property
    def finished(self) -> bool: ...

    @property
    def bytes_read(self) -> int: ...

    @property
    def alive(self) -> AliveCheck | None: ...

    def start(self) -> Any: ...

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None: ...

    def finish(self) -> None: ...

    def describe(self) -> str:
        """How it follows now, in one line (a source that says nothing better: its kind)."""
        return f"{self.kind} source"


def describe_source(source: object) -> str:
    """One line saying how ``source`` follows now: its ``describe()`` (made one line), else its class and kind;
    never raises (it is debug info: a source that cannot describe itself says so)."""
    kind = getattr(source, "kind", None)
    name = type(source).__name__ + (f" ({kind})" if kind else "")
    describe = getattr(source, "describe", None)
    if not callable(describe):
        return name
    try:
        return one_line(describe(), 500) or name
    except Exception as e:
        return f"{name} (cannot describe itself: {type(e).__name__}: {one_line(e, 200)})"


@dataclass(frozen=True)
class JobLogs:
    """What a source is picked for and built from (everything it needs, given at construction).

    ``name``: the job's (or simulation's) id; ``status()``: its status string; ``alive``: the sites' liveness;
    ``paths``: ``{site: log file}`` on this machine when the logs are local; ``is_finished()``: when a local tail
    may end; ``ended``: the job had ended before following began; ``fetch(target, log_file_name=None)``: the
    admin API's ``get_job_logs`` reply; ``ask(request)``: the running job's log cursor (the ``flarenb.logs`` app
    command, :mod:`flarenb.sources.cursor`); ``wrap_admin(receiver, source)``: what the admin-API source is
    wrapped in (the live view: :func:`flarenb.dlsource.rights_aware`, the download fallback of a user without the
    right).
    """

    name: str
    status: Callable[[], str] | None = None
    alive: AliveCheck | None = None
    paths: Mapping[str, str] | None = None
    is_finished: Callable[[], object] | None = None
    ended: bool = False
    fetch: Callable[..., dict] | None = None
    ask: Callable[[dict], dict] | None = None
    #: the job says it has flarenb's component (its meta's mark): "no app command func" before its first answer is
    #: its server job still starting (the command is registered at START_RUN), not a missing component
    ask_expected: bool = False
    #: whether such a job's server has registered the command yet (:func:`flarenb.sources.cursor.server_log_readiness`)
    ready: Callable[[], str] | None = None
    wrap_admin: Callable[[Receiver, LogSource], LogSource] | None = None


class SourceKind(Protocol):
    """A registry entry (:data:`flarenb.sources.SOURCES`): ``fits(spec)`` says whether it can follow ``spec``,
    ``open(receiver, spec)`` builds the (unstarted) source."""

    name: str

    def fits(self, spec: JobLogs) -> bool: ...

    def open(self, receiver: Receiver, spec: JobLogs) -> LogSource: ...


def _chain(e: BaseException | None) -> list[BaseException]:
    """``e`` and the exceptions it was raised from or during (``raise ... from None`` keeps ``__context__``)."""
    seen: list[BaseException] = []
    while e is not None and e not in seen and len(seen) < 8:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def _names(e: BaseException) -> set[str]:
    return {cls.__name__ for x in _chain(e) for cls in type(x).__mro__}


def is_job_not_found(e: BaseException) -> bool:
    """True when ``e`` (or what it wraps) is NVFlare's ``JobNotFound``: the job was deleted or never existed."""
    return "JobNotFound" in _names(e)


def describe_problem(e: BaseException) -> str:
    """One line for the user saying why the logs cannot be read now."""
    names = _names(e)
    if "JobNotFound" in names:
        return f"job not found: {one_line(e, 300)}"
    if names & set(_REFUSED) or "Not allowed" in str(e):
        return f"not authorised: {one_line(e, 300)}"
    if names & set(_UNREACHABLE):
        return f"server unreachable: {one_line(e, 300)}"
    return f"cannot read the logs: {type(e).__name__}: {one_line(e, 300)}"


class ThreadedSource:
    """The common part of a source that polls on its own thread (see :class:`LogSource`)."""

    kind = "transport"
    #: whether lines come as the job writes them (a wrapper waiting for the job's download says False)
    follows_live = True

    def __init__(self, receiver: Receiver, name: str, alive: AliveCheck | None = None) -> None:
        self.receiver = receiver
        self.name = name
        self._alive = alive
        self.finished = False
        self.bytes_read = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finish_requested = False
        self._logged: str | None = None  # the last problem logged (each distinct one is logged once)
        self._poll_problem: str | None = None  # the problem of the current poll, if any

    @property
    def alive(self) -> AliveCheck | None:
        """``alive(site) -> bool | None``: whether the site's sending process still runs (None: unknown). A site
        known to be gone gets no heartbeat, so the receiver turns it quiet, then closes it at the idle timeout."""
        return self._alive

    def start(self: _T) -> _T:
        if self._thread is None:
            self._thread = threads.start(self._run, f"flarenb-{self.kind}-{self.name}")
        return self

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        """Stop the thread; wait at most ``timeout`` s (a thread inside a slow admin call exits after it)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            threads.join(t, timeout)

    def finish(self) -> None:
        """The job ended: drain what is left, then end the streams (on the transport's thread)."""
        self._finish_requested = True

    def describe(self) -> str:
        """How it follows now, in one line (each source says more; see :class:`LogSource`)."""
        return f"{self.kind} source" + (", ended" if self.finished else "")

    def _failed(self, e: BaseException) -> None:
        """A poll raised: show it (the receiver's problem), log each distinct problem once, end on a lost job."""
        self.errors += 1
        self.last_error = e
        if self._stop.is_set():
            return
        problem = self._poll_problem = describe_problem(e)
        if problem != self._logged:
            self._logged = problem
            log.warning("flarenb: following the logs of job %s: %s", self.name, problem)
        if is_job_not_found(e):
            self.receiver.end_all(problem)
            self.finished = True
            return
        self.receiver.set_problem(problem)

    def _interval(self) -> float:
        raise NotImplementedError

    def poll_once(self) -> int:
        raise NotImplementedError

    def _heartbeat(self, site: str) -> None:
        if self.alive is None or self.alive(site) is not False:
            self.receiver.heartbeat(site)

    def _run(self) -> None:
        while not self._stop.is_set() and not self.finished:
            self._poll_problem = None
            try:
                self.poll_once()
            except Exception as e:  # keep following, and say why nothing arrives
                self._failed(e)
            else:
                if self._poll_problem is None and self.last_error is not None:
                    self.receiver.set_problem(None)
                    self.last_error = None
            if self._stop.is_set() or self.finished or self.receiver.all_done:
                return
            self._sleep(self._interval())

    def _sleep(self, seconds: float) -> None:
        """Wait before the next poll (woken early by ``stop()``; a source woken by other events overrides it)."""
        self._stop.wait(seconds)
