"""The README quickstart's HTML page in headless Chromium: it opens from the file alone (nothing fetched from the
network), shows the log view's per-site snapshot of the finished job and the plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.poc, pytest.mark.timeout(1200)]  # may run the README's step


def test_quickstart_page_shows_the_per_site_snapshot_and_the_plot(quickstart_run, page):
    root, proc = quickstart_run
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    html = root / "notebooks" / "results" / "01_quickstart.html"
    fetched: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else fetched.append(r.url))
    page.goto(html.as_uri(), wait_until="load")

    # the final snapshot of the job's log view (the submit cell's and job.view()'s): header, site states, lines
    snapshots = page.locator(".flarenb-logview-static").filter(has_text="===== site-2 =====")
    expect(snapshots.first).to_be_visible()
    snapshot = snapshots.last
    snapshot.scroll_into_view_if_needed()
    expect(snapshot).to_be_visible()
    header = snapshot.locator("strong")
    expect(header).to_contain_text(re.compile(r"flarenb job quickstart-fedavg \([0-9a-f-]{36}\) — FINISHED:COMPLETED"))
    for site in ("server", "site-1", "site-2"):
        block = snapshot.locator("pre", has_text=f"===== {site} =====")
        expect(block).to_be_visible()
        expect(block).to_contain_text("│ ")  # the site's last log lines, as text
    expect(snapshot).to_contain_text("sites: server: done · site-1: done · site-2: done")

    plot = page.locator("img[src^='data:image/png;base64,']")
    expect(plot).to_have_count(1)
    plot.scroll_into_view_if_needed()
    expect(plot).to_be_visible()
    width, height = plot.evaluate("img => [img.complete && img.naturalWidth, img.naturalHeight]")
    assert width > 300 and height > 100, (width, height)  # decoded: the 9 x 2.5 inch figure
    box = plot.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    expect(page.locator("body")).to_contain_text("loss per round: {0: 1.0, 1: 0.5, 2: 0.3333333333333333}")
    assert fetched == [], f"the page fetched {fetched}"
    assert page.lab_errors == []  # type: ignore[attr-defined]


def test_quickstart_notebook_opens_in_jupyterlab_with_its_snapshots(quickstart_run, lab_server, widget_bundle, page):
    """``jupyter lab notebooks/results/01_quickstart.ipynb`` (the command's last hint): without running a cell, each
    log view shows its saved snapshot — the finished job's header and every site's last lines — and the plot."""
    import shutil

    from . import lab

    root, proc = quickstart_run
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    shutil.copy(root / "notebooks" / "results" / "01_quickstart.ipynb", Path(lab_server.root_dir) / "qs_result.ipynb")
    lab.open_notebook(page, lab_server, "qs_result.ipynb")
    cells = [
        "".join(c["source"]) for c in json.loads((root / "notebooks" / "01_quickstart.ipynb").read_text())["cells"]
    ]
    views = [i for i, src in enumerate(cells) if src.startswith("job = %flare submit") or src.strip() == "job.view()"]
    assert len(views) == 2, cells
    for index in views:  # the submit cell's view and job.view()'s
        out = lab.cell_output(page, index)
        expect(out).to_contain_text(re.compile(r"quickstart-fedavg \([0-9a-f-]{36}\) — FINISHED:COMPLETED"))
        for site in ("server", "site-1", "site-2"):
            expect(out.locator("pre", has_text=f"===== {site} =====")).to_contain_text("│ ")
    plot = lab.cell_output(page, next(i for i, src in enumerate(cells) if "matplotlib" in src)).locator("img")
    plot.scroll_into_view_if_needed()
    expect(plot).to_be_visible()
