"""Live logs of a job: the follower for a :class:`~flarenb.jobs.Job`, and the widget bound to it.

``follow_job(job)`` picks the transport — the local files when the job runs on the local POC flarenb manages,
else admin-API polling — and returns a handle on the job's one shared follower (:mod:`flarenb.follower`).

``LogView(job)`` is the live widget (:class:`flarenb.widget.LogView`) fed by that follower, with a status header
kept up to date. Only the newest view of a job is live: opening another view of the same job (or rerunning
the cell) detaches the previous one — it keeps what it shows — so a job never has two followers, and no
thread outlives its view.
"""

from __future__ import annotations

import os
import threading
import time
import weakref

from . import follower as _follower
from . import jobs as _jobs
from .poc import _alive
from .receiver import ENDED, LIVE, QUIET, STOPPED, TIMED_OUT, UNAVAILABLE, WAITING
from .transports import Composite, LocalTail, local_job_log_paths, make_transport
from .widget import LogView as _Widget
from .widget import _safe_filename

STATUS_TTL = 2.0
FINISHED_LOAD_TIMEOUT = 15.0


class _Status:
    """The job's status, fetched at most once per ``STATUS_TTL`` whoever asks (transport, view)."""

    def __init__(self, job: _jobs.Job):
        self.job = job
        self.value = "SUBMITTED"
        self.meta: dict = {}
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self, fresh: bool = False) -> str:
        with self._lock:
            if fresh or time.monotonic() - self._at >= STATUS_TTL:
                try:
                    self.meta = self.job.meta()
                    self.value = str(self.meta.get("status", self.value))
                except Exception:
                    pass  # keep the last known status; the transport treats it as still running
                self._at = time.monotonic()
            return self.value


def follow_job(job: _jobs.Job, **receiver_kw) -> "_follower.FollowerHandle":
    """A handle on ``job``'s one follower (shared by every consumer in this kernel; ``release()`` it).

    On the local POC: each site's job log file, tailed directly; once the job has ended the server's run folder
    has moved into the job store, so the server's log then comes from the admin API. Elsewhere: admin polling.
    """
    flare = job._f()
    key = (flare.kit.path, flare.study, job.id)
    status = _statuses.setdefault(key, _Status(job))
    poc = getattr(flare, "poc", None)
    local_root = str(poc.prod_dir) if poc is not None and poc.running else None
    finished = _jobs.is_terminal(status())

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

    def fetch(target, log_file_name=None):
        kw = {"log_file_name": log_file_name} if log_file_name else {}
        if target != "all" or not per_site:
            return flare.call(lambda s: s.get_job_logs(job.id, target=target, **kw))
        merged: dict = {"logs": {}, "unavailable": {}}
        for site in per_site:
            reply = flare.call(lambda s: s.get_job_logs(job.id, target=site, **kw))
            merged["logs"].update(reply.get("logs") or {})
            merged["unavailable"].update(reply.get("unavailable") or {})
        return merged

    def factory(receiver):
        if local_root is None:
            transport = make_transport(receiver, job.id, fetch=fetch, status=status)
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


def _local_end(liveness: "_LocalLiveness", status: "_Status", every: float = 10.0):
    """``is_finished`` for a local tail without an admin call per check: ask the server only once the job's
    server process is gone (or every ``every`` seconds, in case it was never seen)."""
    last = [time.monotonic()]

    def is_finished() -> bool:
        now = time.monotonic()
        if liveness("server") is False or now - last[0] >= every:
            last[0] = now
            return _jobs.is_terminal(status())
        return False

    return is_finished


_statuses: "dict[tuple, _Status]" = {}


class _Liveness:
    """``alive(site)``: None until the site's job process has been seen, then whether it still runs.

    Checked at most every ``TTL`` seconds. A site whose process vanished gets no more heartbeats, so its stream
    turns quiet and is then closed by the receiver's idle timeout, while the other sites go on.
    """

    TTL = 1.0

    def __init__(self):
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

    def __init__(self, flare, job_id: str, status: "_Status"):
        super().__init__()
        self.flare, self.job_id, self.status = flare, job_id, status

    def _scan(self) -> set[str]:
        running = set() if _jobs.is_terminal(self.status()) else {"server"}
        for row in self.flare.call(lambda s: s.get_client_job_status()) or []:
            if row.get("job_id") == self.job_id:
                running.add(str(row.get("client_name")))
        return running


def job_status(job: _jobs.Job) -> _Status:
    """The shared, rate-limited status of ``job`` (the one its follower uses)."""
    flare = job._f()
    return _statuses.setdefault((flare.kit.path, flare.study, job.id), _Status(job))


_STATE = {WAITING: "silent", LIVE: "streaming", QUIET: "quiet", UNAVAILABLE: "unavailable", ENDED: "done"}
_live_views: "dict[tuple, weakref.ref]" = {}
_views_lock = threading.Lock()


