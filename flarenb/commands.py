"""The ``%flare`` sub-commands: each parses its flags and calls one function of the Python API."""

from __future__ import annotations

from . import poc as _poc
from . import session as _session
from .magics import command


def _kit_flags(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--kit-id", dest="kit_id", help="a registered startup-kit id ('nvflare config list')")
    g.add_argument("--startup-kit", dest="startup_kit", help="an admin startup-kit folder (contains startup/)")
    p.add_argument("--study", default=_session.DEFAULT_STUDY, help="study to work in (default: default)")
    p.add_argument("--timeout", type=float, default=_session.DEFAULT_TIMEOUT, help="seconds to wait for the server")


@command("connect", "connect to a FLARE deployment with an admin startup kit", _kit_flags)
def _connect(ns):
    return _session.connect(startup_kit=ns.startup_kit, kit_id=ns.kit_id, study=ns.study, timeout=ns.timeout)


def _use_flags(p) -> None:
    p.add_argument("kit_id", metavar="KIT_ID", help="a registered startup-kit id ('nvflare config list')")
    p.add_argument("--study", default=_session.DEFAULT_STUDY, help="study to work in (default: default)")


@command("use", "connect with a registered startup kit (like 'nvflare config use', for this kernel)", _use_flags)
def _use(ns):
    return _session.connect(kit_id=ns.kit_id, study=ns.study)


@command("info", "show the server's status and its connected clients")
def _info(ns):
    return _session.current().system_info()


def _poc_flags(p) -> None:
    p.add_argument("action", choices=["start", "status", "stop"], help="start (or reuse), status, or stop")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--clients", "-n", type=int, help="number of clients site-1..site-N (start; default 2)")
    g.add_argument("--sites", help="comma-separated client names (start), e.g. --sites a,b")
    p.add_argument("--workspace", help="POC workspace (default: $NVFLARE_POC_WORKSPACE or flarenb's own)")
    p.add_argument("--study", default=_session.DEFAULT_STUDY, help="study to connect to (start)")
    p.add_argument("--timeout", type=float, default=_poc.START_TIMEOUT, help="seconds to wait for every client")
    p.add_argument("--clean", action="store_true", help="delete the workspace after stopping (stop)")


@command("poc", "start (or reuse), inspect or stop the local FLARE: poc start|status|stop", _poc_flags)
def _poc_cmd(ns):
    if ns.action == "start":
        sites = ns.sites.split(",") if ns.sites else None
        _poc.start(clients=ns.clients, sites=sites, workspace=ns.workspace, study=ns.study, timeout=ns.timeout)
        return None
    if ns.action == "status":
        return _poc.status(workspace=ns.workspace)
    return _poc.stop(workspace=ns.workspace, clean=ns.clean)
