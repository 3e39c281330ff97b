"""The log source of a job: what follows a :class:`~flarenb.jobs.Job`'s per-site logs, with no widget in sight.

``follow_job(job)`` (``follow_sim(sim)`` for a local simulation) describes the job to the source registry
(:mod:`flarenb.sources`: the local files when the job runs on the local POC flarenb manages, or for a simulation;
else admin-API polling) and returns a handle on the job's one shared follower (:mod:`flarenb.follower`).
Everything the source needs is given when it is built (:class:`~flarenb.sources.JobLogs`): the job's shared
status (:func:`job_status`) and the sites' liveness — their processes on this machine (:mod:`flarenb.procs`), or
the server's word.

Every registry here is keyed by :attr:`Job.key <flarenb.jobs.Job.key>` and pruned: the status of a job that has
ended is dropped as soon as another job's is asked for (a finished job's status does not change; asking for it
again costs one request).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Collection
from typing import TYPE_CHECKING

from . import follower as _follower
from . import jobs as _jobs
from . import procs
from .dlsource import rights_aware
from .jobconfig import answers_cursor
from .rights import rights_of
from .sources import JobLogs, describe_problem, is_job_not_found, local_job_log_paths, open_source
from .sources.cursor import ask_job, server_log_readiness
from .vocab import is_terminal

if TYPE_CHECKING:
    from .sim import Simulation

STATUS_TTL = 2.0
SIM_STATUS_TTL = 0.5

_log = logging.getLogger("flarenb.live")


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

    @property
    def ended(self) -> bool:
        """The job has ended, or no longer exists: this status will not change."""
        return self.not_found or is_terminal(self.value)

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


_statuses: dict[tuple, _Status] = {}
_statuses_lock = threading.Lock()


def job_status(job: _jobs.Job) -> _Status:
    """The shared, rate-limited status of ``job`` (the one its follower uses). Asking prunes the statuses of the
    other jobs that have ended."""
    key = job.key
    with _statuses_lock:
        for other in [k for k, s in _statuses.items() if k != key and s.ended]:
            del _statuses[other]
        return _statuses.setdefault(key, _Status(job))


# ------------------------------------------------------------------------------------------ liveness
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
    """On this machine: the job's processes (:func:`flarenb.procs.job_processes`: server ``runner_process``,
    client ``worker_process``).

    A full process scan finds them (every ``SCAN`` s, or while some site's process was never seen); in between,
    the known pids are checked with :func:`flarenb.procs.alive`. Given the job's ``sites``, once every site's
    process was found there is no more full scan (a job's process runs once: the pid checks say when it is gone).
    Where processes cannot be listed, a site is never seen, so its liveness stays unknown (None).
    """

    SCAN = 5.0

    def __init__(self, job_id: str, sites: Collection[str] | None = None):
        super().__init__()
        self.job_id = job_id
        self.sites = set(sites) if sites is not None else None
        self._pids: dict[str, int] = {}
        self._scanned = 0.0
        self.scans = 0  # full process scans so far

    def _scan(self) -> set[str]:
        now = time.monotonic()
        found_all = self.sites is not None and set(self._pids) >= self.sites
        fresh = now - self._scanned < self.SCAN and set(self._pids) >= self._seen
        if self._pids and (found_all or fresh):
            return {site for site, pid in self._pids.items() if procs.alive(pid)}
        self._scanned = now
        self.scans += 1
        self._pids = procs.job_processes(self.job_id)
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


def _local_end(
    liveness: _LocalLiveness,
    status: _Status,
    every: float = 10.0,
    run_dir: str | None = None,
    every_alive: float = 300.0,
):
    """``is_finished`` for a local tail without an admin call while the job runs: the server is asked (one status
    call, then at most every ``STATUS_TTL`` s until it says the job ended) once a local signal says the job may
    have ended — its server process, or any site's, is gone, or its server run folder ``run_dir`` (seen before)
    moved into the job store; while the server's process was never seen (not started yet, or processes cannot be
    listed here), every ``every`` s; while every process runs, only every ``every_alive`` s (a safety net).
    Once the job's shared status already says it ended (a view or anyone else asked), it is finished: no call."""
    last = [time.monotonic()]
    seen_dir = [False]

    def is_finished() -> bool:
        if status.ended:  # the last known status (no request): e.g. a view saw the job end before any local signal
            return True
        now = time.monotonic()
        server = liveness("server")
        moved = False
        if run_dir is not None:
            exists = os.path.isdir(run_dir)
            moved, seen_dir[0] = seen_dir[0] and not exists, seen_dir[0] or exists
        wait = every_alive if server else every
        gone = server is False or any(liveness(site) is False for site in liveness.sites or ())
        if gone or moved or now - last[0] >= wait:
            last[0] = now
            return is_terminal(status()) or status.not_found
        return False

    return is_finished


# ------------------------------------------------------------------------------------------ following
def _fetcher(job: _jobs.Job, local: bool):
    """``fetch(target, log_file_name=None)``: the server's ``get_job_logs`` reply for the job."""
    flare = job.connection
    per_site: list[str] = []
    if not local:
        # With "@ALL" in the deploy map the server lists clients under target="all" only after the job; asked by
        # name, each client's log is live. So ask every connected site by name.
        try:
            deploy = job.meta().get("deploy_map") or {}
            if any("@ALL" in targets for targets in deploy.values()):
                per_site = ["server", *flare.system_info().client_names]
        except Exception:
            per_site = []

    def ask(site: str, kw: dict) -> dict:
        return flare.call(lambda s: s.get_job_logs(job.id, target=site, **kw))

    def fetch(target: str, log_file_name: str | None = None) -> dict:
        kw = {"log_file_name": log_file_name} if log_file_name else {}
        if target != "all" or not per_site:
            return ask(target, kw)
        merged: dict = {"logs": {}, "unavailable": {}}
        for site in per_site:
            reply = ask(site, kw)
            merged["logs"].update(reply.get("logs") or {})
            merged["unavailable"].update(reply.get("unavailable") or {})
        return merged

    return fetch


#: Follow running remote jobs by cursor? ``None`` (the default): when the job's meta says its server answers the
#: cursor (flarenb's component, :func:`flarenb.jobconfig.answers_cursor`: the jobs flarenb submits with live logs)
#: and the user's role is not known to lack ``app_command``. A job without the component is never asked: NVFlare
#: would log "ERROR - no app command func" in that job's server log (a marked job is asked only once its server's
#: log says the command is registered, see :mod:`flarenb.sources.cursor`). ``True``/``False`` force it on or off.
CURSOR: bool | None = None


def use_cursor(job: _jobs.Job, status: _Status, cursor: bool | None = None) -> bool:
    """Whether to follow ``job`` (running, remote) by cursor: ``cursor``, else :data:`CURSOR`, else automatic."""
    if cursor is None:
        cursor = CURSOR
    if cursor is not None:
        return cursor
    if not answers_cursor(status.meta):
        return False
    return rights_of(job.connection).granted("app_command") is not False


def job_logs_spec(job: _jobs.Job, status: _Status, cursor: bool | None = None) -> JobLogs:
    """What the source registry needs to follow ``job``: on the local POC each site's job log file (tailed
    directly; once the job has ended the server's run folder has moved into the job store, so the server's log
    then comes from the admin API), elsewhere the admin API — while the job runs, by cursor when the job answers it
    (the app command of flarenb's job component, :func:`use_cursor`), else by whole-log polling."""
    flare = job.connection
    poc = getattr(flare, "poc", None)
    local_root = str(poc.prod_dir) if poc is not None and poc.running else None
    ended = is_terminal(status())
    fetch = _fetcher(job, local_root is not None)
    if local_root is None:
        # what the user may not call (get_job_log: NVFlare's default for lead) comes from the job's download
        return JobLogs(
            job.id,
            status=status,
            alive=_AdminLiveness(flare, job.id, status),
            fetch=fetch,
            ask=ask_job(flare, job.id) if not ended and use_cursor(job, status, cursor) else None,
            ask_expected=answers_cursor(status.meta),
            ready=server_log_readiness(flare, job.id) if rights_of(flare).granted("get_job_log") is not False else None,
            wrap_admin=lambda receiver, poll: rights_aware(receiver, poll, flare, job.id, status),
        )
    paths = local_job_log_paths(local_root, job.id)
    liveness = _LocalLiveness(job.id, sites=paths)
    server_log = paths.get("server")
    return JobLogs(
        job.id,
        status=status,
        alive=liveness,
        paths=paths,
        is_finished=_local_end(liveness, status, run_dir=os.path.dirname(server_log) if server_log else None),
        ended=ended,
        fetch=fetch,
    )


def follow_job(job: _jobs.Job, cursor: bool | None = None, **receiver_kw) -> _follower.FollowerHandle:
    """A handle on ``job``'s one follower (shared by every consumer in this kernel; ``release()`` it).
    A running remote job is followed by cursor (see :mod:`flarenb.sources.cursor`) when :func:`use_cursor` says so;
    ``cursor=True``/``False`` forces it on/off (``False``: whole-log polling)."""
    spec = job_logs_spec(job, job_status(job), cursor=cursor)
    return _follower.follow(job.id, lambda receiver: open_source(receiver, spec), key=job.key, **receiver_kw)


# ------------------------------------------------------------------------------------------ simulations


class SimStatus:
    """``status()`` of a simulation, read at most every ``SIM_STATUS_TTL`` s (``fresh``: now); ``meta`` is its last
    job meta. The same interface as the status of a job's view (``problem``, ``not_found``): a simulation's
    status is read from this machine, so neither is ever set.

    Once it says RUNNING, the simulation's files are read again only on a local signal that it may have ended: its
    runner process gone or its ``result.json`` written (:meth:`Simulation.running`: one ``stat`` and a check of one
    process, at most every ``SIM_STATUS_TTL`` s). While it runs nothing else can change its status, so an idle
    simulation followed by a view costs no reads of its state files (``reads`` counts them)."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.meta: dict = {}
        self.value = "SUBMITTED"
        self.problem: str | None = None
        self.not_found = False
        self.reads = 0
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self, fresh: bool = False) -> str:
        with self._lock:
            if fresh or (time.monotonic() - self._at >= SIM_STATUS_TTL and self._may_have_changed()):
                self.reads += 1
                try:
                    self.meta = self.sim.meta()
                    self.value = str(self.meta["status"])
                except Exception:
                    pass  # keep the last known status
            if fresh or time.monotonic() - self._at >= SIM_STATUS_TTL:
                self._at = time.monotonic()
            return self.value

    def _may_have_changed(self) -> bool:
        if self.value != "RUNNING":  # starting (SUBMITTED until its server logs), or ended: read its files
            return True
        try:
            return not self.sim.running()
        except Exception:
            return True


def follow_sim(sim: Simulation, status: SimStatus | None = None, **receiver_kw) -> _follower.FollowerHandle:
    """A handle on the simulation's one follower: a local tail of every site's ``log.txt``.

    Its end comes from the simulation's own process and files, with no polling of them: in the kernel that started
    the simulation, the runner's exit (:func:`flarenb.sim.on_runner_exit`) makes the tail read to the end at once;
    elsewhere (a reattached simulation), each of the tail's polls (its file-system notifications, its safety poll)
    checks ``status`` (:class:`SimStatus`: the runner process and ``result.json``)."""
    from . import sim as _sim
    from .sources.localtail import finish_local_tails

    status = status or SimStatus(sim)
    sim_status = status
    spec = JobLogs(
        sim.id,
        status=sim_status,
        paths={site: str(sim.site_log(site)) for site in sim.sites},
        is_finished=lambda: is_terminal(sim_status()),
    )

    def open_tail(receiver):
        source = open_source(receiver, spec)
        ref = weakref.ref(source)

        def ended() -> None:
            s = ref()
            if s is not None:
                finish_local_tails(s)

        _sim.on_runner_exit(sim.id, ended)
        return source

    return _follower.follow(sim.id, open_tail, key=("sim", sim.id), **receiver_kw)
