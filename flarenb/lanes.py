"""The per-site lanes of a log view: each site's lines taken in, kept for the download, queued for the browser.

A :class:`Lanes` joins the kernel-side :class:`~flarenb.history.History` (bounded in bytes and lines) and the
:class:`~flarenb.outbox.Outbox` (what waits for the browser) and keeps, per lane, the last ``seq`` taken and how
many lines were taken in all. Lines whose ``seq`` is not above the last one are duplicates and ignored; a line's
text for the browser is cut at ``max_line_chars`` (the history, hence the download, keeps it whole). More than
``MAX_SITES`` site names (a misbehaving server) share one lane, ``OTHER_SITES``, each line prefixed with its site.

Pure (no widget, no thread) and not thread-safe: :class:`flarenb.widget.LogView` holds its lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .history import History
from .intake import MAX_SITES, OTHER_SITES, LogLine, coerce_line
from .outbox import Outbox

__all__ = ["Lanes"]


class Lanes:
    """Per-site lines in the history and the outbox, with each lane's last seq and count (see the module doc)."""

    def __init__(self, history: History, out: Outbox, max_line_chars: int = 8_000, max_sites: int = MAX_SITES) -> None:
        self.history = history
        self.out = out
        self.max_line_chars = int(max_line_chars)
        self.max_sites = int(max_sites)
        self.last_seq: dict[str, int] = {}
        self.counts: dict[str, int] = {}  # {lane: lines taken in}

    def ensure(self, site: str) -> tuple[str, bool]:
        """The lane of ``site`` (a clean name), registered if new: ``(lane, True)`` when it was just added."""
        lanes = self.history.lines
        if site in lanes:
            return site, False
        if len(lanes) >= self.max_sites:
            site = OTHER_SITES
            if site in lanes:
                return site, False
        self.history.ensure(site)
        self.out.pending.setdefault(site, deque())
        self.out.skipped.setdefault(site, 0)
        self.counts[site] = 0
        return site, True

    def add(self, lane: str, site: str, lines: Iterable[object]) -> int:
        """Take in ``lines`` of ``site`` into ``lane`` (from :meth:`ensure`); returns how many were taken."""
        prefix = f"[{site}] " if lane != site else ""  # a site beyond max_sites, in the shared lane
        hist, out, cap_chars = self.history, self.out, self.max_line_chars
        last = self.last_seq.get(lane, 0)
        accepted = 0
        for item in lines:
            line = coerce_line(item, last + 1)
            if prefix:
                line = LogLine(last + 1, prefix + line.text, line.level, line.ts)
            if line.seq <= last:
                continue
            last = line.seq
            hist.add(lane, line)
            text = line.text
            if len(text) > cap_chars:
                text = f"{text[:cap_chars]} … [{len(text) - cap_chars} more characters in the download]"
            out.add(lane, [line.seq, text, line.level, line.ts])
            accepted += 1
        self.last_seq[lane] = last
        self.counts[lane] += accepted
        return accepted
