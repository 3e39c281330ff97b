"""The tutorial ``03_debugging_a_failing_site`` run with *Run All* in JupyterLab 4 and in Jupyter Notebook 7, checked
in the page: both of its live views (the submit cell's and ``job.view()``'s) end with the job's final status, every
site's final state, the job's duration as elapsed time, the failing site's "first error" badge leading to its
traceback, and an "All sites" view ordered by time.

Every check waits on a locator or on page state (generous deadlines: the machine may be loaded).
"""

from __future__ import annotations

import json
import re
import shutil
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from . import lab
from .jobinfo import duration_text

pytestmark = [pytest.mark.browser, pytest.mark.poc]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIAL = "03_debugging_a_failing_site.ipynb"
SITES = ("server", "site-1", "site-2")
RUN_ALL_S = 480  # %flare poc start (reused) + a 2-round job that fails + its logs, on a loaded machine
FINAL_MS = 120_000  # after Run All stopped: the views' last updates


def _copy_tutorial(root: Path, ui: str) -> str:
    """The tutorial without its outputs, under a name of its own per front end (so each run submits its own job:
    the submit token is scoped by the notebook), and the client script it trains with."""
    nb = json.loads((NOTEBOOKS / TUTORIAL).read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    name = f"03-{ui}.ipynb"
    (root / name).write_text(json.dumps(nb, indent=1))
    shutil.copyfile(NOTEBOOKS / "fedavg_client.py", root / "fedavg_client.py")
    return name


_ROWS_JS = """(lane) => [...lane.querySelectorAll('[data-testid="flarenb-line"]')]
    .map(r => [r.dataset.site, r.title || null])"""

_TS = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:[.,](\d+))?")


def _ts_key(ts: str | None) -> tuple | None:
    m = _TS.search(ts or "")
    return None if m is None else (m.group(1), m.group(2), float(f"0.{m.group(3) or 0}"))


@pytest.mark.parametrize("ui", lab.UIS)
def test_failing_site_tutorial_run_all_ends_every_view(flarenb_poc, lab_server, page: Page, widget_bundle, ui):
    name = _copy_tutorial(Path(lab_server.root_dir), ui)
    lab.open_notebook(page, lab_server, name, ui=ui)
    lab.run_all(page, timeout=RUN_ALL_S)

    # Run All stopped at the %flare wait of the failed job (the last cell)
    last = lab.code_cells(page).last.locator(".jp-OutputArea")
    expect(last).to_contain_text("JobFailed", timeout=FINAL_MS)

    views = page.get_by_test_id("flarenb-logview")
    expect(views).to_have_count(2, timeout=FINAL_MS)  # the submit cell's live view and job.view()
    assert page.get_by_test_id("flarenb-unbuilt").count() == 0
    job_id = views.first.get_by_test_id("flarenb-job-id").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", job_id), job_id
    expected_elapsed = duration_text(flarenb_poc, job_id)

    for i in range(2):
        view = views.nth(i)
        expect(view.get_by_test_id("flarenb-job-id")).to_have_text(job_id)
        expect(view.get_by_test_id("flarenb-status")).to_have_text("FINISHED:EXECUTION_EXCEPTION", timeout=FINAL_MS)
        expect(view).to_have_attribute("data-status", "failed")
        for site in SITES:  # the final state of every site, in the page
            state = view.get_by_test_id(f"flarenb-site-state-{site}")
            expect(state).to_have_attribute("data-state", re.compile(r"^(done|unavailable)$"), timeout=FINAL_MS)
            if state.get_attribute("data-state") == "unavailable":
                expect(state).to_contain_text(re.compile(r"unavailable: \S"))  # with its reason
        # the elapsed time is the job's duration (NVFlare's), whenever it is looked at
        expect(view.get_by_test_id("flarenb-elapsed")).to_have_text(expected_elapsed, timeout=FINAL_MS)
        # the failing site carries the "first error" badge
        expect(view.get_by_test_id("flarenb-first-error-site-2")).to_be_visible(timeout=FINAL_MS)

    # the badge leads to site-2's traceback
    view = views.nth(1)
    view.get_by_test_id("flarenb-first-error-site-2").click()
    expect(view.get_by_test_id("flarenb-lane-tab-site-2")).to_have_attribute("aria-selected", "true")
    current = view.locator('[data-testid="flarenb-line"][aria-current="true"]')
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("data-site", "site-2")
    expect(
        view.get_by_test_id("flarenb-lane-site-2")
        .get_by_test_id("flarenb-line")
        .filter(has_text="RuntimeError: site-2 cannot read its data")
    ).not_to_have_count(0)

    # "All sites" is ordered by time: its rows' times never go back — a site's own order is kept, so a line whose
    # clock stepped back (seen: 32.330 then 32.328 in the server's log) counts as its predecessor's time — and the
    # sites alternate
    view.get_by_test_id("flarenb-lane-tab-all-sites").click()
    lane = view.get_by_test_id("flarenb-lane-all-sites")
    expect(lane).to_be_visible()
    rows = lane.evaluate(_ROWS_JS)
    assert {site for site, _ in rows} == set(SITES), rows[:5]
    latest: dict[str, tuple] = {}
    keys = []
    for site, ts in rows:
        key = _ts_key(ts)
        if key is not None:
            latest[site] = max(key, latest.get(site, key))
            keys.append((site, latest[site]))
    back = [(a, b) for a, b in pairwise(keys) if b[1] < a[1]]
    assert not back, f"All sites goes back in time at {back[:3]}"
    switches = sum(1 for a, b in pairwise(rows) if a[0] != b[0])
    assert switches > len(SITES), f"All sites shows one site after the other ({switches} switches)"

    assert page.lab_dialogs == []
    assert lab.our_page_errors(page) == [], lab.our_page_errors(page)
