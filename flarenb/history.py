"""The kernel-side history of one live view, bounded in bytes (pure: no widget, no threads).

A view keeps the lines it was given so that the static snapshot, :meth:`LogView.lines` and the fallback download
have them. A long job can write gigabytes; :class:`History` keeps at most ``max_lines`` lines per site and
``max_bytes`` bytes for all sites together (memory of the Python objects, see :func:`line_size`). When over, the
site holding the most memory gives up its oldest lines first (a chatty site does not evict a quiet one's lines),
and ``dropped[site]`` says how many left — shown as "N lines dropped from history", never silently.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

__all__ = ["DEFAULT_HISTORY_BYTES", "History", "line_size"]

DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024
_LINE_OVERHEAD = 112  # bytes: the line tuple, its seq and its slot in the deque


def line_size(line: Any) -> int:
    """Approximate memory of one line (``.text`` and ``.ts`` strings plus the object holding them)."""
    ts = line.ts
    return sys.getsizeof(line.text) + (sys.getsizeof(ts) if ts else 0) + _LINE_OVERHEAD


class History:
    """Per-site lines within a line count per site and a byte budget overall. Not thread-safe (the view locks)."""

    def __init__(self, max_bytes: int = DEFAULT_HISTORY_BYTES, max_lines: int = 200_000) -> None:
        self.max_bytes = int(max_bytes)
        self.max_lines = int(max_lines)
        self.lines: dict[str, deque[Any]] = {}
        self.site_bytes: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.nbytes = 0

    def ensure(self, site: str) -> None:
        if site not in self.lines:
            self.lines[site] = deque()
            self.site_bytes[site] = 0
            self.dropped[site] = 0

    def add(self, site: str, line: Any) -> None:
        """Keep ``line`` of ``site`` (``ensure(site)`` first), dropping the oldest lines when over a limit."""
        size = line_size(line)
        lines = self.lines[site]
        lines.append(line)
        self.site_bytes[site] += size
        self.nbytes += size
        if len(lines) > self.max_lines:
            self._pop(site)
        if self.nbytes > self.max_bytes:
            self._shed()

    def _pop(self, site: str) -> None:
        size = line_size(self.lines[site].popleft())
        self.site_bytes[site] -= size
        self.nbytes -= size
        self.dropped[site] += 1

    def _shed(self) -> None:
        """Free about an eighth of the budget at once (so eviction is rare), largest site first."""
        target = self.max_bytes - max(1, self.max_bytes // 8)
        while self.nbytes > target:
            site = max(self.site_bytes, key=self.site_bytes.__getitem__)
            if not self.lines[site]:
                return
            goal = self.site_bytes[site] - max(1, (self.nbytes - target) // 2)
            while self.lines[site] and self.site_bytes[site] > goal and self.nbytes > target:
                self._pop(site)
