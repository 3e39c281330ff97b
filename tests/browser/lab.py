"""Drive a real JupyterLab in Chromium from pytest (Playwright, sync API).

Two halves:

* :func:`start_lab_server` / :class:`LabServer` -- a throw-away ``jupyter lab`` on localhost: random token,
  free port, its own temporary ``HOME`` / Jupyter config / settings (the user's real ``~/.jupyter`` and
  ``~/.nvflare`` are never touched), a kernelspec ``python3`` pinned to *this* interpreter, and a ``stop()``
  that takes the server *and* its kernels down.
* Page helpers (:func:`write_notebook`, :func:`open_notebook`, :func:`run_cell`, :func:`run_all`,
  :func:`cell_output`, :func:`wait_kernel_idle`, :func:`restart_kernel_and_run_all`, ...) that only ever wait
  on locators or page state, with deadlines -- never on fixed sleeps.

The page helpers work on the notebook in the *current* JupyterLab tab — or in Jupyter Notebook 7, which the same
server serves at ``/notebooks/<path>`` (``open_notebook(..., ui="notebook")``): both are built from JupyterLab's
components, so cells, prompts and outputs have the same classes. Cells are addressed by their index in the
notebook (0-based, markdown cells included).

Completion of an execution is detected from the input prompts: JupyterLab shows ``[*]:`` while a cell is
queued or running and ``[n]:`` when done. A ``MutationObserver`` installed *before* the key press records
that the prompt went busy, so a cell that runs faster than any poll is still seen to have run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "UIS",
    "LabServer",
    "cell",
    "cell_output",
    "cell_prompt",
    "code_cells",
    "current_tab",
    "execute_command",
    "free_port",
    "kernel_status",
    "kernel_status_text",
    "open_notebook",
    "our_page_errors",
    "restart_kernel_and_run_all",
    "run_all",
    "run_cell",
    "start_lab_server",
    "wait_kernel_idle",
    "write_notebook",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Default deadlines (seconds).
SERVER_START_TIMEOUT = 90.0
KERNEL_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0

# JupyterLab user settings written into the server's private settings dir: no news / update checks (no
# internet here, and no consent toast over the notebook), no extension manager (it queries PyPI), and
# every cell rendered (no windowing: an off-screen cell's output is still in the DOM).
_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/sessionDialogs.jupyterlab-settings": {"skipKernelRestartDialog": True},
}

_PROMPT_DONE = re.compile(r"^\s*\[\d+\]:\s*$")


# --------------------------------------------------------------------------------------------- server
def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab`` (see :func:`start_lab_server`)."""

    url: str  #: base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)
    token: str
    root_dir: Path  #: the server's root: notebooks are written here
    home: Path  #: the temporary HOME of the server and its kernels
    env: dict[str, str]  #: the environment the server (and so every kernel) was started with
    log_path: Path  #: the server's stdout+stderr
    proc: subprocess.Popen = field(repr=False)
    startup_seconds: float = 0.0  #: time from Popen to the first answer of /api/status
    _tmp: Path | None = field(default=None, repr=False)

    def lab_url(self, path: str = "") -> str:
        """``{url}/lab/{path}?token=...``."""
        return f"{self.url}/lab/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET", body: object = None, timeout: float = 10.0) -> object:
        """Call the server's REST API (``path`` like ``/api/kernels``); returns the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def shutdown_kernels(self) -> None:
        """Delete every session (and so shut its kernel down), e.g. between tests."""
        for sess in self.api("/api/sessions") or []:
            with contextlib.suppress(urllib.error.HTTPError):
                self.api(f"/api/sessions/{sess['id']}", method="DELETE", timeout=30)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Shut the server and all its kernels down (idempotent); removes its temporary folders."""
        proc = self.proc
        if proc.poll() is None:
            # Kernels run in their own sessions (jupyter_client starts them with start_new_session), so
            # remember every descendant before asking the server to shut down, and reap stragglers.
            descendants = _descendants(proc.pid)
            with contextlib.suppress(Exception):
                self.api("/api/shutdown", method="POST", timeout=5)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    _kill_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
            _reap(descendants)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the server's own group
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _descendants(pid: int) -> list:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:
        return []


