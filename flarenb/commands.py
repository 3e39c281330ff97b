"""The ``%flare`` sub-commands: each parses its flags and calls one function of the Python API.

Registered with :func:`flarenb.registry.command`; the simulator's additions are in :mod:`flarenb.sim_commands`.
"""

from __future__ import annotations

from . import jobs as _jobs
from . import poc as _poc
from . import session as _session
from . import submission as _submit
from . import validate as _validate
from . import workarea as _workarea
from .errors import FlareError
from .registry import command


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


@command("info", "show the server's status, its connected clients, your role and which rights you have")
def _info(ns):
    from .rights import connection_info

    return connection_info(_session.current())


def _poc_flags(p) -> None:
    p.add_argument("action", choices=["start", "status", "stop"], help="start (or reuse), status, or stop")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--clients", "-n", type=int, help="number of clients site-1..site-N (start; default 2)")
    g.add_argument("--sites", help="comma-separated client names (start), e.g. --sites a,b")
    p.add_argument("--workspace", help="POC workspace (default: $NVFLARE_POC_WORKSPACE or flarenb's own)")
    p.add_argument("--study", default=_session.DEFAULT_STUDY, help="study to connect to (start)")
    p.add_argument("--timeout", type=float, default=_poc.START_TIMEOUT, help="seconds to wait for every client")
    p.add_argument("--port", type=int, help="the server's port (start; default 8002)")
    p.add_argument("--clean", action="store_true", help="delete the POC workspace after stopping (stop)")


@command("poc", "start (or reuse), inspect or stop the local FLARE: poc start|status|stop", _poc_flags)
def _poc_cmd(ns):
    if ns.action == "start":
        sites = ns.sites.split(",") if ns.sites else None
        _poc.start(
            clients=ns.clients, sites=sites, workspace=ns.workspace, study=ns.study, timeout=ns.timeout, port=ns.port
        )
        return None
    if ns.action == "status":
        return _poc.status(workspace=ns.workspace)
    return _poc.stop(workspace=ns.workspace, clean=ns.clean)


# -- jobs -------------------------------------------------------------------------------------------------


def _conn_flags(p) -> None:
    """--study and the per-command kit selectors, as on every ``nvflare job`` command."""
    p.add_argument("--study", default=None, help="study of the job (default: the connection's study)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--kit-id", dest="kit_id", help="use this registered startup kit for this command only")
    g.add_argument("--startup-kit", dest="startup_kit", help="use this admin startup kit for this command only")


def _conn(ns):
    return _session.for_command(study=ns.study, startup_kit=ns.startup_kit, kit_id=ns.kit_id)


def _job_id(value: str) -> str:
    """argparse type of every JOB_ID: checked before connecting or touching anything (a one-line usage error)."""
    import argparse

    try:
        return _validate.job_id(value)
    except _validate.InvalidInput as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _job_id_flag(p) -> None:
    p.add_argument("job_id", metavar="JOB_ID", type=_job_id, help="job id")
    _conn_flags(p)


def _submit_flags(p) -> None:
    p.add_argument("target", metavar="TARGET", help="a job folder, or the name of a Recipe or FedJob variable")
    p.add_argument("--name", help="scope the rerun-safe token by this name instead of by the cell")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--new", action="store_true", help="submit a fresh job even if this cell submitted this content")
    g.add_argument("--submit-token", dest="submit_token", help="use this retry-safe submit token verbatim")
    p.add_argument(
        "--no-stream-logs", dest="stream_logs", action="store_false", help="submit without live client-log streaming"
    )
    p.add_argument("--no-follow", dest="follow", action="store_false", help="do not show the live log widget")
    _conn_flags(p)


def _resolve_target(ns):
    import keyword
    import os

    target = ns.target
    user_ns = getattr(ns.shell, "user_ns", {}) or {}
    if target.isidentifier() and not keyword.iskeyword(target):
        if target in user_ns:
            return user_ns[target]
        if not os.path.exists(target):
            raise FlareError(
                f"No variable or job folder named {target!r}",
                "Pass a job folder path, or the name of a variable holding an NVFlare Recipe or FedJob",
            )
    return target


@command("submit", "submit a job once: rerunning the cell reattaches to the job it submitted", _submit_flags)
def _submit_cmd(ns):
    target = _resolve_target(ns)
    job = _submit.submit(
        target,
        name=ns.name,
        new=ns.new,
        submit_token=ns.submit_token,
        stream_logs=ns.stream_logs,
        flare=_conn(ns),
    )
    if ns.follow:
        _display(job.view())
    return job


def _cache_flags(p) -> None:
    p.add_argument("action", choices=["clean"], help="clean: empty flarenb's cache (kept jobs, content hashes)")


