"""The sending side of a log view: one daemon thread that sends what an :class:`~flarenb.outbox.Outbox` holds.

:meth:`flarenb.widget.LogView.append` only buffers and calls :meth:`Flusher.kick`. The flusher thread then sends at
most one message per tick (``1 / max_msgs`` s): a queued reply to the browser (:meth:`Flusher.reply`, e.g. a search
result) first, else the ``snapshot`` traits when due, else one batch of lines, each only when the outbox's budget
has room. It sleeps while there is nothing to send (no polling traffic), never dies of a
failure to send (each distinct failure is logged once; what was pending becomes skip markers), and exits once
following ended and everything was sent.

The view passes in what sending means — build the snapshot, publish it, send a message — and its lock, so this
module knows nothing of traits or comms; :meth:`Flusher.flush_once` is one tick, testable without the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import threads
from .lanes import Lanes
from .outbox import MSG_OVERHEAD, Outbox, build_snapshot
from .safetext import wire_size

__all__ = ["Flusher"]

_log = logging.getLogger("flarenb.widget")

Message = dict[str, Any]


class Flusher:
    """Sends a view's pending lines and snapshot within the outbox's budget (see the module docstring).

    The snapshot (``{"snapshot", "line_counts", "skipped"}``, :func:`flarenb.outbox.build_snapshot`) holds the last
    ``snapshot_lines`` sent lines of each of the ``lanes``. ``publish_snapshot(snap)`` puts it in the view's traits,
    ``send(msg)`` sends one custom message; both are called with ``lock`` held (the view's lock, which also guards
    the outbox and the lanes). ``label`` names the view in logs.
    """

    def __init__(
        self,
        out: Outbox,
        lanes: Lanes,
        lock: threading.RLock,
        *,
        label: str,
        snapshot_lines: int,
        snapshot_interval: float,
        publish_snapshot: Callable[[Message], None],
        send: Callable[[Message], None],
    ) -> None:
        self.out = out
        self.lanes = lanes
        self.lock = lock
        self.snapshot_lines = int(snapshot_lines)
        self.label = label
        self.snapshot_interval = float(snapshot_interval)
        self._publish_snapshot = publish_snapshot
        self._send = send
        self.snapshot_dirty = False  # the snapshot traits are behind the lines received
        self.snapshot_was_last = False  # the last message sent was a snapshot (lines go next)
        self.last_snapshot = 0.0  # outbox clock time of the last snapshot sent
        self.follow_closed = False  # following ended: send the rest, then exit
        self.flush_error: str | None = None  # the last failure logged (each distinct one once)
        self.thread: threading.Thread | None = None
        self.finished = False  # the thread exited after following ended (a later reply starts a new one)
        self.replies: deque[Message] = deque()  # answers to the browser's requests, sent before anything else
        self.wake = threading.Event()
        self.stop = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the thread if none runs (again after it finished, for a reply; never after :meth:`close`)."""
        if (self.thread is None or self.finished) and not self.stop.is_set():
            self.finished = False
            self.thread = threads.start(self._run, f"flarenb-logview-{self.label}")

    def reply(self, msg: Message) -> None:
        """Send ``msg`` (an answer to the browser) within the budget, before lines and snapshots (lock held)."""
        self.replies.append(msg)
        self.kick()

    def kick(self) -> None:
        """There is something to send: start the thread if needed and wake it."""
        self.start()
        self.wake.set()

    def close(self) -> None:
        """Stop the thread and wait for it (up to 5 s; not when called from the thread itself)."""
        self.stop.set()
        self.wake.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            threads.join(thread, 5)

    def idle(self) -> bool:
        """Nothing to send now (call with the lock held)."""
        return not self.snapshot_dirty and not self.replies and not self.out.has_pending()

    def _run(self) -> None:
        failures = 0
        interval = self.out.interval
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                done = self.flush_once(started)
                failures = 0
            except Exception as exc:  # never let the flusher die, nor fail the same way every tick
                failures += 1
                done = self._failed(exc, failures)
            if done:
                with self.lock:  # a reply queued since that tick keeps the thread (kick() saw it alive)
                    if failures or self.idle():
                        self.finished = True
                        break
            self.wake.clear()
            with self.lock:
                idle = self.idle()
            if idle and not self.stop.is_set():
                # sleep until append / close_follow / close wakes us; bounded, as every wait of flarenb's threads
                # (the check: a close between the loop's test and wake.clear() must not leave it asleep)
                self.wake.wait(1.0)
            else:
                self.stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _failed(self, exc: Exception, failures: int) -> bool:
        """Log a failure once (not per tick), turn what was pending into skip markers so the next message differs,
        and give up after repeated failures once following ended. Returns True when the thread may exit."""
        what = f"{type(exc).__name__}: {exc}"
        if what != self.flush_error:
            self.flush_error = what
            _log.error("flarenb LogView %s could not send to the browser: %s", self.label, what, exc_info=exc)
        with self.lock:
            self.out.skip_all()
            self.replies.clear()  # an answer that cannot be sent is not retried forever (the browser may ask again)
            if failures >= 2:
                self.snapshot_dirty = False
            return self.follow_closed and failures >= 3

    # ------------------------------------------------------------------ one tick
    def flush_once(self, now: float) -> bool:
        """One tick: at most one message (the snapshot first when due, else lines).

        The snapshot is built within a quarter of the byte budget, so it fits in the window within a second;
        while it waits for room, no line message takes that room. Returns True when the thread may exit
        (follow closed and everything sent).
        """
        out = self.out
        with self.lock:
            if self.replies:
                reply = self.replies[0]
                size = wire_size(reply)
                now = out.clock()
                if out.can_send(size, now):
                    out.note_sent(size, now)
                    self.replies.popleft()
                    self._send(reply)
                return False
            if out.pending_bytes > out.max_bytes:
                out.drop_oldest(out.max_bytes // 2)
            pending_lines = out.has_pending()
            snapshot_due = self.snapshot_dirty and (
                self.follow_closed or now - self.last_snapshot >= self.snapshot_interval
            )
            if pending_lines and (self.follow_closed or self.snapshot_was_last):
                snapshot_due = False  # lines first (a snapshot holds sent lines only), never starved by snapshots
            if snapshot_due:
                snap = self.build_snapshot()
                size = wire_size(snap)
                now = out.clock()
                if out.can_send(size, now):
                    out.note_sent(size, now)
                    self.last_snapshot = now
                    self.snapshot_dirty = pending_lines  # it holds sent lines only: again once the rest is sent
                    self.snapshot_was_last = True
                    self._publish_snapshot(snap)
                # else: keep the window free for it (the lines wait at most one window)
            else:
                msg = out.take_batch()
                if msg is not None:
                    size = wire_size(msg)
                    now = out.clock()
                    if out.can_send(size, now):
                        out.note_sent(size, now)
                        self._send(msg)
                        self.snapshot_was_last = False
                    else:  # put it back in front; try again next tick
                        out.requeue(msg)
            return self.follow_closed and not out.has_pending() and not self.snapshot_dirty

    def build_snapshot(self) -> Message:
        """The snapshot traits now: within a quarter of the byte budget (at least 4 KiB), sent lines only."""
        budget = max(4096, self.out.max_bytes // 4 - MSG_OVERHEAD)
        history, out = self.lanes.history.lines, self.out
        return build_snapshot(history, self.lanes.counts, out.skipped, budget, self.snapshot_lines, out.first_unsent())