def _reap(procs: list) -> None:
    if not procs:
        return
    import psutil

    alive = [p for p in procs if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def start_lab_server(
    root_dir: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = SERVER_START_TIMEOUT,
    python: str = sys.executable,
    home: str | os.PathLike[str] | None = None,
) -> LabServer:
    """Start ``jupyter lab`` on a free localhost port and wait until ``/api/status`` answers.

    The environment is ``os.environ`` *as of this call* (so kernels inherit variables other fixtures set,
    e.g. ``NVFLARE_POC_WORKSPACE``), then ``extra_env``, then a private ``HOME``, Jupyter config/data/runtime
    dirs, IPython dir and JupyterLab settings/workspaces dirs in a temporary folder. The only kernelspec
    added is ``python3`` -> ``python -m ipykernel_launcher`` with ``python`` (default: this interpreter)
    as an absolute path, put first on ``JUPYTER_PATH``.

    ``home``: the server's and kernels' ``HOME``; ``None`` (default) makes a new temporary one. Pass an
    already isolated home (e.g. the one the ``flarenb_poc`` fixture set) so kernels see the same
    ``~/.nvflare`` as the rest of the test session. Jupyter's own config/data/runtime dirs stay private.
    """
    tmp = Path(tempfile.mkdtemp(prefix="flarenb-lab-"))
    if home is None:
        home = tmp / "home"
        home.mkdir()
    home = Path(home)
    config = tmp / "jupyter-config"
    root = Path(root_dir) if root_dir is not None else tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    jpath = tmp / "share" / "jupyter"
    spec_dir = jpath / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": True},
            },
            indent=1,
        )
    )
    settings = config / "lab" / "user-settings"
    for rel, value in _LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))

    env = dict(os.environ)
    env.update(extra_env or {})
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_PATH=os.pathsep.join([str(jpath), *filter(None, [env.get("JUPYTER_PATH")])]),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(config / "lab" / "workspaces"),
        IPYTHONDIR=str(tmp / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_TOKEN", None)
    env.pop("JUPYTER_PREFER_ENV_PATH", None)

    token = secrets.token_hex(24)
    port = free_port()
    cmd = [
        python,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--PasswordIdentityProvider.hashed_password=",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",  # Notebook 7 (the `notebook` extension), if installed
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers / CI often run as root
    log_path = tmp / "jupyter-lab.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps the descriptor
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=str(root),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = LabServer(
        url=f"http://127.0.0.1:{port}",
        token=token,
        root_dir=root,
        home=home,
        env=env,
        log_path=log_path,
        proc=proc,
        _tmp=tmp,
    )
    deadline = started + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {proc.returncode} before answering:\n{server.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2) as resp:
                    if resp.status == 200:
                        json.loads(resp.read())
                        break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f}s:\n{server.log_tail()}")
            time.sleep(0.1)  # poll interval, bounded by the deadline above
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - started
    return server


# ------------------------------------------------------------------------------------------- notebooks
def write_notebook(
    root_dir: str | os.PathLike[str],
    name: str,
    cells: Iterable[str],
    kernel_name: str = "python3",
) -> Path:
    """Write an nbformat 4.5 notebook of code cells (with cell ids) to ``root_dir/name``; returns the path.

    A cell whose source starts with ``"#md\\n"`` becomes a markdown cell (the marker line is dropped).
    """
    nb_cells = []
    for src in cells:
        cid = uuid.uuid4().hex[:8]
        if src.startswith("#md\n"):
            nb_cells.append({"cell_type": "markdown", "id": cid, "metadata": {}, "source": src[4:]})
        else:
            nb_cells.append(
                {"cell_type": "code", "id": cid, "metadata": {}, "source": src, "outputs": [], "execution_count": None}
            )
    nb = {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"name": kernel_name, "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = Path(root_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


# ---------------------------------------------------------------------------------------------- page
def _panel(page: Page) -> Locator:
    """The notebook panel of the current main-area tab."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first


def cell(page: Page, index: int) -> Locator:
    """The ``index``-th cell (0-based) of the current notebook."""
    return _panel(page).locator(".jp-Notebook .jp-Cell").nth(index)


def code_cells(page: Page) -> Locator:
    """All code cells of the current notebook."""
    return _panel(page).locator(".jp-Cell.jp-CodeCell")


def cell_prompt(page: Page, index: int) -> Locator:
    """The input prompt (``[ ]:``, ``[*]:``, ``[3]:``) of the ``index``-th cell."""
    return cell(page, index).locator(".jp-InputArea-prompt")


def cell_output(page: Page, index: int) -> Locator:
    """The output area of the ``index``-th cell (all of its outputs)."""
    return cell(page, index).locator(".jp-OutputArea")


def kernel_status(page: Page) -> Locator:
    """The notebook toolbar's kernel status indicator (``data-status`` attribute)."""
    return _panel(page).locator(".jp-Notebook-ExecutionIndicator").first


def kernel_status_text(page: Page, status: str = r"\w+") -> Locator:
    """The status bar's kernel item with a kernel whose status matches the regex ``status``, e.g.
    ``Python 3 (ipykernel) | Idle`` (it reads ``No Kernel | Initializing`` before a kernel exists)."""
    return page.locator("#jp-main-statusbar").get_by_text(re.compile(rf"^(?!No Kernel).+ \| (?:{status})$")).first


_KERNEL_READY_JS = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const ctx = w && w.sessionContext;
    const k = ctx && ctx.session && ctx.session.kernel;
    return !!k && ctx.isReady && k.connectionStatus === 'connected' && k.status === 'idle';
}"""


def wait_kernel_idle(page: Page, timeout: float = KERNEL_TIMEOUT) -> None:
    """Wait until the current notebook has a kernel that is connected and idle.

    The toolbar's execution indicator says ``idle`` even before a kernel exists, so this also waits for
    the status bar to read ``<kernel name> | Idle`` and, when ``window.jupyterapp`` is exposed, for the
    notebook's session to report a connected, idle kernel.
    """
    ms = timeout * 1000
    if page.evaluate("() => !!window.jupyterapp && window.jupyterapp.name === 'Jupyter Notebook'"):
        # Notebook 7: no status bar; its session says it all
        page.wait_for_function(_KERNEL_READY_JS, timeout=ms, polling=100)
        return
    expect(kernel_status(page)).to_have_attribute("data-status", "idle", timeout=ms)
    expect(kernel_status_text(page, "Idle")).to_be_visible(timeout=ms)
    if page.evaluate("() => !!window.jupyterapp"):
        page.wait_for_function(_KERNEL_READY_JS, timeout=ms, polling=100)


def current_tab(page: Page) -> Locator:
    """The label of the current tab of the main area (the notebook's file name)."""
    return page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel").first


#: The front ends :func:`open_notebook` drives: JupyterLab 4 and Jupyter Notebook 7.
UIS = ("lab", "notebook")


def open_notebook(
    page: Page,
    lab_server: LabServer,
    name: str,
    timeout: float = KERNEL_TIMEOUT,
    reset: bool = True,
    ui: str = "lab",
) -> None:
    """Open ``name`` (relative to the server's root) in JupyterLab (``ui="lab"``) or Notebook 7
    (``ui="notebook"``) and wait for its kernel to be idle.

    ``reset`` (default) starts from an empty workspace: otherwise JupyterLab also restores the tabs a
    previous test left open, and the helpers could briefly see one of those as the current notebook.
    """
    if ui not in UIS:
        raise ValueError(f"ui must be one of {UIS}, not {ui!r}")
    ms = timeout * 1000
    if ui == "notebook":
        page.goto(
            f"{lab_server.url}/notebooks/{name}?token={lab_server.token}", wait_until="domcontentloaded", timeout=ms
        )
        page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)", timeout=ms, polling=100)
        assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook", "not Notebook 7"
    else:
        url = lab_server.lab_url(f"tree/{name}") + ("&reset" if reset else "")
        page.goto(url, wait_until="domcontentloaded", timeout=ms)
        expect(current_tab(page)).to_have_text(Path(name).name, timeout=ms)
    panel = _panel(page)
    expect(panel).to_be_visible(timeout=ms)
    expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=ms)
    if page.evaluate("() => !!window.jupyterapp"):
        page.wait_for_function(
            """(path) => {
                const w = window.jupyterapp.shell.currentWidget;
                return !!(w && w.context && w.context.path === path);
            }""",
            arg=name,
            timeout=ms,
            polling=100,
        )
    wait_kernel_idle(page, timeout)


