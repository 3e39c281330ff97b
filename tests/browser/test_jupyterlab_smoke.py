"""Smoke tests in a real JupyterLab + Chromium: the %flare magic's help/errors and the LogView front end."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from . import lab

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000


def test_kernel_is_this_venv_and_inherits_env(lab_server, page):
    """The kernel JupyterLab starts runs this interpreter, with a temporary HOME and the session's env."""
    assert Path(lab_server.home).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    lab.write_notebook(
        lab_server.root_dir,
        "env.ipynb",
        [
            "import os, sys\n"
            "print('EXE=' + sys.executable)\n"
            "print('HOME=' + os.environ['HOME'])\n"
            "print('PATH=' + os.environ['PATH'])"
        ],
    )
    lab.open_notebook(page, lab_server, "env.ipynb")
    out = lab.run_cell(page, 0)
    expect(out).to_contain_text(f"EXE={sys.executable}", timeout=TIMEOUT_MS)
    expect(out).to_contain_text(f"HOME={lab_server.home}", timeout=TIMEOUT_MS)
    expect(out).to_contain_text(f"PATH={lab_server.env['PATH']}", timeout=TIMEOUT_MS)


def test_harness_run_cell_run_all_restart(lab_server, page):
    """The page helpers themselves: run all, re-run one cell, restart + run all."""
    lab.write_notebook(lab_server.root_dir, "harness.ipynb", ["#md\n# title", "x = 1", "x += 1\nprint(f'x={x}')"])
    lab.open_notebook(page, lab_server, "harness.ipynb")
    lab.run_all(page)
    expect(lab.cell_output(page, 2)).to_have_text("x=2", timeout=TIMEOUT_MS)
    expect(lab.run_cell(page, 2)).to_have_text("x=3", timeout=TIMEOUT_MS)
    lab.restart_kernel_and_run_all(page)
    expect(lab.cell_output(page, 2)).to_have_text("x=2", timeout=TIMEOUT_MS)
    expect(lab.cell_prompt(page, 1)).to_have_text("[1]:")


def test_flare_help_and_unknown_command(lab_server, page):
    lab.write_notebook(lab_server.root_dir, "magic.ipynb", ["%load_ext flarenb", "%flare help", "%flare bogus"])
    lab.open_notebook(page, lab_server, "magic.ipynb")
    lab.run_all(page)

    expect(lab.cell_output(page, 1)).to_contain_text("Usage: %flare COMMAND", timeout=TIMEOUT_MS)

    err = lab.cell_output(page, 2)
    expect(err).to_contain_text("UsageError: %flare: unknown command 'bogus'", timeout=TIMEOUT_MS)
    text = err.inner_text().strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, f"expected a one-line error, got:\n{text}"
    # It is shown as an error output (stderr/error), not as ordinary output.
    expect(err.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(
        1, timeout=TIMEOUT_MS
    )


HOSTILE = "<img src=x onerror=alert(1)>"


def test_logview_renders_lines_as_text(lab_server, page, widget_bundle):
    source = (
        "from flarenb.widget import LogView\n"
        "v = LogView('e2e-job', job_name='e2e', sites=['server', 'site-1'])\n"
        "v.set_status('RUNNING')\n"
        "v.append('server', ['server says hello'])\n"
        "v.append('site-1', [(1, 'site-1 round 0 done', 'INFO', '12:00:01'),\n"
        f"                   (2, {HOSTILE!r}, 'WARNING', '12:00:02')])\n"
        "v"
    )
    lab.write_notebook(lab_server.root_dir, "widget.ipynb", [source])
    lab.open_notebook(page, lab_server, "widget.ipynb")
    out = lab.run_cell(page, 0)

    view = out.get_by_test_id("flarenb-logview")
    unbuilt = out.get_by_test_id("flarenb-unbuilt")
    expect(view.or_(unbuilt)).to_be_visible(timeout=TIMEOUT_MS)
    assert unbuilt.count() == 0, f"the kernel used the fallback front end: {unbuilt.inner_text()}"
    expect(view).to_be_visible()
    expect(view.get_by_test_id("flarenb-job-id")).to_contain_text("e2e-job", timeout=TIMEOUT_MS)
    lines = view.get_by_test_id("flarenb-line")
    expect(lines.filter(has_text="server says hello")).to_be_visible(timeout=TIMEOUT_MS)
    expect(lines.filter(has_text="site-1 round 0 done")).to_be_visible(timeout=TIMEOUT_MS)
    hostile = lines.filter(has_text=HOSTILE)
    expect(hostile).to_be_visible(timeout=TIMEOUT_MS)
    expect(hostile).to_contain_text(re.compile(re.escape(HOSTILE)))
    # The markup stayed text: no <img> anywhere in the widget (nor the whole output), no alert() ran.
    expect(view.locator("img")).to_have_count(0)
    expect(out.locator("img")).to_have_count(0)
    assert page.lab_dialogs == []
    assert page.lab_errors == [], page.lab_errors
