"""The logs of sites on this machine: :class:`LocalTail` ``(receiver, {site: path}, is_finished=None, period=0.05)``.

It tails log files on this machine (POC: ``<poc>/example_project/prod_00/<site>/<job_id>/log.txt``; a simulation:
``<workspace>/<site>/log.txt``): it waits for a file that does not exist yet, follows rotation (inode change:
finishes the old file, then switches), detects truncation (size below the offset, or the bytes before the offset
changed: restarts at 0 after a ``[flarenb]`` marker line), and ends the streams once ``is_finished()`` is true (or
``finish()`` was called) and two consecutive polls found nothing more. :func:`local_job_log_paths` lists
``{site: path}`` for a local workspace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping

from ..receiver import Receiver
from .base import STOP_JOIN_TIMEOUT, AliveCheck, JobLogs, LogSource, ThreadedSource

__all__ = ["KIND", "LocalTail", "local_job_log_paths"]

StrPath = str | os.PathLike[str]


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


class LocalTail(ThreadedSource):
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
        alive: AliveCheck | None = None,
    ) -> None:
        super().__init__(receiver, name, alive)
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
