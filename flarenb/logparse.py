"""Log lines of one site: the :class:`Line` type and the parsing that turns text into lines (pure Python).

Used by :class:`flarenb.receiver.Receiver` (which owns the streams, their state and their subscribers).

* ``level`` is DEBUG/INFO/WARNING/ERROR/CRITICAL or None; continuation lines (tracebacks, ``print`` output)
  inherit the level of the last timestamped line; ``ts`` is the timestamp text of a timestamped line, else None
  (a timestamp that begins its line is sliced from the text when read, not stored twice: see :class:`Line`).
* A line longer than ``cap`` characters is cut and marked ``truncated=True``.
* ``log.json`` records (one JSON object per line, as written by nvflare's ``JsonFormatter``) are rendered like
  ``log.txt`` lines (``asctime - name - levelname - fl_ctx - message``, :func:`format_json_record`); a record's
  timestamp is capped at ``MAX_TS_CHARS``. :func:`detect_fmt` decides "json" or "text" on the first non-empty line.
* :class:`SiteStream` holds one site's parse state (decoder, partial line, format, level) and its lines.
* Memory of a line is about :func:`line_size` (its strings plus the object holding them); a stream counts it per
  batch (:func:`lines_size`, or the size of a log.txt chunk's text) and spreads a batch's bytes over its lines.
"""

import codecs
import collections
import json
import operator
import re
import sys
from collections.abc import Iterable
from itertools import compress, count, repeat
from typing import Any

from .safetext import clean_text
from .vocab import LEVELS, STREAM_TERMINAL_STATES, WAITING

__all__ = [
    "MAX_TS_CHARS",
    "Line",
    "SiteStream",
    "detect_fmt",
    "format_json_record",
    "json_lines",
    "line_size",
    "lines_size",
    "text_lines",
]

MAX_TS_CHARS = 64
_LINE_OVERHEAD = 120  # bytes: a Line object with its slots, beyond its strings


def line_size(text: str, ts: str | None = None) -> int:
    """Approximate memory of one line: its strings plus the object holding them."""
    return sys.getsizeof(text) + (sys.getsizeof(ts) if ts else 0) + _LINE_OVERHEAD


# Same timestamp shape as nvflare's job_cli._JOB_LOG_TS_RE, plus the level field of nvflare's
# "%(asctime)s - %(name)s - %(levelname)s - ..." formats (also the concise/verbose ones). This regex defines a
# line's ``ts`` and ``level``; the batch parsing below gives the same result faster.
_HEAD_RE = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)\]?"
    r"(?:(?: - [^\n]*?)? - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - )?"
)

# Batch parsing of log.txt lines. A line's outcome under _HEAD_RE depends only on its first _WINDOW characters
# in the common cases, and only on their shape, not on the digits: "2026-05-01 12:00:00,001 - Name - INFO - ..."
# and a traceback line '  File "x.py", line 12, in f' look the same whatever their numbers. So each line's
# window, with its ASCII digits made "0" (a key), is looked up in a per-stream cache of outcomes, all lines of a
# batch at once with C-level maps (no Python call per line):
# * a level name: the line starts with a standard 23-character timestamp (``ts = line[:23]``) and has that level;
# * _CONT: no timestamp (a continuation line: it inherits the level of the line before);
# * _SLOW: the window does not decide it (e.g. a very long logger name): _HEAD_RE is run on the line itself.
# The outcome of a key is computed once, by _HEAD_RE on the key itself (see _classify).
_WINDOW = 72
_WIN = operator.itemgetter(slice(0, _WINDOW))
_TS_CHARS = 23  # "2026-05-01 12:00:00,001"
_DIGITS_TO_0 = bytes.maketrans(b"0123456789", b"0" * 10)
_CONT = ""
_SLOW = False
_MAX_KEYS = 4096  # outcomes cached per stream (cleared when full)
_LONGEST_LEVEL = len(" - CRITICAL - ")


def _classify(window: str) -> str | bool:
    """The outcome (see above) of every line whose first ``_WINDOW`` characters, digits made "0", are
    ``window``. Digits are still digits for _HEAD_RE, so it matches the key as it matches such a line, except
    where characters beyond the window could change the result."""
    whole = len(window) < _WINDOW  # the window is the whole line
    m = _HEAD_RE.match(window)
    if m is None:  # the timestamp's fixed part (at most 20 characters) is not there
        return _CONT
    level = m.group(2)
    if m.span(1) != (0, _TS_CHARS) or level is None:
        return _SLOW  # another timestamp shape, or no level found in the window
    if whole:
        return level
    # _HEAD_RE takes the first " - LEVEL - " after "ts - " (else one right after ts, tried last): decided by the
    # window when every earlier candidate position has its longest possible match inside the window (always so
    # when the found match is: an overlapping candidate would end where it starts; kept as a cheap guard)
    at = m.start(2) - 3
    return level if at > m.end(1) + 1 and at + _LONGEST_LEVEL - 1 <= _WINDOW else _SLOW


