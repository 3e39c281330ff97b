"""The live per-site log view of a local simulation.

The simulator writes each site's log live at ``<workspace>/<site>/log.txt``; the view tails those files with the
same :class:`~flarenb.transports.LocalTail` and one shared follower as a POC job (:mod:`flarenb.follower`), and
shows the simulation's status (from its process and its result) in the same widget as any job.
"""

from __future__ import annotations

import shutil
import threading
import time
import weakref
from pathlib import Path

from . import follower as _follower
from . import live as _live
from .jobs import is_terminal
from .sim import Simulation
from .transports import LocalTail
from .widget import LogView as _Widget
from .widget import _safe_filename

STATUS_TTL = 0.5


class SimStatus:
    """``status()`` of a simulation, read at most every ``STATUS_TTL`` s; ``meta`` is its last job meta."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.meta: dict = {}
        self.value = "SUBMITTED"
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if time.monotonic() - self._at >= STATUS_TTL:
                try:
                    self.meta = self.sim.meta()
                    self.value = str(self.meta["status"])
                except Exception:
                    pass  # keep the last known status
                self._at = time.monotonic()
            return self.value


def follow_sim(sim: Simulation, status: SimStatus | None = None, **receiver_kw) -> _follower.FollowerHandle:
    """A handle on the simulation's one follower: a local tail of every site's ``log.txt``."""
    status = status or SimStatus(sim)
    paths = {site: str(sim.site_log(site)) for site in sim.sites}

    def factory(receiver):
        return LocalTail(
            receiver, paths, is_finished=lambda: is_terminal(status()), finish_check_period=0.5, name=sim.id
        )

    return _follower.follow(sim.id, factory, key=("sim", sim.id), **receiver_kw)


_live_views: dict[str, weakref.ref] = {}
_views_lock = threading.Lock()


class SimView(_live.LogView):
    """``sim.view()``: the live widget of a simulation (one lane per site)."""

    # A SimView is a LogView over a Simulation, not a Job, and reads its status with SimStatus, not live._Status:
    # duck-typed, so the base class's annotations do not hold here. (SimStatus lacks the ``problem``/``not_found``
    # attributes and the ``fresh`` argument that inherited LogView methods use.)
    job: Simulation  # type: ignore[assignment]
    _status: SimStatus  # type: ignore[assignment]

    def __init__(self, sim: Simulation, follow: bool = True, **kwargs):
        self.job = sim
        _Widget.__init__(self, sim.id, job_name=sim.name, sites=sim.sites, **kwargs)
        self._handle = None
        self._unsubscribe = None
        self._watch_thread = None
        self._watch_stop = threading.Event()
        self.on_download(self._write_complete_logs)
        if follow:
            self._attach()

    def _write_complete_logs(self, directory) -> list[str]:
        written = []
        for site in self.sites:
            dest = Path(directory) / f"{_safe_filename(site)}.log"
            src = self.job.site_log(site)
            if src.is_file():
                shutil.copyfile(src, dest)
            else:
                dest.write_text("\n".join(line.text for line in self.lines(site)) + "\n")
            written.append(str(dest))
        return written

    def _attach(self) -> None:
        with _views_lock:
            old = _live_views.get(self.job.id)
            old = old() if old is not None else None
            _live_views[self.job.id] = weakref.ref(self)
        if old is not None and old is not self:
            old.detach("a newer view of this simulation follows it")
        self._status = SimStatus(self.job)
        self._handle = follow_sim(self.job, self._status)
        self._unsubscribe = self._handle.subscribe(self._on_update, replay=True)
        if is_terminal(self._status()):
            deadline = time.monotonic() + _live.FINISHED_LOAD_TIMEOUT
            while not self._handle.receiver.all_done and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._finish_if_done():
                return
        self._watch_thread = threading.Thread(target=self._watch, name=f"flarenb-view-{self.job.id}", daemon=True)
        self._watch_thread.start()
