"""The live widget's message budget (pure: no widget, no threads; a clock passed in).

Jupyter's server silently drops iopub messages above 1000 msg/s or 1 MB/s, and one busy job can write thousands of
lines per second. :class:`Outbox` holds the lines waiting for the browser and decides what may be sent:

* at most ``max_msgs`` messages and ``max_bytes`` bytes in any window of ``WINDOW`` seconds, measured in **wire
  bytes** (:func:`flarenb.safetext.wire_size` of the message — of a queued line, :func:`line_wire_size`, the same
  without building the JSON — plus ``MSG_OVERHEAD`` for the envelope), counting
  every message the widget sends (trait updates too, via :meth:`Outbox.note_sent`);
* :meth:`Outbox.take_batch` builds one ``{"kind": "lines"}`` message within a byte budget, sites sharing it
  fairly; a line too big for any message is cut (the download has it whole), so no line can block the queue;
* when more is pending than can be sent, the oldest pending lines of a site become one
  ``{"skipped": n, "first": seq, "last": seq}`` marker: nothing disappears silently.

:func:`build_snapshot` makes the ``snapshot`` trait (the last lines of each site, for a view rendered later) within
a byte budget well under ``max_bytes``, so it always fits in one window and never starves the line messages.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring as _json_str  # what json.dumps(ensure_ascii=False) uses (C)
from typing import Any

from .safetext import wire_size

__all__ = ["MARKER_SIZE", "MSG_OVERHEAD", "WINDOW", "Outbox", "build_snapshot", "cut_to_bytes", "line_wire_size"]

MSG_OVERHEAD = 1024  # bytes: Jupyter message envelope (header, parent header, ids, signature)
MARKER_SIZE = 80  # bytes: a skip marker on the wire (generous)
WINDOW = 1.02  # seconds: the budget window, with a margin for scheduling jitter
_MAX_JSON_BYTES_PER_CHAR = 6  # "\u0001" is the longest JSON spelling of one character


def cut_to_bytes(text: str, budget: int, note: str = " … [cut]") -> str:
    """``text`` cut so that its JSON form takes at most about ``budget`` bytes."""
    if wire_size(text) <= budget:
        return text
    return text[: max(0, (budget - 64) // _MAX_JSON_BYTES_PER_CHAR)] + note


def _str_size(value: str | None) -> int:
    if value is None:
        return 4  # null
    quoted = _json_str(value)
    return len(quoted) if quoted.isascii() else len(quoted.encode("utf-8", "surrogatepass"))


def line_wire_size(item: Sequence[Any]) -> int:
    """:func:`~flarenb.safetext.wire_size` of a wire line ``[seq, text, level, ts]`` (int, str, str | None,
    str | None), computed without building its JSON: a flood queues tens of thousands of lines a second."""
    seq, text, level, ts = item
    return 8 + len(str(seq)) + _str_size(text) + _str_size(level) + _str_size(ts)


class Outbox:
    """Pending lines per site and the send window. Not thread-safe: the widget holds its lock."""

    def __init__(self, max_msgs: float, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_msgs = float(max_msgs)
        self.max_bytes = int(max_bytes)
        self.interval = 1.0 / self.max_msgs
        self.clock = clock
        # per site: deque of (wire item, wire bytes); a skip marker is a dict at the front
        self.pending: dict[str, deque[tuple[Any, int]]] = {}
        self.pending_bytes = 0
        self.skipped: dict[str, int] = {}
        self._sent: deque[tuple[float, int]] = deque()  # (clock time, bytes) of sends

    @property
    def per_message(self) -> int:
        """The content bytes one line message may take."""
        return max(1024, int(self.max_bytes / self.max_msgs) - MSG_OVERHEAD)

    def has_pending(self) -> bool:
        return any(self.pending.values())

    def first_unsent(self) -> dict[str, int]:
        """Per site with pending lines, the seq of its oldest pending line (or skip marker)."""
        out: dict[str, int] = {}
        for site, pend in self.pending.items():
            if pend:
                item = pend[0][0]
                out[site] = item["first"] if isinstance(item, dict) else item[0]
        return out

    # ------------------------------------------------------------------ window
    def _window(self, now: float) -> tuple[int, int]:
        while self._sent and now - self._sent[0][0] >= WINDOW:
            self._sent.popleft()
        return len(self._sent), sum(b for _, b in self._sent)

    def note_sent(self, size: int = 0, now: float | None = None) -> None:
        """Count a message of ``size`` content bytes as sent now."""
        self._sent.append((self.clock() if now is None else now, size + MSG_OVERHEAD))

    def can_send(self, size: int, now: float | None = None) -> bool:
        """Whether a message of ``size`` content bytes fits in the window now."""
        now = self.clock() if now is None else now
        count, used = self._window(now)
        if self._sent and now - self._sent[-1][0] < self.interval * 0.999:
            return False
        return count + 1 <= self.max_msgs and used + size + MSG_OVERHEAD <= self.max_bytes

    # ------------------------------------------------------------------ pending lines
    def add(self, site: str, item: list[Any]) -> None:
        """Queue one wire line ``[seq, text, level, ts]`` of ``site`` (its fields already capped)."""
        size = line_wire_size(item) + 2
        pend = self.pending.get(site)
        if pend is None:
            pend = self.pending[site] = deque()
            self.skipped.setdefault(site, 0)
        pend.append((item, size))
        self.pending_bytes += size

    def drop_oldest(self, target: int) -> None:
        """Replace the oldest pending lines with skip markers until pending <= ``target`` bytes."""
        total = self.pending_bytes
        if total <= target:
            return
        keep_ratio = target / total
        for site, pend in self.pending.items():
            site_bytes = sum(size for _, size in pend)
            goal = site_bytes * keep_ratio
            marker: dict[str, int] | None = None
            if pend and isinstance(pend[0][0], dict):
                marker, size = pend.popleft()
                site_bytes -= size
                self.pending_bytes -= size
            while pend and site_bytes > goal:
                wire, size = pend.popleft()
                site_bytes -= size
                self.pending_bytes -= size
                if marker is None:
                    marker = {"skipped": 0, "first": wire[0], "last": wire[0]}
                marker["skipped"] += 1
                marker["last"] = wire[0]
                self.skipped[site] += 1
            if marker is not None:
                pend.appendleft((marker, MARKER_SIZE))
                self.pending_bytes += MARKER_SIZE

    def skip_all(self) -> None:
        """Every pending line becomes a skip marker (after a failed send: the next message must differ)."""
        self.drop_oldest(0)

    def take_batch(self, budget: int | None = None) -> dict[str, Any] | None:
        """Oldest pending items of each site, fairly shared, within ``budget`` wire bytes (default: one message's
        share of the budget). None when nothing is pending."""
        budget = self.per_message if budget is None else budget
        active = [s for s, p in self.pending.items() if p]
        if not active:
            return None
        out: dict[str, list[Any]] = {}
        remaining = budget - 64
        # water-filling: each round, every site with lines left may use an equal share
        while active and remaining > 128:
            share = remaining // len(active)
            still = []
            for site in active:
                pend, items = self.pending[site], out.setdefault(site, [])
                before = len(items)
                used = 0 if items else wire_size(site) + 4
                while pend:
                    item, size = pend[0]
                    if used + size > share:
                        if items or not isinstance(item, list) or share - used < 512:
                            break
                        # never starve on one huge line: cut it to the share (the download has it all)
                        self._cut_front(pend, share - used)
                        item, size = pend[0]
                        if used + size > share:
                            break
                    pend.popleft()
                    self.pending_bytes -= size
                    items.append(item)
                    used += size
                if len(items) > before:
                    remaining -= used
                    if pend:
                        still.append(site)
            active = still
        out = {s: items for s, items in out.items() if items}
        if not out:  # every site's first line is bigger than its share: send one, cut to the whole budget
            site = next(s for s, p in self.pending.items() if p)
            pend = self.pending[site]
            if isinstance(pend[0][0], list):
                self._cut_front(pend, budget - wire_size(site) - 128)
            item, size = pend.popleft()
            self.pending_bytes -= size
            out[site] = [item]
        return {"kind": "lines", "sites": out}

    def _cut_front(self, pend: deque[tuple[Any, int]], budget: int) -> None:
        item, size = pend[0]
        cut = [item[0], cut_to_bytes(item[1], budget - wire_size([item[0], "", item[2], item[3]])), item[2], item[3]]
        new_size = wire_size(cut) + 2
        pend[0] = (cut, new_size)
        self.pending_bytes += new_size - size

    def requeue(self, msg: Mapping[str, Any]) -> None:
        """Put a message's items back in front of their queues (it could not be sent)."""
        for site, items in msg["sites"].items():
            pend = self.pending.setdefault(site, deque())
            for item in reversed(items):
                size = wire_size(item) + 2 if isinstance(item, list) else MARKER_SIZE
                pend.appendleft((item, size))
                self.pending_bytes += size