@command("cache", "flarenb's cache on this machine: cache clean empties it", _cache_flags)
def _cache_cmd(ns):
    return _workarea.clean()


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


def _wait_flags(p) -> None:
    p.add_argument("job_id", metavar="JOB_ID", type=_job_id, help="job id")
    p.add_argument("--timeout", type=float, default=0, help="seconds to wait (0 = no limit)")
    p.add_argument("--interval", type=float, default=2, help="poll interval in seconds")
    _conn_flags(p)


@command("wait", "wait for a job to end; fails the cell if it failed or timed out", _wait_flags)
def _wait_cmd(ns):
    return _jobs.wait(ns.job_id, timeout=ns.timeout, interval=ns.interval, flare=_conn(ns))


@command("monitor", "wait for a job, showing its status and elapsed time in the cell", _wait_flags)
def _monitor_cmd(ns):
    return _jobs.wait(ns.job_id, timeout=ns.timeout, interval=ns.interval, progress=True, flare=_conn(ns))


def _list_flags(p) -> None:
    p.add_argument("-n", "--name", help="filter by name prefix")
    p.add_argument("-i", "--id", help="filter by job id prefix")
    p.add_argument("-r", "--reverse", action="store_true", help="reverse sort order")
    p.add_argument("-m", "--max", type=int, help="max results to return")
    p.add_argument("--submit-token", dest="submit_token", help="the job submitted with this token")
    _conn_flags(p)


@command("list", "list jobs (filters: -n NAME, -i ID, -m MAX, -r, --submit-token)", _list_flags)
def _list_cmd(ns):
    return _jobs.list_jobs(
        name=ns.name, id=ns.id, max=ns.max, reverse=ns.reverse, submit_token=ns.submit_token, flare=_conn(ns)
    )


@command("meta", "show a job's metadata", _job_id_flag)
def _meta_cmd(ns):
    return dict(_jobs.get_job(ns.job_id, flare=_conn(ns)).meta())


def _forceable(p) -> None:
    _job_id_flag(p)
    p.add_argument("--force", action="store_true", help="accepted for CLI compatibility (a cell never prompts)")


@command("abort", "abort a running job", _forceable)
def _abort_cmd(ns):
    return _jobs.abort(ns.job_id, flare=_conn(ns))


@command("delete", "delete a job and its stored data", _forceable)
def _delete_cmd(ns):
    return _jobs.delete(ns.job_id, flare=_conn(ns))


@command("clone", "submit a copy of a job", _job_id_flag)
def _clone_cmd(ns):
    return _jobs.clone(ns.job_id, flare=_conn(ns))


def _download_flags(p) -> None:
    _job_id_flag(p)
    p.add_argument("-o", "--output-dir", dest="output_dir", help="download into this folder (default: .)")
    p.add_argument("--force", action="store_true", help="replace an earlier flarenb download of this job")


@command("download", "download a job's result: global model, metrics, per-site logs", _download_flags)
def _download_cmd(ns):
    return _jobs.download(ns.job_id, output_dir=ns.output_dir, force=ns.force, flare=_conn(ns))


def _stats_flags(p) -> None:
    _job_id_flag(p)
    p.add_argument("--site", default="all", help="server, all, or a site name")


@command("stats", "show a running job's statistics", _stats_flags)
def _stats_cmd(ns):
    return _jobs.stats(ns.job_id, site=ns.site, flare=_conn(ns))


def _log_config_flags(p) -> None:
    _job_id_flag(p)
    p.add_argument("level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR, CRITICAL, concise, msg_only, ...")
    p.add_argument("--site", default="all", help="server, all, or a site name")


@command("log-config", "change a running job's log level or mode", _log_config_flags)
def _log_config_cmd(ns):
    return _jobs.log_config(ns.job_id, ns.level, site=ns.site, flare=_conn(ns))


def _logs_flags(p) -> None:
    _job_id_flag(p)
    p.add_argument("--site", default="server", help="server (default), all, or a site name")
    p.add_argument("--tail", help="last N lines per site")
    p.add_argument("--since", help="lines at or after this timestamp, e.g. 2026-04-28T10:00:00")
    p.add_argument("--max-bytes", dest="max_bytes", help="last N bytes per site")
    p.add_argument("--format", choices=["text", "json"], default="text", help="text (default) or json")
    p.add_argument("--follow", action="store_true", help="show the live per-site log widget instead")


@command("logs", "show a job's logs per site (as 'nvflare job logs')", _logs_flags)
def _logs_cmd(ns):
    job = _jobs.Job(id=ns.job_id, flare=_conn(ns))
    if ns.follow:
        return _jobs.get_job(ns.job_id, flare=job.flare).view()
    return job.logs(site=ns.site, tail=ns.tail, since=ns.since, max_bytes=ns.max_bytes, format=ns.format)
