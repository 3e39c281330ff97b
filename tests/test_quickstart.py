"""The README's quickstart, as a newcomer runs it: its notebook step (parsed from README.md, run by bash exactly as
written, in a fresh copy of ``notebooks/``) runs ``01_quickstart.ipynb`` against a real local FLARE, prints progress
and a summary, and leaves the executed notebook and a standalone HTML page of it — the tutorial itself untouched.
The page in a real browser: ``tests/browser/test_quickstart_page.py``."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import readme_quickstart_step

ROOT = Path(__file__).resolve().parent.parent
# the first test using quickstart_run also runs the README's step (1-2 min; more on a loaded CI machine)
pytestmark = [pytest.mark.poc, pytest.mark.timeout(1200)]


def test_readme_quickstart_step_is_the_quickstart_module():
    assert readme_quickstart_step() == "python -m flarenb.quickstart notebooks/01_quickstart.ipynb"


def _outputs(path: Path) -> tuple[str, int]:
    texts, images = [], 0
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            data = out.get("data", {})
            texts.append(out.get("text", "") + str(data.get("text/plain", "")) + str(data.get("text/html", "")))
            images += "image/png" in data
    return "\n".join(texts), images


def test_quickstart_leaves_the_executed_notebook_and_its_page(quickstart_run, flarenb_poc):
    root, proc = quickstart_run
    out = proc.stdout
    assert proc.returncode == 0, f"{out[-3000:]}\n{proc.stderr[-3000:]}"
    notebook = root / "notebooks" / "results" / "01_quickstart.ipynb"
    page = root / "notebooks" / "results" / "01_quickstart.html"

    # progress a person can follow, then the summary in words, naming each file relative to the cwd
    code = [
        c.source
        for c in nbformat.read(ROOT / "notebooks" / "01_quickstart.ipynb", as_version=4).cells
        if c.cell_type == "code"
    ]

    def step(first: str) -> str:  # "[k/n] first", as the runner numbers the notebook's code cells
        k = next(i for i, src in enumerate(code) if first in src.splitlines())
        return f"[{k + 1}/{len(code)}] {first}"

    for line in (
        step("%flare poc start"),
        "Local FLARE reused: 2 clients connected (site-1, site-2)",
        step("job = %flare submit recipe"),
        "job quickstart-fedavg: RUNNING",
        step("import matplotlib.pyplot as plt"),
        "a figure (png), kept in the notebook",
    ):
        assert line in out, out
    assert re.search(r"server: Round \d started\.", out), out  # NVFlare's FedAvg banners, from the live log lines
    job_id = re.search(r"submitted job ([0-9a-f-]{36}) \(quickstart-fedavg\)", out).group(1)
    assert re.search(r"job quickstart-fedavg: FINISHED:COMPLETED after \d+:\d\d:\d\d", out), out
    assert "notebooks/01_quickstart.ipynb ran to the end in" in out
    assert re.search(rf"It ran job quickstart-fedavg {job_id}: FINISHED:COMPLETED after \d+:\d\d:\d\d", out), out
    assert "plots): notebooks/results/01_quickstart.ipynb\n" in out
    assert "no server needed):" in out and out.rstrip().count("notebooks/results/01_quickstart.html") == 1
    assert f"per-site logs): notebooks/results/{job_id}\n" in out
    assert "Open it in JupyterLab: jupyter lab notebooks/results/01_quickstart.ipynb" in out
    assert "was already running and keeps running" in out  # it reused the session's FLARE: nothing of its own

    # the executed notebook: the job's end, the per-site snapshot, the plot; the widget state for JupyterLab
    text, images = _outputs(notebook)
    assert f"job {job_id}: FINISHED:COMPLETED" in text
    for site in ("server", "site-1", "site-2"):  # in both views: the submit cell's and job.view()'s
        assert text.count(f"===== {site} =====") == 2 * 2, site  # text/plain and text/html of each
    assert "following live" not in text  # every saved view shows what it showed last, not a moment of the run
    assert "loss per round: {0: 1.0, 1: 0.5, 2: 0.3333333333333333}" in text
    assert images == 1
    state = nbformat.read(notebook, as_version=4).metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    views = [m["state"] for m in state["state"].values() if m["state"].get("job_id") == job_id]
    assert views and all(v["status"] == "FINISHED:COMPLETED" for v in views)
    assert any(len(v["snapshot"].get("site-1", [])) > 0 for v in views)  # the saved per-site snapshot
    assert (root / "notebooks" / "results" / job_id).is_dir()  # the downloaded result, beside them

    # the page: one file with the same content, the plot embedded
    html = page.read_text(encoding="utf-8")
    assert f"flarenb job quickstart-fedavg ({job_id}) — FINISHED:COMPLETED" in html
    assert html.count('src="data:image/png;base64,') == 1
    assert not re.search(r"<script[^>]*\bsrc=", html)

    # the committed tutorial stays clean: the copy it ran from is byte for byte the repository's
    assert (root / "notebooks" / "01_quickstart.ipynb").read_bytes() == (
        ROOT / "notebooks" / "01_quickstart.ipynb"
    ).read_bytes()


def test_quickstart_leaves_no_process_behind(quickstart_run, flarenb_poc):
    """The kernel is gone (no process works in the copy any more) and the session's FLARE still runs."""
    root, _ = quickstart_run
    deadline = time.monotonic() + 60
    while True:
        left = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == str(root) or cwd.startswith(str(root) + os.sep):
                left.append(entry)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, f"processes still working in {root}: {left}"
    from flarenb import poc

    assert poc.status().running
