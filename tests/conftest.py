"""Shared test helpers. The real local FLARE comes from the ``flarenb_poc`` fixture of flarenb's own plugin."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from test_widget import FakeComm

    from flarenb.widget import LogView

#: the client every test job runs: the tutorials' own (prints "round N on SITE: ..." each round;
#: train_args "--sleep S", "--fail-site NAME")
CLIENT = Path(__file__).resolve().parent.parent / "notebooks" / "fedavg_client.py"


def make_recipe(name: str = "numpy-fedavg", rounds: int = 2, clients: int = 2, shape=(2, 3), train_args: str = ""):
    """A NumpyFedAvgRecipe whose client prints a marker line each round (``notebooks/fedavg_client.py``)."""
    import numpy as np
    from nvflare.app_common.np.recipes import NumpyFedAvgRecipe

    return NumpyFedAvgRecipe(
        name=name,
        model=np.zeros(shape).tolist(),
        min_clients=clients,
        num_rounds=rounds,
        train_script="client.py",
        train_args=train_args,
    )


def export_job(dest: Path, name: str = "numpy-fedavg", rounds: int = 2, **kw) -> Path:
    """Export the test recipe to ``dest/<name>`` (a job folder for ``submit_job``)."""
    import contextlib
    import os

    dest.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    shutil.copy(CLIENT, dest / "client.py")
    os.chdir(dest)  # the recipe takes train_script relative to the cwd
    try:
        with contextlib.redirect_stdout(None):
            make_recipe(name, rounds, **kw).export(job_dir=str(dest / "export"))
    finally:
        os.chdir(cwd)
    return dest / "export" / name


@pytest.fixture
def fake_comm(monkeypatch: pytest.MonkeyPatch):
    """Every comm a widget opens is a ``test_widget.FakeComm``; the list of them, in order (``make`` takes the last)."""
    import comm
    from test_widget import FakeComm

    made: list[FakeComm] = []

    def create_comm(**kwargs: object) -> FakeComm:
        c = FakeComm(**kwargs)
        made.append(c)
        return c

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return made


@pytest.fixture
def views():
    """The LogViews a test makes (with ``test_widget.make``), closed at its end."""
    created: list[LogView] = []
    yield created
    for v in created:
        v.close()


@pytest.fixture
def job_dir(tmp_path):
    return export_job(tmp_path)


@pytest.fixture(scope="session")
def ip():
    """A real IPython shell with flarenb loaded (one per session: IPython's test shell is a singleton)."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "flarenb")
    return shell


def readme_quickstart_step() -> str:
    """The notebook step of the README's first command: the last ``&&`` part of its first bash block."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert "\n" not in block, "the README's quickstart is one line"
    return block.split(" && ")[-1].strip()


@pytest.fixture(scope="session")
def quickstart_run(flarenb_poc):
    """The README quickstart's notebook step, exactly as written, run by bash in a fresh copy of ``notebooks/``
    (a temporary folder, removed at the end). Its kernel inherits the ``flarenb_poc`` session's HOME and
    ``NVFLARE_POC_WORKSPACE``, so ``%flare poc start`` reuses that FLARE, as with ``--flarenb-poc``.
    Yields ``(folder, CompletedProcess)``."""
    import os
    import subprocess
    import sys
    import tempfile

    step = readme_quickstart_step()
    root = Path(tempfile.mkdtemp(prefix="flarenb-quickstart-"))
    try:
        shutil.copytree(CLIENT.parent, root / "notebooks", ignore=shutil.ignore_patterns("results", "*_logs", ".*"))
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", step],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=1000,
            stdin=subprocess.DEVNULL,
        )
        yield root, proc
    finally:
        assert str(root).startswith(tempfile.gettempdir()) and root.name.startswith("flarenb-quickstart-")
        shutil.rmtree(root, ignore_errors=True)


#: markers of tests that drive real processes (a POC, a provisioned deployment, the simulator, a browser)
REAL_SYSTEM_MARKERS = ("poc", "browser", "deployment", "sim")


def pytest_collection_modifyitems(config, items):
    """Real-system tests are retried once on failure (pytest-rerunfailures): on a shared, loaded machine a second
    attempt separates a slow moment from a broken feature. A retry shows as ``R`` in the summary; a test that fails
    twice fails the run. Pure unit tests are never retried."""
    if not config.pluginmanager.hasplugin("rerunfailures"):  # -p no:rerunfailures: every failure as it is
        return
    for item in items:
        if any(item.get_closest_marker(m) for m in REAL_SYSTEM_MARKERS) and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=5))


_first_attempts: list[tuple[str, str]] = []  # (test, why its first attempt failed) of the tests retried


def pytest_runtest_logreport(report):
    """A retried test's first failure: kept for the summary (pytest-rerunfailures reports only the last attempt)."""
    if report.outcome == "rerun":
        crash = getattr(report.longrepr, "reprcrash", None)
        _first_attempts.append((report.nodeid, crash.message if crash is not None else str(report.longrepr)))


def pytest_terminal_summary(terminalreporter):
    if _first_attempts:
        terminalreporter.section("why retried tests failed their first attempt")
        for nodeid, why in _first_attempts:
            terminalreporter.write_line(f"{nodeid}: {why[:2000]}")
