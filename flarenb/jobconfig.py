"""Edits to an exported job folder that make its client logs readable live through the admin API.

Stock NVFlare 2.9 never shows a client's job log live through ``get_job_logs`` (see the project notes). The
portable setup that does, on a local POC and on a production deployment alike:

* each client runs ``JobLogStreamer(log_file_name="log.txt")`` (streams its job log to the server job),
* the server job runs ``JobLogReceiver(dest_dir=".")``: its cwd is the server workspace root, so the staging
  file lands in ``<server workspace>/<job_id>/<site>/log.txt`` — exactly where ``get_job_logs`` reads live logs,
* ``meta.json``'s ``deploy_map`` names the sites instead of ``@ALL`` (the server lists only named sites).

These are logging components only: what the job computes does not change. The edit is deterministic and
idempotent, so the job's content hash (and hence its submit token's content) is stable across reruns.
"""

from __future__ import annotations

import json
from pathlib import Path

STREAMER = {
    "id": "flarenb_log_streamer",
    "path": "nvflare.app_common.logging.job_log_streamer.JobLogStreamer",
    "args": {"log_file_name": "log.txt"},
}
RECEIVER = {
    "id": "flarenb_log_receiver",
    "path": "nvflare.app_common.logging.job_log_receiver.JobLogReceiver",
    "args": {"dest_dir": "."},
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=4) + "\n")


def _add_component(config_file: Path, component: dict) -> None:
    if not config_file.is_file():
        return
    conf = _load(config_file)
    comps = conf.setdefault("components", [])
    if any(c.get("id") == component["id"] or c.get("path") == component["path"] for c in comps):
        return
    comps.append(json.loads(json.dumps(component)))
    _dump(config_file, conf)


def enable_live_logs(job_dir: str | Path, sites: list[str] | None = None, server: str = "server") -> None:
    """Make ``job_dir``'s client logs readable live through ``get_job_logs`` (see the module docstring).

    ``sites=None`` keeps ``@ALL``: the job stays deployable anywhere, and each client's log is then live when
    asked for by its name (``target="site-1"``), though not through ``target="all"``.
    """
    job = Path(job_dir)
    meta_file = job / "meta.json"
    meta = _load(meta_file)
    deploy_map = meta.get("deploy_map") or {}
    changed = False
    for app, targets in deploy_map.items():
        if "@ALL" in targets and sites:
            deploy_map[app] = [server, *sorted(sites)]
            changed = True
        app_dir = job / app
        if any(t != server for t in deploy_map[app]):
            _add_component(app_dir / "config" / "config_fed_client.json", STREAMER)
        if server in deploy_map[app] or "@ALL" in targets:
            _add_component(app_dir / "config" / "config_fed_server.json", RECEIVER)
    if changed:
        _dump(meta_file, meta)
