"""Issue 9 on the real local FLARE: a live view of a job that is deleted under it ends with a clear state; a server
stopped under a live view shows "server unreachable" in its header, and the view resumes when it is back."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from flarenb import follower, jobs, live

pytestmark = pytest.mark.poc


def until(cond, timeout=120.0, period=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out waiting for {what}")


def submit_unschedulable(flare, tmp_path, name):
    """A job naming a site that is not connected: the server keeps it SUBMITTED (a live view, no job processes),
    and it can be deleted."""
    from conftest import export_job

    job_dir = export_job(tmp_path, name=name)
    meta_path = job_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["deploy_map"] = {app: ["server", "site-that-never-connects"] for app in meta["deploy_map"]}
    meta["min_clients"] = 1
    meta_path.write_text(json.dumps(meta))
    return flare.call(lambda s: s.submit_job(str(job_dir)))


def test_a_deleted_job_under_a_live_view_ends_the_view_with_a_clear_state(flarenb_poc, tmp_path, fake_comm):
    job_id = submit_unschedulable(flarenb_poc, tmp_path, "never-scheduled")
    job = jobs.get_job(job_id, flare=flarenb_poc)
    view = live.LogView(job)
    try:
        assert view.live and not jobs.is_terminal(view.status)
        until(lambda: flarenb_poc.call(lambda s: s.delete_job(job_id)) or True, what="the delete")
        until(lambda: not view.live, timeout=120, what="the view to end")
        assert view.status == live.NOT_FOUND
        assert view.problem.startswith("job not found")
        assert view.end_ts is not None
        assert all(st["state"] in ("done", "unavailable") for st in view.site_states.values())
        assert "job not found" in view.snapshot_text()
        until(lambda: view._watch_thread is None or not view._watch_thread.is_alive(), timeout=30, what="threads")
        until(lambda: not [k for k in follower.active_followers() if k[-1] == job_id], timeout=30, what="follower")
    finally:
        view.close()


def test_a_stopped_server_shows_in_the_header_and_the_view_resumes_when_it_is_back(flarenb_poc, tmp_path, fake_comm):
    poc = flarenb_poc.poc
    job_id = submit_unschedulable(flarenb_poc, tmp_path, "server-goes-away")
    view = live.LogView(jobs.get_job(job_id, flare=flarenb_poc))
    pid = poc.server_pid  # the server process of this session's own POC
    assert pid is not None
    try:
        until(lambda: view.status == "SUBMITTED" and view.problem is None, timeout=60, what="a current status")
        # SIGSTOP: the server stops answering (its watchdog does not restart a process that still exists)
        os.kill(pid, signal.SIGSTOP)
        until(lambda: (view.problem or "").startswith("server unreachable"), timeout=180, what="the problem shown")
        assert view.live
        assert "server unreachable" in view.snapshot_text()  # the text snapshot's header says it too
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        until(lambda: view.problem is None, timeout=180, what="the view to resume")
        assert view.live and view.status == "SUBMITTED"
    finally:
        # leave the session's FLARE as it was: every client connected again
        flarenb_poc.wait_for_clients(poc.clients, timeout=180)
        try:
            flarenb_poc.call(lambda s: s.delete_job(job_id))
        finally:
            view.close()


@pytest.fixture
def fake_comm(monkeypatch):
    import comm
    from test_widget import FakeComm

    made = []
    monkeypatch.setattr(comm, "create_comm", lambda **kw: made.append(FakeComm(**kw)) or made[-1])
    return made
