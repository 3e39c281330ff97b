"""Any deployment: :class:`AdminPoll` ``(receiver, fetch, status=None, target="all")`` polls the admin API.

``fetch(target)`` returns ``{'logs': {site: text}, 'unavailable': {site: reason}}`` (wrap
``Session.get_job_logs(job_id, target=...)``), ``status()`` the job status string. The server returns a site's
WHOLE log each time, capped to its last bytes with a ``... output truncated to last N bytes ...`` prefix cut
mid-line; :class:`flarenb.logcursor.LogCursor` turns each reply into only the new complete lines (see there).
Polling is adaptive (``min_interval`` while lines arrive, backing off to ``max_interval``); once ``status()`` is
terminal, a final poll ``final_grace`` s later is drained (including partial last lines) and every stream ends.

The registry entry wraps it in what its :class:`~flarenb.sources.base.JobLogs` asks (``wrap_admin``: for the live
view, the download fallback of a user without the ``get_job_log`` right, :mod:`flarenb.dlsource`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..logcursor import LogCursor
from ..receiver import Receiver
from ..vocab import is_terminal
from .base import AliveCheck, JobLogs, LogSource, ThreadedSource, describe_problem, is_job_not_found

__all__ = ["KIND", "AdminPoll"]


class AdminPoll(ThreadedSource):
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
        alive: AliveCheck | None = None,
    ) -> None:
        super().__init__(receiver, name, alive)
        self.fetch, self.status, self.target = fetch, status, target
        self.min_interval, self.max_interval, self.backoff = min_interval, max_interval, backoff
        self.interval = min_interval
        self.final_grace = final_grace
        self.polls = 0
        self._fingerprint = fingerprint
        self._cursors: dict[str, LogCursor] = {}
        self._terminal_at: float | None = None
        self._clock = clock

    def prime(self, cursors: dict[str, LogCursor]) -> None:
        """Start from what another source already fed (per site: a LogCursor that regards it as consumed)."""
        self._cursors.update(cursors)

    def describe(self) -> str:
        """One line: what it asks the admin API for and how often (e.g. "admin API: whole logs of every site,
        polling every 0.3 to 3 s")."""
        what = "every site" if self.target in ("all", "@ALL") else self.target
        text = f"admin API: whole logs of {what}, polling every {self.min_interval:g} to {self.max_interval:g} s"
        if self.finished:
            return text + ", ended"
        return text + (", final poll after the job ended" if self._terminal_at is not None else "")

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


class _Kind:
    """Registry entry: the admin API (works with any deployment; the last resort)."""

    name = "admin"

    def fits(self, spec: JobLogs) -> bool:
        return spec.fetch is not None

    def open(self, receiver: Receiver, spec: JobLogs) -> LogSource:
        assert spec.fetch is not None
        poll = AdminPoll(receiver, spec.fetch, status=spec.status, name=spec.name, alive=spec.alive)
        return poll if spec.wrap_admin is None else spec.wrap_admin(receiver, poll)


KIND = _Kind()