_SEQ = operator.itemgetter(0)
_TEXT_OF = operator.itemgetter(1)
_LEVEL_OF = operator.itemgetter(2)
_TS_OF = operator.itemgetter(
    3
)  # a Line's stored ts: the timestamp text, None, or the length of ``text``'s prefix it is


class Line(tuple[Any, ...]):
    """One complete log line of one site: ``seq``, ``text``, ``level``, ``ts``, ``site``, ``kind`` ("log" or
    "marker"), ``truncated`` (its first four are a :class:`flarenb.intake.LogLine`'s). Read them by name.

    A timestamp that begins the line (nearly every nvflare line) is not stored as a string of its own: the tuple
    holds its length and :attr:`ts` slices it from ``text`` when asked. That saves a string per line (about 70
    bytes) and its creation in the receiver's hot path; the other fields are stored as given."""

    __slots__ = ()

    def __new__(
        cls,
        seq: int,
        text: str,
        level: str | None = None,
        ts: str | int | None = None,
        site: str = "",
        kind: str = "log",
        truncated: bool = False,
    ) -> "Line":
        if isinstance(ts, str) and ts and text.startswith(ts):
            ts = len(ts)  # the same canonical form the batch parser stores
        return tuple.__new__(cls, (seq, text, level, ts, site, kind, truncated))

    seq: int = property(_SEQ)  # type: ignore[assignment]
    text: str = property(_TEXT_OF)  # type: ignore[assignment]
    level: str | None = property(_LEVEL_OF)  # type: ignore[assignment]
    site: str = property(operator.itemgetter(4))  # type: ignore[assignment]
    kind: str = property(operator.itemgetter(5))  # type: ignore[assignment]
    truncated: bool = property(operator.itemgetter(6))  # type: ignore[assignment]

    @property
    def ts(self) -> str | None:
        """The timestamp text of a timestamped line, else None."""
        ts = self[3]
        return self[1][:ts] if ts.__class__ is int else ts

    def __repr__(self) -> str:
        return f"Line({self.site}#{self.seq} {self.level} {self.text!r}{' truncated' if self.truncated else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Line) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickling and copying rebuild the same tuple
        return tuple(self)

    __hash__ = None  # type: ignore[assignment]  # compared by value, not hashed (as when lines were mutable)


_new_line = tuple.__new__  # _new_line(Line, (seq, text, ...)): a Line without a Python-level call


def make_lines(
    seq: int, texts: Iterable[str], levels: Iterable[str | None], tss: Iterable[str | int | None], site: str
) -> list[Line]:
    """Lines of kind "log", not truncated, numbered from ``seq + 1`` (built with C-level maps); ``tss`` as
    :class:`Line` stores them (a timestamp that begins its text given as its length)."""
    return list(
        map(
            _new_line, repeat(Line), zip(count(seq + 1), texts, levels, tss, repeat(site), repeat("log"), repeat(False))
        )
    )


_STR_SIZE = sys.getsizeof("")
_TEXT_LINE_EXTRA = _STR_SIZE + _LINE_OVERHEAD  # a log.txt line's memory beyond its characters and a ts string


def lines_size(lines: list[Line]) -> int:
    """About ``sum(line_size(ln.text, ln.ts) for ln in lines)``, from the size of the batch's texts and
    timestamps joined (each character counted at the batch's widest character size), with C-level maps."""
    if not lines:
        return 0
    n = len(lines)
    tss = [ts for ts in map(_TS_OF, lines) if ts.__class__ is str and ts]  # timestamps stored as strings
    return (
        sys.getsizeof("".join(map(_TEXT_OF, lines)))
        + sys.getsizeof("".join(tss))
        + (n + len(tss) - 2) * _STR_SIZE
        + n * _LINE_OVERHEAD
    )


