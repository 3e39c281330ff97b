"""Fixtures for end-to-end tests in a real JupyterLab driven through Debian's Chromium (Playwright, sync).

* ``lab_server`` (session): a private ``jupyter lab`` on localhost (see :func:`tests.browser.lab.start_lab_server`).
  Its environment is ``os.environ`` as it is when the fixture starts, plus ``lab_server_extra_env`` (override that
  fixture to add variables). Request ``flarenb_poc`` *before* ``lab_server`` if notebooks should see the POC: the
  kernels then inherit ``NVFLARE_POC_WORKSPACE`` and the POC's temporary ``HOME``.
* ``browser`` (session) / ``page`` (function): headless ``/usr/bin/chromium``; a fresh browser context per test.
* ``widget_bundle`` (session): makes sure ``flarenb/static/widget.js`` exists (builds it with npm if it can).

On a failing test the page's screenshot and the tail of the server log are added to the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from . import lab

REPO = Path(__file__).resolve().parents[2]
WIDGET_JS = REPO / "flarenb" / "static" / "widget.js"


def _isolated_home() -> str | None:
    """The current HOME if it is a temporary folder (set by another fixture, e.g. flarenb_poc), else None."""
    current = os.environ.get("HOME")
    if not current:
        return None
    tmp = os.path.realpath(tempfile.gettempdir())
    path = os.path.realpath(current)
    return current if path != tmp and path.startswith(tmp + os.sep) else None


@pytest.fixture(scope="session")
def lab_server_extra_env() -> dict[str, str]:
    """Extra environment variables for the lab server and its kernels. Override to add some."""
    return {}


@pytest.fixture(scope="session")
def lab_server(flarenb_poc, lab_server_extra_env):
    """A running JupyterLab: ``.url``, ``.token``, ``.root_dir``, ``.lab_url(path)``, ``.api(path)``, ``.stop()``.

    It needs the session's local FLARE (``flarenb_poc``) first: the server and its kernels inherit its HOME and
    ``NVFLARE_POC_WORKSPACE``, so ``%flare poc start`` in a notebook reuses that FLARE instead of starting another.
    """
    # Keep a HOME another fixture already isolated (e.g. flarenb_poc), so kernels find the same ~/.nvflare;
    # never run the server with the user's real HOME.
    home = _isolated_home()
    started = time.monotonic()
    server = lab.start_lab_server(extra_env=lab_server_extra_env, home=home)
    print(f"\n[lab_server] ready in {time.monotonic() - started:.1f}s at {server.url} (root {server.root_dir})")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(_playwright):
    """Headless Debian Chromium (Playwright's own browser download does not work here)."""
    if not os.path.exists(lab.CHROMIUM):
        pytest.fail(f"{lab.CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    b = _playwright.chromium.launch(executable_path=lab.CHROMIUM, args=lab.CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"_lab_rep_{rep.when}", rep)


@pytest.fixture
def page(browser, request, tmp_path):
    """A new page in a fresh browser context (1400x900). Browser dialogs (``alert``...) are recorded in
    ``page.lab_dialogs`` and dismissed; uncaught page errors in ``page.lab_errors`` (their stacks in
    ``page.lab_error_stacks``)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    pg.lab_dialogs = dialogs  # type: ignore[attr-defined]
    pg.lab_errors = errors  # type: ignore[attr-defined]

    def on_dialog(d):
        dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    pg.on("dialog", on_dialog)
    stacks: list[str] = []
    pg.lab_error_stacks = stacks  # type: ignore[attr-defined]  # the stack of each page error, same order

    def on_error(e):
        errors.append(str(e))
        stacks.append(e.stack or "")

    pg.on("pageerror", on_error)
    try:
        yield pg
    finally:
        rep = getattr(request.node, "_lab_rep_call", None)
        if rep is not None and rep.failed:
            shot = tmp_path / "failure.png"
            try:
                pg.screenshot(path=str(shot), full_page=True)
                request.node.add_report_section("call", "browser", f"screenshot: {shot}\npage errors: {errors}")
            except Exception as exc:  # the page may be gone
                request.node.add_report_section("call", "browser", f"no screenshot ({exc})")
            server = request.node.funcargs.get("lab_server")
            if server is not None:
                request.node.add_report_section("call", "jupyter lab log", server.log_tail(60))
        context.close()
        server = request.node.funcargs.get("lab_server")
        if server is not None:  # each test opens its own notebook: free the kernels it started
            server.shutdown_kernels()


@pytest.fixture(scope="session")
def widget_bundle() -> Path:
    """``flarenb/static/widget.js``, built with ``npm --prefix js ci && npm --prefix js run build`` if missing."""
    if WIDGET_JS.is_file():
        return WIDGET_JS
    pkg = REPO / "js" / "package.json"
    npm = shutil.which("npm")
    if not pkg.is_file() or npm is None:
        pytest.fail(
            f"{WIDGET_JS.relative_to(REPO)} is not built and cannot be built here "
            f"({'no js/package.json' if not pkg.is_file() else 'npm not found'}): "
            "run `npm --prefix js ci && npm --prefix js run build`",
            pytrace=False,
        )
    for args in (["ci"], ["run", "build"]):
        proc = subprocess.run([npm, "--prefix", str(REPO / "js"), *args], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(
                f"`npm --prefix js {' '.join(args)}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}",
                pytrace=False,
            )
    if not WIDGET_JS.is_file():
        pytest.fail(f"the npm build did not produce {WIDGET_JS.relative_to(REPO)}", pytrace=False)
    return WIDGET_JS
