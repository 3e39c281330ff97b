"""The live view's log source for every user: the admin API when allowed, the job's download when not.

:class:`RightsAwareSource` wraps the admin-API transport of a job (an :class:`~flarenb.sources.AdminPoll`) and
runs its polls on its own thread. It adds what a user without every right needs, and what every user needs when
something fails:

* ``get_job_log`` refused (NVFlare's default policy for ``lead``, ``org_admin``, ``member``): while the job runs,
  each site's state says why there are no lines (:data:`NEEDS_GET_JOB_LOG`) and what the site is doing (from
  ``get_client_job_status``, a ``view`` command); as soon as the job has ended, every lane fills from the job's
  download (:mod:`flarenb.dllogs`) and the streams end — no rerun needed. Without ``download_job`` either, the
  sites end saying which rights are missing.
* any other failure of a poll (server unreachable, refused, internal error): shown in every open site's state at
  that very poll, and cleared by the next successful one; a site always exists ("server" at least), so a view is
  never empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .dllogs import download_refused, downloaded
from .rights import is_refusal, right_of, rights_of
from .sources.base import STOP_JOIN_TIMEOUT, ThreadedSource, describe_source
from .vocab import UNAVAILABLE, is_terminal, one_line

NEEDS_GET_JOB_LOG = "live logs need the get_job_log right: this site's lines come from the job's download when it ends"
DOWNLOAD_ATTEMPTS = 5


def _reason(error: BaseException) -> str:
    text = one_line(getattr(error, "message", None) or error) or type(error).__name__
    name = type(error).__name__
    if name in ("ConnectError", "NoConnection", "SessionClosed", "ConnectionError", "TimeoutError"):
        return f"server unreachable: {text} (retrying)"
    if is_refusal(error):
        return f"refused by the server: {text}"
    return f"{name}: {text} (retrying)"


class RightsAwareSource(ThreadedSource):
    """``inner`` (an admin-API transport) with the download fallback and visible failures (module docstring)."""

    kind = "poll"

    def __init__(
        self,
        receiver: Any,
        inner: Any,
        flare: Any,
        job_id: str,
        status: Callable[[], str],
        name: str = "",
        wait_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(receiver, name or job_id)
        self.inner, self.flare, self.job_id, self.status = inner, flare, job_id, status
        self.wait_interval = wait_interval
        self.mode = "download" if rights_of(flare).refused_for("get_job_log", job_id) else "live"
        self.shown_error: str | None = None
        self.download_attempts = 0
        self._clients: list[str] = []
        self._client_status: dict[str, str] = {}
        self._clients_at: float | None = None
        self._clock = clock
        receiver.site("server")  # never an empty view

    @property
    def follows_live(self) -> bool:  # type: ignore[override]
        """False once the server refused ``get_job_log``: the lines then come from the job's download."""
        return self.mode == "live"

    # the inner transport shares liveness (given to it at construction) and the finish request
    @property
    def alive(self):
        return getattr(self.inner, "alive", None)

    def finish(self) -> None:
        super().finish()
        self.inner.finish()

    def describe(self) -> str:
        """The inner source's line; without the get_job_log right, that the logs come from the job's download."""
        if self.mode == "download":
            return "the job's download once it ends (live logs need the get_job_log right)"
        return describe_source(self.inner)

    def _interval(self) -> float:
        if self.mode == "live" and self.shown_error is None:
            return float(self.inner._interval())
        return self.wait_interval

    # -- one step --------------------------------------------------------------------------------
    def poll_once(self) -> int:
        if self.finished:
            return 0
        if self.mode == "live":
            try:
                n = self.inner.poll_once()
            except Exception as e:
                if is_refusal(e) and right_of(e) in ("get_job_log", None):
                    rights_of(self.flare).note("get_job_log", False, "refused by the server", self.job_id)
                    self.mode = "download"
                else:
                    self._show_error(e)
                    return 0
            else:
                self._clear_error()
                self.bytes_read = self.inner.bytes_read
                if self.inner.finished:
                    self.finished = True
                return n
        return self._download_step()

    def _download_step(self) -> int:
        rx = self.receiver
        status = self.status()
        if not is_terminal(status):
            try:
                self._refresh_clients()
            except Exception as e:
                self._show_error(e)
                return 0
            self._clear_error()
            for site in self._sites():
                state = self._client_status.get(site)
                rx.set_unavailable(site, f"{state} — {NEEDS_GET_JOB_LOG}" if state else NEEDS_GET_JOB_LOG)
                rx.heartbeat(site)
            return 0
        dl = downloaded(self.flare, self.job_id)
        try:
            reply = dl.reply("all")
        except Exception as e:
            if is_refusal(e):
                self._end_all(str(download_refused(self.flare, self.job_id)))
                return 0
            self.download_attempts += 1
            if self.download_attempts >= DOWNLOAD_ATTEMPTS:
                self._end_all(f"the job's download failed {self.download_attempts} times: {_reason(e)}")
            else:
                self._show_error(e, prefix="downloading the finished job's logs: ")
            return 0
        rights_of(self.flare).note("download_job", True, f"used on job {self.job_id}", self.job_id)
        logs = reply.get("logs") or {}
        n = 0
        for site, text in logs.items():
            if all(ln.kind == "marker" for ln in rx.lines(site)):  # a site already fed live keeps its lines
                rx.marker(site, f"[flarenb] {dl.source_line()}")
                n += rx.feed(site, text)
            self.bytes_read += len(text.encode("utf-8", "replace"))
        for site in self._sites():
            if site not in logs:
                rx.set_unavailable(site, "no log for this site in the job's download")
        self._end_all(None)
        return n

    # -- helpers ---------------------------------------------------------------------------------
    def _refresh_clients(self) -> None:
        now = self._clock()
        if self._clients_at is not None and now - self._clients_at < 5.0:
            return
        rows = self.flare.call(lambda s: s.get_client_job_status()) or []
        self._clients_at = now
        status = {str(r.get("client_name")): str(r.get("status")) for r in rows if r.get("job_id") == self.job_id}
        self._client_status = {site: f"job {state} on this site" for site, state in status.items()}
        for site in status:
            if site not in self._clients:
                self._clients.append(site)

    def _sites(self) -> list[str]:
        names = list(self.receiver.sites())
        return names + [c for c in self._clients if c not in names]

    def _show_error(self, error: BaseException, prefix: str = "") -> None:
        self.errors += 1
        self.last_error = error
        reason = prefix + _reason(error)
        self.shown_error = reason
        for site in self._sites():
            if not self.receiver.site(site).done:
                self.receiver.set_unavailable(site, reason)

    def _clear_error(self) -> None:
        reason, self.shown_error = self.shown_error, None
        if reason is None:
            return
        for site in self.receiver.sites():
            s = self.receiver.site(site)
            if s.state == UNAVAILABLE and s.reason == reason:
                self.receiver.clear_unavailable(site)

    def _end_all(self, reason: str | None) -> None:
        for site in self._sites():
            self.receiver.end(site, reason)
        self.finished = True

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        super().stop(timeout)
        self.inner.stop(timeout)


def rights_aware(receiver: Any, inner: Any, flare: Any, job_id: str, status: Callable[[], str]) -> RightsAwareSource:
    """Wrap ``inner`` (unstarted) for the live view; see :class:`RightsAwareSource`."""
    return RightsAwareSource(receiver, inner, flare, job_id, status)