def execute_command(
    page: Page,
    command: str,
    args: Mapping[str, object] | None = None,
    timeout: float = RUN_TIMEOUT,
    accept_dialogs: bool = True,
) -> object:
    """Run a JupyterLab command (e.g. ``notebook:restart-kernel``) and wait for its promise to settle.

    A confirmation dialog the command opens is accepted (``accept_dialogs``), else this raises. Needs
    ``window.jupyterapp`` (``--LabApp.expose_app_in_browser=True``, which :func:`start_lab_server` sets).
    Returns the command's result when it is JSON-able (else None).
    """
    ms = timeout * 1000
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.commands)", timeout=ms)
    key = f"__labCmd_{uuid.uuid4().hex}"
    page.evaluate(
        """([key, command, args]) => {
            const s = window[key] = { done: false, error: null, result: null };
            window.jupyterapp.commands.execute(command, args).then(
                r => { try { s.result = JSON.parse(JSON.stringify(r ?? null)); } catch (e) {} s.done = true; },
                e => { s.error = String(e && e.message || e); s.done = true; });
        }""",
        [key, command, dict(args or {})],
    )
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(1.0, deadline - time.monotonic()) * 1000
        page.wait_for_function(
            "(key) => window[key].done || !!document.querySelector('.jp-Dialog')",
            arg=key,
            timeout=remaining,
            polling=100,
        )
        state = page.evaluate("(key) => window[key]", key)
        if state["done"]:
            break
        if not accept_dialogs:
            raise AssertionError(f"{command} opened a dialog: {page.locator('.jp-Dialog').inner_text()}")
        _accept_dialog_if_any(page)
    if state["error"]:
        raise RuntimeError(f"JupyterLab command {command} failed: {state['error']}")
    return state["result"]


