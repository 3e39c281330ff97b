"""Search a live view's kernel-side history for the browser (pure: no widget, no threads).

Under a log flood the browser holds only part of the lines (the kernel's message budget turns the rest into skip
markers, and the browser keeps the newest lines of each site), but the kernel's :class:`~flarenb.history.History`
still has them. The browser asks::

    {"kind": "search", "request_id": str, "query": str, "min_level": str | None, "first_error": bool,
     "sites": [str] | None, "held": {site: [[first_seq, last_seq], ...]}}

``held`` lists the runs of lines the browser already shows, which the search leaves out. :func:`answer` replies::

    {"kind": "search_result", "request_id": str, "first_error": bool, "lines": [[site, seq, text, level, ts], ...],
     "matches": int, "truncated": bool, "dropped": int, "error": str | None}

``lines`` are matches not held by the browser (a search: case-insensitive substring of the text without escape
sequences, at the ``min_level`` or above; ``first_error``: each site's first ERROR/CRITICAL line or traceback, held
or not), oldest first, at most ``MAX_RESULTS`` and ``budget`` wire bytes; ``matches`` counts them all,
``truncated`` says the list is cut, ``dropped`` counts the lines that left the kernel's history too (only the
download has them). Text is plain text (never markup), cut like the line messages.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._text import _SEQUENCE
from .safetext import cap, clean_text, wire_size
from .vocab import LEVEL_RANK, norm_level

__all__ = ["MAX_QUERY_CHARS", "MAX_RESULTS", "answer", "is_error", "parse_request"]

MAX_RESULTS = 200  # lines in one reply
MAX_QUERY_CHARS = 500
MAX_RUNS = 5_000  # held runs per site taken from a request
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
_ERROR_RANK = LEVEL_RANK["ERROR"]


def is_error(level: str | None, text: str) -> bool:
    """An ERROR/CRITICAL line or the start of a Python traceback (the front end's ``isErrorLine``)."""
    return level in ("ERROR", "CRITICAL") or _TRACEBACK.search(text) is not None


def _plain(text: str) -> str:
    return _SEQUENCE.sub("", text) if "\x1b" in text else text


def _runs(value: object) -> list[tuple[int, int]]:
    """Sorted ``(first, last)`` seq runs from a request (anything malformed is left out)."""
    runs: list[tuple[int, int]] = []
    if isinstance(value, list):
        for item in value[:MAX_RUNS]:
            if isinstance(item, list) and len(item) == 2 and all(type(x) is int for x in item) and item[0] <= item[1]:
                runs.append((item[0], item[1]))
    runs.sort()
    return runs


def parse_request(content: Mapping[str, Any], known_sites: Sequence[str]) -> dict[str, Any]:
    """The fields of a browser's ``search`` message, checked and capped (it comes from a page, not trusted)."""
    sites = content.get("sites")
    wanted = [s for s in sites if isinstance(s, str)] if isinstance(sites, list) else None
    held = content.get("held")
    held = held if isinstance(held, dict) else {}
    query = content.get("query")
    return {
        "request_id": cap(str(content.get("request_id") or ""), 100),
        "query": cap(clean_text(query), MAX_QUERY_CHARS) if isinstance(query, str) else "",
        "min_level": norm_level(content.get("min_level")),
        "first_error": content.get("first_error") is True,
        "sites": [s for s in known_sites if wanted is None or s in wanted],
        "held": {s: _runs(held.get(s)) for s in known_sites},
    }


def _held(runs: list[tuple[int, int]], seq: int) -> bool:
    i = bisect.bisect_right(runs, (seq, float("inf"))) - 1
    return i >= 0 and runs[i][0] <= seq <= runs[i][1]


def _matcher(req: Mapping[str, Any]):
    needle = req["query"].lower()
    min_rank = LEVEL_RANK[req["min_level"]] if req["min_level"] else 0

    def match(line: Any) -> bool:
        if min_rank:
            rank = LEVEL_RANK[line.level] if line.level else _ERROR_RANK if is_error(None, line.text) else 0
            if rank < min_rank:
                return False
        return not needle or needle in _plain(line.text).lower()

    return match


def answer(
    req: Mapping[str, Any],
    history: Mapping[str, Sequence[Any]],
    dropped: Mapping[str, int],
    *,
    max_chars: int,
    budget: int,
) -> dict[str, Any]:
    """The ``search_result`` for a :func:`parse_request` over ``history`` (``{site: lines in seq order}``, the
    lines :class:`~flarenb.intake.LogLine`-like); ``dropped``: lines per site that left the history."""
    found: list[tuple[str, Any]] = []
    matches = 0
    error = None
    sites = req["sites"]
    if req["first_error"]:
        for site in sites:
            line = next((x for x in history.get(site, ()) if is_error(x.level, x.text)), None)
            if line is not None:
                found.append((site, line))
        matches = len(found)
    elif not req["query"] and not req["min_level"]:
        error = "nothing to search for"
    else:
        match = _matcher(req)
        for site in sites:
            runs = req["held"].get(site, [])
            for line in history.get(site, ()):
                if match(line) and not (runs and _held(runs, line.seq)):
                    matches += 1
                    if len(found) < MAX_RESULTS * len(sites):
                        found.append((site, line))
        # oldest first over all sites (a stable sort: each site keeps its own order)
        found.sort(key=lambda item: item[1].ts or "")
    lines: list[list[Any]] = []
    used = 512
    for site, line in found[:MAX_RESULTS]:
        text = line.text
        if len(text) > max_chars:
            text = f"{text[:max_chars]} … [{len(text) - max_chars} more characters in the download]"
        row = [site, line.seq, text, line.level, line.ts]
        size = wire_size(row) + 2
        if used + size > budget:
            break
        lines.append(row)
        used += size
    return {
        "kind": "search_result",
        "request_id": req["request_id"],
        "first_error": req["first_error"],
        "lines": lines,
        "matches": matches,
        "truncated": len(lines) < matches,
        "dropped": sum(dropped.get(s, 0) for s in sites),
        "error": error,
    }