class LogView(_Widget):
    """The live per-site log widget of a job: ``flarenb.LogView(job)`` (or ``job.view()``)."""

    def __init__(self, job: "_jobs.Job | str", follow: bool = True, **kwargs):
        if isinstance(job, str):
            job = _jobs.get_job(job)
        self.job = job
        flare = job._f()
        poc = getattr(flare, "poc", None)
        sites = ["server", *(poc.clients if poc is not None else [])]
        super().__init__(job.id, job_name=job.name, sites=sites, **kwargs)
        self._handle = None
        self._unsubscribe = None
        # not _thread/_stop: those are the base widget's flusher thread and its stop event
        self._watch_thread = None
        self._watch_stop = threading.Event()
        self.on_download(self._write_complete_logs)
        if follow:
            self._attach()

    def _write_complete_logs(self, directory) -> list[str]:
        """The download action: each site's complete log — the job's own log file where it is on this machine,
        else what the server returns for the site (its last 5 MiB) — as ``<directory>/<site>.log``."""
        import shutil
        from pathlib import Path

        flare = self.job._f()
        poc = getattr(flare, "poc", None)
        written = []
        for site in self.sites:
            dest = Path(directory) / f"{_safe_filename(site)}.log"
            local = None
            if poc is not None:
                local = poc.job_log(poc.server_name if site == "server" else site, self.job.id)
            if local is not None and local.is_file():
                shutil.copyfile(local, dest)
            else:
                try:
                    reply = flare.call(lambda s: s.get_job_logs(self.job.id, target=site))
                    text = (reply.get("logs") or {}).get(site)
                except Exception:
                    text = None
                if text is None:  # fall back to what this view holds
                    text = "\n".join(line.text for line in self.lines(site)) + "\n"
                dest.write_text(text)
            written.append(str(dest))
        return written

    # -- wiring --------------------------------------------------------------------------------------
    def _attach(self) -> None:
        key = (self.job._f().kit.path, self.job._f().study, self.job.id)
        with _views_lock:
            old = _live_views.get(key)
            old = old() if old is not None else None
            _live_views[key] = weakref.ref(self)
        self._handle = follow_job(self.job)
        self._status = job_status(self.job)
        self._unsubscribe = self._handle.subscribe(self._on_update, replay=True)
        # detached only now: the job's follower (and the lines it read live) is shared, never stopped and restarted
        # (after the job, a new follower reads the server's log from the admin API, which may not answer in time)
        if old is not None and old is not self:
            try:  # what the old view keeps showing ends with the job's latest status
                old._show_status(fresh=True)
            except Exception:
                pass
            old.detach("a newer view of this job follows it")
        if _jobs.is_terminal(self._status()):
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
            self.set_site_state(site, "unavailable", reason or "stream closed: no data within the idle timeout")
        elif state == QUIET:
            self.set_site_state(site, "quiet", reason, quiet_for=quiet_for)
        elif state == ENDED:
            self.set_site_state(site, "done")
        else:
            self.set_site_state(site, _STATE.get(state, state), reason)

    def _watch(self) -> None:
        """Keep the header current; when the job has ended and every stream is done, finish the view."""
        while not self._watch_stop.wait(1.0):
            if self._finish_if_done():
                return
            now = time.monotonic()
            rx = self._handle.receiver
            for site in rx.sites():
                s = rx.site(site)
                if s.state == QUIET and s.last_data is not None:
                    self._show_state(site, QUIET, s.reason, quiet_for=now - s.last_data)

    def _finish_if_done(self) -> bool:
        """Show the current status; once the job ended and every stream is done: final state, follower
        released, and the final static snapshot sent to the outputs showing this view."""
        status = self._show_status()
        if not (_jobs.is_terminal(status) and self._handle.receiver.all_done):
            return False
        self.close_follow(status)
        self._release()
        self.refresh_displays()
        return True

    def _show_status(self, fresh: bool = False) -> str:
        status = self._status(fresh=True) if fresh else self._status()
        meta = self._status.meta
        self.set_status(
            status,
            submit_time=meta.get("submit_time_iso"),
            start_time=meta.get("start_time"),
            duration=meta.get("duration") if _jobs.is_terminal(status) else None,
        )
        return status

    def _release(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._handle is not None:
            self._handle.release()
            self._handle = None

    def detach(self, reason: str = "detached") -> None:
        """Stop following (the view keeps what it shows)."""
        self._watch_stop.set()
        thread = self._watch_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._release()
        try:
            self.close_follow()
            self.refresh_displays()  # the outputs showing this view keep what it showed, not "following live"
        except Exception:
            pass

    def close(self) -> None:
        self.detach("closed")
        super().close()
