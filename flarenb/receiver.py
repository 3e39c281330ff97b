"""Per-site line-stream engine for job logs (pure Python: no UI, no nvflare import).

A :class:`Receiver` holds one :class:`SiteStream` per site ("server", "site-1", ...). A transport
(see :mod:`flarenb.transports`) feeds it raw chunks; the receiver turns them into complete
:class:`Line` objects plus a pending partial line, and tells subscribers about new lines and
state changes. It keeps the semantics of NVFlare's ``LogStreamer`` receiver
(``nvflare/app_common/streamers/log_streamer.py``):

* data: ``feed(site, chunk)`` (bytes are decoded with an incremental UTF-8 decoder,
  ``errors="replace"``, so a character split across chunks is kept whole; ``\\r\\n`` is accepted);
* liveness: ``heartbeat(site)`` says "the sender is alive but has nothing new". A site with no
  data for ``quiet_after`` seconds is shown as ``"quiet"`` (still alive, distinct from closed);
* end of stream: ``end(site)`` flushes the partial line and closes the stream (state ``"ended"``);
* idle timeout: a site with neither data nor heartbeat for ``idle_timeout`` seconds is closed
  with state ``"timed_out"`` (its sender vanished); data arriving afterwards is rejected and
  counted in ``SiteStream.late_bytes`` (as LogStreamer rejects late chunks);
* done callback: ``on_done(site, stream)`` fires exactly once per stream, whatever races
  (end / idle timeout / stop from different threads).

Sites can be marked unavailable with the reason (e.g. from ``get_job_logs``' ``unavailable``
dict): ``set_unavailable(site, reason)``; data arriving later makes them available again.

Lines (:mod:`flarenb.logparse`): ``Line.seq`` increases by one per site; a line longer than ``max_line_chars``
is cut (``truncated=True``) and the rest of it skipped; ``log.json`` records are rendered like ``log.txt`` lines
(``fmt="text"|"json"|"auto"``, auto: decided on the site's first non-empty line). flarenb's own marker lines
(gaps, rotations, truncations) have ``kind == "marker"`` and start with ``[flarenb]``. Text is valid UTF-8.

Memory is bounded: each site keeps its last ``max_lines`` lines, and all sites together at most ``max_bytes``
bytes of lines (the site holding the most gives up its oldest lines first); ``SiteStream.dropped`` counts lines
that left memory from the front.

Transport problems: ``set_problem(reason)`` says the transport cannot reach the source (server unreachable,
not authorised...); ``problem`` holds it until ``set_problem(None)``. While a problem is set, the idle timeout
does not close streams (their senders' silence is not observable), and it restarts when the problem clears.

Subscribers: ``unsubscribe = receiver.subscribe(cb, replay=True)``; ``cb(update)`` is called with
an :class:`Update` ``(site, lines, state, reason)`` for every batch of new lines and every state
change. With ``replay=True`` the current content of each site is delivered first, so a late subscriber sees
everything still in memory exactly once. Exceptions raised by callbacks are logged and swallowed.

Thread contract: every public method may be called from any thread, also from inside a callback. Callbacks
(subscribers and ``on_done``) never run under the receiver's state lock: they are queued under it in the order
of the state changes and made after it is released (:mod:`flarenb.delivery`: each subscriber gets every update
once and in order; a call from inside a callback only queues). So a callback may call ``release()``,
``follow()`` or any receiver method, or take a lock that another thread holds while calling the receiver. A
method called while another thread is delivering returns before its updates reach the subscribers (that thread
delivers them next); ``subscribe(replay=True)``, ``stop()`` and ``wait_all_done()`` wait (bounded) until what
they saw is delivered. ``unsubscribe()`` stops deliveries that have not started.

``tick()`` evaluates quiet and idle timeouts; ``start_watchdog()`` runs it on a daemon thread
(:class:`flarenb.threads.Periodic`), as LogStreamer's consumer runs its watchdog, so a hung transport still gets
closed. ``all_done``: every stream closed and delivered; ``wait_all_done(timeout)`` waits for it (no polling).
"""

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from . import threads
from .delivery import Outbox, Subscription
from .logparse import MAX_TS_CHARS, Line, SiteStream, format_json_record, line_size, lines_size  # noqa: F401
from .safetext import clean_text
from .vocab import ENDED, LEVELS, LIVE, QUIET, STOPPED, TIMED_OUT, UNAVAILABLE, WAITING, server_first
from .vocab import STREAM_TERMINAL_STATES as TERMINAL_STATES  # terminal states never change again

