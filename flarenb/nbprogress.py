"""Progress a person can follow, read from a Jupyter kernel's iopub messages while a notebook runs.

Pure: messages in, lines out (with an injectable clock). It knows flarenb's outputs: the submit's output metadata
(``metadata.flarenb``), the live log view's widget state (job status, duration, per-site line counts and states)
and its ``lines`` messages, in which it spots NVFlare's workflow banners ("Round 1 started.", "Finished FedAvg.").
Used by :mod:`flarenb.quickstart`.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from .vocab import is_terminal

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: NVFlare's workflow banners in the server log ("Round 1 started.", "Finished FedAvg.")
_BANNER = re.compile(r"^\s*((?:Round \d+ started|Finished \w+)\.)\s*$")
_DOWNLOADED = re.compile(r"^downloaded job (\S+) to (.+)$")  # the first line of a Download's text
_WAIT_RESULT = re.compile(r"^job (\S+): ([A-Z_]+(?::[A-Z_]+)?)$")  # what %flare wait / job.wait() return
HEARTBEAT = 20.0  # seconds without a progress line before a "still running" line
STREAM_LINES = 8  # printed lines of a cell's stdout/stderr before "…"


def _rank(status: str) -> int:
    """How far a job got: statuses only move forward (a second view of a job replays them from the start)."""
    if is_terminal(status):
        return 3
    return {"": -1, "SUBMITTED": 0, "DISPATCHED": 1, "RUNNING": 2}.get(status, 2)


def fmt_elapsed(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def first_line(text: str, width: int = 110) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    if not lines:
        return ""
    line = lines[0].rstrip()
    more = len(lines) > 1
    if len(line) > width:
        line, more = line[: width - 1], True
    return line + (" …" if more else "")


def _cell_title(source: str) -> str:
    """The first line of a cell that is not a comment."""
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return first_line(line, 80)
    return first_line(source, 80)


@dataclass
class JobSeen:
    """What the run showed about one job (from the submit's output metadata and the log widget's state)."""

    job_id: str
    name: str = ""
    status: str = ""
    duration: str | None = None
    sites: list[str] = field(default_factory=list)
    result: str | None = None  # where its result was downloaded
    waited: str | None = None  # the status %flare wait / job.wait() returned

    @property
    def final_status(self) -> str:
        return self.status if is_terminal(self.status) or not self.waited else self.waited

    def describe(self) -> str:
        name = f"{self.name} " if self.name else ""
        text = f"job {name}{self.job_id}: {self.final_status or 'status unknown'}"
        if self.duration:
            text += f" after {self.duration.split('.')[0]}"
        if self.sites:
            text += f" (sites: {', '.join(self.sites)})"
        return text


class Progress:
    """Turns the kernel's iopub messages into lines a person can follow. Pure: messages in, text out."""

    def __init__(self, out: TextIO | None = None, clock: Any = time.monotonic):
        self.out = out if out is not None else sys.stdout
        self.clock = clock
        self.started = clock()
        self.last_print = self.started
        self.jobs: dict[str, JobSeen] = {}
        self._comm_job: dict[str, str] = {}  # widget comm id -> job id
        self._line_counts: dict[str, dict[str, int]] = {}  # job id -> {site: lines}
        self._shown: set[str] = set()  # display texts already printed in this cell
        self._events: set[str] = set()  # job events already printed (a second view of a job replays them)
        self._stream_lines = 0

    # -- output ------------------------------------------------------------------------------------
    def say(self, text: str, indent: bool = True) -> None:
        now = self.clock()
        self.last_print = now
        prefix = f"{fmt_elapsed(now - self.started):>6}  " + ("    " if indent else "")
        print(prefix + text, file=self.out, flush=True)

    def cell(self, number: int, total: int, source: str) -> None:
        self._shown.clear()
        self._stream_lines = 0
        self.say(f"[{number}/{total}] {_cell_title(source)}", indent=False)

    # -- messages ----------------------------------------------------------------------------------
    def message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        content = msg.get("content") or {}
        if kind in ("display_data", "update_display_data", "execute_result"):
            self._display(content)
        elif kind == "stream":
            self._stream(content.get("text", ""))
        elif kind == "error":
            self.say(f"error: {content.get('ename', '')}: {first_line(content.get('evalue', ''))}")
        elif kind in ("comm_open", "comm_msg"):
            self._comm(content)
        self._heartbeat()

    def _display(self, content: dict[str, Any]) -> None:
        data = content.get("data") or {}
        plain = str(data.get("text/plain", "")).strip()
        record = (content.get("metadata") or {}).get("flarenb")
        if isinstance(record, dict) and record.get("job_id"):  # the submit's output: which job, by name
            job = self._job(str(record["job_id"]))
            job.name = str(record.get("job_name") or job.name)
        wait = _WAIT_RESULT.match(plain)
        if wait:  # the final status, for a job no live view followed
            self._job(wait.group(1)).waited = wait.group(2)
        downloaded = _DOWNLOADED.match(plain.split("\n", 1)[0])
        if downloaded:
            self._job(downloaded.group(1)).result = downloaded.group(2).strip()
        if WIDGET_VIEW in data:  # the live view: its progress comes from the widget's messages
            return
        images = [mime.split("/")[1] for mime in data if mime.startswith("image/")]
        text = f"a figure ({images[0]}), kept in the notebook" if images else first_line(plain)
        if text and text not in self._shown:
            self._shown.add(text)
            self.say(text)

    def _stream(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            self._stream_lines += 1
            if self._stream_lines <= STREAM_LINES:
                self.say(first_line(line))
            elif self._stream_lines == STREAM_LINES + 1:
                self.say("… (the rest of this cell's output is in the notebook)")

    def _comm(self, content: dict[str, Any]) -> None:
        comm_id = str(content.get("comm_id", ""))
        data = content.get("data") or {}
        state = data.get("state") or {}
        if state.get("job_id"):
            self._comm_job[comm_id] = str(state["job_id"])
        job_id = self._comm_job.get(comm_id)
        if job_id is None:
            return
        job = self._job(job_id)
        job.name = str(state.get("job_name") or job.name)
        if state.get("sites"):
            job.sites = [str(s) for s in state["sites"]]
        if state.get("duration"):
            job.duration = str(state["duration"])
        if isinstance(state.get("line_counts"), dict):
            self._line_counts[job_id] = {str(k): int(v) for k, v in state["line_counts"].items()}
        for site, st in (state.get("site_states") or {}).items():
            if isinstance(st, dict) and st.get("state") == "unavailable":
                self._once(f"{job_id}:{site}:unavailable", f"{site}: log unavailable ({st.get('reason') or '?'})")
        status = str(state.get("status") or "")
        if status and _rank(status) >= _rank(job.status):  # a later view of the same job starts at SUBMITTED
            job.status = status
            after = f" after {job.duration.split('.')[0]}" if is_terminal(status) and job.duration else ""
            if status != "SUBMITTED":  # the submit cell's own output says that
                self._once(f"{job_id}:status:{status}", f"job {job.name or job_id}: {status}{after}")
        if data.get("method") == "custom" and (data.get("content") or {}).get("kind") == "lines":
            for site, lines in (data["content"].get("sites") or {}).items():
                for line in lines if isinstance(lines, list) else ():
                    text = str(line[1]) if isinstance(line, list) and len(line) > 1 else ""
                    match = _BANNER.match(text)
                    if match:
                        self._once(f"{job_id}:{site}:{match.group(1)}", f"{site}: {match.group(1)}")

    def _once(self, key: str, text: str) -> None:
        if key not in self._events:
            self._events.add(key)
            self.say(text)

    def _job(self, job_id: str) -> JobSeen:
        if job_id not in self.jobs:
            self.jobs[job_id] = JobSeen(job_id)
        return self.jobs[job_id]

    def _heartbeat(self) -> None:
        if self.clock() - self.last_print < HEARTBEAT:
            return
        for job_id, job in self.jobs.items():
            if job.status and not is_terminal(job.status):
                counts = self._line_counts.get(job_id, {})
                lines = ", ".join(f"{site} {n}" for site, n in counts.items())
                self.say(f"job {job.name or job_id}: still {job.status}" + (f" — log lines: {lines}" if lines else ""))
                return
