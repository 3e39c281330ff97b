"""Run a FLARE notebook from a terminal and keep what it showed: ``python -m flarenb.quickstart NOTEBOOK``.

The README's quickstart runs ``notebooks/01_quickstart.ipynb`` this way. The notebook runs in a real Jupyter kernel
(nbclient), driven as JupyterLab drives it: each execute request carries the cell's id and the kernel knows its
notebook (``JPY_SESSION_NAME``), so flarenb's cell-scoped submit tokens behave as in JupyterLab. The kernel's cwd is
the notebook's folder, so the notebook's relative paths resolve as they do there.

While it runs, the terminal follows it: each cell as it starts, flarenb's own progress (starting the local FLARE,
the submitted job, its status, the rounds NVFlare's workflow announces), read from the kernel's outputs and from the
live log widget's messages. At the end it writes, to ``<notebook folder>/results/`` (``--output-dir``):

* ``<name>.ipynb`` — the executed notebook: its outputs, the widgets' saved state (the log view's per-site snapshot)
  and the plots; open it in JupyterLab. The source notebook is never written.
* ``<name>.html`` — a standalone page of it (nbconvert): the widgets' static snapshots instead of the live views,
  images embedded, no script or style fetched from anywhere; opens in any browser, no server.

and says in words what ran (job, final status, duration) and where each file is. It exits 1 if a cell failed (the
files are still written, up to the failing cell).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import FlareError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: NVFlare's workflow banners in the server log ("Round 1 started.", "Finished FedAvg.")
_BANNER = re.compile(r"^\s*((?:Round \d+ started|Finished \w+)\.)\s*$")
_FINISHED = "FINISHED"
_DOWNLOADED = re.compile(r"^downloaded job (\S+) to (.+)$")  # the first line of a Download's text
_WAIT_RESULT = re.compile(r"^job (\S+): ([A-Z_]+(?::[A-Z_]+)?)$")  # what %flare wait / job.wait() return
HEARTBEAT = 20.0  # seconds without a progress line before a "still running" line
STREAM_LINES = 8  # printed lines of a cell's stdout/stderr before "…"

# nbconvert's lab template without the scripts it would fetch from CDNs (require.js, MathJax, mermaid, the
# widget manager): the page is one file that shows the same in any browser, offline.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _fmt_elapsed(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _first_line(text: str, width: int = 110) -> str:
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
            return _first_line(line, 80)
    return _first_line(source, 80)


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the cwd when it is below it (what a person types next), else absolute."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path, os.getcwd())
    return path if rel.startswith("..") else rel


@dataclass
class JobSeen:
    """What the run showed about one job (from the submit's output metadata and the log widget's state)."""

    job_id: str
    name: str = ""
    status: str = ""
    duration: str | None = None
    sites: list[str] = field(default_factory=list)
    result: str | None = None  # where its result was downloaded

    def describe(self) -> str:
        name = f"{self.name} " if self.name else ""
        text = f"job {name}{self.job_id}: {self.status or 'status unknown'}"
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
        prefix = f"{_fmt_elapsed(now - self.started):>6}  " + ("    " if indent else "")
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
            self.say(f"error: {content.get('ename', '')}: {_first_line(content.get('evalue', ''))}")
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
        if wait and not self._job(wait.group(1)).status.startswith(_FINISHED):
            self._job(wait.group(1)).status = wait.group(2)
        downloaded = _DOWNLOADED.match(plain.split("\n", 1)[0])
        if downloaded:
            self._job(downloaded.group(1)).result = downloaded.group(2).strip()
        if WIDGET_VIEW in data:  # the live view: its progress comes from the widget's messages
            return
        images = [mime.split("/")[1] for mime in data if mime.startswith("image/")]
        text = f"a figure ({images[0]}), kept in the notebook" if images else _first_line(plain)
        if text and text not in self._shown:
            self._shown.add(text)
            self.say(text)

    def _stream(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            self._stream_lines += 1
            if self._stream_lines <= STREAM_LINES:
                self.say(_first_line(line))
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
        if status and not job.status.startswith(_FINISHED):  # a later view of a finished job starts at SUBMITTED
            job.status = status
            after = f" after {job.duration.split('.')[0]}" if status.startswith(_FINISHED) and job.duration else ""
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
            if job.status and not job.status.startswith(_FINISHED):
                counts = self._line_counts.get(job_id, {})
                lines = ", ".join(f"{site} {n}" for site, n in counts.items())
                self.say(f"job {job.name or job_id}: still {job.status}" + (f" — log lines: {lines}" if lines else ""))
                return


@dataclass
class Outcome:
    notebook: Path
    html: Path
    error: str | None
    seconds: float
    jobs: list[JobSeen]


def _client_class() -> type:
    try:
        from nbclient import NotebookClient
    except ImportError:
        raise FlareError("nbclient is not installed", 'Install it with: pip install -e ".[test]"') from None

    class _Client(NotebookClient):  # type: ignore[misc, valid-type]
        """nbclient, sending each cell's id as JupyterLab does and reporting every message to a Progress."""

        progress: Progress

        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            try:
                self.progress.message(msg)
            except Exception:  # progress is a courtesy: never let it break the run
                pass
            return super().process_message(msg, cell, cell_index)

    return _Client


