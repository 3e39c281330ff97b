"""The words every layer shares, defined once (pure: no UI, no nvflare import).

* job statuses: :data:`TERMINAL_PREFIXES`, :func:`is_terminal`;
* log levels: :data:`LEVELS`, :data:`LEVEL_ALIASES`, :data:`LEVEL_RANK`, :func:`norm_level`;
* site states: a log stream's (:data:`STREAM_STATES`, the receiver's) and the widget's (:data:`VIEW_STATES`), with
  :data:`VIEW_STATE_OF` translating one into the other;
* sites: :data:`SERVER`, :func:`server_first` (server first, others as given) and :func:`site_order` (server first,
  then natural order);
* :func:`one_line` — an error (or any value) as one line of text.

The front end's copy is ``js/src/vocab.ts``: its constants between the ``vocab:begin``/``vocab:end`` markers are
plain JSON literals, and ``tests/test_vocab_parity.py`` checks they equal :data:`FRONT_END`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = [
    "DONE",
    "ENDED",
    "FRONT_END",
    "LEVELS",
    "LEVEL_ALIASES",
    "LEVEL_RANK",
    "LIVE",
    "QUIET",
    "SERVER",
    "SILENT",
    "STOPPED",
    "STREAMING",
    "STREAM_STATES",
    "STREAM_TERMINAL_STATES",
    "TERMINAL_PREFIXES",
    "TIMED_OUT",
    "UNAVAILABLE",
    "VIEW_STATES",
    "VIEW_STATE_OF",
    "WAITING",
    "is_terminal",
    "norm_level",
    "one_line",
    "server_first",
    "site_order",
]

# -- job statuses ---------------------------------------------------------------------------------------------
#: A job whose status starts with one of these (any case) has ended, whatever the outcome. NVFlare 2.9's statuses
#: all start with "FINISHED" (``RunStatus``); the others are its legacy terminal statuses
#: (``flare_api._LEGACY_TERMINAL_JOB_STATUSES``). tests/test_vocab_parity.py checks both against NVFlare.
TERMINAL_PREFIXES = ("FINISHED", "FAILED", "ABORTED", "ABANDONED")


def is_terminal(status: object) -> bool:
    """True for the status of a job that has ended ('FINISHED:COMPLETED', 'FINISHED:ABORTED', 'FAILED', ...)."""
    if status is None:
        return False
    text = status if isinstance(status, str) else str(status)
    return text.upper().startswith(TERMINAL_PREFIXES)


# -- log levels -----------------------------------------------------------------------------------------------
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: other spellings of a level seen in logs
LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "EXCEPTION": "ERROR"}
#: the level filter's order: Python's logging numbers
LEVEL_RANK: dict[str, int] = {name: int(logging.getLevelName(name)) for name in LEVELS}


def norm_level(level: object) -> str | None:
    """One of :data:`LEVELS` for ``level`` (any case, aliases resolved), else None."""
    if level is None or level == "":
        return None
    name = str(level).upper()
    name = LEVEL_ALIASES.get(name, name)
    return name if name in LEVELS else None


# -- site states ----------------------------------------------------------------------------------------------
# A log stream's state (receiver.SiteStream). The terminal ones never change again.
WAITING, LIVE, QUIET, UNAVAILABLE = "waiting", "live", "quiet", "unavailable"
ENDED, TIMED_OUT, STOPPED = "ended", "timed_out", "stopped"
STREAM_STATES = (WAITING, LIVE, QUIET, UNAVAILABLE, ENDED, TIMED_OUT, STOPPED)
STREAM_TERMINAL_STATES = frozenset((ENDED, TIMED_OUT, STOPPED))

# A site's state as the widget shows it (LogView.set_site_state; the front end's SiteState.state).
SILENT, STREAMING, DONE = "silent", "streaming", "done"
#: ``{name: value}``; "quiet" and "unavailable" are the same words as the stream's
VIEW_STATES = {"SILENT": SILENT, "STREAMING": STREAMING, "QUIET": QUIET, "DONE": DONE, "UNAVAILABLE": UNAVAILABLE}
#: the widget's state of a stream's state (a stream that timed out or was stopped did not end: "unavailable")
VIEW_STATE_OF = {
    WAITING: SILENT,
    LIVE: STREAMING,
    QUIET: QUIET,
    UNAVAILABLE: UNAVAILABLE,
    ENDED: DONE,
    TIMED_OUT: UNAVAILABLE,
    STOPPED: UNAVAILABLE,
}

# -- sites ----------------------------------------------------------------------------------------------------
SERVER = "server"
_DIGITS = re.compile(r"([0-9]+)")  # ASCII digits only: str.isdigit() is also true for "²", which int() refuses


def server_first(sites: Iterable[str]) -> list[str]:
    """The server first, the other sites in the order given."""
    return sorted(sites, key=lambda s: s != SERVER)


def site_order(sites: Iterable[str]) -> list[str]:
    """Server first, then the others in natural order (site-2 before site-10); duplicates removed."""

    def key(s: str) -> tuple[int, list[tuple[int, int, str]]]:
        parts = [(0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p) for p in _DIGITS.split(s) if p]
        return (0 if s == SERVER else 1, parts)

    return sorted(dict.fromkeys(sites), key=key)


# -- text -----------------------------------------------------------------------------------------------------
def one_line(value: object, limit: int | None = None) -> str:
    """``value`` as one line: every run of whitespace (newlines too) is one space; an exception without a message
    is its class name; longer than ``limit`` characters is cut, ending with " …"."""
    text = " ".join(str(value).split())
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    return text if limit is None or len(text) <= limit else text[:limit] + " …"


#: the constants js/src/vocab.ts holds (tests/test_vocab_parity.py)
FRONT_END = {
    "TERMINAL_PREFIXES": list(TERMINAL_PREFIXES),
    "LEVELS": list(LEVELS),
    "LEVEL_ALIASES": LEVEL_ALIASES,
    "LEVEL_RANK": LEVEL_RANK,
    "VIEW_STATES": VIEW_STATES,
}
