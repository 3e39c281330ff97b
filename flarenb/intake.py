"""What a log view takes in, made safe: log lines, site names and job times from the receiver or a follower.

Text is made valid UTF-8 (lone surrogates become U+FFFD) and every field is capped (``ts``, site names, reasons),
so nothing a site sends can stop the view (:class:`flarenb.widget.LogView`). A line is a :class:`LogLine`, a
``(seq, text, level, ts)`` tuple, a mapping or an object with those attributes, or a plain string
(:func:`coerce_line`); a job time is epoch seconds, a ``datetime`` or an ISO 8601 string (:func:`to_epoch`), a
duration NVFlare's ``str(timedelta)`` (:func:`duration_seconds`); :func:`job_times` and :func:`site_state` are
what a status or site-state update sets.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from .safetext import cap, clean_text
from .vocab import is_terminal, norm_level

__all__ = [
    "MAX_REASON_CHARS",
    "MAX_SITES",
    "MAX_SITE_CHARS",
    "MAX_TS_CHARS",
    "OTHER_SITES",
    "LogLine",
    "coerce_line",
    "display_time",
    "duration_seconds",
    "job_times",
    "same_site_state",
    "site_name",
    "site_state",
    "to_epoch",
]

MAX_TS_CHARS = 64  # a line's timestamp field
MAX_SITE_CHARS = 128  # a site name
MAX_REASON_CHARS = 400  # a site state's reason, the view's problem
MAX_SITES = 500  # more site names than this (a misbehaving server) share one lane
OTHER_SITES = "(other sites)"


class LogLine(NamedTuple):
    """One log line of one site. ``seq`` increases by one per line of that site."""

    seq: int
    text: str
    level: str | None = None
    ts: str | None = None


def to_epoch(value: object) -> float | None:
    """Seconds since the epoch from a float/int, a ``datetime`` or an ISO 8601 string."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


_TIMEDELTA_RE = re.compile(r"^\s*(?:(-?\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)\s*$")


def duration_seconds(value: object) -> float | None:
    """Seconds of a duration as NVFlare's job meta writes it (``str(timedelta)``: ``0:00:09.334051``,
    ``1 day, 2:03:04``), or of a number; None for ``N/A`` and anything else."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _TIMEDELTA_RE.match(str(value)) if value is not None else None
    if m is None:
        return None
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def display_time(value: object) -> str | None:
    """A job time as the view's header shows it (``2024-05-01 12:00:00``); a string as it is."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (int, float)):
        return _dt.datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds")
    return str(value)


def site_name(site: object) -> str:
    """A site name as the view shows it: valid text, at most ``MAX_SITE_CHARS`` characters, never empty."""
    return cap(clean_text(str(site)), MAX_SITE_CHARS) or "(unnamed)"


def _seq(value: object, default: int) -> int:
    try:
        return default if value is None else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return default


def coerce_line(item: object, next_seq: int) -> LogLine:
    """``item`` as a :class:`LogLine` (see the module docstring); a line without a usable ``seq`` gets ``next_seq``."""
    if isinstance(item, LogLine):
        return item
    if isinstance(item, str):
        return LogLine(next_seq, item)
    if type(item) is tuple and len(item) == 4:  # the receiver's and the common case: no list built
        seq, text, level, ts = item
    elif isinstance(item, Mapping):
        seq, text = item.get("seq"), item.get("text", "")
        level, ts = item.get("level"), item.get("ts")
    elif hasattr(item, "text"):  # an object with attributes (e.g. the receiver's Line, whose ts is read by name)
        seq, text = getattr(item, "seq", None), item.text
        level, ts = getattr(item, "level", None), getattr(item, "ts", None)
    elif isinstance(item, (tuple, list)):
        seq, text, level, ts = (list(item) + [None, None, None, None])[:4]
    else:
        seq, text = getattr(item, "seq", None), getattr(item, "text", "")
        level, ts = getattr(item, "level", None), getattr(item, "ts", None)
    return LogLine(
        _seq(seq, next_seq),
        "" if text is None else clean_text(str(text).rstrip("\r\n")),
        norm_level(level),
        None if ts is None else cap(clean_text(str(ts)), MAX_TS_CHARS),
    )


def job_times(
    status: str,
    submit_time: object = None,
    start_time: object = None,
    end_time: object = None,
    duration: object = None,
    *,
    start_ts: float | None = None,
    end_ts: float | None = None,
    now: float,
) -> tuple[float | None, float | None]:
    """The ``(start, end)`` epoch seconds a status update sets (None: keep what the view has).

    ``start_ts``/``end_ts`` are what the view has. The start is ``start_time``, else — when the view has none —
    ``submit_time``. A finished job with a ``duration`` (NVFlare's ``str(timedelta)``, counted from its start) ends
    at start + duration, whenever it is looked at; else a finished status without ``end_time`` ends ``now``.
    """
    start = to_epoch(start_time)
    if start is None and start_ts is None:
        start = to_epoch(submit_time)
    known_start = start if start is not None else start_ts
    end = to_epoch(end_time)
    finished = is_terminal(status)
    took = duration_seconds(duration) if finished else None
    if end is None and took is not None and known_start is not None:
        end = known_start + took
    if end is None and finished and end_ts is None:
        end = now
    return start, end


def site_state(state: object, reason: object = None, quiet_for: float | None = None, *, now: float) -> dict[str, Any]:
    """A site's entry in the view's ``site_states``: ``{"state", "reason", "since"}``, capped; ``since`` is when a
    quiet period began (``quiet_for`` seconds before ``now``)."""
    return {
        "state": cap(clean_text(str(state)), 40),
        "reason": None if reason is None else cap(clean_text(str(reason)), MAX_REASON_CHARS),
        "since": now - float(quiet_for) if quiet_for is not None else None,
    }


def same_site_state(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """True when ``new`` says nothing ``old`` did not: same state and reason, and the quiet period did not restart
    (its start moved by less than 2 s) — the browser counts the quiet seconds itself."""
    if old is None or old.get("state") != new["state"] or old.get("reason") != new["reason"]:
        return False
    since = new["since"]
    return since is None or (old.get("since") is not None and abs(old["since"] - since) < 2.0)