def execute(notebook: Path, output_dir: Path, timeout: int = 600, out: TextIO | None = None) -> Outcome:
    """Execute ``notebook`` in a fresh kernel (cwd: its folder), write the executed copy and its HTML page."""
    import nbformat

    notebook = notebook.resolve()
    if not notebook.is_file():
        raise FlareError(f"No notebook at {notebook}", "Give the path of an .ipynb file")
    nb = nbformat.read(notebook, as_version=4)
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    progress = Progress(out)
    client = _client_class()(nb, timeout=timeout, resources={"metadata": {"path": str(notebook.parent)}})
    client.progress = progress

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        client.kc.session.metadata = {"cellId": cell.get("id")} if cell.get("id") else {}
        number = code_cells.index(cell_index) + 1 if cell_index in code_cells else 0
        progress.cell(number, len(code_cells), cell.source)

    client.on_cell_execute = on_cell_execute
    error = None
    # the kernel's stderr (its start-up warnings) goes to a temporary file, shown only if the kernel dies
    with tempfile.TemporaryFile(mode="w+") as kernel_err:
        env = dict(os.environ, JPY_SESSION_NAME=str(notebook))
        try:
            client.execute(env=env, stderr=kernel_err)
        except Exception as exc:  # a failing cell, a timeout, a dead kernel: keep what ran
            error = _describe_failure(exc, kernel_err)
    output_dir.mkdir(parents=True, exist_ok=True)
    executed = output_dir / notebook.name
    nbformat.write(nb, executed)
    html = output_dir / (notebook.stem + ".html")
    html.write_text(to_html(nb, name=notebook.stem), encoding="utf-8")
    return Outcome(executed, html, error, progress.clock() - progress.started, list(progress.jobs.values()))


def _describe_failure(exc: Exception, kernel_err: Any) -> str:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if isinstance(exc, CellExecutionError):
        return f"{exc.ename}: {_first_line(exc.evalue or '')}" if getattr(exc, "ename", None) else _first_line(str(exc))
    if isinstance(exc, CellTimeoutError):
        return _first_line(str(exc))
    if isinstance(exc, DeadKernelError):
        kernel_err.seek(0)
        tail = kernel_err.read().strip().splitlines()[-5:]
        return "the kernel died" + (": " + " / ".join(tail) if tail else "")
    return f"{type(exc).__name__}: {_first_line(str(exc))}"


def to_html(nb: Any, name: str = "notebook") -> str:
    """A standalone HTML page of an executed notebook: static snapshots instead of widgets, nothing fetched."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    # without the saved widget state nbconvert shows each widget's own static (text/html) snapshot
    nb.metadata.pop("widgets", None)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"flarenb_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="flarenb_offline.html.j2",
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    return body


def _poc_running() -> tuple[bool, Path | None]:
    try:
        from . import poc

        st = poc.status()
        return st.running, st.workspace
    except Exception:
        return False, None


def summary(outcome: Outcome, notebook: Path, flare_before: bool, flare_after: bool, workspace: Path | None) -> str:
    lines = [""]
    ran = display_path(notebook)
    if outcome.error:
        lines.append(f"{ran} stopped after {_fmt_elapsed(outcome.seconds)}: a cell failed — {outcome.error}")
    else:
        lines.append(f"{ran} ran to the end in {_fmt_elapsed(outcome.seconds)} (min:s).")
    for job in outcome.jobs:
        lines.append(f"  It ran {job.describe()}.")
        if job.result:
            lines.append(f"  The job's result (global model, metrics, per-site logs): {display_path(job.result)}")
    lines += [
        f"  Executed notebook (outputs, the log view's per-site snapshot, plots): {display_path(outcome.notebook)}",
        f"  Web page of it (any browser, no server needed):                     {display_path(outcome.html)}",
        f"Open it in JupyterLab: jupyter lab {display_path(outcome.notebook)}",
    ]
    if flare_after and workspace is not None:
        how = "was already running and keeps running" if flare_before else "started by this run keeps running"
        lines.append(
            f"The local FLARE ({display_path(workspace)}) {how}, so reruns reuse it; "
            "stop it with: python -c 'import flarenb; flarenb.poc.stop()'"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flarenb.quickstart",
        description="Run a FLARE notebook in a Jupyter kernel, follow it, and keep the executed notebook and an "
        "HTML page of it.",
    )
    parser.add_argument("notebook", nargs="?", default="notebooks/01_quickstart.ipynb", help="the notebook to run")
    parser.add_argument(
        "--output-dir", help="where to write the executed notebook and its page (default: NOTEBOOK's folder/results)"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    args = parser.parse_args(argv)
    notebook = Path(args.notebook)
    output_dir = Path(args.output_dir) if args.output_dir else notebook.parent / "results"
    flare_before, _ = _poc_running()
    print(f"Running {display_path(notebook)} in a Jupyter kernel (the terminal follows it; the notebook is kept).",
          flush=True)
    try:
        outcome = execute(notebook, output_dir, timeout=args.timeout)
    except FlareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    flare_after, workspace = _poc_running()
    print(summary(outcome, notebook, flare_before, flare_after, workspace), flush=True)
    return 1 if outcome.error else 0


if __name__ == "__main__":
    sys.exit(main())
