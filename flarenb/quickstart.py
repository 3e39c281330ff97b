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
import queue
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import FlareError
from .nbprogress import JobSeen, Progress, first_line, fmt_elapsed

# nbconvert's lab template without the scripts it would fetch from CDNs (require.js, MathJax, mermaid, the
# widget manager): the page is one file that shows the same in any browser, offline.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

SETTLE_TIMEOUT = 60.0  # seconds to let live views finish after the last cell


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the cwd when it is below it (what a person types next), else absolute."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path, os.getcwd())
    return path if rel.startswith("..") else rel


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

    from nbclient.exceptions import CellExecutionComplete
    from nbclient.util import ensure_async

    class _Client(NotebookClient):
        """nbclient, reporting every message to a Progress and applying, as JupyterLab does, what a cell's
        background threads send after the cell returned: a live view's final state and its display updates
        (nbclient alone drops them, so the saved notebook would keep "following live")."""

        progress: Progress

        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            self._report(msg)
            return super().process_message(msg, cell, cell_index)

        def _report(self, msg: dict[str, Any]) -> None:
            try:
                self.progress.message(msg)
            except Exception:  # progress is a courtesy: never let it break the run
                pass

        def _late_message(self, msg: dict[str, Any]) -> None:
            kind = msg.get("msg_type", "")
            if kind == "update_display_data":
                display_id = (msg["content"].get("transient") or {}).get("display_id")
                if display_id:
                    self._update_display_id(display_id, msg)
            elif kind == "comm_msg":
                self._report(msg)
                self.handle_comm_msg([], msg, -1)

        async def _async_poll_output_msg(self, parent_msg_id: str, cell: Any, cell_index: int) -> None:
            while True:
                assert self.kc is not None
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=None))
                if msg["parent_header"].get("msg_id") != parent_msg_id:
                    self._late_message(msg)
                    continue
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return

        async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
            result = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            if cell_index == len(self.nb.cells) - 1:
                await self._async_settle()
            return result

        def _live_views(self) -> list[str]:
            return [str(s["job_id"]) for s in self.widget_state.values() if s.get("job_id") and s.get("live")]

        async def _async_settle(self, timeout: float = SETTLE_TIMEOUT, quiet: float = 2.0) -> None:
            """After the last cell: let live views that are still following see their job's end, so the saved
            notebook holds their final state and snapshot (up to ``timeout`` s, then as they are)."""
            if not self._live_views():
                return
            self.progress.say(f"waiting for the live log views to finish (up to {timeout:g} s) …")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert self.kc is not None
                try:
                    msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=quiet))
                except queue.Empty:
                    if not self._live_views():
                        return
                    continue
                self._late_message(msg)

    return _Client


def execute(notebook: Path, output_dir: Path, timeout: int = 600, out: TextIO | None = None) -> Outcome:
    """Execute ``notebook`` in a fresh kernel (cwd: its folder), write the executed copy and its HTML page."""
    import nbformat

    notebook = notebook.resolve()
    if not notebook.is_file():
        raise FlareError(f"No notebook at {notebook}", "Give the path of an .ipynb file")
    executed, html = output_dir.resolve() / notebook.name, output_dir.resolve() / (notebook.stem + ".html")
    if executed == notebook:
        raise FlareError(f"The executed copy would overwrite {notebook}", "Choose another --output-dir")
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
    nbformat.write(nb, executed)
    html.write_text(to_html(nb, name=notebook.stem), encoding="utf-8")
    return Outcome(executed, html, error, progress.clock() - progress.started, list(progress.jobs.values()))


def _describe_failure(exc: Exception, kernel_err: Any) -> str:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if isinstance(exc, CellExecutionError):
        return f"{exc.ename}: {first_line(exc.evalue or '')}" if getattr(exc, "ename", None) else first_line(str(exc))
    if isinstance(exc, CellTimeoutError):
        return first_line(str(exc))
    if isinstance(exc, DeadKernelError):
        kernel_err.seek(0)
        tail = kernel_err.read().strip().splitlines()[-5:]
        return "the kernel died" + (": " + " / ".join(tail) if tail else "")
    return f"{type(exc).__name__}: {first_line(str(exc))}"


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
        lines.append(f"{ran} stopped after {fmt_elapsed(outcome.seconds)}: a cell failed — {outcome.error}")
    else:
        lines.append(f"{ran} ran to the end in {fmt_elapsed(outcome.seconds)} (min:s).")
    for job in outcome.jobs:
        lines.append(f"  It ran {job.describe()}.")
        if job.result:  # as the notebook printed it: relative to its folder, where its kernel runs
            result = Path(notebook).resolve().parent / job.result
            lines.append(f"  The job's result (global model, metrics, per-site logs): {display_path(result)}")
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
    parser.add_argument(
        "notebook",
        nargs="?",
        default="notebooks/01_quickstart.ipynb",
        help="the notebook to run (default: %(default)s)",
    )
    parser.add_argument(
        "--output-dir", help="where to write the executed notebook and its page (default: NOTEBOOK's folder/results)"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    args = parser.parse_args(argv)
    notebook = Path(args.notebook)
    output_dir = Path(args.output_dir) if args.output_dir else notebook.parent / "results"
    flare_before, _ = _poc_running()
    print(
        f"Running {display_path(notebook)} in a Jupyter kernel (the terminal follows it; the notebook is kept).",
        flush=True,
    )
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
