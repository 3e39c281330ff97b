"""The live per-site log view of a local simulation.

The simulator writes each site's log live at ``<workspace>/<site>/log.txt``; the view tails those files with the
same local-files source as a POC job (picked through the registry of :mod:`flarenb.sources`) and one shared
follower (:mod:`flarenb.follower`), and shows the simulation's status (from its process and its result) in the
same widget as any job.
"""

from __future__ import annotations

import threading
import weakref

from . import live as _live
from . import threads
from .logsource import SIM_STATUS_TTL as STATUS_TTL
from .logsource import SimStatus, follow_sim
from .safetext import safe_filenames
from .sim import Simulation
from .vocab import is_terminal
from .widget import LogView as _Widget

__all__ = ["STATUS_TTL", "SimStatus", "SimView", "follow_sim"]

_live_views: dict[str, weakref.ref] = {}
_views_lock = threading.Lock()


class SimView(_live.LogView):
    """``sim.view()``: the live widget of a simulation (one lane per site)."""

    # A SimView is a LogView over a Simulation, not a Job, and reads its status with SimStatus (the same
    # interface as live._Status): duck-typed, so the base class's annotations do not hold here.
    job: Simulation  # type: ignore[assignment]
    _status: SimStatus  # type: ignore[assignment]

    def __init__(self, sim: Simulation, follow: bool = True, **kwargs):
        self.job = sim
        self.widget = _Widget(sim.id, job_name=sim.name, sites=sim.sites, **kwargs)
        self._init_following(follow)

    def _write_complete_logs(self, directory) -> list[str]:
        """Each site's complete log (the simulation's own ``<site>/log.txt``) as ``<directory>/<site>.log``."""
        from .downloads import write_site_logs

        names = safe_filenames(self.widget.sites)
        return write_site_logs(
            directory,
            list(self.widget.sites),
            file_name=lambda site: f"{names[site]}.log",
            local_file=self.job.site_log,
            ask_server=lambda site: {"logs": {}, "unavailable": {site: "the simulation wrote no log of it"}},
            held_lines=lambda site: [line.text for line in self.widget.lines(site)],
        )

    def _make_metrics_feed(self) -> _live.MetricsFeed | None:
        """The simulation's metrics file, in its workspace live and after."""
        from .metric_sources import sim_metrics_dir

        folder = sim_metrics_dir(self.job)
        return _live.MetricsFeed(
            self.job.id, self.widget.set_metrics, self._view_sites, metrics_dir=folder, run_dir=folder.parent
        )

    def _attach(self) -> None:
        with _views_lock:
            old = _live_views.get(self.job.id)
            old = old() if old is not None else None
            _live_views[self.job.id] = weakref.ref(self)
        self._view_slot = (_live_views, self.job.id)
        if old is not None and old is not self:
            old.detach("a newer view of this simulation follows it")
        self._status = SimStatus(self.job)
        self._handle = follow_sim(self.job, self._status)
        self._unsubscribe = self._handle.subscribe(self._on_update, replay=True)
        self._show_source(self._handle)
        if is_terminal(self._status()):
            self._handle.wait_done(_live.FINISHED_LOAD_TIMEOUT)  # woken when every stream has closed (bounded)
            if self._finish_if_done():
                return
        self._watch_thread = threads.start(self._watch, f"flarenb-view-{self.job.id}")