_WATCH_JS = """([key, selector, index]) => {
    // Record, from now on, whether a watched prompt ever shows "*" (queued/running).
    const root = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
    const state = { busy: false };
    const check = () => {
        const cells = [...root.querySelectorAll('.jp-Cell')];
        const watched = index === null ? cells : [cells[index]];
        for (const c of watched) {
            const p = c && c.querySelector('.jp-InputArea-prompt');
            if (p && p.textContent.includes('*')) state.busy = true;
        }
    };
    state.observer = new MutationObserver(check);
    state.observer.observe(root, { subtree: true, childList: true, characterData: true });
    window[key] = state;
}"""

_DONE_JS = """([key, index]) => {
    // Done once a watched prompt went busy and no watched prompt is busy any more.
    const state = window[key];
    const root = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
    const cells = [...root.querySelectorAll('.jp-Cell')];
    const watched = index === null ? cells : [cells[index]];
    const prompts = watched.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '');
    if (prompts.some(t => t.includes('*'))) { state.busy = true; return false; }
    if (!state.busy) return false;
    state.observer.disconnect();
    return true;
}"""


def _watch(page: Page, index: int | None) -> str:
    key = f"__labWatch_{uuid.uuid4().hex}"
    page.evaluate(_WATCH_JS, [key, None, index])
    return key