__all__ = ["LEVELS", "TERMINAL_STATES", "Line", "Receiver", "SiteStream", "Update", "format_json_record"]

log = logging.getLogger(__name__)

DELIVERY_WAIT = 5.0  # s: at most this long stop() waits for another thread to deliver its last updates


class Update(NamedTuple):
    """A batch of new lines (possibly empty) and the site's state after it."""

    site: str
    lines: list[Line]
    state: str
    reason: str | None


class Receiver:
    """Per-site line streams fed by a transport. See the module docstring."""

    def __init__(
        self,
        max_lines: int = 10_000,
        max_line_chars: int = 65_536,
        max_bytes: int = 32 * 1024 * 1024,
        quiet_after: float = 10.0,
        idle_timeout: float | None = 60.0,
        on_done: Callable[[str, SiteStream], object] | None = None,
        fmt: str = "auto",
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        self.max_lines = max_lines
        self.max_line_chars = max_line_chars
        self.max_bytes = max_bytes
        self.nbytes = 0  # memory of every site's lines
        self.problem: str | None = None  # the transport's current problem (str), None when it works
        self.problem_since: float | None = None
        self.quiet_after = quiet_after
        self.idle_timeout = idle_timeout  # None or 0 disables the idle timeout
        self.fmt = fmt
        self.name = name
        self._on_done = on_done
        self._clock = clock
        self._lock = threading.RLock()  # the state lock: never held while a callback runs
        self._closed = threading.Condition(self._lock)  # notified when a stream closes
        self._sites: dict[str, SiteStream] = {}
        self._subs: list[Subscription] = []
        self._out = Outbox()  # deliveries: queued under the state lock, made outside it
        self._watchdog: threads.Periodic | None = None

    # ----------------------------------------------------------------- queries
    def site(self, site: str) -> SiteStream:
        """The SiteStream for ``site``, created (state "waiting") if new."""
        with self._lock:
            s = self._site(site)
        self._out.deliver()
        return s

    def _site(self, site: str) -> SiteStream:
        site = clean_text(str(site))
        s = self._sites.get(site)
        if s is None:
            s = self._sites[site] = SiteStream(site, self.max_lines, self.fmt, self._clock())
            self._emit(s, [])
        return s

    def sites(self) -> list[str]:
        """Site names, "server" first then in order of appearance."""
        with self._lock:
            names = list(self._sites)
        return server_first(names)

    def lines(self, site: str) -> list[Line]:
        """A list copy of the lines of ``site`` still in memory."""
        with self._lock:
            s = self._sites.get(clean_text(str(site)))
            return list(s.lines) if s else []

    @property
    def all_done(self) -> bool:
        """Every site's stream is closed and what that produced was delivered (False inside that delivery)."""
        with self._lock:
            if not self._all_done():
                return False
            upto = self._out.queued
        return self._out.made >= upto

    @property
    def all_closed(self) -> bool:
        """Every site's stream is closed (deliveries may still be under way)."""
        with self._lock:
            return self._all_done()

    def _all_done(self) -> bool:
        return bool(self._sites) and all(s.done for s in self._sites.values())

    def wait_all_done(self, timeout: float) -> bool:
        """Wait at most ``timeout`` s until every site's stream is closed and delivered to the subscribers
        (woken by the close, no polling). True if so; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._closed:
            if not self._closed.wait_for(self._all_done, timeout):
                return False
            upto = self._out.queued
        return self._out.wait(upto, deadline - time.monotonic())

    # ------------------------------------------------------------ subscribers
    def subscribe(self, cb: Callable[[Update], object], replay: bool = True) -> Callable[[], None]:
        """Register ``cb(update)``; returns a function that unsubscribes it."""
        sub = Subscription(cb)
        with self._lock:
            if replay:
                for name in server_first(list(self._sites)):
                    s = self._sites[name]
                    self._out.put((sub,), Update(name, list(s.lines), s.state, s.reason))
            self._subs.append(sub)
            upto = self._out.queued
        if replay:
            self._out.wait(upto, DELIVERY_WAIT)
        else:
            self._out.deliver()

        def unsubscribe() -> None:
            with self._lock:
                sub.active = False
                if sub in self._subs:
                    self._subs.remove(sub)

        return unsubscribe

    def _emit(self, s: SiteStream, new_lines: list[Line]) -> None:
        if self._subs:
            self._out.put(tuple(self._subs), Update(s.site, new_lines, s.state, s.reason))

    def _call_done(self, site: str, s: SiteStream) -> None:
        if self._on_done is not None:
            self._on_done(site, s)

    # ---------------------------------------------------------------- ingest
    def feed(self, site: str, data: bytes | bytearray | memoryview | str, fmt: str | None = None) -> int:
        """Add a chunk (bytes or str) of ``site``'s log. Returns the number of new lines."""
        if not data:
            self.heartbeat(site)
            return 0
        with self._lock:
            n = self._feed(self._site(site), data, fmt)
        self._out.deliver()
        return n

    def _feed(self, s: SiteStream, data: bytes | bytearray | memoryview | str, fmt: str | None) -> int:
        if fmt is not None and s.total == 0 and not s.pending:
            s.fmt = fmt
        if s.done:
            s.late_bytes += len(data)
            return 0
        now = self._clock()
        s.bytes_in += len(data)
        s.last_data = s.last_alive = now
        text = s.decode(data)
        old_state = s.state
        s.state, s.reason = LIVE, None
        new = self._store(s, s.split(text, self.max_line_chars))
        if new or s.state != old_state:
            self._emit(s, new)
        return len(new)

    def _store(self, s: SiteStream, new: list[Line]) -> list[Line]:
        """Add ``new`` to ``s.lines`` within ``max_lines`` per site and ``max_bytes`` overall."""
        if new:
            self.nbytes += s.keep(new)
            if self.max_bytes and self.nbytes > self.max_bytes:
                self._shed(self.nbytes - self.max_bytes)
        return new

    def _shed(self, excess: int) -> None:
        """Drop the oldest lines of the sites holding the most memory until ``excess`` bytes are freed."""
        while excess > 0:
            biggest = max(self._sites.values(), key=lambda x: x.nbytes)
            if not biggest.lines:
                return
            # free a slice at a time: at most what brings this site down to the next biggest one
            freed = biggest.shed(max(min(excess, biggest.nbytes // 4), 1))
            self.nbytes -= freed
            excess -= freed

    def heartbeat(self, site: str) -> None:
        """The sender of ``site`` is alive (nothing new). Resets the idle clock."""
        with self._lock:
            s = self._site(site)
            if not s.done:
                s.last_alive = self._clock()
        self._out.deliver()

    def marker(self, site: str, text: str) -> None:
        """Insert a visible ``[flarenb] ...`` marker line (after flushing the partial line)."""
        with self._lock:
            s = self._site(site)
            if not s.done:
                new = self._store(s, s.flush_pending(self.max_line_chars))
                ln = Line(s.total + 1, clean_text(str(text)), None, None, s.site, "marker")
                self._store(s, [ln])
                self._emit(s, new + [ln])
        self._out.deliver()

    def flush(self, site: str) -> None:
        """Emit the partial line as a complete line and reset the decoder (new file / source)."""
        with self._lock:
            s = self._site(site)
            new = self._store(s, s.flush_pending(self.max_line_chars))
            if new:
                self._emit(s, new)
        self._out.deliver()

    def set_unavailable(self, site: str, reason: str | None) -> None:
        """Mark ``site`` unavailable with ``reason`` (not terminal; data makes it available)."""
        with self._lock:
            s = self._site(site)
            if not (s.done or (s.state == UNAVAILABLE and s.reason == reason)):
                s.state, s.reason = UNAVAILABLE, reason
                s.last_alive = self._clock()
                self._emit(s, [])
        self._out.deliver()

    def clear_unavailable(self, site: str) -> None:
        """Undo ``set_unavailable`` (the cause went away): "waiting" if nothing came yet, else "quiet"."""
        with self._lock:
            s = self._site(site)
            if not s.done and s.state == UNAVAILABLE:
                s.state, s.reason = (QUIET if s.total else WAITING), None
                s.last_alive = self._clock()
                self._emit(s, [])
        self._out.deliver()

    def set_problem(self, reason: object) -> None:
        """The transport cannot reach the source (``reason``, one line) or works again (``None``)."""
        reason = None if reason is None else clean_text(str(reason))
        with self._lock:
            if reason == self.problem:
                return
            if reason is None:  # the source answers again: every open stream gets a fresh idle window
                now = self._clock()
                for s in self._sites.values():
                    if not s.done:
                        s.last_alive = now
                self.problem_since = None
            elif self.problem is None:
                self.problem_since = self._clock()
            self.problem = reason

    # ------------------------------------------------------------------ close
    def end(self, site: str, reason: str | None = None) -> None:
        """End of stream for ``site``: flush the partial line, state "ended", fire on_done once."""
        self._close(site, ENDED, reason)

    def stop(self, reason: str | None = "stopped by the user") -> None:
        """Close every open stream with state "stopped" (on_done fires for each) and the watchdog; returns once
        that is delivered (or after at most ``DELIVERY_WAIT`` s if another thread is busy delivering)."""
        self.stop_watchdog()
        with self._lock:
            for name in list(self._sites):
                self._close_locked(name, STOPPED, reason)
            upto = self._out.queued
        self._out.wait(upto, DELIVERY_WAIT)

    def end_all(self, reason: str | None = None) -> None:
        with self._lock:
            for name in list(self._sites):
                self._close_locked(name, ENDED, reason)
        self._out.deliver()

    def _close(self, site: str, state: str, reason: str | None) -> None:
        with self._lock:
            self._close_locked(site, state, reason)
        self._out.deliver()

    def _close_locked(self, site: str, state: str, reason: str | None) -> None:
        s = self._site(site)
        if s.done:  # exactly once, whatever thread got here first
            return
        new = self._store(s, s.flush_pending(self.max_line_chars))
        if s.state == UNAVAILABLE and reason is None:
            reason = s.reason
        s.state, s.reason = state, reason
        done = functools.partial(self._call_done, s.site, s) if self._on_done is not None else None
        self._out.put(tuple(self._subs), Update(s.site, new, s.state, s.reason), done)
        self._closed.notify_all()

    # --------------------------------------------------------------- liveness
    def tick(self, now: float | None = None) -> None:
        """Apply the quiet and idle-timeout rules at time ``now`` (default: the clock)."""
        with self._lock:
            now = self._clock() if now is None else now
            for s in list(self._sites.values()):
                if s.done:
                    continue
                if self.idle_timeout and self.problem is None and now - s.last_alive >= self.idle_timeout:
                    idle = now - s.last_alive
                    reason = f"no data or heartbeat for {idle:.1f}s (sender vanished?)"
                    self._close_locked(s.site, TIMED_OUT, reason)
                elif s.state == LIVE and s.last_data is not None and now - s.last_data >= self.quiet_after:
                    s.state = QUIET
                    self._emit(s, [])
        self._out.deliver()

    def start_watchdog(self, period: float | None = None) -> None:
        """Run ``tick()`` every ``period`` s on a daemon thread until ``stop_watchdog()`` (or all streams closed)."""
        if period is None:
            period = max(0.05, min(1.0, (self.idle_timeout or 3.0) / 3, self.quiet_after / 3))
        with self._lock:
            if self._watchdog is None:
                name = f"flarenb-watchdog-{self.name}"
                self._watchdog = threads.Periodic(self.tick, period, name, until=lambda: self.all_done)

    def stop_watchdog(self) -> None:
        with self._lock:
            w, self._watchdog = self._watchdog, None
        if w is not None:
            w.stop(5.0)  # bounded: tick() only waits for the receiver's state lock