def build_snapshot(
    history: Mapping[str, Sequence[Any]],
    counts: Mapping[str, int],
    skipped: Mapping[str, int],
    budget: int,
    max_lines: int,
    unsent_from: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """``{"snapshot": {site: [[seq, text, level, ts], ...]}, "line_counts", "skipped"}`` of at most ``budget`` wire
    bytes (when the counts themselves fit): the last ``max_lines`` lines of each site, as many as fit in an equal
    share of the budget, newest kept; a line longer than its share is cut. Lines at or after ``unsent_from[site]``
    (not yet sent as messages) are left out: a snapshot ahead of pending lines would make the browser, which drops
    any line at or below the last seq it has, drop them."""
    out: dict[str, Any] = {"snapshot": {}, "line_counts": dict(counts), "skipped": dict(skipped)}
    left = budget - wire_size(out)
    n = max(1, len(history))
    snap: dict[str, list[list[Any]]] = {}
    for i, site in enumerate(list(history)):
        share = left // max(1, n - i)
        used = wire_size(site) + 6
        rows: list[list[Any]] = []
        hist = history[site]
        cut = (unsent_from or {}).get(site)
        end = len(hist)
        while cut is not None and end and hist[end - 1].seq >= cut:
            end -= 1
        for k in range(end - 1, max(-1, end - 1 - max_lines), -1):
            line = hist[k]
            row = [line.seq, line.text, line.level, line.ts]
            size = wire_size(row) + 2
            if used + size > share:
                if rows or share - used < 256:
                    break
                row[1] = cut_to_bytes(line.text, share - used - wire_size(row[3]) - 64)
                size = wire_size(row) + 2
                if used + size > share:
                    break
            rows.append(row)
            used += size
        if not rows:
            continue  # not even one line fits: the site's lines still come as messages
        rows.reverse()
        snap[site] = rows
        left -= used
    out["snapshot"] = snap
    return out
