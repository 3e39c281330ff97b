"""Transports that feed a :class:`flarenb.receiver.Receiver` with a job's per-site logs.

Every transport has the same interface:

* ``start()`` - run on one daemon thread named ``flarenb-<kind>-<name>``;
* ``stop()`` - stop and join the thread (idempotent; does not end the receiver's streams);
* ``poll_once() -> int`` - one polling step (what the thread repeats; tests call it directly);
* ``finish()`` - the job ended: drain what is left, then end every stream;
* ``finished`` - True once end of stream was delivered; ``bytes_read`` - bytes transferred.

:class:`LocalTail` ``(receiver, {site: path}, is_finished=None, period=0.05)`` tails log files
on this machine (POC: ``<poc>/example_project/prod_00/<site>/<job_id>/log.txt``): it waits for
a file that does not exist yet, follows rotation (inode change: finishes the old file, then
switches), detects truncation (size below the offset, or the bytes before the offset changed:
restarts at 0 after a ``[flarenb]`` marker line), and ends the streams once ``is_finished()``
is true (or ``finish()`` was called) and two consecutive polls found nothing more.

:class:`AdminPoll` ``(receiver, fetch, status=None, target="all")`` works with any deployment:
``fetch(target)`` returns ``{'logs': {site: text}, 'unavailable': {site: reason}}`` (wrap
``Session.get_job_logs(job_id, target=...)``), ``status()`` the job status string. The server
returns a site's WHOLE log each time, capped to its last bytes with a ``... output truncated to
last N bytes ...`` prefix cut mid-line; :class:`flarenb.logcursor.LogCursor` turns each reply
into only the new complete lines (see there). Polling is adaptive (``min_interval`` while lines arrive, backing off
to ``max_interval``); once ``status()`` is terminal, a final poll ``final_grace`` s later is
drained (including partial last lines) and every stream ends.

:func:`make_transport` picks LocalTail when the sites' folders are on this machine, else
AdminPoll; :func:`local_job_log_paths` lists ``{site: path}`` for a local workspace.

Failures are shown, never swallowed: a poll that raises sets the receiver's ``problem`` to one line
(:func:`describe_problem`: "server unreachable: ...", "not authorised: ...", "cannot read the logs: ...") until a
poll succeeds again, is logged once per distinct problem (not per tick), and keeps the streams open so the view
resumes when the source is back. A job that no longer exists (deleted, or unknown) ends every stream with the
reason "job not found".
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from .logcursor import LogCursor
from .receiver import Receiver
from .vocab import is_terminal, one_line

is_terminal_status = is_terminal  # the old name, kept importable

__all__ = [
    "AdminPoll",
    "Composite",
    "LocalTail",
    "LogCursor",
    "describe_problem",
    "is_job_not_found",
    "is_terminal_status",
    "local_job_log_paths",
    "make_transport",
]

log = logging.getLogger(__name__)
STOP_JOIN_TIMEOUT = 2.0  # seconds: stop() never blocks longer on a thread stuck in an admin call

_UNREACHABLE = ("NoConnection", "SessionClosed", "ConnectError", "ConnectionError", "TimeoutError")
_REFUSED = ("AuthenticationError", "AuthorizationError", "PermissionError")

_T = TypeVar("_T", bound="_Threaded")
StrPath = str | os.PathLike[str]
#: ``alive(site)``: whether the site's sending process still runs (None: unknown)
AliveCheck = Callable[[str], bool | None]


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


class _Threaded:
    kind = "transport"
    #: ``alive(site) -> bool | None``: whether the site's sending process still runs (None: unknown). A site
    #: known to be gone gets no heartbeat, so the receiver turns it quiet, then closes it at the idle timeout.
    alive: AliveCheck | None = None

    def __init__(self, receiver: Receiver, name: str) -> None:
        self.receiver = receiver
        self.name = name
        self.finished = False
        self.bytes_read = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finish_requested = False
        self._logged: str | None = None  # the last problem logged (each distinct one is logged once)
        self._poll_problem: str | None = None  # the problem of the current poll, if any

    def start(self: _T) -> _T:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"flarenb-{self.kind}-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        """Stop the thread; wait at most ``timeout`` s (a thread inside a slow admin call exits after it)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def finish(self) -> None:
        """The job ended: drain what is left, then end the streams (on the transport's thread)."""
        self._finish_requested = True

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
            self._stop.wait(self._interval())


