"""``python -m flarenb.quickstart`` (and its :mod:`flarenb.nbprogress`) without a kernel: the progress it prints
from kernel messages, its HTML page, its summary, its refusals. The real run (the README's command against a real
FLARE) is in ``test_quickstart.py``."""

from __future__ import annotations

import io
import re

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from flarenb import nbprogress, quickstart
from flarenb.nbprogress import WIDGET_VIEW, JobSeen, Progress
from flarenb.quickstart import Outcome

JOB = "8a3d3df0-525a-40db-b34f-7b08b27dae60"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _msg(kind: str, **content) -> dict:
    return {"msg_type": kind, "content": content}


def _state(comm: str, **state) -> dict:
    return _msg("comm_msg", comm_id=comm, data={"method": "update", "state": state})


def _lines(comm: str, site: str, *texts: str) -> dict:
    lines = [[i + 1, text, "INFO", None] for i, text in enumerate(texts)]
    return _msg(
        "comm_msg", comm_id=comm, data={"method": "custom", "content": {"kind": "lines", "sites": {site: lines}}}
    )


def _printed(out: io.StringIO) -> list[str]:
    return [re.sub(r"^\s*\d+:\d\d\s+", "", line).strip() for line in out.getvalue().splitlines()]


def test_progress_follows_a_job_through_its_widget_messages():
    out, clock = io.StringIO(), Clock()
    p = Progress(out, clock=clock)
    p.cell(2, 9, "# NBVAL_IGNORE_OUTPUT\n%flare poc start")
    p.message(
        _msg("display_data", data={"text/plain": "Starting the local FLARE: server …"}, transient={"display_id": "d"})
    )
    p.message(_msg("update_display_data", data={"text/plain": "Starting the local FLARE: server …"}))  # same: once
    p.message(_msg("update_display_data", data={"text/plain": "Local FLARE started: 2 clients connected"}))
    p.cell(5, 9, "job = %flare submit recipe\njob")
    p.message(
        _msg(
            "comm_open",
            comm_id="w1",
            data={
                "state": {
                    "job_id": JOB,
                    "job_name": "qs",
                    "status": "SUBMITTED",
                    "sites": ["server", "site-1", "site-2"],
                }
            },
        )
    )
    p.message(_msg("display_data", data={WIDGET_VIEW: {"model_id": "w1"}, "text/plain": "flarenb job qs — following"}))
    p.message(
        _msg(
            "execute_result",
            data={"text/plain": f"submitted job {JOB} (qs)"},
            metadata={"flarenb": {"job_id": JOB, "job_name": "qs"}},
        )
    )
    p.cell(6, 9, "%flare wait {job.id} --timeout 300")
    p.message(_state("w1", status="RUNNING"))
    p.message(_lines("w1", "server", "2026-12-04 05:36:23 - FedAvg - INFO - x", "      Round 0 started.      "))
    p.message(_lines("w1", "site-1", "      Round 0 started.      "))
    p.message(_state("w1", duration="0:00:26.836661", status="FINISHED:COMPLETED"))
    p.message(_msg("execute_result", data={"text/plain": f"job {JOB}: FINISHED:COMPLETED"}))
    p.cell(7, 9, "job.view()")  # a second view of the same job replays its state: nothing new is printed
    p.message(_msg("comm_open", comm_id="w2", data={"state": {"job_id": JOB, "job_name": "qs", "status": "SUBMITTED"}}))
    p.message(_lines("w2", "server", "      Round 0 started.      "))
    p.message(_state("w2", status="FINISHED:COMPLETED"))
    p.cell(9, 9, "import matplotlib.pyplot as plt")
    p.message(_msg("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure size 900x250 with 2 Axes>"}))
    assert _printed(out) == [
        "[2/9] %flare poc start",
        "Starting the local FLARE: server …",
        "Local FLARE started: 2 clients connected",
        "[5/9] job = %flare submit recipe",
        f"submitted job {JOB} (qs)",
        "[6/9] %flare wait {job.id} --timeout 300",
        "job qs: RUNNING",
        "server: Round 0 started.",
        "site-1: Round 0 started.",
        "job qs: FINISHED:COMPLETED after 0:00:26",
        f"job {JOB}: FINISHED:COMPLETED",
        "[7/9] job.view()",
        "[9/9] import matplotlib.pyplot as plt",
        "a figure (png), kept in the notebook",
    ]
    (job,) = p.jobs.values()
    assert (job.job_id, job.name, job.status, job.sites) == (
        JOB,
        "qs",
        "FINISHED:COMPLETED",
        ["server", "site-1", "site-2"],
    )


