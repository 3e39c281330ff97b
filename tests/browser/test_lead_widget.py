"""End to end in a real JupyterLab + Chromium: a ``lead`` user on a provisioned deployment (NVFlare's default policy,
no ``get_job_log`` right) submits a job and watches its live view.

While the job runs the page shows its status and, for every site, why there are no lines ("... need the
get_job_log right ..."); as soon as the job has ended, every site's lane fills from the job's download, without
rerunning anything. Every check waits on a locator.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from . import lab

pytestmark = [pytest.mark.browser, pytest.mark.poc, pytest.mark.deployment]

TIMEOUT_MS = 60_000
JOB_END_MS = 300_000


def _export_job(root: Path, hold: Path) -> Path:
    """The job; its clients hold their first round until ``hold`` exists, so the running view is seen for sure."""
    tests = str(Path(__file__).resolve().parents[1])
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from conftest import export_job

    return export_job(root / "jobs", name="browser-lead", rounds=3, train_args=f"--sleep 1 --hold-until {hold}")


def test_lead_view_says_why_while_running_then_shows_every_site(
    flarenb_deployment, lab_server, page: Page, widget_bundle
):
    d = flarenb_deployment
    # a new hold file per attempt: the job's content differs, so a rerun of a failed attempt submits a new job instead
    # of reattaching to the (by then finished) job of the first attempt
    hold = Path(lab_server.root_dir) / f"release-browser-lead-{uuid.uuid4().hex[:8]}"
    job_dir = _export_job(Path(lab_server.root_dir), hold)
    try:
        _watch(d, lab_server, page, job_dir, hold)
    finally:
        hold.touch()  # never leave the clients waiting


def _watch(d, lab_server, page: Page, job_dir: Path, hold: Path) -> None:
    sites = ("server", *d.clients)
    lab.write_notebook(
        lab_server.root_dir,
        "lead.ipynb",
        [
            "%load_ext flarenb",
            f"%flare connect --startup-kit {d.kit('lead@example.org')}",
            f"job = %flare submit {job_dir} --name browser-lead",
            "meta = job.wait(timeout=300)\nprint('WAITED', job.id, meta['status'])",
        ],
    )
    lab.open_notebook(page, lab_server, "lead.ipynb")
    lab.run_cell(page, 0)
    lab.run_cell(page, 1, timeout=120)
    out = lab.run_cell(page, 2, timeout=120)
    view = out.get_by_test_id("flarenb-logview")
    expect(view).to_be_visible(timeout=TIMEOUT_MS)
    status = view.get_by_test_id("flarenb-status")

    lab.cell(page, 3).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")

    # ---- while the job runs: the status, and each site says why its lines are missing
    expect(status).to_have_text("RUNNING", timeout=TIMEOUT_MS)
    for site in sites:
        state = view.get_by_test_id(f"flarenb-site-state-{site}")
        expect(state).to_contain_text("get_job_log", timeout=TIMEOUT_MS)
    expect(status).to_have_text("RUNNING")
    expect(view.get_by_test_id("flarenb-line")).to_have_count(0)
    hold.touch()

    # ---- the job ends: every site's lines, from the download, with no rerun
    expect(status).to_have_text("FINISHED:COMPLETED", timeout=JOB_END_MS)
    for site in sites:
        expect(view.get_by_test_id(f"flarenb-site-state-{site}")).to_have_attribute(
            "data-state", "done", timeout=TIMEOUT_MS
        )
        expect(view.locator(f'[data-testid="flarenb-line"][data-site="{site}"]').first).to_be_attached()
    # the view renders a window of lines: search counts over all of them. Each site's first line says where its
    # lines came from. (The per-round client lines are checked on the kernel's model in
    # tests/test_roles_deployment.py; the page has shown only part of them — see the branch report.)
    search, count = view.get_by_test_id("flarenb-search"), view.get_by_test_id("flarenb-search-count")
    search.fill("from the job's download")
    expect(count).to_have_text(f"{len(sites)} matching lines", timeout=TIMEOUT_MS)
    search.fill("")
    expect(lab.cell_output(page, 3)).to_contain_text("FINISHED:COMPLETED", timeout=JOB_END_MS)
    assert page.lab_errors == [], page.lab_errors
