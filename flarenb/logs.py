"""Snapshot of a job's logs: what ``%flare logs JOB_ID`` and ``job.logs(...)`` show.

``get_logs(fetch, job_id, site="server", tail=None, since=None, max_bytes=None, fmt="text")``
matches ``nvflare job logs`` (``nvflare/tool/job/job_cli.py``, whose helpers it reuses):

* ``site``: "server" (default), "all" or a client name;
* bounds, applied per site in the order since -> tail -> max_bytes: ``since`` keeps lines at or
  after a timestamp (continuation lines after a kept timestamped line are kept), ``tail`` the
  last N lines, ``max_bytes`` the last N bytes; with no bound at all, the last 500 lines;
* ``fetch(target, log_file_name=...)`` wraps ``Session.get_job_logs(job_id, target=...,
  log_file_name=...)``. Like the CLI, text output asks for ``log.txt`` (``log.json`` rendered as
  text as a fallback) and ``fmt="json"`` for ``log.json`` (``log.txt`` as fallback). A
  ``fetch(target)`` without ``log_file_name`` is accepted too (no fallback then).

``fmt="text"`` returns a :class:`JobLogs`; ``fmt="json"`` returns the dict the CLI prints as
``data`` in ``nvflare --format json job logs``: ``job_id``, ``target``, ``logs``,
``logs_truncated``, ``sites`` (``{site: {available, lines, bytes, logs_truncated}}`` or
``{available: False, reason}``), ``filters`` (``tail``, ``since``, ``since_applied``,
``max_bytes``, ``default_tail_applied``) and ``unavailable`` when some site has no log.

Bad input raises :class:`LogsInputError` (a ``ValueError`` and a ``flarenb.errors.FlareError``)
whose message is one line saying what to do. ``fetch``'s own exceptions (``JobNotFound``,
connection errors) propagate unchanged.
"""

import html
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from . import _nvflare
from ._text import terminal_safe
from .errors import FlareError
from .vocab import one_line, server_first

__all__ = ["DEFAULT_TAIL", "JobLogs", "LogsInputError", "get_logs", "validate_bound"]

DEFAULT_TAIL = 500  # nvflare's _DEFAULT_JOB_LOG_TAIL_LINES


class LogsInputError(FlareError, ValueError):
    """Invalid ``%flare logs`` / ``job.logs()`` input; ``str(e)`` is one line with the fix."""


def validate_bound(name: str, value: Any, example: str) -> int | None:
    """``value`` as a non-negative int (None stays None), else LogsInputError."""
    if value is None:
        return None
    if isinstance(value, bool):
        ok = False
    elif isinstance(value, int):
        ok = value >= 0
    elif isinstance(value, str) and re.fullmatch(r"\s*\+?\d+\s*", value):
        value, ok = int(value), True
    else:
        ok = False
    if not ok:
        raise LogsInputError(
            f"--{name} must be a non-negative integer, got {one_line(value)!r}",
            f"Example: {example}",
        )
    return value


def _call_fetch(fetch: Callable[..., dict], target: str, log_file_name: str) -> tuple[dict, bool]:
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(fetch).parameters
    except (TypeError, ValueError):
        params = {}
    accepts = "log_file_name" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    if accepts:
        return fetch(target, log_file_name=log_file_name), True
    return fetch(target), False


def check_flags(
    job_id: str,
    site: Any = "server",
    tail: Any = None,
    since: Any = None,
    max_bytes: Any = None,
    fmt: str = "text",
) -> tuple[str, int | None, Any, int | None]:
    """The flags of :func:`get_logs`, validated before anything is asked of a server: ``(site, tail, since_ts,
    max_bytes)``, or a one-line :class:`LogsInputError`."""
    if fmt not in ("text", "json"):
        raise LogsInputError(f"fmt must be 'text' or 'json', got {fmt!r}", "Example: job.logs(fmt='json')")
    if not isinstance(site, str) or not site.strip():
        raise LogsInputError(
            f"--site must be 'server', 'all' or a site name, got {site!r}",
            f"Example: %flare logs {job_id} --site all",
        )
    site = site.strip()
    tail = validate_bound("tail", tail, f"%flare logs {job_id} --tail 20")
    max_bytes = validate_bound("max-bytes", max_bytes, f"%flare logs {job_id} --max-bytes 65536")
    since_ts = None
    if since is not None:
        try:
            since_ts = _nvflare.normalize_log_timestamp(str(since))
        except (ValueError, OverflowError):  # OverflowError: a date out of range once converted to UTC
            raise LogsInputError(
                "--since must be a timestamp like 2026-04-28T10:00:00 or 2026-04-28T10:00:00Z,"
                f" got {one_line(since)!r}",
                f"Example: %flare logs {job_id} --since 2026-04-28T10:00:00",
            ) from None
    return site, tail, since_ts, max_bytes


