"""flarenb's job edit is a pure function that normalises whatever streaming a job already configures."""

from __future__ import annotations

import copy

import pytest

from flarenb import jobconfig
from flarenb.jobconfig import FLARENB_RECEIVER_PATH, RECEIVER_PATH, STREAMER_PATH, Job, normalize

SITES = ["hospital-b", "hospital-a", "hospital-c"]


def streamer(name=None, parent=None):
    args = {} if name is None else {"log_file_name": name}
    if parent is not None:
        args["target_parent_server"] = parent
    return {"id": f"s-{name}", "path": STREAMER_PATH, "args": args}


def receiver(**args):
    return {"id": "user_receiver", "path": RECEIVER_PATH, "args": args}


def job(deploy_map, client_comps=(), server_comps=(), apps=None):
    apps = apps or list(deploy_map)
    return Job(
        meta={"name": "j", "deploy_map": deploy_map},
        clients={a: {"format_version": 2, "components": list(client_comps)} for a in apps},
        servers={a: {"format_version": 2, "components": list(server_comps)} for a in apps},
    )


def files(conf):
    return sorted(
        str((c.get("args") or {}).get("log_file_name") or "log.txt")
        for c in conf["components"]
        if c["path"] == STREAMER_PATH
    )


def receivers(conf):
    return [c for c in conf["components"] if c["path"] in (RECEIVER_PATH, FLARENB_RECEIVER_PATH)]


CASES = {
    # name: (job, expected deploy map, expected client streamer files, expected receiver ids)
    "plain @ALL": (job({"app": ["@ALL"]}), {"app": ["server", *sorted(SITES)]}, ["log.txt"], ["flarenb_log_receiver"]),
    "enable_log_streaming()": (
        job({"app": ["@ALL"]}, [streamer("log.json")], [receiver()]),
        {"app": ["server", *sorted(SITES)]},
        ["log.json", "log.txt"],
        ["user_receiver"],
    ),
    'enable_log_streaming("log.txt")': (
        job({"app": ["@ALL"]}, [streamer("log.txt")], [receiver()]),
        {"app": ["server", *sorted(SITES)]},
        ["log.txt"],
        ["user_receiver"],
    ),
    "streamer with the default file name": (
        job({"app": ["@ALL"]}, [streamer()], []),
        {"app": ["server", *sorted(SITES)]},
        ["log.txt"],
        ["flarenb_log_receiver"],
    ),
    "explicit JobLogReceiver() only": (
        job({"app": ["@ALL"]}, [], [receiver(idle_timeout=60.0)]),
        {"app": ["server", *sorted(SITES)]},
        ["log.txt"],
        ["user_receiver"],
    ),
    "a subset of sites, named": (
        job({"app": ["server", "hospital-a"]}),
        {"app": ["server", "hospital-a"]},
        ["log.txt"],
        ["flarenb_log_receiver"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_normalize_serves_every_site_live_whatever_the_job_configures(case):
    before, deploy_map, streamed, receiver_ids = CASES[case]
    original = copy.deepcopy(before)
    after = normalize(before, sites=SITES)
    assert before == original  # pure: the input is not changed
    assert after.meta["deploy_map"] == deploy_map
    assert files(after.clients["app"]) == streamed
    recs = receivers(after.servers["app"])
    assert [r["id"] for r in recs] == receiver_ids
    for r in recs:  # one receiver, flarenb's (drains at job end), staging where get_job_logs reads live logs
        assert r["path"] == FLARENB_RECEIVER_PATH and r["args"]["dest_dir"] == "."
    assert after.servers["app"]["end_run_readiness_timeout"] == jobconfig.END_RUN_READINESS_TIMEOUT
    assert after.custom_code == {"app"}
    assert normalize(after, sites=SITES) == after  # idempotent


def test_two_apps_get_the_receiver_where_the_server_runs_and_streamers_where_clients_run():
    before = job({"app-a": ["server", "hospital-a"], "app-b": ["hospital-b"]})
    before.servers["app-b"] = None  # a clients-only app has no server config
    after = normalize(before, sites=SITES)
    assert after.meta["deploy_map"] == {"app-a": ["server", "hospital-a"], "app-b": ["hospital-b"]}
    assert files(after.clients["app-a"]) == files(after.clients["app-b"]) == ["log.txt"]
    assert [r["id"] for r in receivers(after.servers["app-a"])] == ["flarenb_log_receiver"]
    assert after.servers["app-b"] is None and after.custom_code == {"app-a"}


def test_all_beside_named_apps_keeps_the_named_sites_out_of_the_all_app():
    after = normalize(job({"app": ["@ALL"], "special": ["hospital-c"]}), sites=SITES)
    assert after.meta["deploy_map"] == {"app": ["server", "hospital-a", "hospital-b"], "special": ["hospital-c"]}


def test_a_streamer_to_the_parent_server_is_pointed_at_the_server_job_and_explicit_dest_dir_kept():
    after = normalize(job({"app": ["@ALL"]}, [streamer("log.txt", parent=True)], [receiver(dest_dir="/data/logs")]))
    (s,) = [c for c in after.clients["app"]["components"] if c["path"] == STREAMER_PATH]
    assert s["args"]["target_parent_server"] is False
    assert receivers(after.servers["app"])[0]["args"]["dest_dir"] == "/data/logs"


def test_without_sites_all_is_kept():
    after = normalize(job({"app": ["@ALL"]}), sites=None)
    assert after.meta["deploy_map"] == {"app": ["@ALL"]}


def test_enable_live_logs_writes_the_receivers_code_into_the_server_app(job_dir):
    jobconfig.enable_live_logs(job_dir, ["site-1", "site-2"])
    shipped = job_dir / "app" / "custom" / "flarenb_log_receiver.py"
    assert shipped.read_bytes() == jobconfig.CUSTOM_CODE.read_bytes()
    compile(shipped.read_text(), str(shipped), "exec")


def test_the_meta_marks_a_job_whose_server_answers_the_log_cursor():
    after = normalize(job({"app": ["@ALL"]}), sites=SITES)
    assert after.meta[jobconfig.META_KEY] == {"log_cursor": "flarenb.logs"}
    assert jobconfig.answers_cursor(after.meta)
    assert normalize(after, sites=SITES) == after  # idempotent: the content hash (submit token) stays stable
    # a job whose apps run on clients only gets no receiver, hence no mark
    clients_only = job({"app": ["hospital-a"]})
    clients_only.servers["app"] = None
    assert jobconfig.META_KEY not in normalize(clients_only, sites=SITES).meta
    for meta in (None, {}, {"flarenb": "yes"}, {"flarenb": {"log_cursor": "other.topic"}}):
        assert not jobconfig.answers_cursor(meta)


def test_the_component_answers_the_topic_the_meta_names():
    source = jobconfig.CUSTOM_CODE.read_text()
    assert f'CURSOR_TOPIC = "{jobconfig.CURSOR_TOPIC}"' in source
