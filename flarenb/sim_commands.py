"""The simulator in the ``%flare`` magic: ``submit --sim``, ``sim clean|list``, and every job command on a
simulation id (``sim-…``).

:func:`install` (run when this module is imported, after :mod:`flarenb.commands`) adds the simulator flags to
``%flare submit`` and routes the job commands — ``wait``, ``monitor``, ``meta``, ``logs``, ``abort``, ``delete``,
``download`` — to the :class:`~flarenb.sim.Simulation` when the job id names one; ``list`` shows local simulations
too (column ``where``). Each route calls the same Python API a user calls (:mod:`flarenb.sim`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import commands as _commands  # the commands this module extends: registered first
from . import sim as _sim
from . import simstore as _store
from .errors import CommandLineError, NotConnected
from .registry import COMMANDS, command

SIM_FLAGS = ("clients", "sites", "threads", "gpu", "log_config")


def _add_submit_flags(p) -> None:
    g = p.add_argument_group("simulator (with --sim)")
    g.add_argument("--sim", action="store_true", help="run in NVFlare's simulator, in the background, on this machine")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--clients", type=int, help="number of simulated clients site-1..site-N (default 2)")
    x.add_argument("--sites", help="comma-separated client names, e.g. --sites a,b")
    g.add_argument("--threads", type=int, help="clients run at once (default: all)")
    g.add_argument("--gpu", help="GPU ids for the clients, e.g. 0,1 or [0,1],[2]")
    g.add_argument("--log-config", dest="log_config", help="concise, msg_only, full, verbose, a level or a file")


def _submit_sim(ns: argparse.Namespace, original: Callable) -> Any:
    if not ns.sim:
        used = [f"--{f.replace('_', '-')}" for f in SIM_FLAGS if getattr(ns, f) is not None]
        if used:
            raise CommandLineError(f"%flare submit: {', '.join(used)} only with --sim. See '%flare help submit'")
        return original(ns)
    if ns.study or ns.kit_id or ns.startup_kit:
        raise CommandLineError("%flare submit: --study, --kit-id and --startup-kit do not apply to --sim")
    sim = _sim.submit(
        _commands._resolve_target(ns),
        clients=ns.clients,
        sites=ns.sites.split(",") if ns.sites else None,
        threads=ns.threads,
        gpu=ns.gpu,
        log_config=ns.log_config,
        name=ns.name,
        new=ns.new,
        submit_token=ns.submit_token,
    )
    if ns.follow:
        _commands._display(sim.view())
    return sim


def _not_for_sim(what: str) -> Callable:
    def run(sim: _sim.Simulation, ns: argparse.Namespace) -> Any:
        hint = what_instead[what].replace("ID", sim.id)
        raise _sim.SimError(f"%flare {what} is not available for a local simulation ({sim.id})", hint)

    return run


what_instead = {
    "stats": "See its progress with %flare logs ID --site all",
    "log-config": "Pass --log-config LEVEL to %flare submit --sim instead",
    "clone": "Run it again with %flare submit TARGET --sim --new",
}


def _logs(sim: _sim.Simulation, ns: argparse.Namespace) -> Any:
    if ns.follow:
        return sim.view()
    return sim.logs(site=ns.site, tail=ns.tail, since=ns.since, max_bytes=ns.max_bytes, format=ns.format)


ROUTES: dict[str, Callable[[_sim.Simulation, argparse.Namespace], Any]] = {
    "wait": lambda s, ns: s.wait(timeout=ns.timeout, interval=ns.interval),
    "monitor": lambda s, ns: s.monitor(timeout=ns.timeout, interval=ns.interval),
    "meta": lambda s, ns: dict(s.meta()),
    "logs": _logs,
    "abort": lambda s, ns: s.abort(),
    "delete": lambda s, ns: s.delete(),
    "download": lambda s, ns: s.download(output_dir=ns.output_dir, force=ns.force),
    "stats": _not_for_sim("stats"),
    "log-config": _not_for_sim("log-config"),
    "clone": _not_for_sim("clone"),
}


def _accept_sim_ids(parser: argparse.ArgumentParser) -> None:
    """Let the command's JOB_ID also name a simulation: a ``sim-…`` id passes, anything else is checked as
    before (a FLARE job id)."""
    for action in parser._actions:
        if action.dest == "job_id" and callable(action.type):
            check = action.type

            def job_or_sim_id(value: str, check: Callable[[str], Any] = check) -> Any:
                return value if _sim.is_sim_id(value) else check(value)

            action.type = job_or_sim_id


def _route(name: str, original: Callable) -> Callable:
    def run(ns: argparse.Namespace) -> Any:
        if _sim.is_sim_id(getattr(ns, "job_id", None)):
            return ROUTES[name](_sim.get(ns.job_id), ns)
        return original(ns)

    return run


def _list(ns: argparse.Namespace, original: Callable) -> Any:
    from .jobs import JobList

    sims = _store.rows(name=ns.name, id=ns.id)
    if ns.submit_token:
        sims = [r for r in sims if _sim.get(r["job_id"]).submit_token == ns.submit_token]
    try:
        server = list(original(ns))
    except NotConnected:
        if not sims:
            raise
        server = []
    if not sims:
        return JobList(server)
    rows = sorted([{**r, "where": "server"} for r in server] + sims, key=lambda r: str(r.get("submit_time") or ""))
    if ns.reverse:
        rows.reverse()
    if ns.max is not None:
        rows = rows[: ns.max]
    return WhereJobList(rows)


def _job_list_with_where():
    from .jobs import JobList

    class _WhereJobList(JobList):
        """``%flare list`` rows of server jobs and local simulations (column ``where``)."""

        COLUMNS = (*JobList.COLUMNS, "where")

    return _WhereJobList


WhereJobList = _job_list_with_where()


def _sim_flags(p) -> None:
    p.add_argument("action", choices=["list", "clean"], help="list the local simulations, or clean the ended ones")
    p.add_argument("--older-than", dest="older_than", type=float, help="clean: only those ended more than DAYS ago")


@command("sim", "local simulations: sim list | sim clean [--older-than DAYS] (never removes a running one)", _sim_flags)
def _sim_cmd(ns: argparse.Namespace) -> Any:
    if ns.action == "clean":
        return _store.clean(older_than=ns.older_than)
    if ns.older_than is not None:
        raise CommandLineError("%flare sim: --older-than only with clean")
    return WhereJobList(_store.rows())


def install() -> None:
    """Add ``--sim`` to ``%flare submit`` and route job commands on simulation ids (once)."""
    submit = COMMANDS["submit"]
    if getattr(submit.run, "_flarenb_sim", False):
        return
    _add_submit_flags(submit.parser)
    original_submit = submit.run
    submit.run = lambda ns: _submit_sim(ns, original_submit)
    submit.run._flarenb_sim = True  # type: ignore[attr-defined]
    for name in ROUTES:
        if name in COMMANDS:
            COMMANDS[name].run = _route(name, COMMANDS[name].run)
            _accept_sim_ids(COMMANDS[name].parser)
    original_list = COMMANDS["list"].run
    COMMANDS["list"].run = lambda ns: _list(ns, original_list)


install()
