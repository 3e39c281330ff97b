"""Live logs of a job: the follower for a :class:`~flarenb.jobs.Job`, and the widget bound to it.

``follow_job(job)`` picks the transport — the local files when the job runs on the local POC flarenb manages,
else admin-API polling — and returns a handle on the job's one shared follower (:mod:`flarenb.follower`).

``LogView(job)`` is the live widget (:class:`flarenb.widget.LogView`) fed by that follower, with a status header
kept up to date. Every view of a job shares its one follower, and each view on screen follows the job to its end
(a view displayed by the submit cell and a ``job.view()`` further down both end with every site's final state).
Rerunning the cell that displayed a view replaces its output, so the new view detaches the old one (it keeps
what it showed, and its unfinished sites say why they stopped): no thread outlives its view.

Failures are shown where the user looks: a status or log request that fails puts one line in the view's header
(``problem``, e.g. "server unreachable: ..."), and in the sites' states when the logs cannot be read; the view
resumes by itself when the server answers again. A job that no longer exists (deleted) ends the view with the
status ``NOT FOUND`` and that reason. ``detach()``/``close()`` never wait for an admin call in flight.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from . import follower as _follower
from . import jobs as _jobs
from .dlsource import rights_aware
from .poc import _alive
from .safetext import safe_filenames
from .transports import Composite, LocalTail, describe_problem, is_job_not_found, local_job_log_paths, make_transport
from .vocab import DONE, QUIET, STOPPED, TIMED_OUT, UNAVAILABLE, VIEW_STATE_OF, is_terminal
from .widget import LogView as _Widget

STATUS_TTL = 2.0
FINISHED_LOAD_TIMEOUT = 15.0
WATCH_JOIN_TIMEOUT = 0.2  # seconds: detach() does not wait for a watch thread stuck in an admin call
NOT_FOUND = "NOT FOUND"

_log = logging.getLogger(__name__)


class _Status:
    """The job's status, fetched at most once per ``STATUS_TTL`` whoever asks (transport, view).

    A failed request keeps the last known status and sets ``problem`` (one line; logged once per distinct problem)
    until a request succeeds; ``not_found`` turns True for good when the server says the job does not exist. A
    caller never waits for another caller's request in flight: it gets the last known status.
    """

    def __init__(self, job: _jobs.Job):
        self.job = job
        self.value = "SUBMITTED"
        self.meta: dict = {}
        self.problem: str | None = None
        self.not_found = False
        self._logged: str | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self, fresh: bool = False) -> str:
        """The job's status, asked again when older than STATUS_TTL (``fresh``: now, waiting for a request in
        flight)."""
        first = self._at == 0.0 or fresh
        stale = fresh or time.monotonic() - self._at >= STATUS_TTL
        if not stale or self.not_found or not self._lock.acquire(blocking=first):
            return self.value
        try:
            if fresh or time.monotonic() - self._at >= STATUS_TTL:
                self._fetch()
                self._at = time.monotonic()
        finally:
            self._lock.release()
        return self.value

    def _fetch(self) -> None:
        try:
            self.meta = self.job.meta()
            self.value = str(self.meta.get("status", self.value))
            self.problem = None
        except Exception as e:  # keep the last known status; say why it is not current
            self.problem = describe_problem(e)
            if is_job_not_found(e):
                self.not_found = True
            if self.problem != self._logged:
                self._logged = self.problem
                _log.warning("flarenb: the status of job %s: %s", self.job.id, self.problem)


def follow_job(job: _jobs.Job, **receiver_kw) -> _follower.FollowerHandle:
    """A handle on ``job``'s one follower (shared by every consumer in this kernel; ``release()`` it).

    On the local POC: each site's job log file, tailed directly; once the job has ended the server's run folder
    has moved into the job store, so the server's log then comes from the admin API. Elsewhere: admin polling.
    """
    flare = job._f()
    key = (flare.kit.path, flare.study, job.id)
    status = _statuses.setdefault(key, _Status(job))
    poc = getattr(flare, "poc", None)
    local_root = str(poc.prod_dir) if poc is not None and poc.running else None
    finished = is_terminal(status())

    per_site: list[str] = []
    if local_root is None:
        # With "@ALL" in the deploy map the server lists clients under target="all" only after the job; asked by
        # name, each client's log is live. So ask every connected site by name.
        try:
            deploy = job.meta().get("deploy_map") or {}
            if any("@ALL" in targets for targets in deploy.values()):
                per_site = ["server", *flare.system_info().client_names]
        except Exception:
            per_site = []

    def fetch(target: str, log_file_name: str | None = None) -> dict:
        kw = {"log_file_name": log_file_name} if log_file_name else {}
        if target != "all" or not per_site:
            return flare.call(lambda s: s.get_job_logs(job.id, target=target, **kw))

        def ask(site: str) -> dict:
            return flare.call(lambda s: s.get_job_logs(job.id, target=site, **kw))

        merged: dict = {"logs": {}, "unavailable": {}}
        for site in per_site:
            reply = ask(site)
            merged["logs"].update(reply.get("logs") or {})
            merged["unavailable"].update(reply.get("unavailable") or {})
        return merged

    def factory(receiver):
        if local_root is None:
            # what the user may not call (get_job_log: NVFlare's default for lead) comes from the job's download
            poll = make_transport(receiver, job.id, fetch=fetch, status=status)
            transport = rights_aware(receiver, poll, flare, job.id, status)
            transport.alive = _AdminLiveness(flare, job.id, status)
            return transport
        liveness = _LocalLiveness(job.id)
        paths = local_job_log_paths(local_root, job.id)
        if finished:
            clients = {site: path for site, path in paths.items() if site != "server" and os.path.exists(path)}
            transport = Composite(
                [
                    LocalTail(receiver, clients, is_finished=lambda: True, name=job.id),
                    make_transport(receiver, job.id, fetch=fetch, status=status, target="server"),
                ]
            )
        else:
            transport = LocalTail(
                receiver, paths, is_finished=_local_end(liveness, status), finish_check_period=0.5, name=job.id
            )
        transport.alive = liveness
        return transport

    return _follower.follow(job.id, factory, key=key, **receiver_kw)


def _local_end(liveness: _LocalLiveness, status: _Status, every: float = 10.0):
    """``is_finished`` for a local tail without an admin call per check: ask the server only once the job's
    server process is gone (or every ``every`` seconds, in case it was never seen)."""
    last = [time.monotonic()]

    def is_finished() -> bool:
        now = time.monotonic()
        if liveness("server") is False or now - last[0] >= every:
            last[0] = now
            return is_terminal(status()) or status.not_found
        return False

    return is_finished


_statuses: dict[tuple, _Status] = {}


class _Liveness:
    """``alive(site)``: None until the site's job process has been seen, then whether it still runs.

    Checked at most every ``TTL`` seconds. A site whose process vanished gets no more heartbeats, so its stream
    turns quiet and is then closed by the receiver's idle timeout, while the other sites go on.
    """

    TTL = 1.0

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._running: set[str] = set()
        self._at = 0.0
        self._lock = threading.Lock()

    def _scan(self) -> set[str]:
        raise NotImplementedError

    def __call__(self, site: str) -> bool | None:
        with self._lock:
            if time.monotonic() - self._at >= self.TTL:
                try:
                    self._running = self._scan()
                    self._seen |= self._running
                except Exception:
                    return None
                self._at = time.monotonic()
            if site not in self._seen:
                return None
            return site in self._running


class _LocalLiveness(_Liveness):
    """On this machine: the job's processes (server ``runner_process``, client ``worker_process``).

    A full ``/proc`` scan finds them (every ``SCAN`` s, or while some site's process was never seen); in between,
    the known pids are checked with ``kill(pid, 0)``.
    """

    SCAN = 5.0

    def __init__(self, job_id: str):
        super().__init__()
        self.job_id = job_id
        self._pids: dict[str, int] = {}
        self._scanned = 0.0

    def _scan(self) -> set[str]:
        now = time.monotonic()
        if self._pids and now - self._scanned < self.SCAN and set(self._pids) >= self._seen:
            return {site for site, pid in self._pids.items() if _alive(pid)}
        self._scanned = now
        self._pids = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if self.job_id not in argv:
                continue
            if "nvflare.private.fed.app.server.runner_process" in argv:
                self._pids["server"] = int(entry)
            elif "nvflare.private.fed.app.client.worker_process" in argv and "-c" in argv:
                self._pids[argv[argv.index("-c") + 1]] = int(entry)
        return set(self._pids)


class _AdminLiveness(_Liveness):
    """Anywhere: the server says which clients run the job (``check_status client``)."""

    TTL = 2.0

    def __init__(self, flare, job_id: str, status: _Status):
        super().__init__()
        self.flare, self.job_id, self.status = flare, job_id, status

    def _scan(self) -> set[str]:
        running = set() if is_terminal(self.status()) else {"server"}
        for row in self.flare.call(lambda s: s.get_client_job_status()) or []:
            if row.get("job_id") == self.job_id:
                running.add(str(row.get("client_name")))
        return running


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


def job_status(job: _jobs.Job) -> _Status:
    """The shared, rate-limited status of ``job`` (the one its follower uses)."""
    flare = job._f()
    return _statuses.setdefault((flare.kit.path, flare.study, job.id), _Status(job))


_live_views: dict[tuple, weakref.ref] = {}
_views_lock = threading.Lock()


class LogView(_Widget):
    """The live per-site log widget of a job: ``flarenb.LogView(job)`` (or ``job.view()``)."""

    def __init__(self, job: _jobs.Job | str, follow: bool = True, **kwargs):
        if isinstance(job, str):
            job = _jobs.get_job(job)
        self.job = job
        flare = job._f()
        poc = getattr(flare, "poc", None)
        sites = ["server", *(poc.clients if poc is not None else [])]
        super().__init__(job.id, job_name=job.name, sites=sites, **kwargs)
        self._init_following(follow)

    def _init_following(self, follow: bool) -> None:
        """The following state of a view (after the widget's own ``__init__``); ``follow``: attach now."""
        self._origin = _display_origin()
        self._handle: _follower.FollowerHandle | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # not _thread/_stop: those are the base widget's flusher thread and its stop event
        self._watch_thread: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._wiring = threading.Lock()  # guards _handle/_unsubscribe against detach() racing the watch thread
        self._transport_problem = False
        self.on_download(self._write_complete_logs)
        if follow:
            self._attach()

    def _write_complete_logs(self, directory) -> list[str]:
        """The download action: each site's complete log — the job's own log file where it is on this machine,
        else what the server returns for the site — as ``<directory>/<site>.log`` (see
        :func:`flarenb.downloads.write_site_logs`: a file that is not complete says so)."""
        from .downloads import write_site_logs

        flare = self.job._f()
        poc = getattr(flare, "poc", None)

        def local(site: str):
            return poc.job_log(poc.server_name if site == "server" else site, self.job.id) if poc is not None else None

        def held(site: str) -> list[str]:
            dropped = self.history_dropped(site)
            note = [f"[flarenb: {dropped} earlier lines were dropped from this view's history]"] if dropped else []
            return note + [line.text for line in self.lines(site)]

        names = safe_filenames(self.sites)  # distinct files also for ".server" beside "server", "A" beside "a"
        return write_site_logs(
            directory,
            list(self.sites),
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
            key = (self.job._f().kit.path, self.job._f().study, self.job.id, scope)
            with _views_lock:
                ref = _live_views.get(key)
                old = ref() if ref is not None else None
                _live_views[key] = weakref.ref(self)
        self._handle = follow_job(self.job)
        self._status = job_status(self.job)
        self._unsubscribe = self._handle.subscribe(self._on_update, replay=True)
        # detached only now: the job's follower (and the lines it read live) is shared, never stopped and restarted
        # (after the job, a new follower reads the server's log from the admin API, which may not answer in time)
        if old is not None and old is not self and old._origin[1] != execution:
            try:  # what the old view keeps showing ends with the job's latest status
                old._show_status(fresh=True)
            except Exception:
                pass
            old.detach("a newer view of this job follows it")
        if is_terminal(self._status()):
            # A finished job's logs do not change: read them now, so what is displayed is already complete.
            deadline = time.monotonic() + FINISHED_LOAD_TIMEOUT
            while not self._handle.receiver.all_done and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._finish_if_done():
                return
        self._watch_thread = threading.Thread(target=self._watch, name=f"flarenb-view-{self.job.id}", daemon=True)
        self._watch_thread.start()

    def _on_update(self, update) -> None:
        if update.lines:
            self.append(update.site, update.lines)
        self._show_state(update.site, update.state, update.reason)

    def _show_state(self, site: str, state: str, reason: str | None, quiet_for: float | None = None) -> None:
        if state in (TIMED_OUT, STOPPED):
            reason = reason or "stream closed: no data within the idle timeout"
        self.set_site_state(
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
                self.set_problem(f"the view could not update: {what}")

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
                self.set_site_state(site, UNAVAILABLE, problem)
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
        self.set_problem(self._status.problem or (rx.problem if rx is not None else None))
        if self._status.not_found:
            return self._end_not_found()
        self._set_header(status)
        if not (is_terminal(status) and (rx is None or rx.all_done)):
            return False
        self.close_follow(status)
        self._release()
        self.refresh_displays()
        return True

    def _show_status(self, fresh: bool = False) -> str:
        """Ask the job's status (``fresh``: now) and show it in the header."""
        status = self._status(fresh=fresh)
        self._set_header(status)
        return status

    def _set_header(self, status: str) -> None:
        meta = self._status.meta
        self.set_status(
            status,
            submit_time=meta.get("submit_time_iso"),
            start_time=meta.get("start_time"),
            duration=meta.get("duration") if is_terminal(status) else None,
        )

    def _end_not_found(self) -> bool:
        """The server says the job does not exist (deleted): end the view with that state."""
        reason = self._status.problem or "job not found"
        self._release()
        for site in self.sites:
            if (self.site_states.get(site) or {}).get("state") != DONE:
                self.set_site_state(site, UNAVAILABLE, reason)
        self.set_problem(f"{reason} — following stopped (%flare list shows the jobs of this study)")
        self.set_status(NOT_FOUND, end_time=time.time())
        self.close_follow()
        self.refresh_displays()
        return True

    def _release(self) -> None:
        with self._wiring:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            handle, self._handle = self._handle, None
        if unsubscribe is not None:
            unsubscribe()
        if handle is not None:
            handle.release()

    def detach(self, reason: str = "detached") -> None:
        """Stop following (the view keeps what it shows). Never waits for an admin call in flight: the watch
        thread, if busy, exits as soon as its call returns, without touching the view."""
        self._watch_stop.set()
        thread = self._watch_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=WATCH_JOIN_TIMEOUT)
        self._release()
        try:
            with self._lock, self.hold_sync():
                for site in self.sites:  # a site still open here will not end in this view: say why
                    state = (self.site_states.get(site) or {}).get("state")
                    if state not in (DONE, UNAVAILABLE):
                        self.set_site_state(site, UNAVAILABLE, reason)
                if self.live:
                    self.close_follow()
            self.refresh_displays()  # the outputs showing this view keep what it showed, not "following live"
        except Exception:
            pass

    def close(self) -> None:
        self.detach("closed")
        super().close()
