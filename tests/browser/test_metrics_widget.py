"""End to end in a real JupyterLab 4 + Chromium: a real POC job's round progress and metrics in its live LogView.

The notebook submits a 5-round job whose client sleeps 3 s per round and reports two metrics per round: ``loss`` and
one named with hostile markup. While the job runs, the header's "round k of 5" advances (two different values seen
live) and the Metrics toggle opens the charts. Once it ended, a view of the job (``job.view()``, what a later cell or
a reopened notebook shows) says "round 5 of 5" and its Metrics panel has one chart per metric, each with the 5 rounds
of site-1, site-2 and the aggregate, as ``job.metrics()`` has them; the hostile name is text (no ``img`` element).
Every check waits on a locator or on page state.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from . import lab

pytestmark = [pytest.mark.browser, pytest.mark.poc]

TIMEOUT_MS = 60_000
JOB_END_MS = 240_000
ROUNDS = 5
HOSTILE = "<img src=x onerror=alert(1)>"
METRICS = ("loss", HOSTILE)
SERIES = ("site-1", "site-2", "aggregated")


def _export_job(root: Path, name: str) -> Path:
    tests = str(Path(__file__).resolve().parents[1])  # tests/ (for conftest.export_job)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from conftest import export_job

    job = export_job(root / "jobs" / name, name=name, rounds=ROUNDS, train_args="--sleep 3")
    # our own copy of the client script: it also reports a metric whose name is markup that must stay text
    script = job / "app" / "custom" / "client.py"
    src = script.read_text()
    marker = 'metrics={"loss": 1.0 / (model.current_round + 1)}'
    assert marker in src, "notebooks/fedavg_client.py changed: update this test's hostile metric"
    hostile = f'metrics={{"loss": 1.0 / (model.current_round + 1), {HOSTILE!r}: float(model.current_round)}}'
    script.write_text(src.replace(marker, hostile, 1))
    return job


def _widget(page: Page, out):
    view = out.get_by_test_id("flarenb-logview")
    unbuilt = out.get_by_test_id("flarenb-unbuilt")
    expect(view.or_(unbuilt)).to_be_visible(timeout=TIMEOUT_MS)
    assert unbuilt.count() == 0, f"the kernel used the fallback front end: {unbuilt.inner_text()}"
    return view


def test_round_progress_and_metrics_of_a_real_job(flarenb_poc, lab_server, page, widget_bundle):
    name = f"browser-metrics-{uuid.uuid4().hex[:6]}"  # a job of its own per attempt (the submit token is by name)
    job_dir = _export_job(Path(lab_server.root_dir), name)
    lab.write_notebook(
        lab_server.root_dir,
        "metrics.ipynb",
        [
            "%load_ext flarenb",
            "%flare poc start",
            f"job = %flare submit {job_dir} --name {name}",
            "meta = job.wait(timeout=300)\nprint('WAITED', job.id, meta['status'])",
            "job.view()",
            "print('SERIES', sorted({(r.metric, r.site) for r in job.metrics()}))",
        ],
    )
    lab.open_notebook(page, lab_server, "metrics.ipynb")
    lab.run_cell(page, 0)
    lab.run_cell(page, 1, timeout=120)
    out = lab.run_cell(page, 2, timeout=120)
    view = _widget(page, out)
    status = view.get_by_test_id("flarenb-status")
    round_ = view.get_by_test_id("flarenb-progress-round")
    toggle = view.get_by_test_id("flarenb-metrics-toggle")

    # the kernel is busy from here on (the wait cell runs): the view is fed all the same
    lab.cell(page, 3).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    busy = lab.cell_prompt(page, 3)
    expect(busy).to_have_text(re.compile(r"\[\*\]"), timeout=TIMEOUT_MS)

    # ---- while the job runs: no progress before the first round's results, then "round k of 5" advances
    expect(status).to_have_text("RUNNING", timeout=TIMEOUT_MS)
    pattern = re.compile(rf"^round [1-{ROUNDS}] of {ROUNDS}$")
    expect(round_).to_have_text(pattern, timeout=TIMEOUT_MS)
    first = round_.inner_text().strip()
    expect(round_).not_to_have_text(first, timeout=TIMEOUT_MS)
    second = round_.inner_text().strip()
    assert status.inner_text().strip() == "RUNNING", f"the job ended before its rounds were seen live: {second}"
    assert pattern.match(second) and second != first, (first, second)
    assert int(second.split()[1]) > int(first.split()[1]), (first, second)
    expect(view.get_by_test_id("flarenb-progress")).to_be_visible()
    for site in ("site-1", "site-2"):  # each site's part in the latest round
        expect(view.get_by_test_id(f"flarenb-progress-site-{site}")).to_have_attribute(
            "data-state", re.compile("reported|training|silent")
        )
    # the Metrics panel of the live view: a chart per metric from the first round on
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(view.locator(".flarenb-metric-chart")).to_have_count(len(METRICS))
    running = status.inner_text().strip()

    # ---- the job ends: every round shown
    expect(status).to_have_text("FINISHED:COMPLETED", timeout=JOB_END_MS)
    expect(round_).to_have_text(f"round {ROUNDS} of {ROUNDS}", timeout=TIMEOUT_MS)
    expect(busy).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"), timeout=JOB_END_MS)
    assert running == "RUNNING", "the job ended before the live view's charts were seen: make the job longer"

    # ---- a view of the ended job: its Metrics panel has one chart per metric, a series per site and the aggregate
    # (a new output: the live view's output is refreshed once when the job ends, which re-renders it)
    live_out, out = out, lab.run_cell(page, 4)
    view = _widget(page, out)
    expect(view.get_by_test_id("flarenb-status")).to_have_text("FINISHED:COMPLETED")
    expect(view.get_by_test_id("flarenb-progress-round")).to_have_text(f"round {ROUNDS} of {ROUNDS}")
    toggle = view.get_by_test_id("flarenb-metrics-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    panel = view.get_by_test_id("flarenb-metrics")
    expect(panel).to_be_visible()
    charts = panel.locator(".flarenb-metric-chart")
    expect(charts).to_have_count(len(METRICS), timeout=TIMEOUT_MS)
    lines = panel.locator("polyline.flarenb-metric-series")
    try:
        expect(lines).to_have_count(len(METRICS) * len(SERIES), timeout=TIMEOUT_MS)
    finally:  # what the panel and the kernel hold, to say why when it fails
        drawn = charts.evaluate_all(
            "cs => cs.map(c => [c.dataset.metric, [...c.querySelectorAll('polyline')].map(l => l.dataset.site)])"
        )
        lab.run_cell(page, 5)
        held = lab.cell_output(page, 5).inner_text()
        print("DRAWN", drawn, "\nHELD", held)
    names = [charts.nth(i).get_attribute("data-metric") for i in range(charts.count())]
    assert sorted(names) == sorted(METRICS), names
    for metric in METRICS:
        chart = charts.filter(has=page.locator(".flarenb-metric-title", has_text=metric))
        expect(chart).to_have_count(1)
        for site in SERIES:
            line = chart.locator(f'polyline.flarenb-metric-series[data-site="{site}"]')
            expect(line).to_have_count(1)
            expect(line).to_have_attribute("data-points", str(ROUNDS), timeout=TIMEOUT_MS)
        expect(chart.locator("polyline.flarenb-metric-series.aggregated")).to_have_count(1)
    assert all(f"'{site}')" in held for site in SERIES) and HOSTILE in held, held  # job.metrics() has them too

    # ---- the hostile metric name is text: shown as it is, no <img> anywhere, no alert()
    title = panel.locator(".flarenb-metric-title", has_text=HOSTILE)
    expect(title).to_have_count(1)
    expect(title).to_have_text(HOSTILE)
    expect(view.locator("img")).to_have_count(0)
    expect(out.locator("img")).to_have_count(0)
    expect(live_out.locator("img")).to_have_count(0)
    assert page.lab_dialogs == []
    assert lab.our_page_errors(page) == [], lab.our_page_errors(page)
