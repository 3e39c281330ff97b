"""The provisioned (non-POC) deployment fixture: what users actually run, started from its startup kits."""

from __future__ import annotations

import json
import os

import pytest
from conftest import export_job

from flarenb import provisioned
from flarenb.provisioned import Deployment, authorization_with


def test_authorization_with_adds_rights_per_role_and_keeps_the_default():
    default = {"format_version": "1.0", "permissions": {"project_admin": "any", "lead": {"submit_job": "any"}}}
    policy = authorization_with(default, {"lead": {"get_job_log": "n:submitter"}, "project_admin": {"x": "none"}})
    assert policy["permissions"]["lead"] == {"submit_job": "any", "get_job_log": "n:submitter"}
    assert policy["permissions"]["project_admin"] == "any"  # "any" already covers every right
    assert default["permissions"]["lead"] == {"submit_job": "any"}  # not modified in place


def test_provision_moves_storage_into_the_workspace_and_writes_extra_rights():
    d = Deployment(clients=("north",), extra_rights={"lead": {"app_command": "n:submitter"}})
    try:
        d.provision()
        local = d.server_workspace / "local"
        resources = json.loads((local / "resources.json").read_text())
        job_manager = next(c for c in resources["components"] if c["id"] == "job_manager")
        assert job_manager["args"]["uri_root"] == str(d.server_workspace / "jobs-storage")
        storage = resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"]
        assert storage == str(d.server_workspace / "snapshot-storage")
        policy = json.loads((local / "authorization.json").read_text())
        assert policy["permissions"]["lead"]["app_command"] == "n:submitter"
        assert policy["permissions"]["lead"]["submit_job"] == "any"
        assert sorted(d.kits) == sorted(provisioned.USERS)
        for kit in d.kits.values():
            assert (kit / "startup" / "fed_admin.json").is_file()
        assert (d.site_workspace("north") / "startup" / "sub_start.sh").is_file()
    finally:
        root = d.root
        d.remove()
    assert root is not None and not root.exists()


@pytest.mark.deployment
def test_every_client_registers_and_every_user_logs_in(flarenb_deployment):
    d = flarenb_deployment
    assert d.running and set(d.pids) == {"localhost", "hospital-a", "hospital-b", "hospital-c"}
    assert d.flare("admin@example.org").system_info().client_names == ["hospital-a", "hospital-b", "hospital-c"]
    for user in ("lead@example.org", "member@example.org"):
        assert d.flare(user).call(lambda s: s.list_jobs()) is not None  # "view" is granted to every role


@pytest.mark.deployment
def test_a_job_runs_on_it_and_is_stored_in_its_own_workspace(flarenb_deployment, tmp_path):
    from flarenb import jobs, submission

    d = flarenb_deployment
    admin = d.flare("admin@example.org")
    job = submission.submit(export_job(tmp_path, name="deploy-smoke", rounds=1), flare=admin, scope="smoke")
    meta = jobs.wait(job.id, timeout=240, interval=1.0, flare=admin)
    assert meta["status"] == "FINISHED:COMPLETED"
    assert (d.server_workspace / "jobs-storage" / job.id).is_dir()
    assert "round" in admin.call(lambda s: s.get_job_logs(job.id, target="server"))["logs"]["server"].lower()


@pytest.mark.deployment
def test_stop_ends_every_process_it_started_and_remove_deletes_its_folder():
    d = Deployment(clients=("north",), users={"admin@example.org": "project_admin"})
    try:
        d.start()
        pids = dict(d.pids)
        assert set(pids) == {"localhost", "north"}
        assert provisioned._processes_mentioning(str(d.root.resolve()))
    finally:
        d.stop()
        d.stop()  # idempotent
        root = d.root
    assert root is not None and not provisioned._processes_mentioning(str(root.resolve()))
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    d.remove()
    assert not root.exists()
