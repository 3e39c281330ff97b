"""pytest plugin (entry point ``pytest11``): a real local FLARE for your tests and notebooks.

* ``flarenb_poc`` — a session-scoped fixture: starts a real NVFlare POC (server + 2 clients) in a temporary
  ``HOME`` and ``NVFLARE_POC_WORKSPACE`` (your real ``~/.nvflare`` is never touched), yields the connected
  :class:`flarenb.Flare`, and stops every process at the end of the session.
* ``pytest --nbval --flarenb-poc notebooks/`` — the same POC for notebooks run by nbval: it is started before the
  first notebook's kernel, so ``%flare poc start`` in the notebook reuses it. The plugin also sends each cell's id
  to the kernel (nbval does not), so cell-scoped submit tokens behave as they do in JupyterLab.
* ``flarenb_deployment`` — a session-scoped, *provisioned* (non-POC) FLARE: ``nvflare provision`` of a server,
  clients ``hospital-a``, ``hospital-b``, ``hospital-c`` and admin users ``admin@example.org`` (project_admin),
  ``lead@example.org`` (lead), ``member@example.org`` (member), each participant started with its own startup
  script, on a free port, in a temporary folder (:mod:`flarenb.provisioned`). It yields the
  :class:`flarenb.provisioned.Deployment`: ``.kits`` (each user's startup kit), ``.clients``,
  ``.server_workspace``, ``.flare(user)`` (a :class:`flarenb.Flare` logged in as that user).
  ``flarenb_deployments.get(extra_rights={"lead": {"get_job_log": "n:submitter"}})`` starts another variant, one
  per distinct configuration, all stopped at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flarenb.provisioned import Deployment


class _PocSession:
    """One POC per pytest session, started on first use."""

    def __init__(self, clients: int = 2):
        self.clients = clients
        self.flare = None
        self.root: Path | None = None
        self._saved_env: dict[str, str | None] = {}

    def isolate(self) -> Path:
        """Point HOME and NVFLARE_POC_WORKSPACE at a temporary folder (idempotent)."""
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="flarenb-test-"))
            (self.root / "home").mkdir()
            for key, value in (("HOME", self.root / "home"), ("NVFLARE_POC_WORKSPACE", self.root / "poc")):
                self._saved_env[key] = os.environ.get(key)
                os.environ[key] = str(value)
            os.environ.pop("NVFLARE_STARTUP_KIT_DIR", None)
        return self.root

    def start(self):
        if self.flare is None:
            from flarenb import poc

            self.isolate()
            # a free port, so the session's FLARE never collides with one already running on this machine
            self.flare = poc.start(clients=self.clients, progress=False, port=_free_port())
        return self.flare

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if self.flare is not None:
                from flarenb import poc

                self.flare.close()
                poc.stop(workspace=self.root / "poc", progress=False)
        finally:
            from flarenb import session

            session.close_all()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            self.flare = None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_POC = _PocSession()


class _Deployments:
    """Provisioned deployments of this test session, one per configuration, started on first use."""

    def __init__(self) -> None:
        self._by_key: dict[str, Deployment] = {}

    def get(
        self,
        clients: tuple[str, ...] | None = None,
        extra_rights: dict[str, dict[str, str]] | None = None,
    ) -> Deployment:
        import json

        from flarenb.provisioned import CLIENTS, Deployment

        clients = tuple(clients or CLIENTS)
        key = json.dumps([clients, extra_rights or {}], sort_keys=True)
        if key not in self._by_key:
            self._by_key[key] = Deployment(clients=clients, extra_rights=dict(extra_rights or {})).start()
        return self._by_key[key]

    def stop_all(self) -> None:
        deployments, self._by_key = list(self._by_key.values()), {}
        for deployment in deployments:
            try:
                deployment.stop()
            finally:
                deployment.remove()


_DEPLOYMENTS = _Deployments()


def pytest_addoption(parser):
    group = parser.getgroup("flarenb")
    group.addoption(
        "--flarenb-poc",
        action="store_true",
        default=False,
        help="start a real local FLARE (POC) before notebooks run under nbval, and stop it at the end",
    )


SANITIZE_FILE = str(Path(__file__).with_name("nbval_sanitize.cfg"))


def pytest_configure(config):
    # With --flarenb-poc, nbval masks job ids, tokens, timestamps, durations, paths and snapshot log text
    # with flarenb's sanitizer unless you give your own (--nbval-sanitize-with).
    if (
        config.getoption("--flarenb-poc")
        and hasattr(config.option, "nbval_sanitize_with")
        and config.option.nbval_sanitize_with is None
    ):
        config.option.nbval_sanitize_with = SANITIZE_FILE


@pytest.fixture(scope="session")
def flarenb_poc():
    """A running local FLARE (server + 2 clients) and a connected :class:`flarenb.Flare` to it."""
    flare = _POC.start()
    from flarenb import session

    session.set_current(flare) if session._current is None else None
    return flare


@pytest.fixture(scope="session")
def flarenb_deployments():
    """Provisioned deployments by configuration: ``flarenb_deployments.get(clients=..., extra_rights=...)``."""
    try:
        yield _DEPLOYMENTS
    finally:
        _DEPLOYMENTS.stop_all()


@pytest.fixture(scope="session")
def flarenb_deployment(flarenb_deployments):
    """A running provisioned FLARE (server, hospital-a/b/c, admin/lead/member users): a ``Deployment``."""
    return flarenb_deployments.get()


def _is_nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if _is_nbval_cell(item) and item.config.getoption("--flarenb-poc"):
        _POC.start()  # before nbval starts the notebook's kernel, which inherits HOME and the workspace


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if _is_nbval_cell(item):
        kernel = getattr(item.parent, "kernel", None)
        kc = getattr(kernel, "kc", None)
        cell_id = getattr(item.cell, "id", None) or item.cell.get("id")
        if kc is not None and cell_id:
            kc.session.metadata = {"cellId": cell_id}
    yield


def pytest_sessionfinish(session, exitstatus):
    try:
        _DEPLOYMENTS.stop_all()
    finally:
        _POC.stop()