def format_json_record(record: dict[str, Any]) -> str:
    """Render one nvflare log.json record like a log.txt line (same as ``nvflare job logs``)."""
    asctime = record.get("asctime") or record.get("timestamp") or record.get("time") or ""
    name = record.get("name") or record.get("fullName") or ""
    level = record.get("levelname") or record.get("level") or ""
    fl_ctx = record.get("fl_ctx") or ""
    message = record.get("message") or record.get("msg") or ""
    parts = [str(p) for p in (asctime, name, level, fl_ctx, message) if p not in (None, "")]
    return " - ".join(parts) if parts else json.dumps(record, default=str)


def text_lines(
    site: str,
    seq: int,
    level: str | None,
    parts: list[str],
    cap: int,
    outcomes: dict[bytes, str | bool] | None = None,
    fit: bool = False,
) -> tuple[list[Line], str | None, int]:
    """``log.txt`` lines numbered from ``seq + 1``, the level the next continuation line inherits, and the memory
    of the timestamps stored as strings of their own (see :class:`Line`). ``outcomes``: the stream's cache of
    window outcomes (see _classify), kept from batch to batch; ``fit``: no part is longer than ``cap`` (known)."""
    if not fit and max(map(len, parts)) > cap:
        return _capped_lines(site, seq, level, parts, cap)
    if outcomes is None:
        outcomes = {}
    windows = list(map(_WIN, parts))
    keys = "\n".join(windows).encode("utf-8", "surrogatepass").translate(_DIGITS_TO_0).split(b"\n")
    levels: list[Any] = list(map(outcomes.get, keys))  # a level where the line has a standard ts and that level
    tss: list[Any] = [_TS_CHARS] * len(parts)  # a standard ts begins the line (the others are set below)
    ts_bytes = 0
    match = _HEAD_RE.match
    for i in list(compress(range(len(parts)), map(operator.not_, levels))):  # no cached level: few, usually
        lv = levels[i]
        if lv is None:  # a key not seen yet
            if len(outcomes) >= _MAX_KEYS:
                outcomes.clear()
            lv = outcomes[keys[i]] = _classify(keys[i].decode("utf-8", "surrogatepass"))
            if lv:
                levels[i] = lv
                continue
        if lv is _SLOW and (m := match(parts[i])) is not None:
            if m.start(1):  # "[ts] ...": a string of its own
                tss[i] = ts = m.group(1)
                ts_bytes += sys.getsizeof(ts)
            else:
                tss[i] = m.end(1)
            levels[i] = m.group(2)
        else:  # a continuation line
            tss[i] = None
            levels[i] = levels[i - 1] if i else level
    return make_lines(seq, parts, levels, tss, site), levels[-1], ts_bytes


def _capped_lines(
    site: str, seq: int, level: str | None, parts: list[str], cap: int
) -> tuple[list[Line], str | None, int]:
    """:func:`text_lines` of a batch with a line longer than ``cap``: that line is cut and marked."""
    out: list[Line] = []
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
            out.append(Line(seq, t[:cap], level, ts, site, "log", True))
        else:
            out.append(Line(seq, t, level, ts, site))
    return out, level, sum(sys.getsizeof(ts) for ln in out if (ts := ln[3]).__class__ is str)


def detect_fmt(parts: list[str]) -> str:
    """ "json" or "text" from the first non-empty line; "auto" (undecided) if there is none."""
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


def json_lines(parts: list[str], site: str, level: str | None, cap: int) -> tuple[list[Line], str | None]:
    """log.json records -> Lines rendered as text (a multi-line message gives several lines), not yet numbered
    (``seq`` 0), and the level the next continuation line inherits."""
    out = []
    for p in parts:
        rec = None
        if p[:1] == "{":
            try:
                rec = json.loads(p)
            except ValueError:
                rec = None
        if isinstance(rec, dict):
            text = format_json_record(rec)
            lv = rec.get("levelname") or rec.get("level")
            level = lv if lv in LEVELS else None
            ts = rec.get("asctime") or rec.get("timestamp") or rec.get("time") or None
            ts = clean_text(str(ts))[:MAX_TS_CHARS] if ts else None
            text = clean_text(text)
            for i, t in enumerate(text.split("\n")):
                out.append(Line(0, t[:cap], level, (ts and str(ts)) if i == 0 else None, site, "log", len(t) > cap))
        elif p.strip():
            clean = clean_text(p)
            out.append(Line(0, clean[:cap], level, None, site, "log", len(clean) > cap))
    return out, level


