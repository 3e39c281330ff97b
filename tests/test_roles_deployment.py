"""Each role on a real provisioned deployment (NVFlare's default policy, and a lead granted the README's snippet).

One job per deployment serves several checks: a lead submits it; while it runs, the project admin follows it live
and the lead's view says why it has no lines; after it ends, the lead's view and ``%flare logs --site all`` hold
every site's log, equal to the job's downloaded files. The page itself is not driven here (no browser): the
widget's synced model (``site_states``, ``status``, ``live``) is what its page renders.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import export_job

from flarenb import dllogs, jobconfig, jobs, live, rights, submission
from flarenb.registry import run_line

pytestmark = pytest.mark.deployment

LEAD, ADMIN, MEMBER = "lead@example.org", "admin@example.org", "member@example.org"
SNIPPET = {"lead": {"get_job_log": "n:submitter", "app_command": "n:submitter"}}


def until(cond, timeout=120.0, period=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # submit keeps its staged copies under ~/.cache
    yield
    dllogs.forget_all()


def submit_as(d, user, tmp_path, name):
    # min_clients = every client: NVFlare's FedAvg asks a random min_clients of them per round. With 2 of 3, a given
    # client sits out all 3 rounds 1 time in 27, and its lane never gets the round lines a test waits for (seen once)
    job_dir = export_job(tmp_path / "src", name=name, rounds=3, clients=len(d.clients), train_args="--sleep 2")
    return submission.submit(str(job_dir), flare=d.flare(user), scope=f"{name}-{time.time()}")


def downloaded_logs(d, user, job_id, tmp_path) -> dict[str, str]:
    result = jobs.download(job_id, output_dir=str(tmp_path / "dl"), flare=d.flare(user))
    ws = Path(result.path) / "workspace"
    files = {"server": ws / "log.txt", **{c: ws / c / "log.txt" for c in d.clients}}
    return {site: f.read_text() for site, f in files.items() if f.is_file()}


def source_state(handle, rx) -> str:
    """What the follower's source did (for a failure message)."""
    t = handle.transport
    inner = getattr(t, "inner", t)
    return (
        f"{type(t).__name__}/{type(inner).__name__} mode={getattr(t, 'mode', None)} "
        f"shown_error={getattr(t, 'shown_error', None)!r} polls={getattr(inner, 'polls', None)} "
        f"last_error={getattr(inner, 'last_error', None)!r} fallback={getattr(inner, 'fallback_reason', None)!r} "
        f"next={type(getattr(inner, 'next', None)).__name__} sites={rx.sites()} "
        f"states={ {s: (rx.site(s).state, rx.site(s).reason) for s in rx.sites()} } "
        f"lines={ {s: rx.site(s).total for s in rx.sites()} } described={handle.source_info!r} "
        f"last lines={ {s: [ln.text[-90:] for ln in rx.lines(s)[-3:]] for s in rx.sites()} }"
    )


def client_lines(rx, site):
    return [ln for ln in rx.lines(site) if f"on {site}" in ln.text]


def test_lead_with_the_default_policy(flarenb_deployment, tmp_path, ip):
    d = flarenb_deployment
    lead = d.flare(LEAD)
    job = submit_as(d, LEAD, tmp_path, "lead-default")
    view = job.view()
    admin_follow = live.follow_job(jobs.Job(id=job.id, flare=d.flare(ADMIN)))  # by cursor by default
    try:
        # project_admin: live lanes for every site, while the job runs
        rx = admin_follow.receiver
        for site in d.clients:
            until(
                lambda site=site: client_lines(rx, site),
                timeout=180,
                what=lambda site=site: f"{site}'s live lines for the admin: {source_state(admin_follow, rx)}",
            )
        admin_source = getattr(admin_follow.transport, "inner", admin_follow.transport)
        assert type(admin_source).__name__ == "CursorPoll", source_state(admin_follow, rx)
        assert admin_source.next is None and admin_source.fallback_reason is None, source_state(admin_follow, rx)
        # lead: no lines while it runs, and each site says why
        sites = ("server", *d.clients)

        def says_why():
            st = view.site_states
            return all("get_job_log" in str((st.get(s) or {}).get("reason")) for s in sites)

        until(says_why, timeout=60, what="every site of the lead's view to say it needs get_job_log")
        assert view.status == "RUNNING" and view.live
        assert not jobs.is_terminal(lead.call(lambda s: s.get_job_meta(job.id))["status"]), "checked after the run"
        with pytest.raises(rights.RightRefused) as refused:
            job.logs(site="all")
        assert "role lead" in str(refused.value) and "get_job_log" in str(refused.value)
        # the log cursor goes through NVFlare's job authorisation: refused without the app_command right, to the
        # lead who submitted the job and to a member alike
        with pytest.raises(Exception, match=r"not authorized") as no_cursor:
            lead.call(lambda s: s.do_app_command(job.id, "flarenb.logs", {"cursors": {}}))
        assert "app_command" in str(no_cursor.value)
        with pytest.raises(Exception):  # noqa: B017 - whatever NVFlare says to a member, no log bytes come back
            d.flare(MEMBER).call(lambda s: s.do_app_command(job.id, "flarenb.logs", {"cursors": {}}))
        assert not view.lines("server"), "no note: the lead is told why by each site's state (get_job_log)"

        meta = jobs.wait(job.id, timeout=300, interval=1.0, flare=lead)
        assert meta["status"] == "FINISHED:COMPLETED"
        # the lanes fill from the download as soon as the job has ended, with no rerun
        until(lambda: not view.live, timeout=120, what="the lead's view to finish")
        files = downloaded_logs(d, LEAD, job.id, tmp_path)
        assert set(files) == set(sites), "the download holds every site's log"
        for site in sites:
            shown = [ln.text for ln in view.lines(site) if not ln.text.startswith("[flarenb]")]
            assert "\n".join(shown) + "\n" == files[site], site
            assert view.site_states[site]["state"] == "done"
        # %flare logs --site all: every site's log, equal to the downloaded files, saying where it came from
        out = run_line(f"logs {job.id} --site all --max-bytes 100000000 --startup-kit {d.kit(LEAD)}", ip)
        assert out.logs == files
        assert str(out).startswith("(from the job's download")
        # %flare info: the role and the rights, as probed
        info = rights.connection_info(lead)
        rows = {r: s for r, s, _ in info.rights.lines()}
        assert info.rights.role == "lead" and rows["get_job_log"] == "no" and rows["download_job"] == "yes"
        assert "role lead" in str(info)
    finally:
        admin_follow.release()
        view.close()