def test_progress_says_it_is_still_running_when_nothing_else_happened():
    out, clock = io.StringIO(), Clock()
    p = Progress(out, clock=clock)
    p.message(_msg("comm_open", comm_id="w", data={"state": {"job_id": JOB, "job_name": "qs"}}))
    p.message(_state("w", status="RUNNING", line_counts={"server": 40, "site-1": 12}))
    clock.now += nbprogress.HEARTBEAT - 1
    p.message(_state("w", line_counts={"server": 41, "site-1": 12}))
    assert _printed(out) == ["job qs: RUNNING"]
    clock.now += 2
    p.message(_state("w", line_counts={"server": 50, "site-1": 20}))
    assert _printed(out)[-1] == "job qs: still RUNNING — log lines: server 50, site-1 20"
    assert out.getvalue().splitlines()[-1].lstrip().startswith("0:21")  # elapsed time of the run, min:s


def test_progress_caps_a_chatty_cell_and_reports_errors_and_downloads():
    out = io.StringIO()
    p = Progress(out, clock=Clock())
    p.cell(1, 1, "for i in range(100): print(i)")
    p.message(_msg("stream", name="stdout", text="".join(f"{i}\n" for i in range(100))))
    p.message(
        _msg("execute_result", data={"text/plain": f"downloaded job {JOB} to /x/results/{JOB}\n  model: /x/m.npy"})
    )
    p.message(_msg("error", ename="UsageError", evalue="The job failed. See its logs"))
    printed = _printed(out)
    assert printed[1 : 1 + nbprogress.STREAM_LINES] == [str(i) for i in range(nbprogress.STREAM_LINES)]
    assert printed[1 + nbprogress.STREAM_LINES] == "… (the rest of this cell's output is in the notebook)"
    assert printed[-2] == f"downloaded job {JOB} to /x/results/{JOB} …"
    assert printed[-1] == "error: UsageError: The job failed. See its logs"
    assert p.jobs[JOB].result == f"/x/results/{JOB}"


def _widget_notebook() -> nbformat.NotebookNode:
    snapshot = '<div class="flarenb-logview-static"><pre>===== site-1 =====\n│ round 0 on site-1 &lt;b&gt;</pre></div>'
    widget = new_output(
        "display_data",
        data={
            WIDGET_VIEW: {"model_id": "m1", "version_major": 2, "version_minor": 1},
            "text/html": snapshot,
            "text/plain": "flarenb job",
        },
    )
    plot = new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    nb = new_notebook(
        cells=[new_code_cell("job.view()", outputs=[widget]), new_code_cell("plt.show()", outputs=[plot])]
    )
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {"m1": {"model_name": "AnyModel", "state": {}}},
        }
    }
    return nb


def test_html_page_shows_the_static_snapshot_and_fetches_nothing():
    nb = _widget_notebook()
    page = quickstart.to_html(nb, name="demo")
    assert "===== site-1 =====" in page and "&lt;b&gt;" in page  # the snapshot, its log text escaped
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page  # the plot, embedded
    assert WIDGET_VIEW not in page and "widget-state" not in page  # no widget that needs a manager from a CDN
    assert not re.search(r"<script[^>]*\bsrc=", page), "the page loads no script"
    assert not re.search(r"<link[^>]*\bhref=\"?https?:", page), "the page loads no style sheet"
    assert "widgets" in nb.metadata  # the executed notebook itself keeps its widget state


def test_summary_names_the_job_and_each_file_relative_to_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = JobSeen(
        JOB,
        name="qs",
        status="FINISHED:COMPLETED",
        duration="0:00:26.8",
        sites=["server", "site-1"],
        result=f"results/{JOB}",  # as the notebook prints it: relative to its own folder
    )
    outcome = Outcome(tmp_path / "nb/results/q.ipynb", tmp_path / "nb/results/q.html", None, 83.4, [job])
    text = quickstart.summary(
        outcome, tmp_path / "nb/q.ipynb", flare_before=False, flare_after=True, workspace=tmp_path / "poc"
    )
    assert "nb/q.ipynb ran to the end in 1:23" in text
    assert f"It ran job qs {JOB}: FINISHED:COMPLETED after 0:00:26 (sites: server, site-1)." in text
    assert "Executed notebook (outputs, the log view's per-site snapshot, plots): nb/results/q.ipynb" in text
    assert "nb/results/q.html" in text and f"per-site logs): nb/results/{JOB}" in text
    assert "jupyter lab nb/results/q.ipynb" in text
    assert "The local FLARE (poc) started by this run keeps running" in text
    job.result = str(tmp_path / "elsewhere" / JOB)  # an absolute path stays where it is
    text = quickstart.summary(outcome, tmp_path / "nb/q.ipynb", flare_before=False, flare_after=True, workspace=None)
    assert f"per-site logs): elsewhere/{JOB}" in text
    failed = Outcome(outcome.notebook, outcome.html, "UsageError: The job failed", 5.0, [])
    text = quickstart.summary(failed, tmp_path / "nb/q.ipynb", flare_before=False, flare_after=False, workspace=None)
    assert "nb/q.ipynb stopped after 0:05: a cell failed — UsageError: The job failed" in text
    assert "local FLARE" not in text


