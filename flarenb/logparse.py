"""Log lines of one site: the :class:`Line` type and the parsing that turns text into lines (pure Python).

Used by :class:`flarenb.receiver.Receiver` (which owns the streams, their state and their subscribers).

* ``level`` is DEBUG/INFO/WARNING/ERROR/CRITICAL or None; continuation lines (tracebacks, ``print`` output)
  inherit the level of the last timestamped line; ``ts`` is the timestamp text of a timestamped line, else None.
* A line longer than ``cap`` characters is cut and marked ``truncated=True``.
* ``log.json`` records (one JSON object per line, as written by nvflare's ``JsonFormatter``) are rendered like
  ``log.txt`` lines (``asctime - name - levelname - fl_ctx - message``, :func:`format_json_record`); a record's
  timestamp is capped at ``MAX_TS_CHARS``. :func:`detect_fmt` decides "json" or "text" on the first non-empty line.
* :class:`SiteStream` holds one site's parse state (decoder, partial line, format, level) and its lines.
* Memory of a line is measured by :func:`line_size` (its strings plus the object holding them).
"""

import codecs
import collections
import json
import operator
import re
import sys
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


def lines_size(lines: list[Line]) -> int:
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


def format_json_record(record: dict[str, Any]) -> str:
    """Render one nvflare log.json record like a log.txt line (same as ``nvflare job logs``)."""
    asctime = record.get("asctime") or record.get("timestamp") or record.get("time") or ""
    name = record.get("name") or record.get("fullName") or ""
    level = record.get("levelname") or record.get("level") or ""
    fl_ctx = record.get("fl_ctx") or ""
    message = record.get("message") or record.get("msg") or ""
    parts = [str(p) for p in (asctime, name, level, fl_ctx, message) if p not in (None, "")]
    return " - ".join(parts) if parts else json.dumps(record, default=str)


def text_lines(site: str, seq: int, level: str | None, parts: list[str], cap: int) -> tuple[list[Line], str | None]:
    """``log.txt`` lines numbered from ``seq + 1``, and the level the next continuation line inherits."""
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
        return out, level
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
    return out, level


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
        parts = text.split("\n")
        tail = parts.pop()
        if self._skipping:
            if parts:  # the over-long line ends in this chunk
                del parts[0]
                self._skipping = False
            else:
                tail = ""
        if len(tail) > cap:  # an over-long partial line: emit its head now, skip the rest
            parts.append(tail)
            tail = ""
            self._skipping = True
        self.pending = tail
        if not parts:
            return []
        if "\r" in text:
            parts = [p[:-1] if p.endswith("\r") else p for p in parts]
        if self.fmt != "text":
            if self.fmt == "auto":
                self.fmt = detect_fmt(parts)
            if self.fmt == "json":
                new, self.level = json_lines(parts, self.site, self.level, cap)
                seq = self.total
                for ln in new:
                    seq += 1
                    ln.seq = seq
                return new
        new, self.level = text_lines(self.site, self.total, self.level, parts, cap)
        return new

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