# ---------------------------------------------------------------------------------- LocalTail
class _FileTail:
    FP = 64  # bytes before the offset re-checked to detect a rewritten file

    def __init__(self, site: str, path: str) -> None:
        self.site, self.path = site, path
        self.fd: int | None = None
        self.ino: int | None = None
        self.offset = 0
        self.last = b""
        self.seen = False
        self.mtime: int | None = None

    def _open(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        self.ino = os.fstat(self.fd).st_ino
        self.offset, self.last, self.seen = 0, b"", True
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _read(self, feed: Callable[[str, bytes], object], chunk: int, max_chunks: int) -> tuple[int, bool]:
        """Read up to max_chunks chunks; returns (bytes read, reached end of file)."""
        assert self.fd is not None  # opened by poll()
        n = 0
        for _ in range(max_chunks):
            data = os.pread(self.fd, chunk, self.offset)
            if not data:
                return n, True
            self.offset += len(data)
            self.last = (self.last + data[-self.FP :])[-self.FP :]
            n += len(data)
            feed(self.site, data)
        return n, False

    def poll(self, rx: Receiver, chunk: int = 1 << 20, max_chunks: int = 16) -> int:
        if self.fd is None and not self._open():
            return 0
        assert self.fd is not None  # _open() succeeded
        st = os.fstat(self.fd)
        size, changed = st.st_size, st.st_mtime_ns != self.mtime
        self.mtime = st.st_mtime_ns
        if size < self.offset or (self.last and (size > self.offset or changed) and self._rewritten()):
            rx.marker(self.site, "[flarenb] … log file truncated; reading it again from the start …")
            self.offset, self.last = 0, b""
        n, eof = self._read(rx.feed, chunk, max_chunks)
        if eof:
            try:
                ino = os.stat(self.path).st_ino
            except FileNotFoundError:  # rotation in progress: keep the old file for now
                return n
            if ino != self.ino:  # rotated: drain the old file, then switch to the new one
                n += self._read(rx.feed, chunk, 1 << 30)[0]
                rx.flush(self.site)
                self.close()
                if self._open():
                    n += self._read(rx.feed, chunk, max_chunks)[0]
        return n

    def _rewritten(self) -> bool:
        assert self.fd is not None  # opened by poll()
        k = len(self.last)
        return os.pread(self.fd, k, self.offset - k) != self.last


class LocalTail(_Threaded):
    """Tail ``{site: path}`` log files on this machine (one thread for all sites)."""

    kind = "tail"

    def __init__(
        self,
        receiver: Receiver,
        paths: Mapping[str, str],
        is_finished: Callable[[], object] | None = None,
        period: float = 0.05,
        finish_check_period: float = 0.5,
        name: str = "",
        idle_period: float = 0.2,
    ) -> None:
        super().__init__(receiver, name)
        self.period = period
        self.idle_period = max(period, idle_period)  # polls slow down after a second without new bytes
        self._last_data = time.monotonic()
        self.is_finished = is_finished
        self.finish_check_period = finish_check_period
        self._tails = [_FileTail(site, path) for site, path in paths.items()]
        self._last_check: float | None = None
        self._ending = False
        self._empty_after_end = 0
        for t in self._tails:
            receiver.site(t.site)
            receiver.site(t.site).fmt = "json" if t.path.endswith(".json") else "text"

    def _interval(self) -> float:
        return self.period if time.monotonic() - self._last_data < 1.0 else self.idle_period

    def poll_once(self) -> int:
        """Read what is new in every file; returns the number of bytes read."""
        if self.finished:
            return 0
        rx = self.receiver
        n = 0
        for t in self._tails:
            got = t.poll(rx)
            n += got
            if not got:  # local files have no remote sender: the tail (and the site's process) is the liveness
                self._heartbeat(t.site)
        self.bytes_read += n
        if n:
            self._last_data = time.monotonic()
        if not self._ending:
            self._ending = self._finish_requested or self._check_finished()
        elif n == 0:
            # Like LogStreamer's producer: one more empty poll after the end before closing.
            self._empty_after_end += 1
            if self._empty_after_end >= 2:
                self._end_streams()
        else:
            self._empty_after_end = 0
        return n

    def _check_finished(self) -> bool:
        if self.is_finished is None:
            return False
        now = time.monotonic()
        if self._last_check is not None and now - self._last_check < self.finish_check_period:
            return False
        self._last_check = now
        try:
            return bool(self.is_finished())
        except Exception as e:  # the files are still read; the header says why the end is not known
            self._failed(e)
            return False

    def _end_streams(self) -> None:
        rx = self.receiver
        for t in self._tails:
            if not t.seen:
                rx.set_unavailable(t.site, f"log file never appeared: {t.path}")
            rx.end(t.site)
            t.close()
        self.finished = True

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            for t in self._tails:
                t.close()

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        super().stop(timeout)
        if self._thread is None:
            for t in self._tails:
                t.close()


# ---------------------------------------------------------------------------------- AdminPoll
class AdminPoll(_Threaded):
    """Poll ``fetch(target)`` (whole logs) and feed only new lines. See the module docstring."""

    kind = "poll"

    def __init__(
        self,
        receiver: Receiver,
        fetch: Callable[[str], dict],
        status: Callable[[], str | None] | None = None,
        target: str = "all",
        min_interval: float = 0.3,
        max_interval: float = 3.0,
        backoff: float = 1.5,
        final_grace: float = 2.0,
        fingerprint: int = 65536,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(receiver, name)
        self.fetch, self.status, self.target = fetch, status, target
        self.min_interval, self.max_interval, self.backoff = min_interval, max_interval, backoff
        self.interval = min_interval
        self.final_grace = final_grace
        self.polls = 0
        self._fingerprint = fingerprint
        self._cursors: dict[str, LogCursor] = {}
        self._terminal_at: float | None = None
        self._clock = clock

    def _interval(self) -> float:
        if self._terminal_at is not None:
            return min(self.interval, max(0.05, self.final_grace))
        return self.interval

    def poll_once(self) -> int:
        """One status check + fetch; returns the number of new lines fed."""
        if self.finished:
            return 0
        rx = self.receiver
        final = False
        if self._finish_requested or (self.status is not None and is_terminal(self._status())):
            now = self._clock()
            if self._terminal_at is None:
                self._terminal_at = now
            final = self._finish_requested or now - self._terminal_at >= self.final_grace
        if self.finished:
            return 0
        try:
            reply = self.fetch(self.target)
        except Exception as e:
            if is_job_not_found(e):
                self._end(describe_problem(e))
                return 0
            self.interval = min(self.max_interval, self.interval * self.backoff)
            raise
        self.polls += 1
        logs = reply.get("logs") or {}
        unavailable = reply.get("unavailable") or {}
        new_lines = 0
        for site, text in logs.items():
            if not isinstance(text, str):
                continue
            self.bytes_read += len(text.encode("utf-8", "replace"))
            cursor = self._cursors.setdefault(site, LogCursor(self._fingerprint))
            for kind, item in cursor.take(text, final=final):
                if kind == "marker":
                    rx.marker(site, item)
                    new_lines += 1
                else:
                    new_lines += rx.feed(site, item)
        for site, reason in unavailable.items():
            if site not in logs:
                rx.set_unavailable(site, str(reason))
        for site in rx.sites():  # the server answered: every site's sender is alive (unless known gone)
            self._heartbeat(site)
        self.interval = self.min_interval if new_lines else min(self.max_interval, self.interval * self.backoff)
        if final:
            self._end(None)
        return new_lines

    def _status(self) -> str | None:
        if self.status is None:  # (poll_once asks only when there is one)
            return None
        try:
            return self.status()
        except Exception as e:
            if is_job_not_found(e):
                self._end(describe_problem(e))
            self.errors += 1
            self.last_error = e
            return None

    def _end(self, reason: str | None) -> None:
        self.receiver.end_all(reason)
        self.finished = True


# ---------------------------------------------------------------------------------- factory
def _site_dirs(root: StrPath) -> dict[str, str]:
    """Site folders of a provisioned workspace (those whose startup/ holds fed_server/fed_client)."""
    out: dict[str, str] = {}
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        startup = os.path.join(root, name, "startup")
        if os.path.isfile(os.path.join(startup, "fed_server.json")):
            out = {name: os.path.join(root, name), **out}
        elif os.path.isfile(os.path.join(startup, "fed_client.json")):
            out[name] = os.path.join(root, name)
    return out


def local_job_log_paths(
    root: StrPath, job_id: str, sites: Collection[str] | None = None, file_name: str = "log.txt"
) -> dict[str, str]:
    """``{site: <root>/<site>/<job_id>/<file_name>}``; the server's site is named "server".

    ``root`` is a provisioned project folder on this machine (POC:
    ``<poc>/example_project/prod_00``). ``sites`` limits the sites (names as in ``root``; the
    server may be given as "server"). Files need not exist yet.
    """
    dirs = _site_dirs(root)
    out: dict[str, str] = {}
    for name, path in dirs.items():
        is_server = os.path.isfile(os.path.join(path, "startup", "fed_server.json"))
        site = "server" if is_server else name
        if sites is None or site in sites or name in sites:
            out[site] = os.path.join(path, job_id, file_name)
    return out


class Composite:
    """Several transports feeding one receiver (e.g. local files for some sites, the admin API for others)."""

    kind = "composite"

    def __init__(self, transports: Iterable[_Threaded]) -> None:
        self.transports = list(transports)

    @property
    def alive(self) -> AliveCheck | None:
        return self.transports[0].alive if self.transports else None

    @alive.setter
    def alive(self, fn: AliveCheck | None) -> None:
        for t in self.transports:
            t.alive = fn

    @property
    def bytes_read(self) -> int:
        return sum(t.bytes_read for t in self.transports)

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.transports)

    def start(self) -> "Composite":
        for t in self.transports:
            t.start()
        return self

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        for t in self.transports:
            t.stop(timeout)

    def finish(self) -> None:
        for t in self.transports:
            t.finish()


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