def _wait_done(page: Page, key: str, index: int | None, timeout: float) -> None:
    page.wait_for_function(_DONE_JS, arg=[key, index], timeout=timeout * 1000, polling=100)


def run_cell(page: Page, index: int, timeout: float = RUN_TIMEOUT) -> Locator:
    """Select the ``index``-th cell, press Shift+Enter, and wait until it finished; returns its output area."""
    target = cell(page, index)
    expect(target).to_be_visible(timeout=KERNEL_TIMEOUT * 1000)
    target.scroll_into_view_if_needed()
    # Clicking the prompt selects the cell in command mode (clicking the editor would enter edit mode,
    # where Shift+Enter works too; the prompt is simply a spot without text to click on).
    target.locator(".jp-InputArea-prompt").click()
    expect(target).to_have_class(re.compile(r"\bjp-mod-active\b"), timeout=10_000)
    key = _watch(page, index)
    page.keyboard.press("Shift+Enter")
    _wait_done(page, key, index, timeout)
    expect(cell_prompt(page, index)).to_have_text(_PROMPT_DONE, timeout=timeout * 1000)
    return cell_output(page, index)


def run_all(page: Page, timeout: float = RUN_TIMEOUT) -> None:
    """Run all cells (the *Run > Run All Cells* menu item) and wait until no cell is queued or running.

    Execution stops at the first failing cell, as in JupyterLab. Works in JupyterLab and Notebook 7 (both have
    that menu).
    """
    key = _watch(page, None)
    _menu_command(page, "Run", "Run All Cells")
    _wait_done(page, key, None, timeout)
    wait_kernel_idle(page, timeout)


def restart_kernel_and_run_all(page: Page, timeout: float = RUN_TIMEOUT) -> None:
    """Restart the kernel, clear all outputs (prompts go back to ``[ ]``), then run all cells and wait.

    The restart confirmation dialog is disabled in the lab's settings; if it shows anyway it is accepted.
    """
    execute_command(page, "notebook:restart-clear-output", timeout=timeout)
    wait_kernel_idle(page, timeout)
    expect(_panel(page).locator(".jp-InputArea-prompt", has_text=re.compile(r"\d"))).to_have_count(
        0, timeout=timeout * 1000
    )
    run_all(page, timeout)


def _accept_dialog_if_any(page: Page) -> None:
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        dialog.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()
        expect(dialog).to_have_count(0, timeout=10_000)


def _menu_command(page: Page, menu: str, label: str) -> None:
    """Click ``menu`` in the main menu bar, then its item labelled ``label`` (exact, shortcut aside)."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(rf"^{re.escape(menu)}$")).click()
    item = page.get_by_role("menu").get_by_role("menuitem", name=re.compile(rf"^{re.escape(label)}\b"))
    expect(item).to_be_visible(timeout=10_000)
    item.click()
    expect(page.locator(".lm-Menu")).to_have_count(0, timeout=10_000)


#: Errors Notebook 7 itself raises on this test server (e.g. "Cannot read properties of undefined (reading
#: 'schema')" while loading the settings of JupyterLab plugins it does not have, seen on a notebook without any
#: widget): every frame of their stack is in Notebook 7's own bundle.
_NOTEBOOK_CORE = re.compile(r"/static/notebook/")


def our_page_errors(page: Page) -> list[str]:
    """The page's uncaught errors (``page.lab_errors``, with ``page.lab_error_stacks``: the ``page`` fixture records
    them), less those raised entirely inside Notebook 7's own code."""
    out = []
    for message, stack in zip(page.lab_errors, page.lab_error_stacks, strict=True):
        frames = [line for line in stack.splitlines() if re.search(r"^\s*at .*\w+:/", line)]  # frames with a source
        if frames and all(_NOTEBOOK_CORE.search(f) for f in frames):
            continue
        out.append(f"{message}\n{stack}")
    return out
