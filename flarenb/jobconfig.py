"""Edits to an exported job folder that make every client's log readable live through the admin API.

Stock NVFlare 2.9 never shows a client's job log live through ``get_job_logs`` — not even for a job that
configures streaming itself (``recipe.enable_log_streaming()`` adds a stock ``JobLogReceiver()`` that stages under
the system temp dir). The portable setup that does, on a local POC and on a production deployment alike:

* each client runs a ``JobLogStreamer`` for ``log.txt`` that streams to the server *job* (streamers the job
  already has — ``log.json`` by ``enable_log_streaming()`` — are kept, and pointed at the server job too);
* the server job runs one receiver with ``dest_dir="."``: its cwd is the server workspace root, so the staging
  files land in ``<server workspace>/<job_id>/<site>/log.txt`` (and ``log.json``) — exactly where
  ``get_job_logs`` reads live logs. It is flarenb's ``FlarenbLogReceiver`` (shipped as the server app's custom
  code, ``flarenb/jobcode/``): NVFlare's ``JobLogReceiver`` that also keeps the server job from ending before
  each client's stream has ended, which stock NVFlare does not wait for (each client then logs
  ``_LogTailProducer - ERROR - error from target server: TIMEOUT`` and its stored log loses its end). A receiver
  the job already has is replaced by it (an explicit ``dest_dir`` is kept);
* ``meta.json`` says so: ``"flarenb": {"log_cursor": "flarenb.logs"}`` (:data:`META_KEY`) tells a notebook that
  the job's server answers flarenb's log cursor, so the live view follows it by cursor without asking a job that
  cannot answer (NVFlare keeps the job's own meta keys in the stored job meta, ``get_job_meta`` returns them);
* ``meta.json``'s ``deploy_map`` names the sites instead of ``@ALL`` (the server lists only named sites under
  ``target="all"``, as ``nvflare job logs --site all`` asks). A deploy map that already names its sites (several
  apps, a subset of sites) is kept.

These are logging components only: what the job computes does not change. :func:`normalize` is a pure function
(configs in, configs out), deterministic and idempotent, so the job's content hash — hence its submit token — is
stable across reruns.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STREAMER_PATH = "nvflare.app_common.logging.job_log_streamer.JobLogStreamer"
RECEIVER_PATH = "nvflare.app_common.logging.job_log_receiver.JobLogReceiver"
FLARENB_RECEIVER_MODULE = "flarenb_log_receiver"
FLARENB_RECEIVER_PATH = f"{FLARENB_RECEIVER_MODULE}.FlarenbLogReceiver"
#: how long the server job waits, at most, for its clients' log streams to end (NVFlare's default: 5 s)
END_RUN_READINESS_TIMEOUT = 20.0

STREAMER = {"id": "flarenb_log_streamer", "path": STREAMER_PATH, "args": {"log_file_name": "log.txt"}}
RECEIVER = {"id": "flarenb_log_receiver", "path": FLARENB_RECEIVER_PATH, "args": {"dest_dir": "."}}
CUSTOM_CODE = Path(__file__).with_name("jobcode") / f"{FLARENB_RECEIVER_MODULE}.py"
#: the job meta key that marks a job whose server runs flarenb's component, and what it holds
META_KEY = "flarenb"
CURSOR_TOPIC = "flarenb.logs"  # the app command the component answers (flarenb/jobcode/flarenb_log_receiver.py)
META_VALUE = {"log_cursor": CURSOR_TOPIC}
#: the line the component logs in the server's job log once the command is registered (the job may be asked then)
CURSOR_READY_LINE = "flarenb log cursor ready: flarenb.logs"

CLIENT_CONFIG = "config_fed_client.json"
SERVER_CONFIG = "config_fed_server.json"


@dataclass
class Job:
    """What :func:`normalize` reads and writes: ``meta.json`` and each app's client/server config (None: absent)."""

    meta: dict[str, Any]
    clients: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    servers: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: apps whose ``custom/`` folder must receive flarenb's receiver module
    custom_code: set[str] = field(default_factory=set)


def _is(comp: dict, path: str) -> bool:
    return str(comp.get("path", "")).rsplit(".", 1)[-1] == path.rsplit(".", 1)[-1]


def _file_name(comp: dict) -> str:
    return str((comp.get("args") or {}).get("log_file_name") or "log.txt")