def get_logs(
    fetch: Callable[..., dict],
    job_id: str,
    site: Any = "server",
    tail: Any = None,
    since: Any = None,
    max_bytes: Any = None,
    fmt: str = "text",
) -> "dict[str, Any] | JobLogs":
    """One snapshot of ``job_id``'s logs with the ``nvflare job logs`` semantics (module doc)."""
    site, tail, since_ts, max_bytes = check_flags(job_id, site, tail, since, max_bytes, fmt)
    since_value = str(since) if since is not None else None
    default_tail_applied = tail is None and since is None and max_bytes is None
    if default_tail_applied:
        tail = _nvflare.default_job_log_tail_lines()

    json_mode = fmt == "json"
    result, fallback_ok = _call_fetch(fetch, site, _nvflare.preferred_job_log_file(json_mode))
    if fallback_ok and _nvflare.job_log_result_needs_fallback(result, site):
        fallback, _ = _call_fetch(fetch, site, _nvflare.fallback_job_log_file(json_mode))
        result = _nvflare.merge_job_log_fallback_result(result, fallback)

    logs = _nvflare.select_job_logs_for_output(result, json_mode)
    unavailable = dict(result.get("unavailable") or {})
    if site not in ("all", "server") and site in unavailable and site not in logs:
        raise LogsInputError(
            f"No log for site {site!r} of job {job_id}: {one_line(unavailable[site])}",
            f"Run %flare logs {job_id} --site all to see which sites have logs",
        )
    logs, sites, logs_truncated, since_applied = _nvflare.apply_job_log_bounds(logs, tail, since_ts, max_bytes)
    for name, reason in unavailable.items():
        sites[name] = {"available": False, "reason": reason}
    data = {"job_id": job_id, "target": site, "logs": logs, "logs_truncated": logs_truncated, "sites": sites}
    data["filters"] = {
        "tail": tail,
        "since": since_value,
        "since_applied": since_applied,
        "max_bytes": max_bytes,
        "default_tail_applied": default_tail_applied,
    }
    if unavailable:
        data["unavailable"] = unavailable
    if json_mode:
        return data
    return JobLogs(data)


class JobLogs:
    """Per-site log text and unavailable reasons of one snapshot.

    ``str()`` is the CLI's human output (``===== site =====`` blocks, then "Unavailable logs:");
    ``_repr_html_`` shows one block per site with the log text HTML-escaped. ``.data`` is the
    CLI JSON ``data`` dict; ``.logs`` / ``.unavailable`` / ``.sites`` / ``.filters`` its parts.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.job_id = data["job_id"]
        self.target = data["target"]
        self.logs = data["logs"]
        self.unavailable = data.get("unavailable", {})
        self.sites = data["sites"]
        self.filters = data["filters"]
        self.logs_truncated = data["logs_truncated"]
        #: one line saying where the logs came from when not from the server's log API (e.g. the job's download)
        self.source: str | None = None

    def site_order(self) -> list[str]:
        return server_first(self.logs)

    def __getitem__(self, site: str) -> str:
        return self.logs[site]

    def text(self) -> str:
        """The CLI's human output, with terminal escape sequences and control characters neutralised."""
        return str(self)

    def __str__(self) -> str:
        return terminal_safe(self._plain())

    def _plain(self) -> str:
        out = [f"({self.source})\n"] if self.source else []
        if self.target != "all" and self.target in self.logs and len(self.logs) == 1 and not self.unavailable:
            return "".join(out) + _block_text(self.logs[self.target])
        for i, name in enumerate(self.site_order()):
            if i:
                out.append("\n")
            out.append(f"===== {name} =====\n")
            out.append(_block_text(self.logs[name]))
        if self.unavailable:
            if self.logs:
                out.append("\n")
            out.append("Unavailable logs:\n")
            out.extend(f"{name}: {self.unavailable[name]}\n" for name in sorted(self.unavailable))
        return "".join(out)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = ['<div class="flarenb-logs">']
        if self.source:
            parts.append(f'<div class="flarenb-source" style="opacity:.7"><i>{esc(self.source)}</i></div>')
        for name in self.site_order():
            info = self.sites.get(name, {})
            note = f"{info.get('lines', 0)} lines" + (", truncated" if info.get("logs_truncated") else "")
            text = self.logs[name]
            body = esc(text) if text else "<i>(no log content)</i>"
            parts.append(
                f'<div class="flarenb-site"><div style="font-weight:bold">===== {esc(name)} ====='
                f' <span style="font-weight:normal;opacity:.7">{esc(note)}</span></div>'
                f'<pre style="white-space:pre-wrap;margin:0 0 .5em 0">{body}</pre></div>'
            )
        if self.unavailable:
            items = "".join(
                f"<li>{esc(name)}: {esc(str(self.unavailable[name]))}</li>" for name in sorted(self.unavailable)
            )
            parts.append(f'<div class="flarenb-unavailable">Unavailable logs:<ul>{items}</ul></div>')
        parts.append("</div>")
        return "".join(parts)


def _block_text(text: str) -> str:
    if not text:
        return "(no log content)\n"
    return text if text.endswith("\n") else text + "\n"
