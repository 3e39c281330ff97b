"""``LogView``: a live, per-site log viewer of one federated job (an anywidget).

The kernel side is fed by the log receiver through a small, thread-safe API::

    view = LogView("3f2c...", job_name="hello-numpy", sites=["server", "site-1", "site-2"])
    view.set_status("RUNNING", submit_time="2024-05-01T12:00:00", start_time=1714564800.0)
    view.set_site_state("site-1", "quiet", quiet_for=12)
    view.append("site-1", [(1, "2024-05-01 12:00:01,000 - INFO - hello", "INFO", "12:00:01")])
    view.on_download(lambda directory: receiver.write_logs(directory))
    view.close_follow("FINISHED:COMPLETED")

Traffic budget
--------------
Jupyter's server silently drops iopub messages above 1000 msg/s or 1 MB/s, and one busy job can write thousands of
lines per second. So :meth:`LogView.append` only buffers (:mod:`flarenb.lanes`); one daemon thread per widget
(:mod:`flarenb.flusher`) sends batched ``{"kind": "lines"}`` messages, at most ``max_msgs_per_sec`` messages and
``max_bytes_per_sec`` wire bytes (JSON as Jupyter packs it + a fixed per-message envelope) in any one-second window,
counting the low-rate ``snapshot`` trait updates too (:mod:`flarenb.outbox`). When the browser cannot be sent
everything, the oldest pending lines of a site are replaced by one explicit ``{"skipped": n, "first": seq, "last":
seq}`` marker ("n lines skipped (still downloadable)"): nothing disappears silently, and the download has every line.

Nothing a site sends can stop the widget: text is made valid UTF-8 at intake (lone surrogates become U+FFFD) and
every field is capped (line text for the browser, ``ts``, site names, reasons; :mod:`flarenb.intake`), the snapshot
is built within a quarter of the byte budget (so it never starves the line messages), and the flusher exits once
following ended and everything was sent. The kernel-side history is bounded in bytes (``history_bytes``, 64 MiB by
default; :mod:`flarenb.history`); lines that left it are counted and the download of a followed job still writes the
complete logs from the files or the server. What a saved notebook keeps is the static snapshot (:mod:`flarenb.snapshot`,
:mod:`flarenb.outputs`).

Synced traits (survive a re-render or page reload)
--------------------------------------------------
``job_id``, ``job_name``, ``sites``, ``status``, ``submit_time``, ``start_ts``, ``end_ts``, ``duration``,
``site_states``, ``snapshot`` (last ``snapshot_lines`` lines per site, refreshed at most every ``snapshot_interval``
s), ``line_counts``, ``skipped``, ``live``, ``downloads``, ``browser_max_lines``, ``problem`` (why the view cannot
follow now, e.g. "server unreachable: ..."), ``progress``, ``metrics`` (:meth:`LogView.set_metrics`), ``source_info``
(how the view follows the job's logs, one line of debug info: :meth:`LogView.set_source_info`; a saved notebook keeps
it in the output's metadata, ``metadata.flarenb.followed_by``, not in the snapshot it shows).

Custom messages
---------------
kernel -> browser: ``{"kind": "lines", "sites": {site: [[seq, text, level, ts] | {"skipped": n,
"first": a, "last": b}, ...]}}`` and ``{"kind": "download_result", "request_id": str | None,
"paths": [str], "error": str | None}``.
``{"kind": "search_result", ...}`` answers a ``search`` (:mod:`flarenb.viewsearch`), sent within the budget.
browser -> kernel: ``{"kind": "download", "request_id": str}`` and ``{"kind": "search", "request_id": str, "query":
str, "min_level": str | None, "first_error": bool, "sites": [str] | None, "held": {site: [[first, last], ...]}}``:
search the kernel's history for lines the browser does not hold (skipped under a flood, or evicted).
"""

from __future__ import annotations

import datetime as _dt
import os
import pathlib
import threading
import time
from collections.abc import Iterable
from typing import Any

import anywidget
import traitlets as t

from . import snapshot as _snap
from . import threads, viewsearch
from ._text import terminal_safe
from .flusher import Flusher
from .frontend import BUILD_HINT
from .frontend import FALLBACK_ESM as _FALLBACK_ESM  # noqa: F401 - importable from here (tests)
from .frontend import frontend_sources as _frontend_sources
from .history import DEFAULT_HISTORY_BYTES, History
from .intake import (  # noqa: F401 - the limits are importable from here too
    MAX_REASON_CHARS,
    MAX_SITE_CHARS,
    MAX_SITES,
    MAX_TS_CHARS,
    OTHER_SITES,
    LogLine,
    job_times,
    same_site_state,
    site_state,
)
from .intake import coerce_line as _coerce_line  # noqa: F401 - the earlier private names, importable from here
from .intake import display_time as _display_time
from .intake import duration_seconds as _duration_seconds  # noqa: F401
from .intake import site_name as _site_name
from .intake import to_epoch as _to_epoch  # noqa: F401
from .lanes import Lanes
from .outbox import Outbox
from .outputs import Outputs
from .safetext import cap, clean_text, safe_filename, wire_size
from .viewdownload import DownloadCallback, download_reply, logs_folder, write_held_lines
from .vocab import one_line, site_order

