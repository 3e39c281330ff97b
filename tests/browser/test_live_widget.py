"""End to end in a real JupyterLab 4 and a real Notebook 7 + Chromium: a real POC job's live LogView, from submit to
FINISHED.

The notebook loads flarenb, reuses the session's POC (``%flare poc start``), submits a 3-round job whose
client sleeps 3 s per round (and prints hostile markup once), so the job runs long enough to look at the
page while it runs; then it waits for the job. Every check waits on a locator or on page state.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from . import lab
from .jobinfo import duration_text

pytestmark = [pytest.mark.browser, pytest.mark.poc]

TIMEOUT_MS = 60_000
JOB_END_MS = 240_000
SITES = ("server", "site-1", "site-2")
HOSTILE = "<img src=x onerror=alert(1)>"


def _export_job(root: Path, name: str) -> Path:
    tests = str(Path(__file__).resolve().parents[1])  # tests/ (for conftest.export_job)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from conftest import export_job

    job = export_job(root / "jobs" / name, name=name, rounds=3, train_args="--sleep 5")
    # our own copy of the client script: it also prints markup that must stay text in the page
    script = job / "app" / "custom" / "client.py"
    src = script.read_text()
    marker = "site = flare.get_site_name()\n"
    assert marker in src, "notebooks/fedavg_client.py changed: update this test's hostile print"
    script.write_text(src.replace(marker, marker + f"print({HOSTILE!r} + ' site=' + site, flush=True)\n", 1))
    return job


_COUNTS_JS = """(root) => {
    // one consistent reading of the widget: status text + line count per site and per level
    const lines = [...root.querySelectorAll('[data-testid="flarenb-line"]')];
    const bySite = {}, byLevel = {};
    for (const l of lines) {
        const s = l.dataset.site, v = l.dataset.level || '';
        bySite[s] = (bySite[s] || 0) + 1;
        byLevel[v] = (byLevel[v] || 0) + 1;
    }
    const status = root.querySelector('[data-testid="flarenb-status"]').textContent;
    return { status, total: lines.length, bySite, byLevel };
}"""


def _reading(view) -> dict:
    return view.evaluate(_COUNTS_JS)


def _widget(page: Page, out):
    view = out.get_by_test_id("flarenb-logview")
    unbuilt = out.get_by_test_id("flarenb-unbuilt")
    expect(view.or_(unbuilt)).to_be_visible(timeout=TIMEOUT_MS)
    assert unbuilt.count() == 0, f"the kernel used the fallback front end: {unbuilt.inner_text()}"
    return view


@pytest.mark.parametrize("ui", lab.UIS)
def test_live_logview_of_a_real_job(flarenb_poc, lab_server, page, widget_bundle, ui):
    # a job of its own per front end and per attempt (the submit token is scoped by --name: a retried attempt
    # with the same name would reattach to the first attempt's job, already finished)
    name = f"browser-e2e-{ui}-{uuid.uuid4().hex[:6]}"
    job_dir = _export_job(Path(lab_server.root_dir), name)
    lab.write_notebook(
        lab_server.root_dir,
        f"live-{ui}.ipynb",
        [
            "%load_ext flarenb",
            "%flare poc start",
            f"job = %flare submit {job_dir} --name {name}",
            "meta = job.wait(timeout=300)\nprint('WAITED', job.id, meta['status'])",
        ],
    )
    lab.open_notebook(page, lab_server, f"live-{ui}.ipynb", ui=ui)
    lab.run_cell(page, 0)
    lab.run_cell(page, 1, timeout=120)
    out = lab.run_cell(page, 2, timeout=120)
    view = _widget(page, out)
    status = view.get_by_test_id("flarenb-status")
    lines = view.get_by_test_id("flarenb-line")

    # ---- the kernel is busy from here on (the wait cell runs): every control below must work all the same
    lab.cell(page, 3).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    busy = lab.cell_prompt(page, 3)
    expect(busy).to_have_text(re.compile(r"\[\*\]"), timeout=TIMEOUT_MS)

    # ---- while the job runs: lines of every site arrive, the status says RUNNING
    expect(status).to_have_text("RUNNING", timeout=TIMEOUT_MS)
    for site in SITES:
        expect(view.locator(f'[data-testid="flarenb-line"][data-site="{site}"]').first).to_be_attached(
            timeout=TIMEOUT_MS
        )
    expect(lines.filter(has_text="round 0 on site-1:").first).to_be_attached(timeout=TIMEOUT_MS)
    now = _reading(view)
    assert now["status"] == "RUNNING", f"the job ended before its lines were seen live: {now}"
    assert all(now["bySite"].get(s, 0) > 0 for s in SITES), now
    expect(view).to_have_attribute("data-status", "running")

    # ---- the header's debug info: an ⓘ saying how the kernel follows this local job (inotify on Linux)
    source_info = view.get_by_test_id("flarenb-source-info")
    followed = re.compile(r"^followed by: 3 local log files, inotify notifications \(safety poll every 5 s\)")
    expect(source_info).to_have_attribute("title", followed)
    source_info.locator("summary").click()  # opened: the same line, as text
    expect(view.get_by_test_id("flarenb-source-info-text")).to_be_visible()
    expect(view.get_by_test_id("flarenb-source-info-text")).to_contain_text("3 local log files, inotify notifications")
    source_info.locator("summary").click()

    # ---- lanes: one site's lane shows only that site's lines
    tab1 = view.get_by_test_id("flarenb-lane-tab-site-1")
    tab1.click()
    expect(tab1).to_have_attribute("aria-selected", "true")
    lane1 = view.get_by_test_id("flarenb-lane-site-1")
    expect(lane1).to_be_visible()
    expect(lane1.get_by_test_id("flarenb-line").filter(has_text="round 0 on site-1:")).to_be_visible()
    expect(lane1.locator('[data-testid="flarenb-line"]:not([data-site="site-1"])')).to_have_count(0)

    tab2 = view.get_by_test_id("flarenb-lane-tab-site-2")
    tab2.click()
    expect(tab2).to_have_attribute("aria-selected", "true")
    expect(tab1).to_have_attribute("aria-selected", "false")
    lane2 = view.get_by_test_id("flarenb-lane-site-2")
    expect(lane2.get_by_test_id("flarenb-line").filter(has_text="round 0 on site-2:")).to_be_visible(timeout=TIMEOUT_MS)
    expect(lane2.locator('[data-testid="flarenb-line"]:not([data-site="site-2"])')).to_have_count(0)
    assert _reading(view)["status"] == "RUNNING", "lanes were switched after the job ended: make the job longer"
    expect(busy).to_have_text(re.compile(r"\[\*\]"))  # the kernel was busy all along

    # ---- the job ends: final status, every site done, the wait cell returns
    view.get_by_test_id("flarenb-lane-tab-all-sites").click()
    expect(view.get_by_test_id("flarenb-lane-all-sites")).to_be_visible()
    expect(status).to_have_text("FINISHED:COMPLETED", timeout=JOB_END_MS)
    expect(view).to_have_attribute("data-status", "completed")
    for site in SITES:
        expect(view.get_by_test_id(f"flarenb-site-state-{site}")).to_have_attribute(
            "data-state", "done", timeout=TIMEOUT_MS
        )
    # a healthy job logs no ERROR on any site (flarenb's log receiver included): no "first error" link anywhere
    expect(view.locator('[data-testid^="flarenb-first-error-"]')).to_have_count(0)
    expect(busy).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"), timeout=JOB_END_MS)
    waited = lab.cell_output(page, 3)
    expect(waited).to_contain_text("WAITED", timeout=TIMEOUT_MS)
    expect(waited).to_contain_text("FINISHED:COMPLETED")
    for site in ("site-1", "site-2"):
        for rnd in range(3):
            expect(lines.filter(has_text=f"round {rnd} on {site}:")).to_have_count(1)
    # the elapsed time stopped at the job's duration (NVFlare's)
    job_id = view.get_by_test_id("flarenb-job-id").inner_text().strip()
    expect(view.get_by_test_id("flarenb-elapsed")).to_have_text(duration_text(flarenb_poc, job_id), timeout=TIMEOUT_MS)

    # ---- level filter (the log is complete now, so counts are stable): >= WARNING hides every INFO line
    before = _reading(view)
    info = before["byLevel"].get("INFO", 0)
    kept = sum(before["byLevel"].get(lv, 0) for lv in ("WARNING", "ERROR", "CRITICAL"))
    assert info > 0, before
    assert before["total"] == sum(before["byLevel"].values())
    level = view.get_by_test_id("flarenb-level-filter")
    level.select_option("WARNING")
    expect(view.locator('[data-testid="flarenb-line"][data-level="INFO"]')).to_have_count(0)
    expect(lines).to_have_count(kept)
    expect(lines.filter(has_text="round 0 on site-1:")).to_have_count(0)
    if kept == 0:
        expect(view.get_by_test_id("flarenb-empty")).to_have_text("No line matches the filter.")
    level.select_option("")
    expect(lines).to_have_count(before["total"])
    expect(view.locator('[data-testid="flarenb-line"][data-level="INFO"]')).to_have_count(info)

    # ---- hostile text printed by each client stays text: no <img>, no alert()
    for site in ("site-1", "site-2"):
        hostile = lines.filter(has_text=f"{HOSTILE} site={site}")
        expect(hostile).to_have_count(1)
        expect(hostile).to_contain_text(re.compile(re.escape(HOSTILE)))
    expect(view.locator("img")).to_have_count(0)
    expect(out.locator("img")).to_have_count(0)
    assert page.lab_dialogs == []
    assert lab.our_page_errors(page) == [], lab.our_page_errors(page)