def test_member_may_list_but_not_submit(flarenb_deployment, tmp_path, ip):
    d = flarenb_deployment
    kit = d.kit(MEMBER)
    job_dir = export_job(tmp_path / "src", name="member-try", rounds=1)
    with pytest.raises(rights.RightRefused) as e:
        run_line(f"submit {job_dir} --no-follow --startup-kit {kit}", ip)
    text = str(e.value)
    assert "(role member) may not submit jobs" in text and "submit_job" in text and "\n" not in text
    listed = run_line(f"list --startup-kit {kit}", ip)
    assert isinstance(listed, jobs.JobList)
    if listed:
        meta = run_line(f"meta {listed[0]['job_id']} --startup-kit {kit}", ip)
        assert meta["job_id"] == listed[0]["job_id"]


def test_lead_granted_the_snippet_sees_client_lines_live(flarenb_deployments, tmp_path):
    d = flarenb_deployments.get(extra_rights=SNIPPET)
    lead = d.flare(LEAD)
    job = submit_as(d, LEAD, tmp_path, "lead-snippet")
    handle = live.follow_job(job)  # by cursor by default: flarenb's (marked) job, app_command granted
    views: list = []
    try:
        rx = handle.receiver
        for site in d.clients:
            until(lambda site=site: client_lines(rx, site), timeout=180, what=f"{site}'s live lines for the lead")
        status = lead.call(lambda s: s.get_job_meta(job.id))["status"]
        assert status == "RUNNING", f"the client lines came only after the run ({status})"
        source = getattr(handle.transport, "inner", handle.transport)
        assert type(source).__name__ == "CursorPoll" and source.polls > 0 and source.fallback_reason is None
        assert source.next is None, "followed by cursor while the job runs (app_command granted)"
        assert rights.rights_of(lead).granted("get_job_log") is not False
        # the round metrics come by the same command while the job runs: job.metrics(), and the view's progress
        view = job.view()
        views.append(view)
        running = until(lambda: job.metrics().records, timeout=180, what="round metrics by cursor while running")
        assert job.metrics().source == "cursor" and {r.round for r in running} >= {0}
        until(lambda: (view.widget.progress or {}).get("round") is not None, 60, what="the view's round progress")
        assert lead.call(lambda s: s.get_job_meta(job.id))["status"] == "RUNNING", "checked after the run"
        jobs.wait(job.id, timeout=300, interval=1.0, flare=lead)
        assert rights.connection_info(lead).rights.granted("get_job_log") is True
        until(lambda: not view.live, timeout=120, what="the lead's view to finish")
        assert view.widget.metrics == view.metrics_feed.payloads()[0] and view.widget.progress["round"] == 2
    finally:
        for v in views:
            v.close()
        handle.release()


def test_a_job_without_flarenb_s_component_is_never_asked_by_cursor(flarenb_deployment, tmp_path):
    """--no-stream-logs leaves the job untouched: no component, no mark in its meta, so the live view polls whole
    logs and never sends the app command (which would log "no app command func" as an ERROR in its server log)."""
    d = flarenb_deployment
    admin = d.flare(ADMIN)
    job_dir = export_job(tmp_path / "src", name="no-stream", rounds=1, train_args="--sleep 2")
    job = submission.submit(str(job_dir), flare=admin, stream_logs=False, scope=f"no-stream-{time.time()}")
    handle = live.follow_job(job)
    try:
        source = getattr(handle.transport, "inner", handle.transport)
        assert type(source).__name__ == "AdminPoll", source_state(handle, handle.receiver)
        assert not jobconfig.answers_cursor(admin.call(lambda s: s.get_job_meta(job.id)))
        meta = jobs.wait(job.id, timeout=300, interval=1.0, flare=admin)
        assert meta["status"] == "FINISHED:COMPLETED"
        until(lambda: handle.transport.finished, timeout=120, what="the follower to finish")
    finally:
        handle.release()
    server_log = admin.call(lambda s: s.get_job_logs(job.id, target="server"))["logs"]["server"]
    assert "Round 0" in server_log or "round 0" in server_log, "the server's job log, read after the run"
    assert "no app command func" not in server_log
