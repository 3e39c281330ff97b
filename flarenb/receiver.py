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

Lines: ``Line.seq`` increases by one per site; ``level`` is DEBUG/INFO/WARNING/ERROR/CRITICAL or
None and continuation lines (tracebacks, ``print`` output) inherit the level of the last
timestamped line; ``ts`` is the timestamp text of a timestamped line, else None. A line longer
than ``max_line_chars`` is cut and marked ``truncated=True``; the rest of it is skipped up to its
newline and the following lines are kept. ``log.json`` records (one JSON object per line, as
written by nvflare's ``JsonFormatter``) are rendered like ``log.txt`` lines
(``asctime - name - levelname - fl_ctx - message``); choose with ``fmt="text"|"json"|"auto"``
(auto: decided on the site's first non-empty line). Marker lines written by flarenb itself
(gaps, rotations, truncations) have ``kind == "marker"`` and start with ``[flarenb]``.

Text is valid UTF-8 from intake on: lone surrogates (``"\\ud800"`` in a ``log.json`` record, a ``str`` chunk)
become U+FFFD, so nothing downstream (widget messages, downloads) can fail to encode a line. A record's
timestamp is capped at ``MAX_TS_CHARS``.

Memory is bounded: each site keeps its last ``max_lines`` lines, and all sites together at most ``max_bytes``
bytes of lines (measured as the Python objects' size; the site holding the most gives up its oldest lines
first); ``SiteStream.dropped`` counts lines that left memory from the front.

Transport problems: ``set_problem(reason)`` says the transport cannot reach the source (server unreachable,
not authorised...); ``problem`` holds it until ``set_problem(None)``. While a problem is set, the idle timeout
does not close streams (their senders' silence is not observable), and it restarts when the problem clears.

Subscribers: ``unsubscribe = receiver.subscribe(cb, replay=True)``; ``cb(update)`` is called with
an :class:`Update` ``(site, lines, state, reason)`` for every batch of new lines and every state
change, in order, under the receiver's lock (keep callbacks cheap: hand the batch to a queue or
a throttled UI). With ``replay=True`` the current content of each site is delivered first, so a
late subscriber sees everything still in memory exactly once. Exceptions raised by callbacks are
logged and swallowed.

Thread safety: every public method may be called from any thread. ``tick()`` evaluates quiet and
idle timeouts; ``start_watchdog()`` runs it on a daemon thread (``flarenb-watchdog-...``), the way
LogStreamer's consumer runs its watchdog, so a hung transport still gets closed.
"""

import codecs
import collections
import json
import logging
import operator
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .safetext import clean_text
from .vocab import (
    ENDED,
    LEVELS,
    LIVE,
    QUIET,
    STOPPED,
    STREAM_TERMINAL_STATES,
    TIMED_OUT,
    UNAVAILABLE,
    WAITING,
    server_first,
)

__all__ = ["LEVELS", "TERMINAL_STATES", "Line", "Receiver", "SiteStream", "Update", "format_json_record"]

log = logging.getLogger(__name__)

# States of a SiteStream (flarenb.vocab). Terminal states never change again.
TERMINAL_STATES = STREAM_TERMINAL_STATES
MAX_TS_CHARS = 64
_LINE_OVERHEAD = 120  # bytes: a Line object with its slots, beyond its strings


def line_size(text: str, ts: str | None = None) -> int:
    """Approximate memory of one line: its strings plus the object holding them."""
    return sys.getsizeof(text) + (sys.getsizeof(ts) if ts else 0) + _LINE_OVERHEAD


# Same timestamp shape as nvflare's job_cli._JOB_LOG_TS_RE, plus the level field of nvflare's
# "%(asctime)s - %(name)s - %(levelname)s - ..." formats (also the concise/verbose ones).
_HEAD_RE = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)\]?"
    r"(?:(?: - [^\n]*?)? - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - )?"
)
# The same, applied to every line of a batch at once: ``findall`` over "\n" + the lines joined by "\n" gives one
# match per line (each starts at its line's "\n", found by a fast literal search, and none spans a newline). The
# first alternative is the common nvflare shape "ts - name - LEVEL - " with a name without spaces: where it
# matches, _HEAD_RE finds the same level (no " - " can start inside such a name) and the same ts (the ts part is
# a greedy match that cannot be shortened before " - "); elsewhere the second one is _HEAD_RE's own tail. So
# each (ts, level, level) tuple is _HEAD_RE's result on that line ("" where absent), without its lazy scan in
# the common case.
_LEVEL = r"(DEBUG|INFO|WARNING|ERROR|CRITICAL)"
_HEADS_RE = re.compile(
    r"\n(?:\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)\]?"
    rf"(?: - [\w.]+ - {_LEVEL} - |(?:(?: - [^\n]*?)? - {_LEVEL} - )?))?"
)


def _head(t: str) -> tuple[str, str, str]:
    """``_HEADS_RE``'s tuple for one line, from ``_HEAD_RE``."""
    m = _HEAD_RE.match(t)
    return ("", "", "") if m is None else (m.group(1), m.group(2) or "", "")


class Line:
    """One complete log line of one site."""

    __slots__ = ("kind", "level", "seq", "site", "text", "truncated", "ts")

    def __init__(
        self,
        seq: int,
        text: str,
        level: str | None,
        ts: str | None,
        site: str,
        kind: str = "log",
        truncated: bool = False,
    ) -> None:
        self.seq = seq
        self.text = text
        self.level = level
        self.ts = ts
        self.site = site
        self.kind = kind
        self.truncated = truncated

    def __repr__(self) -> str:
        return f"Line({self.site}#{self.seq} {self.level} {self.text!r}{' truncated' if self.truncated else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Line) and all(getattr(self, a) == getattr(other, a) for a in Line.__slots__)

    __hash__ = None  # type: ignore[assignment]  # lines are mutable (seq is renumbered): unhashable


_TEXT = operator.attrgetter("text")
_TS = operator.attrgetter("ts")
_NONE_SIZE = sys.getsizeof(None)
_EMPTY_SIZE = sys.getsizeof("")


def _lines_size(lines: list[Line]) -> int:
    """``sum(line_size(ln.text, ln.ts) for ln in lines)``, computed with C-level maps (no call per line)."""
    if not lines:
        return 0
    getsizeof = sys.getsizeof
    tss = list(map(_TS, lines))
    return (
        sum(map(getsizeof, map(_TEXT, lines)))
        + sum(map(getsizeof, tss))
        - tss.count(None) * _NONE_SIZE  # a missing or empty ts counts 0, as in line_size
        - tss.count("") * _EMPTY_SIZE
        + len(lines) * _LINE_OVERHEAD
    )


class Update(NamedTuple):
    """A batch of new lines (possibly empty) and the site's state after it."""

    site: str
    lines: list[Line]
    state: str
    reason: str | None


def format_json_record(record: dict[str, Any]) -> str:
    """Render one nvflare log.json record like a log.txt line (same as ``nvflare job logs``)."""
    asctime = record.get("asctime") or record.get("timestamp") or record.get("time") or ""
    name = record.get("name") or record.get("fullName") or ""
    level = record.get("levelname") or record.get("level") or ""
    fl_ctx = record.get("fl_ctx") or ""
    message = record.get("message") or record.get("msg") or ""
    parts = [str(p) for p in (asctime, name, level, fl_ctx, message) if p not in (None, "")]
    return " - ".join(parts) if parts else json.dumps(record, default=str)


class SiteStream:
    """State of one site's stream. Read attributes freely; mutate only through the Receiver."""

    def __init__(self, site: str, max_lines: int, fmt: str, now: float) -> None:
        self.site = site
        self.lines: collections.deque[Line] = collections.deque()
        self.max_lines = max_lines
        self.nbytes = 0  # memory of ``lines`` (see line_size)
        self.total = 0  # lines ever produced (== seq of the last line)
        self.pending = ""  # the partial line not yet terminated by a newline
        self.state = WAITING
        self.reason: str | None = None  # why unavailable / why closed
        self.fmt = fmt  # "text" | "json" | "auto"
        self.bytes_in = 0
        self.late_bytes = 0  # data rejected because the stream was already closed
        self.last_data: float | None = None
        self.last_alive = now
        self.level: str | None = None  # level of the last timestamped line
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._skipping = False  # inside an over-long line, dropping chars up to its newline

    @property
    def dropped(self) -> int:
        """Number of lines that left memory (oldest first)."""
        return self.total - len(self.lines)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    def __repr__(self) -> str:
        return f"SiteStream({self.site!r}, state={self.state!r}, lines={self.total}, dropped={self.dropped})"


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
        self._lock = threading.RLock()
        self._sites: dict[str, SiteStream] = {}
        self._subs: list[Callable[[Update], object]] = []
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()

    # ----------------------------------------------------------------- queries
    def site(self, site: str) -> SiteStream:
        """The SiteStream for ``site``, created (state "waiting") if new."""
        site = clean_text(str(site))
        with self._lock:
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
        with self._lock:
            return bool(self._sites) and all(s.done for s in self._sites.values())

    # ------------------------------------------------------------ subscribers
    def subscribe(self, cb: Callable[[Update], object], replay: bool = True) -> Callable[[], None]:
        """Register ``cb(update)``; returns a function that unsubscribes it."""
        with self._lock:
            if replay:
                for name in self.sites():
                    s = self._sites[name]
                    self._call(cb, Update(name, list(s.lines), s.state, s.reason))
            self._subs.append(cb)

        def unsubscribe() -> None:
            with self._lock:
                if cb in self._subs:
                    self._subs.remove(cb)

        return unsubscribe

    def _call(self, cb: Callable[[Update], object], update: Update) -> None:
        try:
            cb(update)
        except Exception:  # a consumer's bug must not stop the transport
            log.exception("flarenb log subscriber failed")

    def _emit(self, s: SiteStream, new_lines: list[Line]) -> None:
        for cb in list(self._subs):
            self._call(cb, Update(s.site, new_lines, s.state, s.reason))

    # ---------------------------------------------------------------- ingest
    def feed(self, site: str, data: bytes | bytearray | memoryview | str, fmt: str | None = None) -> int:
        """Add a chunk (bytes or str) of ``site``'s log. Returns the number of new lines."""
        if not data:
            self.heartbeat(site)
            return 0
        with self._lock:
            s = self.site(site)
            if fmt is not None and s.total == 0 and not s.pending:
                s.fmt = fmt
            if s.done:
                s.late_bytes += len(data)
                return 0
            now = self._clock()
            s.bytes_in += len(data)
            s.last_data = s.last_alive = now
            if isinstance(data, (bytes, bytearray, memoryview)):
                text = s._decoder.decode(data)  # errors="replace": never a surrogate
            else:
                text = clean_text(str(data))
            old_state = s.state
            s.state, s.reason = LIVE, None
            new = self._split(s, text)
            if new or s.state != old_state:
                self._emit(s, new)
            return len(new)

    def _split(self, s: SiteStream, text: str) -> list[Line]:
        if s.pending:
            text = s.pending + text
        parts = text.split("\n")
        tail = parts.pop()
        if s._skipping:
            if parts:  # the over-long line ends in this chunk
                del parts[0]
                s._skipping = False
            else:
                tail = ""
        cap = self.max_line_chars
        if len(tail) > cap:  # an over-long partial line: emit its head now, skip the rest
            parts.append(tail)
            tail = ""
            s._skipping = True
        s.pending = tail
        if not parts:
            return []
        if "\r" in text:
            parts = [p[:-1] if p.endswith("\r") else p for p in parts]
        if s.fmt != "text":
            if s.fmt == "auto":
                s.fmt = _detect_fmt(parts)
            if s.fmt == "json":
                return self._store(s, _json_lines(parts, s, self.max_line_chars))
        return self._store(s, self._text_lines(s, parts, cap))

    def _text_lines(self, s: SiteStream, parts: list[str], cap: int) -> list[Line]:
        site = s.site
        seq = s.total
        level = s.level
        out: list[Line] = []
        append = out.append
        if max(map(len, parts)) > cap:
            match = _HEAD_RE.match
            for t in parts:
                m = match(t)
                if m is not None:
                    ts = m.group(1)
                    level = m.group(2)
                else:
                    ts = None
                seq += 1
                if len(t) > cap:
                    append(Line(seq, t[:cap], level, ts, site, "log", True))
                else:
                    append(Line(seq, t, level, ts, site))
            s.level = level
            return out
        # one regex pass over the whole batch: (ts, level, level) per line, "" where absent
        heads = _HEADS_RE.findall("\n" + "\n".join(parts))
        if len(heads) != len(parts):  # cannot happen (one match per line); stay correct anyway
            heads = [_head(t) for t in parts]
        for (ts, lv1, lv2), t in zip(heads, parts, strict=True):
            seq += 1
            if ts:
                level = lv1 or lv2 or None
                append(Line(seq, t, level, ts, site))
            else:
                append(Line(seq, t, level, None, site))
        s.level = level
        return out

    def _store(self, s: SiteStream, new: list[Line]) -> list[Line]:
        if new and new[0].seq != s.total + 1:  # json path builds lines without seq numbers
            seq = s.total
            for ln in new:
                seq += 1
                ln.seq = seq
        s.total += len(new)
        self._keep(s, new)
        return new

    def _keep(self, s: SiteStream, new: list[Line]) -> None:
        """Add ``new`` to ``s.lines`` within ``max_lines`` per site and ``max_bytes`` overall."""
        added = _lines_size(new)
        lines = s.lines
        lines.extend(new)
        s.nbytes += added
        self.nbytes += added
        over = len(lines) - s.max_lines
        if over > 0:
            popleft = lines.popleft
            size = _lines_size([popleft() for _ in range(over)])
            s.nbytes -= size
            self.nbytes -= size
        if self.max_bytes and self.nbytes > self.max_bytes:
            self._shed(self.nbytes - self.max_bytes)

    def _shed(self, excess: int) -> None:
        """Drop the oldest lines of the sites holding the most memory until ``excess`` bytes are freed."""
        while excess > 0:
            biggest = max(self._sites.values(), key=lambda x: x.nbytes)
            if not biggest.lines:
                return
            # free a slice at a time: at most what brings this site down to the next biggest one
            goal = max(min(excess, biggest.nbytes // 4), 1)
            while goal > 0 and biggest.lines:
                old = biggest.lines.popleft()
                size = line_size(old.text, old.ts)
                biggest.nbytes -= size
                self.nbytes -= size
                goal -= size
                excess -= size

    def heartbeat(self, site: str) -> None:
        """The sender of ``site`` is alive (nothing new). Resets the idle clock."""
        with self._lock:
            s = self.site(site)
            if s.done:
                return
            s.last_alive = self._clock()

    def marker(self, site: str, text: str) -> None:
        """Insert a visible ``[flarenb] ...`` marker line (after flushing the partial line)."""
        with self._lock:
            s = self.site(site)
            if s.done:
                return
            new = self._flush(s)
            s.total += 1
            ln = Line(s.total, clean_text(str(text)), None, None, s.site, "marker")
            self._keep(s, [ln])
            self._emit(s, new + [ln])

    def flush(self, site: str) -> None:
        """Emit the partial line as a complete line and reset the decoder (new file / source)."""
        with self._lock:
            s = self.site(site)
            new = self._flush(s)
            if new:
                self._emit(s, new)

    def _flush(self, s: SiteStream) -> list[Line]:
        tail = s._decoder.decode(b"", final=True)
        s._decoder.reset()
        skipping, s._skipping = s._skipping, False
        if tail:
            s.pending += tail
        if not s.pending or s.done:
            s.pending = ""
            return []
        text, s.pending = s.pending, ""
        if skipping:
            return []
        return self._split(s, text + "\n")

    def set_unavailable(self, site: str, reason: str | None) -> None:
        """Mark ``site`` unavailable with ``reason`` (not terminal; data makes it available)."""
        with self._lock:
            s = self.site(site)
            if s.done or (s.state == UNAVAILABLE and s.reason == reason):
                return
            s.state, s.reason = UNAVAILABLE, reason
            s.last_alive = self._clock()
            self._emit(s, [])

    def clear_unavailable(self, site: str) -> None:
        """Undo ``set_unavailable`` (the cause went away): "waiting" if nothing came yet, else "quiet"."""
        with self._lock:
            s = self.site(site)
            if s.done or s.state != UNAVAILABLE:
                return
            s.state, s.reason = (QUIET if s.total else WAITING), None
            s.last_alive = self._clock()
            self._emit(s, [])

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
        """Close every open stream with state "stopped" (on_done fires for each) and the watchdog."""
        self.stop_watchdog()
        with self._lock:
            for name in list(self._sites):
                self._close(name, STOPPED, reason)

    def end_all(self, reason: str | None = None) -> None:
        with self._lock:
            for name in list(self._sites):
                self._close(name, ENDED, reason)

    def _close(self, site: str, state: str, reason: str | None) -> None:
        with self._lock:
            s = self.site(site)
            if s.done:  # exactly once, whatever thread got here first
                return
            new = self._flush(s)
            if s.state == UNAVAILABLE and reason is None:
                reason = s.reason
            s.state, s.reason = state, reason
            self._emit(s, new)
            if self._on_done is not None:
                try:
                    self._on_done(site, s)
                except Exception:
                    log.exception("flarenb log done callback failed")

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
                    self._close(s.site, TIMED_OUT, f"no data or heartbeat for {idle:.1f}s (sender vanished?)")
                elif s.state == LIVE and s.last_data is not None and now - s.last_data >= self.quiet_after:
                    s.state = QUIET
                    self._emit(s, [])

    def start_watchdog(self, period: float | None = None) -> None:
        """Run ``tick()`` every ``period`` s on a daemon thread until ``stop_watchdog()``."""
        if period is None:
            period = max(0.05, min(1.0, (self.idle_timeout or 3.0) / 3, self.quiet_after / 3))
        with self._lock:
            if self._watchdog is not None:
                return
            self._watchdog_stop.clear()
            t = threading.Thread(target=self._watch, args=(period,), name=f"flarenb-watchdog-{self.name}", daemon=True)
            self._watchdog = t
        t.start()

    def _watch(self, period: float) -> None:
        while not self._watchdog_stop.wait(period):
            self.tick()
            if self.all_done:
                return

    def stop_watchdog(self) -> None:
        with self._lock:
            t, self._watchdog = self._watchdog, None
        self._watchdog_stop.set()
        if t is not None and t is not threading.current_thread():
            t.join(5.0)  # bounded: tick() only waits for the receiver's lock


def _detect_fmt(parts: list[str]) -> str:
    for part in parts:
        p = part.strip()
        if p:
            if p[0] == "{":
                try:
                    if isinstance(json.loads(p), dict):
                        return "json"
                except ValueError:
                    pass
            return "text"
    return "auto"


def _json_lines(parts: list[str], s: SiteStream, cap: int) -> list[Line]:
    """log.json records -> Lines rendered as text (a multi-line message gives several lines)."""
    out = []
    site = s.site
    for p in parts:
        rec = None
        if p[:1] == "{":
            try:
                rec = json.loads(p)
            except ValueError:
                rec = None
        if isinstance(rec, dict):
            text = format_json_record(rec)
            level = rec.get("levelname") or rec.get("level")
            s.level = level if level in LEVELS else None
            ts = rec.get("asctime") or rec.get("timestamp") or rec.get("time") or None
            ts = clean_text(str(ts))[:MAX_TS_CHARS] if ts else None
            text = clean_text(text)
            for i, t in enumerate(text.split("\n")):
                out.append(Line(0, t[:cap], s.level, (ts and str(ts)) if i == 0 else None, site, "log", len(t) > cap))
        elif p.strip():
            clean = clean_text(p)
            out.append(Line(0, clean[:cap], s.level, None, site, "log", len(clean) > cap))
    return out