def _normalize_client(conf: dict[str, Any]) -> dict[str, Any]:
    conf = copy.deepcopy(conf)
    comps = conf.setdefault("components", [])
    streamed = set()
    for comp in comps:
        if _is(comp, STREAMER_PATH):
            args = comp.setdefault("args", {})
            if args.get("target_parent_server"):
                args["target_parent_server"] = False  # to the server job, whose receiver stages where it is read
            streamed.add(_file_name(comp))
    if "log.txt" not in streamed:
        comps.append(copy.deepcopy(STREAMER))
    return conf


def _normalize_server(conf: dict[str, Any]) -> dict[str, Any]:
    conf = copy.deepcopy(conf)
    comps = conf.setdefault("components", [])
    receivers = [c for c in comps if _is(c, RECEIVER_PATH) or c.get("path") == FLARENB_RECEIVER_PATH]
    if not receivers:
        comps.append(copy.deepcopy(RECEIVER))
    for comp in receivers:
        comp["path"] = FLARENB_RECEIVER_PATH
        args = comp.get("args") or {}
        if not args.get("dest_dir"):
            args["dest_dir"] = "."
        comp["args"] = args
    conf.setdefault("end_run_readiness_timeout", END_RUN_READINESS_TIMEOUT)
    return conf


def normalize(job: Job, sites: list[str] | None = None, server: str = "server") -> Job:
    """``job`` with live, complete client logs (see the module docstring); ``job`` itself is not changed.

    ``sites`` (the deployment's clients) replace ``@ALL`` in the deploy map; ``None`` keeps ``@ALL`` — each
    client's log is then live when asked for by name, though not through ``target="all"``.
    """
    meta = copy.deepcopy(job.meta)
    deploy_map: dict[str, list[str]] = meta.get("deploy_map") or {}
    named = {t for targets in deploy_map.values() for t in targets if t not in ("@ALL", server)}
    out = Job(meta=meta, clients=dict(job.clients), servers=dict(job.servers))
    for app, targets in deploy_map.items():
        everywhere = "@ALL" in targets
        if everywhere and sites:
            deploy_map[app] = [server, *sorted(s for s in sites if s not in named)]
        on_server = everywhere or server in targets
        on_clients = everywhere or any(t != server for t in targets)
        if on_clients and job.clients.get(app) is not None:
            out.clients[app] = _normalize_client(job.clients[app])  # type: ignore[arg-type]
        if on_server and job.servers.get(app) is not None:
            out.servers[app] = _normalize_server(job.servers[app])  # type: ignore[arg-type]
            out.custom_code.add(app)
    if out.custom_code:
        meta[META_KEY] = dict(META_VALUE)
    return out


def answers_cursor(meta: dict[str, Any] | None) -> bool:
    """Whether a job's meta (``get_job_meta``) says its server answers flarenb's log cursor."""
    mark = (meta or {}).get(META_KEY)
    return isinstance(mark, dict) and mark.get("log_cursor") == CURSOR_TOPIC


def read(job_dir: str | Path) -> Job:
    job = Path(job_dir)
    meta = json.loads((job / "meta.json").read_text())
    out = Job(meta=meta)
    for app in meta.get("deploy_map") or {}:
        for name, table in ((CLIENT_CONFIG, out.clients), (SERVER_CONFIG, out.servers)):
            path = job / app / "config" / name
            table[app] = json.loads(path.read_text()) if path.is_file() else None
    return out


def write(job_dir: str | Path, before: Job, after: Job) -> None:
    """Write what changed from ``before`` to ``after`` into ``job_dir`` (unchanged files are not rewritten)."""
    job = Path(job_dir)
    if after.meta != before.meta:
        _dump(job / "meta.json", after.meta)
    for name, old, new in (
        (CLIENT_CONFIG, before.clients, after.clients),
        (SERVER_CONFIG, before.servers, after.servers),
    ):
        for app, conf in new.items():
            if conf is not None and conf != old.get(app):
                _dump(job / app / "config" / name, conf)
    for app in sorted(after.custom_code):
        target = job / app / "custom" / CUSTOM_CODE.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(CUSTOM_CODE.read_bytes())


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=4) + "\n")


def enable_live_logs(job_dir: str | Path, sites: list[str] | None = None, server: str = "server") -> None:
    """Make ``job_dir``'s client logs readable live and complete through ``get_job_logs`` (module docstring)."""
    before = read(job_dir)
    write(job_dir, before, normalize(before, sites=sites, server=server))
