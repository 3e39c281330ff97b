"""The live feed of a view's round progress and metrics: a small thread owned by the view.

While a view follows a job on the local POC (or a simulation), :class:`MetricsFeed` polls the job's
``round_metrics.jsonl`` about once a second, reading only the bytes appended since the last read
(:class:`flarenb.metrics.JsonlTail`: complete lines only; a missing file is simply "no rounds yet"), notes the
moment each round first appeared, and pushes the ``progress`` and ``metrics`` traits (:mod:`flarenb.progress`) —
at most twice a second, and only when they changed (new rounds, a site's state, the total). The ``metrics`` trait
(the charts' whole history) goes along only when the previous one has had its time: its size over
:data:`BYTES_PER_SEC` (the metrics' share of the view's message budget), so "round k" in the header stays live while
a 1,000-round job's charts are resent every few seconds. The chart series are kept up to date record by record
(:class:`flarenb.progress.SeriesIndex`), never rebuilt from every record per push.

:meth:`finish` (the job ended) makes the thread read one last time and exit: the file if it is still there, else,
once, ``final()`` (for a finished POC job the run folder has moved into the job store: the job's download,
:func:`flarenb.metric_sources.job_metrics`), unless every round of a known total was already seen;
:meth:`finish_now` does that read in the caller instead (a view, before it shows its final snapshot).
:meth:`stop` (detach, close) ends it without that read; neither waits longer than ``join_timeout`` for a thread busy
in a read, and a thread stopped that way never touches the view again.

The scalars of an MLflow store in the job's run folder (``add_experiment_tracking(recipe, "mlflow")``,
:mod:`flarenb.mlflow_store`) are read again whenever the store changed and join the ``metrics`` trait; the round
progress counts only the rounds of ``round_metrics.jsonl``.

Another source (a cursor channel for remote deployments) can push raw JSONL bytes with :meth:`feed`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import mlflow_store, threads
from . import progress as _progress
from .metrics import ROUND_FILE, JsonlTail, MetricRecord, Metrics, records_of
from .progress import SeriesIndex
from .safetext import wire_size

__all__ = ["MetricsFeed"]

POLL = 1.0  # seconds between reads of the file
MIN_PUSH = 0.5  # seconds between two pushes (at most 2/s)
MAX_READ = 8 * 1024 * 1024  # bytes read in one poll (the rest next time)
JOIN_TIMEOUT = 0.5
BYTES_PER_SEC = 100_000  # the metrics' share of the traffic to the browser (the view's budget: 500 kB/s)
MAX_TOTAL_TRIES = 30  # reads of the deployed job's server config before the total is given up (unknown)

_log = logging.getLogger(__name__)

Push = Callable[[dict, dict], None]  # (metrics payload, progress) -> None
SitesNow = Callable[[], tuple[list[str], Mapping[str, Any]]]  # -> (the view's sites, their states)
Final = Callable[[], tuple[Metrics | None, int | None]]  # -> (the job's complete metrics, its number of rounds)


class MetricsFeed:
    """Round progress and metrics of one job for one view (see the module docstring).

    ``push(metrics, progress)`` updates the view; ``sites()`` returns the view's sites and their states;
    ``metrics_dir``: the folder of ``round_metrics.jsonl`` (None: only :meth:`feed` brings rows); ``run_dir``: the
    job's run folder (its server config gives the total); ``final()``: the job's complete metrics and total once it
    ended, read at most once when the file is gone.
    """

    def __init__(
        self,
        job_id: str,
        push: Push,
        sites: SitesNow,
        *,
        metrics_dir: Path | None = None,
        run_dir: Path | None = None,
        final: Final | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll: float = POLL,
        min_push: float = MIN_PUSH,
    ) -> None:
        self.job_id = job_id
        self._push, self._sites, self._final, self._clock = push, sites, final, clock
        self._path = metrics_dir / ROUND_FILE if metrics_dir is not None else None
        self._run_dir = run_dir
        self._poll, self._min_push = poll, min_push
        self._lock = threading.RLock()
        self._tail = JsonlTail()
        self._pos = 0  # bytes of the file read so far
        self._records: list[MetricRecord] = []  # from round_metrics.jsonl
        self._index = SeriesIndex()  # the chart series of _records and _tracked
        self._latest: list[MetricRecord] = []  # the records of the latest round
        self._chart: tuple[int, dict] = (-1, {})  # (index version, its metrics trait)
        self._tracked: list[MetricRecord] = []  # from the MLflow store (replaced as a whole on each read)
        self._store_stamp: tuple | None = None
        self._store = mlflow_store.FolderTail(run_dir) if run_dir is not None else None
        self._arrivals: dict[int, float] = {}  # round -> when it was first seen
        self.total: int | None = None
        self._total_tries = 0
        self._dirty = False
        self._last: tuple[dict, dict] = ({}, {})  # what was pushed last (the view starts with none)
        self._next_push: float | None = None  # no push before (clock)
        self._next_metrics: float | None = None  # no new metrics trait before (clock)
        self._stop = threading.Event()
        self._finish = threading.Event()
        self._thread: threading.Thread | None = None
        self._then: Callable[[], None] | None = None
        self._caller_reads = False  # finish_now(): the last read is the caller's, not the thread's

    # -- input ---------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> int:
        """Take raw bytes of ``round_metrics.jsonl`` (appended data, any chunking); returns the records added."""
        with self._lock:
            rows = self._tail.feed(bytes(data))
            return self._add_rows(rows)

    def _add_rows(self, rows: list[Any]) -> int:
        now = self._clock()
        added = [r for row in rows for r in records_of(row)]
        for r in added:
            self._arrivals.setdefault(r.round, now)
        if added:
            self._records.extend(added)
            self._index.add(added)
            self._note_latest(added)
            self._dirty = True
        return len(added)

    def _note_latest(self, added: list[MetricRecord]) -> None:
        latest = self._latest[0].round if self._latest else -1
        top = max(r.round for r in added)
        if top > latest:
            self._latest, latest = [], top
        self._latest.extend(r for r in added if r.round == latest)

    def _set_records(self, records: list[MetricRecord]) -> None:
        """Replace every record of round_metrics.jsonl (a file read again, the job's download)."""
        self._records, self._index, self._latest, self._dirty = [], SeriesIndex(), [], True
        self._records.extend(records)
        self._index.add(records)
        self._index.add(self._tracked)
        if records:
            self._note_latest(records)

    def _set_tracked(self, records: list[MetricRecord]) -> None:
        """Replace the records of the MLflow store (read as a whole); a series that shrank is rebuilt."""
        old, self._tracked, self._dirty = self._tracked, records, True
        if {(r.metric, r.site, r.round) for r in old} <= {(r.metric, r.site, r.round) for r in records}:
            self._index.add(records)  # same keys or more: the index takes the new values in place
        else:
            self._set_records(list(self._records))

    def poll_once(self) -> int:
        """Read what was appended to the file since the last read (nothing when it is missing); the records
        added."""
        path = self._path
        if path is None:
            return 0
        try:
            if path.is_symlink() or not path.is_file():
                return 0
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                with self._lock:
                    if size < self._pos:  # replaced or truncated: read it again from the start
                        self._reset()
                    f.seek(self._pos)
                    data = f.read(MAX_READ)
                    self._pos += len(data)
                    return self.feed(data) if data else 0
        except OSError:
            return 0

    def poll_tracked(self) -> int:
        """Read the run folder's MLflow store again if it changed; the number of its records (0: none, unchanged)."""
        if self._run_dir is None or self._store is None:
            return 0
        stamp = _stamp(self._run_dir / mlflow_store.DB_FILE), (self._run_dir / mlflow_store.FILE_STORE).is_dir()
        if stamp == (None, False) or (stamp == self._store_stamp and not stamp[1]):
            return 0
        found = self._store.read()
        if found is None:  # locked or torn right now: next time
            return 0
        with self._lock:
            self._store_stamp = stamp
            if found != self._tracked:
                self._set_tracked(found)
        return len(found)

    def _reset(self) -> None:
        self._tail, self._pos = JsonlTail(), 0
        self._set_records([])

    def _read_total(self) -> None:
        if self.total is not None or self._run_dir is None or self._total_tries >= MAX_TOTAL_TRIES:
            return
        if not self._run_dir.is_dir():  # not deployed yet (a queued job): not a try
            return
        self._total_tries += 1
        found = _progress.num_rounds(self._run_dir)
        if found is not None:
            self.total, self._dirty = found, True

    # -- output --------------------------------------------------------------------------------------------
    def metrics(self) -> Metrics:
        with self._lock:
            return Metrics(self.job_id, self._records + self._tracked, source="live")

    def payloads(self) -> tuple[dict, dict]:
        """(the ``metrics`` trait, the ``progress`` trait) as of now."""
        return self._chart_payload(), self._progress_payload()

    def _chart_payload(self) -> dict:
        with self._lock:
            if self._chart[0] != self._index.version:
                self._chart = (self._index.version, self._index.payload())
            return self._chart[1]

    def _progress_payload(self) -> dict:
        sites, states = self._sites()
        with self._lock:  # progress needs only the latest round's records (of round_metrics.jsonl)
            latest = Metrics(self.job_id, list(self._latest))
            arrivals, total = dict(self._arrivals), self.total
        return _progress.progress(latest, sites=sites, states=states, arrivals=arrivals, total=total)

    def publish(self, force: bool = False) -> bool:
        """Push the traits when they changed, at most every ``min_push`` seconds, a changed ``metrics`` trait only
        once the last one has had its share of the budget (``force``: whatever changed, now); True when pushed."""
        now = self._clock()
        with self._lock:
            if not force and self._next_push is not None and now < self._next_push:
                return False
            self._dirty = False
            charts_due = force or self._next_metrics is None or now >= self._next_metrics
        progress = self._progress_payload()
        metrics = self._chart_payload() if charts_due else self._last[0]
        with self._lock:
            if (metrics, progress) == self._last:
                return False
            if metrics is not self._last[0] and metrics != self._last[0]:
                self._next_metrics = now + max(self._min_push, wire_size(metrics) / BYTES_PER_SEC)
            self._last = (metrics, progress)
            self._next_push = now + self._min_push
        self._push(metrics, progress)
        return True

    # -- thread --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Follow the file in a daemon thread (once)."""
        if self._thread is None:
            self._thread = threads.start(self._run, f"flarenb-metrics-{self.job_id}")

    def finish(self, then: Callable[[], None] | None = None) -> None:
        """The job ended: one last read (see the module docstring), then ``then()`` (e.g. refresh the saved
        snapshot) and the thread exits; without a thread, all this happens here."""
        self._then = then
        self._finish.set()
        if self._thread is None:
            self._last_read()

    def finish_now(self, timeout: float = JOIN_TIMEOUT) -> None:
        """The job has ended: the last read happens here, in the caller, and the thread exits without one (a view
        calls this before its final snapshot, so that holds the metrics: no later refresh, no race)."""
        self._caller_reads = True
        self._finish.set()
        threads.join(self._thread, timeout)
        self._last_read()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """End the thread without a last read; waits at most ``timeout`` s for it."""
        self._stop.set()
        self._finish.set()
        threads.join(self._thread, timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        logged = None
        while not self._stop.is_set():
            try:
                if self._finish.is_set():
                    if not self._caller_reads:
                        self._last_read()
                    return
                self.poll_once()
                self.poll_tracked()
                self._read_total()
                if not self._stop.is_set():
                    self.publish()
                logged = None
            except Exception as e:  # never kill the view: log once per distinct problem, go on
                what = f"{type(e).__name__}: {e}"
                if what != logged:
                    logged = what
                    _log.warning("flarenb metrics of job %s: %s", self.job_id, what)
            self._finish.wait(self._poll)

    def _last_read(self) -> None:
        if self._stop.is_set():
            return
        present = self._path is not None and self._path.is_file()
        if present:
            for _ in range(64):  # everything that is left (MAX_READ at a time)
                if not self.poll_once():
                    break
            self.poll_tracked()
            self._read_total()
        elif self._final is not None and not self._complete():
            with contextlib.suppress(Exception):
                found, total = self._final()
                with self._lock:
                    if found is not None:
                        rounds = [r for r in found.records if not mlflow_store.tracked(r)]
                        tracked = [r for r in found.records if mlflow_store.tracked(r)]
                        if len(tracked) >= len(self._tracked):
                            self._set_tracked(tracked)
                        if len(rounds) >= len(self._records):
                            self._set_records(rounds)
                    if total is not None and self.total is None:
                        self.total = total
        if not self._stop.is_set():
            self.publish(force=True)
            if self._then is not None and not self._stop.is_set():
                self._then()

    def _complete(self) -> bool:
        """Every round of a known total was seen (no need for the job's download)."""
        with self._lock:
            return self.total is not None and set(range(self.total)) <= {r.round for r in self._records}


def _stamp(path: Path) -> tuple[int, int] | None:
    """(modification time, size) of a file, None when it is not there (or a symlink)."""
    try:
        if path.is_symlink():
            return None
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None