def test_the_live_views_final_status_is_reported_even_after_the_wait_result():
    """Under load the widget's final state can arrive after ``%flare wait`` returned (in the next cell)."""
    out = io.StringIO()
    p = Progress(out, clock=Clock())
    p.message(_msg("comm_open", comm_id="w1", data={"state": {"job_id": JOB, "job_name": "qs", "status": "SUBMITTED"}}))
    p.message(_state("w1", status="RUNNING"))
    p.message(_msg("execute_result", data={"text/plain": f"job {JOB}: FINISHED:COMPLETED"}))
    p.message(_msg("comm_open", comm_id="w2", data={"state": {"job_id": JOB, "status": "SUBMITTED"}}))
    assert p.jobs[JOB].status == "RUNNING"  # a second view starting at SUBMITTED does not move the job back
    p.message(_state("w1", duration="0:00:41.2", status="FINISHED:COMPLETED"))
    p.message(_state("w2", status="FINISHED:COMPLETED"))
    assert _printed(out) == [
        "job qs: RUNNING",
        f"job {JOB}: FINISHED:COMPLETED",
        "job qs: FINISHED:COMPLETED after 0:00:41",
    ]


def test_a_job_without_a_live_view_gets_its_status_from_the_wait_result():
    p = Progress(io.StringIO(), clock=Clock())
    p.message(_msg("execute_result", data={"text/plain": f"job {JOB}: FINISHED:EXECUTION_EXCEPTION"}))
    assert p.jobs[JOB].describe() == f"job {JOB}: FINISHED:EXECUTION_EXCEPTION"


def _iopub(kind: str, parent: str, **content) -> dict:
    return {
        "msg_type": kind,
        "header": {"msg_type": kind, "msg_id": f"m-{kind}"},
        "parent_header": {"msg_id": parent},
        "metadata": {},
        "content": content,
    }


def test_a_views_late_messages_reach_the_saved_notebook():
    """What a live view sends after its cell returned — its final state, its display's update — is applied as
    JupyterLab applies it; nbclient alone drops it and the saved notebook keeps "following live"."""
    nb = new_notebook(cells=[new_code_cell("job = %flare submit recipe"), new_code_cell("print(1)")])
    client = quickstart._client_class()(nb)
    client.progress = Progress(io.StringIO(), clock=Clock())
    client.clear_before_next_output = False  # what nbclient sets when a cell starts
    following = {"text/plain": "flarenb job qs — following live", WIDGET_VIEW: {"model_id": "w1"}}
    client.process_message(
        _iopub(
            "comm_open",
            "cell-0",
            comm_id="w1",
            target_name="jupyter.widget",
            data={"state": {"_model_name": "AnyModel", "_model_module": "anywidget", "job_id": JOB, "live": True}},
        ),
        nb.cells[0],
        0,
    )
    client.process_message(
        _iopub("display_data", "cell-0", data=following, metadata={}, transient={"display_id": "d1"}), nb.cells[0], 0
    )
    assert client._live_views() == [JOB]
    final = {"text/plain": "flarenb job qs — FINISHED:COMPLETED", WIDGET_VIEW: {"model_id": "w1"}}
    client._late_message(
        _iopub(
            "comm_msg",
            "cell-0",
            comm_id="w1",
            data={"method": "update", "state": {"live": False, "status": "FINISHED:COMPLETED"}},
        )
    )
    client._late_message(
        _iopub("update_display_data", "cell-0", data=final, metadata={}, transient={"display_id": "d1"})
    )
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "flarenb job qs — FINISHED:COMPLETED"
    assert client._live_views() == []
    client.set_widgets_metadata()
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]["w1"]["state"]
    assert saved["status"] == "FINISHED:COMPLETED" and saved["live"] is False
    assert client.progress.jobs[JOB].status == "FINISHED:COMPLETED"


def test_the_command_refuses_a_missing_notebook_and_never_overwrites_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert quickstart.main(["nowhere/nb.ipynb"]) == 2
    assert f"error: No notebook at {tmp_path / 'nowhere' / 'nb.ipynb'}. Give the path of an .ipynb file" in (
        capsys.readouterr().err
    )
    source = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), source)
    before = source.read_bytes()
    assert quickstart.main(["nb.ipynb", "--output-dir", "."]) == 2
    assert "error: The executed copy would overwrite" in capsys.readouterr().err
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]
