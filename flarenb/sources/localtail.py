"""The logs of sites on this machine: :class:`LocalTail` ``(receiver, {site: path}, is_finished=None, period=0.05)``.

It tails log files on this machine (POC: ``<poc>/example_project/prod_00/<site>/<job_id>/log.txt``; a simulation:
``<workspace>/<site>/log.txt``): it waits for a file that does not exist yet, follows rotation (another
``st_dev``/``st_ino`` at the path: finishes the old file, then switches), detects truncation and rewriting (size
below the offset, or the first bytes or those just before the offset are not what was read — checked in the same
``pread`` as each read, so a file truncated and grown past the offset again between two looks is seen too: restarts
at 0 after a ``[flarenb]`` marker line), and ends the streams once ``is_finished()`` is true (or
``finish()`` was called) and two consecutive polls found nothing more. :func:`local_job_log_paths` lists
``{site: path}`` for a local workspace.

When it runs on its thread it reads as soon as the file system says one of the files (or a folder on the way to one)
changed (:mod:`flarenb.sources.fswatch`: inotify on Linux), plus a slow safety poll every ``safety_period`` s, so an
idle job costs one wake-up per ``safety_period``; where notifications are unavailable (or ``mechanism="polling"``,
or ``FLARENB_TAIL=polling``) it polls every ``period`` s (``idle_period`` after a second without new bytes).
Every write to any file in a watched folder is one notification (NVFlare writes ``log.json`` beside ``log.txt``),
and each costs this process ~0.4 ms of CPU on watchdog's threads; so while they pour in faster than ``busy_events``
per second, it polls every ``period`` s for ``busy_hold`` s (doubling, up to a minute, while they keep pouring in)
or until a second passes without new bytes, then listens again (``busy``; ``busy_switches`` counts them).
``mechanism`` says which ("inotify", ... or "polling"; None before ``start()``), ``mechanism_reason`` why it
polls, :meth:`LocalTail.describe` all of it in one line. The reading itself (:meth:`LocalTail.poll_once`) is the same
either way.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Mapping

from ..receiver import Receiver
from .base import STOP_JOIN_TIMEOUT, AliveCheck, JobLogs, LogSource, ThreadedSource
from .fswatch import Watcher, open_watcher

__all__ = ["KIND", "LocalTail", "finish_local_tails", "local_job_log_paths"]

StrPath = str | os.PathLike[str]


class _FileTail:
    """One file: where it is read up to (``offset``), which file that is (``ident``: ``(st_dev, st_ino)``) and a
    fingerprint of the bytes already read (``head``: the first ``FP`` bytes, ``last``: the ``FP`` bytes before the
    offset). Every read checks the fingerprint (:meth:`_read`), so a file truncated and written again past the
    offset between two looks is seen as rewritten, not read on as if it had grown: the polling and event paths
    share this one check."""

    FP = 64  # bytes of the head and of the tail before the offset that must still be there
    SLACK = 4096  # bytes asked for beyond the size seen by fstat (the file may have grown since)

    def __init__(self, site: str, path: str) -> None:
        self.site, self.path = site, path
        self.fd: int | None = None
        self.ident: tuple[int, int] | None = None
        self.offset = 0
        self.head = b""
        self.last = b""
        self.seen = False

    def _open(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        st = os.fstat(self.fd)
        self.ident = (st.st_dev, st.st_ino)
        self.offset, self.head, self.last, self.seen = 0, b"", b"", True
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _restart(self, rx: Receiver) -> None:
        """The file no longer holds what was read: say so, and read it again from the start."""
        rx.marker(self.site, "[flarenb] … log file truncated; reading it again from the start …")
        self.offset, self.head, self.last = 0, b"", b""

    def _head_changed(self) -> bool:
        """The first bytes read are not there any more (only checked where ``last`` does not cover them)."""
        assert self.fd is not None  # opened by poll()
        k = len(self.head)
        return self.offset > len(self.last) and os.pread(self.fd, k, 0) != self.head

    def _read(self, rx: Receiver, chunk: int, max_chunks: int, size: int | None = None) -> tuple[int, bool]:
        """Read up to max_chunks chunks; returns (bytes read, reached end of file). ``size``: the file's size a moment
        ago: each read asks for what is left of it (plus ``SLACK``), not a whole ``chunk`` (allocating a chunk of
        1 MiB for a file with nothing new is most of an idle poll's cost); once a read gets all it asked for, the
        file may have grown meanwhile: whole chunks from there.

        Each read starts ``len(last)`` bytes before the offset, in the same ``pread``: when those bytes are not
        ``last`` any more (fewer, or others), the file was truncated or rewritten — also when it has meanwhile
        grown past the offset again — and it is read again from the start (once per call)."""
        assert self.fd is not None  # opened by poll()
        n, restarted = 0, False
        for _ in range(max_chunks):
            k = len(self.last)
            want = chunk if size is None else min(chunk, max(size - self.offset, 0) + self.SLACK)
            data = os.pread(self.fd, k + want, self.offset - k)
            if len(data) == k + want:
                size = None
            if data[:k] != self.last:
                if restarted:  # rewritten again while being read: the next poll looks again
                    return n, False
                restarted = True
                self._restart(rx)
                continue
            data = data[k:]
            if not data:
                return n, True
            if len(self.head) < self.FP:
                self.head = (self.head + data)[: self.FP]
            self.offset += len(data)
            self.last = (self.last + data[-self.FP :])[-self.FP :]
            n += len(data)
            rx.feed(self.site, data)
        return n, False

    def poll(self, rx: Receiver, chunk: int = 1 << 20, max_chunks: int = 16) -> int:
        if self.fd is None and not self._open():
            return 0
        assert self.fd is not None  # _open() succeeded
        size = os.fstat(self.fd).st_size
        if size < self.offset or self._head_changed():
            self._restart(rx)
        n, eof = self._read(rx, chunk, max_chunks, size)
        if eof:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:  # rotation in progress: keep the old file for now
                return n
            if (st.st_dev, st.st_ino) != self.ident:  # rotated: drain the old file, then switch to the new one
                n += self._read(rx, chunk, 1 << 30)[0]
                rx.flush(self.site)
                self.close()
                if self._open():
                    n += self._read(rx, chunk, max_chunks)[0]
        return n


class LocalTail(ThreadedSource):
    """Tail ``{site: path}`` log files on this machine (one thread for all sites; see the module docstring)."""

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
        alive: AliveCheck | None = None,
        mechanism: str | None = None,
        safety_period: float = 5.0,
        min_gap: float = 0.002,
        busy_events: float = 40.0,
        busy_hold: float = 1.0,
    ) -> None:
        super().__init__(receiver, name, alive)
        self.period = period
        self.idle_period = max(period, idle_period)  # polls slow down after a second without new bytes
        self.safety_period = safety_period  # notifications: a poll at least this often, in case one was missed
        self.min_gap = min_gap  # notifications: at most one poll per min_gap s
        self.busy_events = busy_events  # notifications per second above which polling is cheaper
        self.busy = False  # polling for now: notifications came faster than busy_events per second
        self.busy_switches = 0
        self.busy_hold = busy_hold
        self._hold = busy_hold  # doubles (up to a minute) while the logs keep pouring in
        self._busy_until = 0.0
        self._window = (0.0, 0)  # (since, events then): the current second of notifications
        self._mode = mechanism  # "auto"/"events", "polling"; None: $FLARENB_TAIL, else auto
        self.mechanism: str | None = None  # "inotify", "fsevents", "kqueue", "windows", or "polling" (once started)
        self.mechanism_reason: str | None = None  # why it polls
        self._watcher: Watcher | None = None
        self._wake = threading.Event()
        self._last_poll = 0.0
        self.polls = 0
        self._last_data = time.monotonic()
        self._gone = False  # some site's process is known to be gone
        self.is_finished = is_finished
        self.finish_check_period = finish_check_period
        self._tails = [_FileTail(site, path) for site, path in paths.items()]
        self._last_check: float | None = None
        self._ending = False
        self._empty_after_end = 0
        for t in self._tails:
            receiver.site(t.site)
            receiver.site(t.site).fmt = "json" if t.path.endswith(".json") else "text"

    # -- how it wakes up -------------------------------------------------------------------------------
    def start(self) -> LocalTail:
        if self._thread is None and self.mechanism is None:
            self._open_watcher()
            self.mechanism = self._watcher.mechanism if self._watcher is not None else "polling"
        return super().start()

    def _open_watcher(self) -> None:
        self._watcher, self.mechanism_reason = open_watcher(
            [t.path for t in self._tails], self._wake.set, self.name, self._mode
        )
        self._window = (time.monotonic(), 0)

    def describe(self) -> str:
        """One line: what it follows and how it wakes up."""
        n = f"{len(self._tails)} local log file{'s' * (len(self._tails) != 1)}"
        if self.mechanism is None:
            return f"{n}, not started"
        ended = ", ended" if self.finished else ""
        if self.mechanism == "polling":
            why = f" ({self.mechanism_reason})" if self.mechanism_reason else ""
            return f"{n}, polling every {self.period:g} s{why}{ended}"
        busy = f"; polling every {self.period:g} s while the logs pour in" if self.busy else ""
        return f"{n}, {self.mechanism} notifications (safety poll every {self.safety_period:g} s){busy}{ended}"

    def __repr__(self) -> str:
        return f"<LocalTail {self.name}: {self.describe()}>"

    def _interval(self) -> float:
        if self._watcher is not None:
            if self._ending or self._finish_requested:
                return self.period
            # a site's process is gone: the job may be ending, so look (and tell the other sites alive) as often as
            # a polling tail would
            return self.idle_period if self._gone else self.safety_period
        return self.period if time.monotonic() - self._last_data < 1.0 else self.idle_period

    def _sleep(self, seconds: float) -> None:
        if self._watcher is None:
            self._stop.wait(seconds)
            now = time.monotonic()
            if self.busy and (now - self._last_data >= 1.0 or now >= self._busy_until) and not self._stop.is_set():
                self.busy = False  # quiet again: back to notifications (and one poll at once, in case)
                self._open_watcher()
                if self._watcher is None:
                    self.mechanism = "polling"
            return
        woken = self._wake.wait(seconds)
        gap = self._last_poll + self.min_gap - time.monotonic()
        if gap > 0:  # changes pour in: let a few gather into one read
            self._stop.wait(gap)
        self._wake.clear()  # before reading: a change after this wakes the next wait
        if self._watcher.dirty.is_set() or not woken:  # a folder on the way changed, or the safety poll
            self._refresh_watches()
        self._check_busy()

    def _check_busy(self) -> None:
        """Notifications cost more than polling once they come faster than ``busy_events`` per second (every
        write of every file in the watched folders is one): then poll for ``busy_hold`` s (doubled each time it is
        still busy after that), or until a second goes by without new bytes (a burst, e.g. a job starting, does
        not keep it polling while the job logs slowly)."""
        w, (at, seen) = self._watcher, self._window
        now = time.monotonic()
        if w is None:
            return
        if w.events - seen > self.busy_events * max(1.0, now - at):  # (within the second, as soon as it is over)
            self.busy, self.busy_switches = True, self.busy_switches + 1
            self._busy_until = now + self._hold
            self._hold = min(2 * self._hold, max(60.0, self.busy_hold))
            self._watcher = None
            w.close(STOP_JOIN_TIMEOUT)
        elif now - at >= 1.0:
            self._window = (now, w.events)
            self._hold = self.busy_hold

    def _refresh_watches(self) -> None:
        """Move the watches where the folders are now; if the platform refuses (no watch left), poll instead."""
        w = self._watcher
        if w is None:
            return
        try:
            w.refresh()
        except OSError as e:
            self._watcher = None
            self.mechanism, self.mechanism_reason = "polling", f"file-system notifications unavailable: {e}"
            w.close(STOP_JOIN_TIMEOUT)

    def finish(self) -> None:
        super().finish()
        self._wake.set()

    def poll_once(self) -> int:
        """Read what is new in every file; returns the number of bytes read."""
        if self.finished:
            return 0
        self.polls += 1
        self._last_poll = time.monotonic()
        rx = self.receiver
        n = 0
        for t in self._tails:
            got = t.poll(rx)
            n += got
            if not got:  # local files have no remote sender: the tail (and the site's process) is the liveness
                if self.alive is not None and self.alive(t.site) is False:
                    self._gone = True
                else:
                    self.receiver.heartbeat(t.site)
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
            if self._watcher is not None:
                self._watcher.close(STOP_JOIN_TIMEOUT)

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        self._stop.set()
        self._wake.set()
        super().stop(timeout)
        if self._watcher is not None:  # also when the thread did not end in time: its observer's threads must
            self._watcher.close(timeout)
        if self._thread is None:
            for t in self._tails:
                t.close()


def finish_local_tails(source: object) -> None:
    """The job has ended (its status says so): every :class:`LocalTail` in ``source`` (itself, a
    :class:`~flarenb.sources.Composite`'s parts, a wrapper's ``inner``) reads its files to the end now and ends,
    without waiting for a notification, its safety poll or its own end signal. Admin-API sources are left alone
    (they keep their grace for the server's last lines)."""
    parts = [source, *(getattr(source, "transports", None) or ()), getattr(source, "inner", None)]
    for part in parts:
        if isinstance(part, LocalTail):
            part.finish()


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


class _Kind:
    """Registry entry: the sites' log files are on this machine (a running local job, a simulation)."""

    name = "local"

    def fits(self, spec: JobLogs) -> bool:
        return spec.paths is not None and not (spec.ended and spec.fetch is not None)

    def open(self, receiver: Receiver, spec: JobLogs) -> LogSource:
        assert spec.paths is not None
        return LocalTail(
            receiver,
            spec.paths,
            is_finished=spec.is_finished,
            finish_check_period=0.5,
            name=spec.name,
            alive=spec.alive,
        )


KIND = _Kind()