class SiteStream:
    """State of one site's stream. Read attributes freely; mutate only through the Receiver."""

    def __init__(self, site: str, max_lines: int, fmt: str, now: float) -> None:
        self.site = site
        self.lines: collections.deque[Line] = collections.deque(maxlen=max_lines)  # the last max_lines lines
        self.max_lines = max_lines
        self.nbytes = 0  # memory of ``lines`` (see lines_size)
        self._batches: collections.deque[list[int]] = collections.deque()  # [lines, bytes] of ``lines``, oldest first
        self._outcomes: dict[bytes, str | bool] = {}  # see text_lines
        self._sized: tuple[list[Line], int] | None = None  # the last log.txt batch split and its memory
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
        return self.state in STREAM_TERMINAL_STATES

    def __repr__(self) -> str:
        return f"SiteStream({self.site!r}, state={self.state!r}, lines={self.total}, dropped={self.dropped})"

    def decode(self, data: bytes | bytearray | memoryview | str) -> str:
        """Text of a chunk (bytes through the incremental decoder, ``errors="replace"``: never a surrogate)."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._decoder.decode(data)
        return clean_text(str(data))

    def split(self, text: str, cap: int) -> list[Line]:
        """The complete lines of the partial line + ``text``, numbered after ``total`` (the caller stores them);
        the rest becomes the partial line."""
        if self.pending:
            text = self.pending + text
        if "\r" in text:
            text = text.replace("\r\n", "\n")  # pending never holds a "\n": same as stripping each line's "\r"
        parts = text.split("\n")
        tail = parts.pop()
        if self._skipping:
            if parts:  # the over-long line ends in this chunk
                del parts[0]
                self._skipping = False
            else:
                tail = ""
        if len(tail) > cap:  # an over-long partial line: emit its head now, skip the rest
            parts.append(tail[:-1] if tail[-1] == "\r" else tail)
            tail = ""
            self._skipping = True
        self.pending = tail
        if not parts:
            return []
        if self.fmt != "text":
            if self.fmt == "auto":
                self.fmt = detect_fmt(parts)
            if self.fmt == "json":
                new, self.level = json_lines(parts, self.site, self.level, cap)
                return [Line(seq, *ln[1:]) for seq, ln in enumerate(new, self.total + 1)]
        new, self.level, ts_bytes = text_lines(
            self.site, self.total, self.level, parts, cap, self._outcomes, fit=len(text) <= cap
        )
        # their memory, about: the text they came from, an object per line and the timestamps stored apart
        self._sized = (new, sys.getsizeof(text) + len(new) * _TEXT_LINE_EXTRA + ts_bytes)
        return new

    def keep(self, new: list[Line]) -> int:
        """Store ``new`` (the lines after ``total``) within ``max_lines``; returns the change of ``nbytes``."""
        n = len(new)
        if not n:
            return 0
        sized, self._sized = self._sized, None
        size = sized[1] if sized is not None and sized[0] is new else lines_size(new)
        self.total += n
        self._batches.append([n, size])
        over = len(self.lines) + n - self.max_lines
        self.lines.extend(new)  # a deque with maxlen: as many of the oldest lines leave
        change = size - (self._forget(over) if over > 0 else 0)
        self.nbytes += change
        return change

    def shed(self, goal: int) -> int:
        """Drop the oldest lines until at least ``goal`` bytes are freed (or no line is left); returns the bytes
        freed."""
        k = 0
        for n, size in self._batches:
            if size < goal:
                k, goal = k + n, goal - size
            else:
                k += max(1, -(-goal * n // size))  # enough of this batch's lines (its bytes spread evenly)
                break
        k = min(k, len(self.lines))
        popleft = self.lines.popleft
        for _ in range(k):
            popleft()
        freed = self._forget(k)
        self.nbytes -= freed
        return freed

    def _forget(self, k: int) -> int:
        """The bytes of the ``k`` oldest lines, which left ``lines``: a batch's bytes are spread over its lines."""
        freed = 0
        batches = self._batches
        while k > 0 and batches:
            rec = batches[0]
            n, size = rec
            if k >= n:
                batches.popleft()
                freed += size
                k -= n
            else:
                part = size * k // n
                rec[0], rec[1] = n - k, size - part
                freed += part
                k = 0
        return freed

    def flush_pending(self, cap: int) -> list[Line]:
        """The partial line as a complete line (unless closed or being skipped); resets the decoder."""
        tail = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        skipping, self._skipping = self._skipping, False
        if tail:
            self.pending += tail
        if not self.pending or self.done:
            self.pending = ""
            return []
        text, self.pending = self.pending, ""
        if skipping:
            return []
        return self.split(text + "\n", cap)