__all__ = ["BUILD_HINT", "LogLine", "LogView"]

_STATIC = pathlib.Path(__file__).parent / "static"

_ESM, _CSS = _frontend_sources(_STATIC)

_safe_filename = safe_filename  # kept: other modules import it from here


class LogView(anywidget.AnyWidget):
    """Live per-site log viewer of one federated job. See the module docstring."""

    _esm = _ESM
    _css = _CSS

    job_id = t.Unicode("").tag(sync=True)
    job_name = t.Unicode("").tag(sync=True)
    sites = t.List(t.Unicode()).tag(sync=True)
    status = t.Unicode("SUBMITTED").tag(sync=True)
    submit_time = t.Unicode(None, allow_none=True).tag(sync=True)
    start_ts = t.Float(None, allow_none=True).tag(sync=True)
    end_ts = t.Float(None, allow_none=True).tag(sync=True)
    duration = t.Unicode(None, allow_none=True).tag(sync=True)
    # {site: {"state": str, "reason": str | None, "since": epoch float | None}}
    site_states = t.Dict().tag(sync=True)
    # {site: [[seq, text, level, ts], ...]}: the last lines, for a view rendered later
    snapshot = t.Dict().tag(sync=True)
    line_counts = t.Dict().tag(sync=True)  # {site: number of lines received}
    skipped = t.Dict().tag(sync=True)  # {site: lines never sent to the browser (budget)}
    live = t.Bool(True).tag(sync=True)
    downloads = t.Dict().tag(sync=True)  # {"paths": [str], "error": str | None}
    browser_max_lines = t.Int(5000).tag(sync=True)
    problem = t.Unicode(None, allow_none=True).tag(sync=True)  # why following is stuck now, shown in the header
    progress = t.Dict().tag(sync=True)  # {"round", "total", "sites", "round_seconds", "eta_seconds"} or {}
    metrics = t.Dict().tag(sync=True)  # {"series": [{"metric", "site", "points": [[round, value], ...]}]} or {}
    source_info = t.Unicode("").tag(sync=True)  # how the logs are followed (debug info, one line), "" unknown

    def __init__(
        self,
        job_id: str,
        job_name: str = "",
        sites: Iterable[str] = (),
        *,
        max_msgs_per_sec: float = 10.0,
        max_bytes_per_sec: int = 500_000,
        snapshot_lines: int = 200,
        snapshot_interval: float = 2.0,
        history_lines: int = 200_000,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        max_line_chars: int = 8_000,
        **kwargs: Any,
    ) -> None:
        self._lock = threading.RLock()
        self._outputs = Outputs(str(job_id))  # the notebook outputs showing this view
        self._out = Outbox(max_msgs_per_sec, max_bytes_per_sec)
        self._max_bytes = int(max_bytes_per_sec)
        self._hist = History(history_bytes, history_lines)
        self._history = self._hist.lines  # {site: deque of LogLine}
        self._lanes = Lanes(self._hist, self._out, max_line_chars)
        self._last_seq = self._lanes.last_seq
        self._counts = self._lanes.counts  # {site: lines received}
        self._download_cb: DownloadCallback | None = None
        self._flusher = Flusher(
            self._out,
            self._lanes,
            self._lock,
            label=str(job_id),
            snapshot_lines=snapshot_lines,
            snapshot_interval=snapshot_interval,
            publish_snapshot=self._publish_snapshot,
            send=self.send,
        )
        super().__init__(
            job_id=str(job_id),
            job_name=str(job_name),
            sites=site_order(_site_name(s) for s in sites),
            **kwargs,
        )
        self.on_msg(self._on_custom_msg)

    # ------------------------------------------------------------------ receiver API
    def set_status(
        self,
        status: str,
        submit_time: str | float | _dt.datetime | None = None,
        start_time: str | float | _dt.datetime | None = None,
        end_time: str | float | _dt.datetime | None = None,
        duration: str | None = None,
    ) -> None:
        """Set the job status (``SUBMITTED``, ``RUNNING``, ``FINISHED:COMPLETED``, ...).

        Times are epoch seconds, ``datetime`` or ISO 8601 strings. The browser ticks the elapsed
        time itself from ``start_time`` (else ``submit_time``) until ``end_time``. A finished job
        with a ``duration`` (NVFlare's ``str(timedelta)``, counted from its start) ends at start +
        duration, whenever it is looked at; else a finished status without ``end_time`` stops the
        clock now.
        """
        status = str(status)
        with self._lock, self.hold_sync():
            self.status = status
            if submit_time is not None:
                self.submit_time = _display_time(submit_time)
            start, end = job_times(
                status,
                submit_time,
                start_time,
                end_time,
                duration,
                start_ts=self.start_ts,
                end_ts=self.end_ts,
                now=time.time(),
            )
            if start is not None:
                self.start_ts = start
            if end is not None:
                self.end_ts = end
            if duration is not None:
                self.duration = str(duration)
            self._note_sent()

    def set_site_state(
        self,
        site: str,
        state: str,
        reason: str | None = None,
        quiet_for: float | None = None,
    ) -> None:
        """Set a site's state: ``streaming``, ``quiet`` (for ``quiet_for`` s), ``silent``
        (nothing yet), ``done`` or ``unavailable`` (with ``reason``).

        Repeated ``quiet`` updates only resync when the quiet period restarted: the browser
        counts the seconds itself from ``since``.
        """
        new = site_state(state, reason, quiet_for, now=time.time())
        with self._lock:
            site = self._ensure_site(_site_name(site))
            if same_site_state(self.site_states.get(site), new):
                return
            self.site_states = {**self.site_states, site: new}
            self._note_sent(wire_size(self.site_states))

    def set_problem(self, problem: str | None) -> None:
        """Say why following is stuck now (one line, e.g. "server unreachable: ..."), or ``None`` once it works."""
        problem = None if problem is None else cap(clean_text(one_line(problem)), MAX_REASON_CHARS)
        with self._lock:
            if problem != self.problem:
                self.problem = problem
                self._note_sent(wire_size(problem))

    def set_source_info(self, info: str | None) -> None:
        """Say how the view follows the job's logs (one line of debug info, e.g. "3 local log files, inotify
        notifications (safety poll every 5 s)"); sent if changed."""
        info = "" if info is None else cap(terminal_safe(clean_text(one_line(info))), MAX_REASON_CHARS)
        with self._lock:
            if info != self.source_info:
                self.source_info = info
                self._note_sent(wire_size(info))

    def set_metrics(self, metrics: dict | None, progress: dict | None) -> None:
        """Show the job's ``metrics`` and round ``progress`` (:mod:`flarenb.progress`; None: none); sent if changed."""
        with self._lock, self.hold_sync():
            for name, value in (("metrics", dict(metrics or {})), ("progress", dict(progress or {}))):
                if value != getattr(self, name):
                    setattr(self, name, value)
                    self._note_sent(wire_size(value))

    def append(self, site: str, lines: Iterable[object]) -> int:
        """Buffer lines of ``site``; returns how many were accepted. Thread-safe and cheap.

        Each line is a :class:`LogLine`, a ``(seq, text, level, ts)`` tuple, a mapping or an
        object with ``seq``/``text``/``level``/``ts``, or a plain string (``seq`` assigned).
        Lines whose ``seq`` is not above the last one of that site are ignored (duplicates).
        """
        name = _site_name(site)
        with self._lock:
            accepted = self._lanes.add(self._ensure_site(name), name, lines)
            if accepted:
                self._flusher.snapshot_dirty = True
                if self._out.pending_bytes > 4 * self._max_bytes:
                    self._out.drop_oldest(self._max_bytes)
                self._flusher.kick()
        return accepted

    def close_follow(self, status: str | None = None) -> None:
        """The job ended (or following stopped): keep the logs, stop the clock, send the rest.

        The flusher sends what is still pending (within the budget) and a final snapshot,
        then exits.
        """
        with self._lock, self.hold_sync():
            if status is not None:
                self.set_status(status)
            elif self.end_ts is None:
                self.end_ts = time.time()
            self._flusher.follow_closed = True
            self._flusher.snapshot_dirty = True
            self.live = False
            self._flusher.kick()

    def on_download(self, callback: DownloadCallback | None) -> None:
        """Use ``callback(directory)`` to write the complete logs when the user asks.

        ``directory`` is ``<cwd>/<job_id>_logs`` (created); the callback writes one file per
        site there (e.g. ``<site>.log``) and returns the written paths. ``None`` restores the
        default, which writes the lines this widget holds.
        """
        self._download_cb = callback

    def download(self, directory: str | os.PathLike[str] | None = None) -> list[pathlib.Path]:
        """Write the per-site logs (see :meth:`on_download`) and return the file paths."""
        target = logs_folder(self.job_id, directory)
        cb = self._download_cb
        if cb is None:
            return self._write_history(target)
        return [pathlib.Path(p) for p in cb(target)]

    def lines(self, site: str) -> list[LogLine]:
        """The lines of ``site`` this widget holds (at most ``history_lines`` per site, ``history_bytes`` in all)."""
        with self._lock:
            return list(self._history.get(site, ()))

    def history_dropped(self, site: str) -> int:
        """How many of ``site``'s lines left this widget's history (its byte or line budget)."""
        with self._lock:
            return self._hist.dropped.get(site, 0)

    def close(self) -> None:
        """Stop the flusher thread and close the widget (its comm)."""
        self._flusher.close()
        with self._lock:
            super().close()

    # ------------------------------------------------------------------ static snapshot
    #: Prefix of every log line in the static snapshot (:data:`flarenb.snapshot.LINE_PREFIX`).
    LINE_PREFIX = _snap.LINE_PREFIX

    def snapshot_text(self, tail: int = 20) -> str:
        """Header line + the last ``tail`` lines of each site, escape sequences and control characters neutralised."""
        return self.static_snapshot(tail).text() + "\n"

    def static_snapshot(self, tail: int = 20) -> _snap.Snapshot:
        """The static snapshot a saved notebook keeps (:func:`flarenb.snapshot.render` of this view's state): while
        following, the title only; once following ended, the header and the last ``tail`` lines of each site."""
        tail = max(0, int(tail))
        with self._lock:
            return _snap.render(
                self.job_id,
                self.job_name,
                live=self.live,
                status=self.status,
                problem=self.problem,
                submit_time=self.submit_time,
                duration=self.duration,
                sites=self.sites,
                site_states=self.site_states,
                lines=self._history,
                received=self._counts,
                dropped=self._hist.dropped,
                tail=tail,
                progress=self.progress,
                metrics=self.metrics,
            )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        snap = self.static_snapshot(20)
        data = dict(data)
        data["text/plain"] = snap.text()
        data["text/html"] = snap.html()
        if self.source_info:  # kept in the saved notebook as debug info, not shown (nor compared by nbval)
            metadata = {**metadata, "flarenb": {"job_id": self.job_id, "followed_by": self.source_info}}
        return data, metadata

    def _ipython_display_(self) -> None:
        """Display with a display id, so :meth:`refresh_displays` can put the final snapshot in the output that
        a saved notebook keeps (JupyterLab applies the update; the live view itself is unaffected)."""
        self._outputs.show(*self._repr_mimebundle_())

    def refresh_displays(self) -> None:
        """Re-send this widget's bundle (now its final static snapshot) to every output showing it."""
        if len(self._outputs):
            self._outputs.refresh(*self._repr_mimebundle_())

    # ------------------------------------------------------------------ internals
    def _ensure_site(self, site: str) -> str:
        """Register ``site`` (a clean name); returns the lane its lines go to."""
        lane, new = self._lanes.ensure(site)
        if new and lane not in self.sites:
            self.sites = site_order([*self.sites, lane])
        return lane

    @property
    def _thread(self) -> threading.Thread | None:
        """The flusher thread (None until the first line or the end of following)."""
        return self._flusher.thread

    def _note_sent(self, size: int = 0) -> None:
        """Count a state update sent outside the flusher, so the flusher leaves room for it."""
        with self._lock:
            self._out.note_sent(size)

    def _flush_once(self, now: float) -> bool:
        """One flusher tick (:meth:`flarenb.flusher.Flusher.flush_once`); True when the flusher may exit."""
        return self._flusher.flush_once(now)

    def _publish_snapshot(self, snap: dict[str, Any]) -> None:
        with self.hold_sync():
            self.snapshot = snap["snapshot"]
            self.line_counts = snap["line_counts"]
            self.skipped = snap["skipped"]

    def _write_history(self, target: pathlib.Path) -> list[pathlib.Path]:
        with self._lock:
            contents = {s: (list(h), self._hist.dropped[s]) for s, h in self._history.items()}
        return write_held_lines(target, contents)

    def _on_custom_msg(self, _widget: object, content: Any, _buffers: object) -> None:
        kind = content.get("kind") if isinstance(content, dict) else None
        if kind == "download":
            args, name = (content.get("request_id"),), f"flarenb-download-{self.job_id}"
            threads.start(self._do_download, name, args=args)
        elif kind == "search":
            threads.start(self._do_search, f"flarenb-search-{self.job_id}", args=(content,))

    def _do_search(self, content: dict[str, Any]) -> None:
        """Answer a browser's ``search`` from the history (copied under the lock, searched without it)."""
        with self._lock:
            req = viewsearch.parse_request(content, list(self._history))
            history = {s: list(self._history[s]) for s in req["sites"]}
            dropped = dict(self._hist.dropped)
        reply = viewsearch.answer(
            req, history, dropped, max_chars=self._lanes.max_line_chars, budget=self._out.per_message
        )
        with self._lock:
            self._flusher.reply(reply)

    def _do_download(self, request_id: object) -> None:
        result = download_reply(self.download)
        with self._lock:
            self.downloads = result
            self.send({"kind": "download_result", "request_id": request_id, **result})
