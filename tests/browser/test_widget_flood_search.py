"""End to end in a real JupyterLab + Chromium: search and "first error" find lines the browser never received.

A LogView is given 3,000 lines of one site at once with a small message budget (20 KB/s), so the kernel sends the
browser only the newest few hundred and one skip marker for the rest — as under a flood. The page then searches for
a line inside the skipped range (hostile markup in it) and asks for the first error (also skipped): both come from
the kernel's history, shown as text below the lane, and a click shows the skip marker standing for the line. No
NVFlare here: the lines are fed to the widget's kernel side as the log receiver feeds it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from . import lab

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
NEEDLE_SEQ, FIRST_ERROR_SEQ, LAST_ERROR_SEQ = 1234, 100, 2990
HOSTILE = "<b>bold</b><img src=x onerror=alert(1)>"

CELL = f"""\
from flarenb.widget import LogView
view = LogView("flood-search", job_name="flood", sites=["server", "site-1"], max_bytes_per_sec=20_000)
view.set_status("RUNNING")
def text(seq):
    if seq == {NEEDLE_SEQ}:
        return "step %d the NEEDLE-7f3a is here {HOSTILE}" % seq
    if seq in ({FIRST_ERROR_SEQ}, {LAST_ERROR_SEQ}):
        return "step %d boom-%d" % (seq, seq)
    return "step %d loss=0.%06d" % (seq, seq)
level = lambda seq: "ERROR" if seq in ({FIRST_ERROR_SEQ}, {LAST_ERROR_SEQ}) else "INFO"
view.append("site-1", [(s, text(s), level(s), None) for s in range(1, 3001)])
view.append("server", [(1, "server up", "INFO", None)])
display(view)
print("SKIPPED", view._out.skipped["site-1"])
"""


@pytest.fixture(scope="module")
def flood_lab():
    server = lab.start_lab_server()  # its own HOME and Jupyter dirs; no FLARE needed
    try:
        yield server
    finally:
        server.stop()


def test_search_and_first_error_find_lines_the_browser_never_received(flood_lab, page: Page, widget_bundle):
    lab.write_notebook(flood_lab.root_dir, "flood-search.ipynb", [CELL])
    lab.open_notebook(page, flood_lab, "flood-search.ipynb")
    out = lab.run_cell(page, 0)
    view = out.get_by_test_id("flarenb-logview")
    unbuilt = out.get_by_test_id("flarenb-unbuilt")
    expect(view.or_(unbuilt)).to_be_visible(timeout=TIMEOUT_MS)
    assert unbuilt.count() == 0, f"the kernel used the fallback front end: {unbuilt.inner_text()}"
    expect(out).to_contain_text("SKIPPED", timeout=TIMEOUT_MS)
    skipped = int(out.inner_text().split("SKIPPED", 1)[1].split()[0])
    assert skipped > NEEDLE_SEQ, skipped  # the kernel sent only the newest lines

    # ---- the browser got a skip marker for the needle's line, never the line itself
    view.get_by_test_id("flarenb-lane-tab-site-1").click()
    lane = view.get_by_test_id("flarenb-lane-site-1")
    expect(lane.locator('[data-testid="flarenb-line"][data-seq="3000"]')).to_be_attached(timeout=TIMEOUT_MS)
    gap = lane.locator('[data-testid="flarenb-gap"][data-reason="skipped"]')
    expect(gap).to_have_count(1)
    assert int(gap.get_attribute("data-first")) <= NEEDLE_SEQ <= int(gap.get_attribute("data-last"))
    expect(view.locator(f'[data-site="site-1"][data-seq="{NEEDLE_SEQ}"]')).to_have_count(0)

    # ---- search: nothing here, the kernel's copy has it; shown as text
    view.get_by_test_id("flarenb-search").fill("needle-7F3A")
    expect(view.get_by_test_id("flarenb-search-count")).to_have_text("0 matching lines")
    found = view.get_by_test_id("flarenb-found-line")
    expect(found).to_have_count(1, timeout=TIMEOUT_MS)
    expect(view.get_by_test_id("flarenb-found-summary")).to_have_text(
        "1 matching lines not shown here (from the kernel)"
    )
    expect(found).to_have_attribute("data-seq", str(NEEDLE_SEQ))
    expect(found).to_contain_text(f"the NEEDLE-7f3a is here {HOSTILE}")
    expect(view.locator("img, b")).to_have_count(0)
    found.click()  # shows where it belongs: the skip marker, current
    expect(lane.locator('[data-testid="flarenb-gap"].flarenb-current')).to_be_visible()

    # ---- first error: the local one (2990) at once, then the kernel's earlier one (100)
    view.get_by_test_id("flarenb-jump-error").click()
    expect(view.get_by_test_id("flarenb-found-summary")).to_have_text(
        "First error, in lines not shown here (from the kernel):", timeout=TIMEOUT_MS
    )
    expect(found).to_have_count(1)
    expect(found).to_have_attribute("data-seq", str(FIRST_ERROR_SEQ))
    expect(found).to_contain_text(f"boom-{FIRST_ERROR_SEQ}")
    expect(lane.locator('[data-testid="flarenb-gap"].flarenb-current')).to_be_visible()
    expect(lane.locator(f'[data-seq="{LAST_ERROR_SEQ}"]')).to_have_count(1)  # the error the browser has
    assert page.lab_dialogs == []
    assert page.lab_errors == [], page.lab_errors
