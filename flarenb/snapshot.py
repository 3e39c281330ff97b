"""The static snapshot of a log view: what a saved notebook keeps of a job's logs (``text/plain`` and ``text/html``).

Pure functions over plain data — the job's id, name and status, its sites and their states, the last lines of
each site — so the rendering is tested without a widget (:class:`flarenb.widget.LogView` passes its state in).

While the job is followed, the snapshot is the title only: what is on screen then is a moment of a live run. Once
following ended, it is the header (final status, problem, submit time, duration, site states) and the last
``tail`` lines of each site, server first. Remote text (site names, states, reasons, lines) passes
:func:`flarenb._text.terminal_safe` (no escape sequence or control character reaches a saved output) and is
escaped in the HTML; every log line starts with :data:`LINE_PREFIX`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from ._text import terminal_safe
from .vocab import site_order

__all__ = ["LINE_PREFIX", "Snapshot", "header", "render", "site_lines", "title"]

#: Prefix of every log line in the static snapshot (lets an nbval sanitizer mask log text, which a real
#: distributed run never reproduces byte for byte, while the snapshot's structure is still compared).
LINE_PREFIX = "│ "

NO_LINES = "(no lines)"


class _HasText(Protocol):
    @property
    def text(self) -> str: ...


Line = str | _HasText  # a line's text, or a line with its ``text`` (a :class:`flarenb.intake.LogLine`)


class Snapshot(NamedTuple):
    """A rendered snapshot: its header (may span two lines) and one block of text lines per site."""

    header: str
    blocks: list[tuple[str, list[str]]]

    def lines(self) -> list[str]:
        """The ``text/plain`` lines: the header, then ``===== site =====`` and the site's lines, per site."""
        out = [self.header]
        for site, lines in self.blocks:
            out.append(f"===== {site} =====")
            out.extend(lines)
        return out

    def text(self) -> str:
        """The ``text/plain`` output (no trailing newline)."""
        return "\n".join(self.lines())

    def html(self) -> str:
        """The ``text/html`` output: the same text, escaped, in ``<pre>`` blocks."""
        parts = [
            '<div class="flarenb-logview-static">',
            f"<pre><strong>{html.escape(self.header)}</strong></pre>",
        ]
        for site, site_lines in self.blocks:
            parts.append(f"<pre>===== {html.escape(site)} =====\n")
            parts.append(html.escape("\n".join(site_lines)))
            parts.append("</pre>")
        parts.append("</div>")
        return "".join(parts)


def title(job_id: str, job_name: str = "") -> str:
    """``flarenb job NAME (ID)``, or ``flarenb job ID`` without a name."""
    return f"flarenb job {job_name} ({job_id})" if job_name else f"flarenb job {job_id}"


def header(
    job_id: str,
    job_name: str = "",
    *,
    live: bool,
    status: str = "",
    problem: str | None = None,
    submit_time: str | None = None,
    duration: str | None = None,
    sites: Sequence[str] = (),
    site_states: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The snapshot's header (not yet made terminal-safe): the title and, once following ended, the final status,
    the problem, submit time and duration, and a second line with the state of each site that has one."""
    text = title(job_id, job_name)
    if live:
        text += " — following live; this snapshot is replaced when the job ends"
        return text + (f" — {problem}" if problem else "")
    text += f" — {status}"
    if problem:
        text += f" — {problem}"
    if submit_time:
        text += f" — submitted {submit_time}"
    if duration:
        text += f" — duration {duration}"
    states = []
    for site in sites:
        st = (site_states or {}).get(site)
        if st:
            label = str(st.get("state")) + (f" ({st['reason']})" if st.get("reason") else "")
            states.append(f"{site}: {label}")
    if states:
        text += "\nsites: " + " · ".join(states)
    return text


def site_lines(lines: Sequence[Line], tail: int, received: int | None = None, dropped: int = 0) -> list[str]:
    """The block of one site: its last ``tail`` lines (terminal-safe, prefixed), after a note of how many earlier
    lines there were (``received`` in all; ``dropped`` of them left the view's history), or ``(no lines)``."""
    n = min(max(0, int(tail)), len(lines))
    shown = [terminal_safe(_text(lines[i])) for i in range(len(lines) - n, len(lines))]
    older = (len(lines) if received is None else received) - len(shown)
    if older > 0:
        note = f" ({dropped} dropped from history: download for the complete log)" if dropped else ""
        shown.insert(0, f"… {older} earlier lines{note}")
    return [LINE_PREFIX + x for x in shown] or [NO_LINES]


def render(
    job_id: str,
    job_name: str = "",
    *,
    live: bool,
    status: str = "",
    problem: str | None = None,
    submit_time: str | None = None,
    duration: str | None = None,
    sites: Sequence[str] = (),
    site_states: Mapping[str, Mapping[str, Any]] | None = None,
    lines: Mapping[str, Sequence[Line]] | None = None,
    received: Mapping[str, int] | None = None,
    dropped: Mapping[str, int] | None = None,
    tail: int = 20,
) -> Snapshot:
    """The snapshot of a job's view (see the module docstring).

    ``lines`` holds each site's lines (texts, or lines with a ``text``), oldest first: the last ``tail`` are shown
    (passing only those is enough; the sequence is indexed from its end, so a ``deque`` is fine). ``received`` says
    how many lines each site sent in all (default: as many as given), ``dropped`` how many of them left the view's
    history. Sites are shown server first, then in natural order.
    """
    sites = site_order(sites)
    head = header(
        job_id,
        job_name,
        live=live,
        status=status,
        problem=problem,
        submit_time=submit_time,
        duration=duration,
        sites=sites,
        site_states=site_states,
    )
    if live:
        return Snapshot(terminal_safe(head), [])
    lines, received, dropped = lines or {}, received or {}, dropped or {}
    blocks = [
        (terminal_safe(site), site_lines(lines.get(site, ()), tail, received.get(site), dropped.get(site, 0)))
        for site in sites
    ]
    return Snapshot(terminal_safe(head), blocks)


def _text(line: Line) -> str:
    return line if isinstance(line, str) else line.text
