"""Live logs of a job: the view bound to the log source of a :class:`~flarenb.jobs.Job`.

``follow_job(job)`` (:mod:`flarenb.logsource`, re-exported here) returns a handle on the job's one shared
follower; the source is picked through the registry of :mod:`flarenb.sources`.

``LogView(job)`` shows that follower in a live widget (it holds a :class:`flarenb.widget.LogView`, drives it
through its public methods, and displays as it), with a status header kept up to date. Every view of a job shares
its one follower, and each view on screen follows the job to its end (a view displayed by the submit cell and a
``job.view()`` further down both end with every site's final state). Rerunning the cell that displayed a view
replaces its output, so the new view detaches the old one (it keeps what it showed, and its unfinished sites say
why they stopped): no thread outlives its view.

A view of a job on the local POC also shows the job's round progress and per-round metrics (the header's "round k
of N", the Metrics panel), read from the server's run folder by its :class:`~flarenb.metricsfeed.MetricsFeed` (a
thread it owns and stops with it; after the job, from the job's download once). For a job elsewhere they stay
empty: NVFlare serves the metrics file only in the job's result (``job.metrics()`` reads it once the job ended).

The header's debug info (:attr:`~flarenb.viewfront.WidgetFront.source_info`, an "ⓘ" in the browser) says in one
line how the logs are followed — e.g. "3 local log files, inotify notifications (safety poll every 5 s)", or why a
local tail polls, or the cursor and what it handed over to — kept current while the view follows.

Failures are shown where the user looks: a status or log request that fails puts one line in the view's header
(``problem``, e.g. "server unreachable: ..."), and in the sites' states when the logs cannot be read; the view
resumes by itself when the server answers again. A job that no longer exists (deleted) ends the view with the
status ``NOT FOUND`` and that reason. ``detach()``/``close()`` never wait for an admin call in flight.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

from . import follower as _follower
from . import jobs as _jobs
from . import threads
from .logsource import STATUS_TTL, follow_job, job_status
from .metricsfeed import MetricsFeed
from .safetext import safe_filenames
from .sources import finish_local_tails
from .viewfront import WidgetFront
from .vocab import DONE, QUIET, STOPPED, TIMED_OUT, UNAVAILABLE, VIEW_STATE_OF, is_terminal
from .widget import LogView as _Widget

__all__ = [
    "FINISHED_LOAD_TIMEOUT",
    "NOT_FOUND",
    "STATUS_TTL",
    "LogView",
    "follow_job",
    "job_status",
]

FINISHED_LOAD_TIMEOUT = 15.0
WATCH_JOIN_TIMEOUT = 0.2  # seconds: detach() does not wait for a watch thread stuck in an admin call
NOT_FOUND = "NOT FOUND"

_log = logging.getLogger(__name__)


def _display_origin() -> tuple[str, str | None]:
    """(the cell displaying a view — its id, else its source — and that execution's message id); ("", None)
    outside a kernel."""
    from .submission import cell_scope

    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        parent = (kernel.get_parent("shell") or {}) if kernel is not None else {}
    except Exception:
        parent = {}
    return cell_scope(), (parent.get("header") or {}).get("msg_id")


_live_views: dict[tuple, weakref.ref] = {}
_views_lock = threading.Lock()


def _forget(view) -> None:
    """Prune ``view``'s registry entry (``view._view_slot``: the registry and the key) when it still names the view
    (or a view gone); and every entry whose view is gone."""
    slot = getattr(view, "_view_slot", None)
    if slot is None:
        return
    registry, key = slot
    with _views_lock:
        ref = registry.get(key)
        if ref is not None and ref() in (view, None):
            del registry[key]
        for gone in [k for k, r in registry.items() if r() is None]:
            del registry[gone]


class LogView(WidgetFront):
    """The live per-site log view of a job: ``flarenb.LogView(job)`` (or ``job.view()``): the job's log source
    (:mod:`flarenb.logsource`) shown in a live widget (:attr:`widget`, a :class:`flarenb.widget.LogView`), which
    displaying the view displays. ``kwargs`` go to the widget."""

    def __init__(self, job: _jobs.Job | str, follow: bool = True, **kwargs):
        if isinstance(job, str):
            job = _jobs.get_job(job)
        self.job = job
        poc = getattr(job.connection, "poc", None)
        sites = ["server", *(poc.clients if poc is not None else [])]
        self.widget = _Widget(job.id, job_name=job.name, sites=sites, **kwargs)
        self._init_following(follow)

    def _init_following(self, follow: bool) -> None:
        """The following state of a view (once its :attr:`widget` exists); ``follow``: attach now."""
        self._origin = _display_origin()
        self._handle: _follower.FollowerHandle | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._metrics_unsubscribe: Callable[[], None] | None = None  # the cursor's metrics (a remote job)
        self._watch_thread: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._wiring = threading.Lock()  # guards _handle/_unsubscribe against detach() racing the watch thread
        self._transport_problem = False
        self.widget.on_download(self._write_complete_logs)
        self.metrics_feed: MetricsFeed | None = None
        if follow:
            self.metrics_feed = self._make_metrics_feed()
            if self.metrics_feed is not None:
                self.metrics_feed.start()
            try:
                self._attach()
            except BaseException:
                if self.metrics_feed is not None:  # no view to feed: the thread must not outlive it
                    self.metrics_feed.stop()
                raise
            if self.metrics_feed is None:
                self._feed_metrics_by_cursor()

    def _view_sites(self) -> tuple[list[str], dict]:
        return list(self.widget.sites), dict(self.widget.site_states)

    def _make_metrics_feed(self) -> MetricsFeed | None:
        """The feed of round progress and metrics: for a job on the local POC (while it runs, its run folder; after,
        its download); None elsewhere."""
        from .metric_sources import poc_metrics_dir

        job = self.job
        poc = getattr(job.connection, "poc", None)
        if poc is None or not poc.running:
            return None
        folder = poc_metrics_dir(poc, job.id)
        return MetricsFeed(
            job.id,
            self.widget.set_metrics,
            self._view_sites,
            metrics_dir=folder,
            run_dir=folder.parent,
            final=self._final_metrics,
        )

    def _final_metrics(self):
        """A finished job's complete metrics and number of rounds (from its download)."""
        from .dllogs import downloaded
        from .metric_sources import job_metrics
        from .progress import num_rounds

        job = self.job
        return job_metrics(job), num_rounds(downloaded(job.connection, job.id).fetch() / "workspace")

    def _feed_metrics_by_cursor(self) -> None:
        """A remote job followed by cursor: its metrics come by the same command (a second cursor), into a feed
        that pushes the view's progress and Metrics panel as on the local POC."""
        from .sources.cursor import CursorPoll

        with self._wiring:
            handle = self._handle
        source = handle.transport if handle is not None else None
        source = getattr(source, "inner", source)
        if not isinstance(source, CursorPoll) or source.finished:
            return
        feed = MetricsFeed(self.job.id, self.widget.set_metrics, self._view_sites, final=self._final_metrics)
        with self._wiring:
            self._metrics_unsubscribe = source.subscribe_metrics(feed.feed)
        self.metrics_feed = feed
        feed.start()

    def _write_complete_logs(self, directory) -> list[str]:
        """The download action: each site's complete log — the job's own log file where it is on this machine,
        else what the server returns for the site — as ``<directory>/<site>.log`` (see
        :func:`flarenb.downloads.write_site_logs`: a file that is not complete says so)."""
        from .downloads import write_site_logs

        flare = self.job.connection
        poc = getattr(flare, "poc", None)

        def local(site: str):
            return poc.job_log(poc.server_name if site == "server" else site, self.job.id) if poc is not None else None

        def held(site: str) -> list[str]:
            dropped = self.widget.history_dropped(site)
            note = [f"[flarenb: {dropped} earlier lines were dropped from this view's history]"] if dropped else []
            return note + [line.text for line in self.widget.lines(site)]

        names = safe_filenames(self.widget.sites)  # distinct files also for ".server" beside "server", "A" beside "a"
        return write_site_logs(
            directory,
            list(self.widget.sites),
            file_name=lambda site: f"{names[site]}.log",
            local_file=local,
            ask_server=lambda site: flare.call(lambda s: s.get_job_logs(self.job.id, target=site)),
            held_lines=held,
        )

    # -- wiring --------------------------------------------------------------------------------------
    def _attach(self) -> None:
        scope, execution = self._origin
        old = None
        if scope:  # a view shown by an earlier run of the same cell: that output is gone, stop following there
            key = (*self.job.key, scope)
            with _views_lock:
                ref = _live_views.get(key)
                old = ref() if ref is not None else None
                _live_views[key] = weakref.ref(self)
            self._view_slot: tuple[dict, object] = (_live_views, key)
        self._handle = follow_job(self.job)
        self._status = job_status(self.job)
        self._unsubscribe = self._handle.subscribe(self._on_update, replay=True)
        self._show_source(self._handle)
        # detached only now: the job's follower (and the lines it read live) is shared, never stopped and restarted
        # (after the job, a new follower reads the server's log from the admin API, which may not answer in time)
        if old is not None and old is not self and old._origin[1] != execution:
            try:  # what the old view keeps showing ends with the job's latest status
                old._show_status(fresh=True)
            except Exception:
                pass
            old.detach("a newer view of this job follows it")
        if is_terminal(self._status()):
            # A finished job's logs do not change: read them now, so what is displayed is already complete. A local
            # tail that followed the job while it ran (an earlier view's) may not know yet: it reads to the end now.
            finish_local_tails(self._handle.transport)
            self._handle.wait_done(FINISHED_LOAD_TIMEOUT)  # woken when every stream has closed (bounded)
            if self._finish_if_done():
                return
        self._watch_thread = threads.start(self._watch, f"flarenb-view-{self.job.id}")

    def _on_update(self, update) -> None:
        if update.lines:
            self.widget.append(update.site, update.lines)
        self._show_state(update.site, update.state, update.reason)

    def _show_state(self, site: str, state: str, reason: str | None, quiet_for: float | None = None) -> None:
        if state in (TIMED_OUT, STOPPED):
            reason = reason or "stream closed: no data within the idle timeout"
        self.widget.set_site_state(
            site, VIEW_STATE_OF.get(state, state), reason, quiet_for=quiet_for if state == QUIET else None
        )

    def _watch(self) -> None:
        """Keep the header current; when the job has ended and every stream is done, finish the view. An
        unexpected error is logged once and shown in the header; the loop goes on."""
        logged = None
        while not self._watch_stop.wait(1.0):
            try:
                if self._finish_if_done():
                    return
                self._show_liveness()
                logged = None
            except Exception as e:
                if self._watch_stop.is_set():
                    return
                what = f"{type(e).__name__}: {e}"
                if what != logged:
                    logged = what
                    _log.error("flarenb view of job %s: %s", self.job.id, what, exc_info=e)
                self.widget.set_problem(f"the view could not update: {what}")

    def _show_liveness(self) -> None:
        """Quiet periods, and the transport's problem in every open site's state (until it works again)."""
        with self._wiring:
            handle = self._handle
        if handle is None:
            return
        rx = handle.receiver
        now = time.monotonic()
        problem = rx.problem
        for site in rx.sites():
            s = rx.site(site)
            if problem is not None and not s.done:
                self.widget.set_site_state(site, UNAVAILABLE, problem)
            elif self._transport_problem:  # it works again: the site's own state
                self._show_state(site, s.state, s.reason)
            elif s.state == QUIET and s.last_data is not None:
                self._show_state(site, QUIET, s.reason, quiet_for=now - s.last_data)
        self._transport_problem = problem is not None

    def _finish_if_done(self) -> bool:
        """Show the current status and problem; once the job ended (or no longer exists) and every stream is done:
        final state, follower released, and the final static snapshot sent to the outputs showing this view."""
        status = self._status()
        if self._watch_stop.is_set():  # detached while asking the server
            return True
        with self._wiring:
            handle = self._handle
        rx = handle.receiver if handle is not None else None
        self._show_source(handle)
        self.widget.set_problem(self._status.problem or (rx.problem if rx is not None else None))
        if self._status.not_found:
            return self._end_not_found()
        self._set_header(status)
        if is_terminal(status) and handle is not None and not handle.receiver.all_done:
            finish_local_tails(handle.transport)  # the tails need not wait for their own end signal (safety poll)
        if not (is_terminal(status) and (rx is None or rx.all_done)):
            return False
        if self.metrics_feed is not None:
            # the last read of the metrics, here (the view's own thread, or before a view of an ended job is shown):
            # the final snapshot then holds them, and no later refresh re-renders the outputs showing the view
            self.metrics_feed.finish_now()
        self.widget.close_follow(status)
        self._release()
        self.widget.refresh_displays()
        return True

    def _show_source(self, handle: _follower.FollowerHandle | None) -> None:
        """Show how the logs are followed (the source's one line, :attr:`source_info`): when the view attaches, and
        at each look of its watch, as the source changes how it follows (a local tail polling while logs pour in, a
        cursor handing over to the admin API); after the view released its follower, the last line stays."""
        if handle is not None:
            self.widget.set_source_info(handle.source_info)

    def _show_status(self, fresh: bool = False) -> str:
        """Ask the job's status (``fresh``: now) and show it in the header."""
        status = self._status(fresh=fresh)
        self._set_header(status)
        return status

    def _set_header(self, status: str) -> None:
        meta = self._status.meta
        self.widget.set_status(
            status,
            submit_time=meta.get("submit_time_iso"),
            start_time=meta.get("start_time"),
            duration=meta.get("duration") if is_terminal(status) else None,
        )

    def _end_not_found(self) -> bool:
        """The server says the job does not exist (deleted): end the view with that state."""
        reason = self._status.problem or "job not found"
        if self.metrics_feed is not None:
            self.metrics_feed.stop()
        self._release()
        for site in self.widget.sites:
            if (self.widget.site_states.get(site) or {}).get("state") != DONE:
                self.widget.set_site_state(site, UNAVAILABLE, reason)
        self.widget.set_problem(f"{reason} — following stopped (%flare list shows the jobs of this study)")
        self.widget.set_status(NOT_FOUND, end_time=time.time())
        self.widget.close_follow()
        self.widget.refresh_displays()
        return True

    def _release(self) -> None:
        with self._wiring:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            handle, self._handle = self._handle, None
            from_cursor, self._metrics_unsubscribe = self._metrics_unsubscribe, None
        for call in (unsubscribe, from_cursor):
            if call is not None:
                call()
        if handle is not None:
            handle.release()

    def detach(self, reason: str = "detached") -> None:
        """Stop following (the view keeps what it shows). Never waits for an admin call in flight: the watch
        thread, if busy, exits as soon as its call returns, without touching the view."""
        self._watch_stop.set()
        if self.metrics_feed is not None:
            self.metrics_feed.stop(timeout=WATCH_JOIN_TIMEOUT)
        _forget(self)
        thread = self._watch_thread
        if thread is not None and thread is not threading.current_thread():
            threads.join(thread, WATCH_JOIN_TIMEOUT)
        self._release()
        try:
            with self.widget.hold_sync():
                for site in self.widget.sites:  # a site still open here will not end in this view: say why
                    state = (self.widget.site_states.get(site) or {}).get("state")
                    if state not in (DONE, UNAVAILABLE):
                        self.widget.set_site_state(site, UNAVAILABLE, reason)
                if self.widget.live:
                    self.widget.close_follow()
            self.widget.refresh_displays()  # the outputs showing this view keep what it showed, not "following live"
        except Exception:
            pass

    def close(self) -> None:
        """Stop following, then close the widget."""
        self.detach("closed")
        self.widget.close()
