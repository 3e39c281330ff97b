"""Rights, refusals and the download-backed logs, against a fake admin session (no server).

The same behaviours run against a real provisioned deployment in ``tests/test_roles_deployment.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from nvflare.fuel.flare_api import api_spec as A

from flarenb import dllogs, rights
from flarenb.dlsource import NEEDS_GET_JOB_LOG, RightsAwareSource
from flarenb.jobs import Job
from flarenb.receiver import ENDED, UNAVAILABLE, Receiver
from flarenb.sources import AdminPoll

JOB = "0b4c3c8e-8e51-4c57-9a43-1d2e3f4a5b6c"
LOGS = {
    "server": "2026-01-01 10:00:00,000 - ServerRunner - INFO - server up\nserver line 2\n",
    "hospital-a": "2026-01-01 10:00:01,000 - Client - INFO - round 0 on hospital-a\n",
    "hospital-b": "2026-01-01 10:00:01,000 - Client - INFO - round 0 on hospital-b\nlast line\n",
}


def refusal(command: str, user: str = "lead@example.org") -> A.AuthorizationError:
    """NVFlare's own message for a refused command (``flare_api.Session._do_command``)."""
    return A.AuthorizationError(
        f"user not authorized for the action '{command} {JOB}: user '{user}' is not authorized for '{command}''"
    )


class FakeSession:
    """A lead under NVFlare's default policy: view and download, no get_job_log; statuses scripted by the test."""

    def __init__(self, root: Path, grants=("view", "download_job")):
        self.root, self.grants = root, set(grants)
        self.status = "RUNNING"
        self.downloads = 0
        self.calls: list[str] = []
        self.unreachable = False

    def _check(self, right: str, command: str):
        self.calls.append(command)
        if self.unreachable:
            raise A.NoConnection("cannot connect to server")
        if right not in self.grants:
            raise refusal(command)

    def get_job_meta(self, job_id):
        self._check("view", "get_job_meta")
        if job_id != JOB:
            raise A.JobNotFound(f"no such job: {job_id}")
        return {"job_id": JOB, "status": self.status, "submitter_name": "lead@example.org", "deploy_map": {}}

    def list_jobs(self, **kw):
        self._check("view", "list_jobs")
        if kw.get("submit_token"):
            return []  # an unused token
        return [{"job_id": JOB, "job_name": "j", "status": self.status, "submit_time": "2026"}]

    def _job(self, job_id):
        if job_id != JOB:  # the server looks the job up before it authorizes
            raise A.JobNotFound(f"no such job: {job_id}")

    def get_job_logs(self, job_id, target="server", log_file_name=None):
        self._job(job_id)
        self._check("get_job_log", "get_job_log")
        return {"logs": {k: v for k, v in LOGS.items() if target in ("all", k)}, "unavailable": {}}

    def get_client_job_status(self):
        self._check("view", "check_status")
        return [{"client_name": c, "job_id": JOB, "status": "started"} for c in ("hospital-a", "hospital-b")]

    def download_job_result(self, job_id, destination=None):
        self._job(job_id)
        self._check("download_job", "download_job")
        if self.status == "RUNNING":
            raise A.JobNotDone(f"job {job_id} is still running")
        self.downloads += 1
        ws = Path(destination) / job_id / "workspace"
        (ws / "app_server").mkdir(parents=True)
        (ws / "app_server" / "log.txt").write_text("not a site log\n")
        (ws / "log.txt").write_text(LOGS["server"])
        for site in ("hospital-a", "hospital-b"):
            (ws / site).mkdir()
            (ws / site / "log.txt").write_text(LOGS[site])
        return str(Path(destination) / job_id)

    def do_app_command(self, job_id, topic, data):
        self._check("app_command", "app_command")
        raise A.JobNotRunning("not running")

    def submit_job(self, path, submit_token=None):
        self._check("submit_job", "submit_job")
        return JOB


class FakeFlare:
    def __init__(self, session: FakeSession, role: str | None = "lead"):
        self.sess = session
        self.kit = SimpleNamespace(path=str(session.root / "kit"), username="lead@example.org")
        self.study = "default"
        self.poc = None
        self._lock = threading.RLock()
        with rights._cache_lock:
            rights._cache[self] = rights.Rights(user=self.kit.username, role=role)

    def call(self, fn, retry=True):
        with self._lock:
            return fn(self.sess)

    def system_info(self):
        return SimpleNamespace(client_names=["hospital-a", "hospital-b"], __str__=lambda self: "FLARE server: up")


@pytest.fixture
def lead(tmp_path):
    yield FakeFlare(FakeSession(tmp_path))
    dllogs.forget_all()


# -- the error ------------------------------------------------------------------------------------
def test_right_of_reads_nvflare_refusals():
    assert rights.right_of(refusal("get_job_log")) == "get_job_log"
    assert rights.right_of(refusal("submit_job")) == "submit_job"
    assert rights.right_of(refusal("abort_job")) == "manage_job"  # NVFlare's command category
    assert rights.right_of(ValueError("boom")) is None
    assert rights.is_refusal(refusal("get_job_log")) and not rights.is_refusal(ValueError("x"))


def test_refusal_is_one_line_naming_user_role_right_and_the_admin_section():
    err = rights.RightRefused("get_job_log", "lead@example.org", "lead", "read job logs")
    text = str(err)
    assert "\n" not in text
    assert "lead@example.org (role lead) may not read job logs" in text
    assert '"get_job_log": "n:submitter"' in text and "For administrators" in text


def test_readme_has_the_administrators_section_with_the_snippet():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "## For administrators" in readme
    section = readme.split("## For administrators", 1)[1]
    for right in ("get_job_log", "app_command", "download_job"):
        assert f'"{right}": "n:submitter"' in section or right == "download_job"
        assert right in section


# -- job.logs() -----------------------------------------------------------------------------------
def test_finished_job_logs_come_from_the_download_once(lead):
    lead.sess.status = "FINISHED:COMPLETED"
    job = Job(id=JOB, flare=lead)
    out = job.logs(site="all")
    assert out.logs == LOGS  # every site, byte for byte, and not app_server's copy
    assert "from the job's download" in out.source and str(out).startswith("(from the job's download")
    again = job.logs(site="hospital-b", tail=1)
    assert again.logs == {"hospital-b": "last line\n"}  # the same flags
    assert lead.sess.downloads == 1  # fetched once
    assert lead.sess.calls.count("get_job_log") == 1  # refused once: not asked again for this job
    data = job.logs(site="server", format="json")
    assert data["source"]["kind"] == "download" and data["logs"]["server"] == LOGS["server"]


def test_running_job_logs_are_a_one_line_refusal_naming_the_right(lead):
    with pytest.raises(rights.RightRefused) as e:
        Job(id=JOB, flare=lead).logs()
    text = str(e.value)
    assert "role lead" in text and "get_job_log" in text and "while it runs (RUNNING)" in text
    assert "For administrators" in text and "\n" not in text


def test_without_download_either_the_error_names_both_rights(lead):
    lead.sess.grants = {"view"}
    lead.sess.status = "FINISHED:COMPLETED"
    with pytest.raises(rights.RightRefused) as e:
        Job(id=JOB, flare=lead).logs(site="all")
    assert "get_job_log" in str(e.value) and "download_job" in str(e.value)


def test_granted_rights_use_the_log_api(lead):
    lead.sess.grants |= {"get_job_log"}
    out = Job(id=JOB, flare=lead).logs(site="all")
    assert out.logs == LOGS and out.source is None and lead.sess.downloads == 0


# -- submit and info --------------------------------------------------------------------------------
def test_member_submit_is_refused_naming_the_role(tmp_path, monkeypatch):
    from flarenb import submission

    member = FakeFlare(FakeSession(tmp_path, grants=("view",)), role="member")
    job_dir = tmp_path / "job"
    (job_dir / "app").mkdir(parents=True)
    (job_dir / "meta.json").write_text('{"name": "j"}')
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(submission, "cache_dir", lambda: tmp_path / "cache")
    with pytest.raises(rights.RightRefused) as e:
        submission.submit(str(job_dir), flare=member, stream_logs=False, scope="t")
    text = str(e.value)
    assert "(role member) may not submit jobs" in text and "submit_job" in text and "\n" not in text
    assert "list_jobs" in member.sess.calls  # what a member may do was still done (the token lookup)


def test_rights_not_checked_yet_are_not_called_missing():
    r = rights.Rights(user="admin@nvidia.com", role="project_admin")
    assert "missing rights" not in str(r)  # nothing refused: "not checked yet" is not "no"
    r.note("get_job_log", False, "refused by the server", JOB)
    assert "missing rights: see 'For administrators'" in str(r)


def test_info_shows_role_and_probed_rights_once(lead):
    info = rights.connection_info(lead)
    text = str(info)
    assert "role lead" in text
    rows = {r: s for r, s, _ in info.rights.lines()}
    assert rows["get_job_log"] == "no" and rows["download_job"] == "yes"  # probed on the running job
    assert rows["app_command"] == "not checked yet"  # never probed on a running job
    assert "missing rights: see 'For administrators'" in text  # get_job_log is refused
    calls = len(lead.sess.calls)
    rights.connection_info(lead)
    assert lead.sess.calls[calls:].count("get_job_log") == 0  # cached per connection


# -- the live source --------------------------------------------------------------------------------
def make_source(flare, rx):
    def status():
        return flare.sess.status

    def fetch(target, log_file_name=None):
        return flare.call(lambda s: s.get_job_logs(JOB, target=target))

    inner = AdminPoll(rx, fetch, status=status, final_grace=0)
    return RightsAwareSource(rx, inner, flare, JOB, status, wait_interval=0.05)


def states(rx):
    return {site: (rx.site(site).state, rx.site(site).reason) for site in rx.sites()}


def test_refused_live_logs_say_why_then_fill_from_the_download_when_the_job_ends(lead):
    rx = Receiver(name="t")
    src = make_source(lead, rx)
    assert rx.sites() == ["server"]  # never an empty view
    src.poll_once()
    src.poll_once()
    st = states(rx)
    assert set(st) == {"server", "hospital-a", "hospital-b"}
    for site, (state, reason) in st.items():
        assert state == UNAVAILABLE and NEEDS_GET_JOB_LOG in reason, site
    lead.sess.status = "FINISHED:COMPLETED"
    src.poll_once()
    assert src.finished and rx.all_done
    for site, text in LOGS.items():
        lines = [ln.text for ln in rx.lines(site) if ln.kind != "marker"]
        assert "\n".join(lines) + "\n" == text
        assert rx.site(site).state == ENDED
        assert "from the job's download" in rx.lines(site)[0].text


def test_a_lead_refused_the_cursor_and_whole_logs_sees_no_polling_note(lead):
    """The cursor is tried while ``app_command`` is not known (nothing probes it on a running job); refused, it
    hands over to whole-log polling, which the lead may not use either: no "following by whole-log polling" line
    then (CI saw one in the lead's running view), only each site's state; the download fills the lanes at the end."""
    from flarenb.sources import CursorPoll

    rx = Receiver(name="t")

    def ask(request):
        raise refusal("app_command")

    t = CursorPoll(rx, ask, status=lambda: lead.sess.status, then=lambda primed, done: make_source(lead, rx))
    for _ in range(3):
        t.poll_once()
    assert t.fallback_reason is not None and "app_command" in t.fallback_reason
    for site, (state, reason) in states(rx).items():
        assert state == UNAVAILABLE and NEEDS_GET_JOB_LOG in reason, site
    assert [ln.text for site in rx.sites() for ln in rx.lines(site)] == []
    lead.sess.status = "FINISHED:COMPLETED"
    t.poll_once()
    assert t.finished and rx.all_done
    shown = [ln.text for site in rx.sites() for ln in rx.lines(site)]
    assert not [x for x in shown if "whole-log polling" in x]
    assert "from the job's download" in rx.lines("server")[0].text


@pytest.mark.parametrize("failure", ["unreachable", "refused view", "job not found", "download refused"])
def test_no_view_stays_without_a_visible_state_after_one_poll(lead, failure):
    rx = Receiver(name="t")
    src = make_source(lead, rx)
    if failure == "unreachable":
        lead.sess.unreachable = True
    elif failure == "refused view":
        lead.sess.grants = {"get_job_log"}
        lead.sess.get_job_logs = lambda *a, **k: (_ for _ in ()).throw(refusal("check_status"))
    elif failure == "job not found":
        src.job_id = src.inner.name = "no-such-job"
        src.inner.fetch = lambda target, log_file_name=None: lead.sess.get_job_meta("nope")
    else:
        lead.sess.grants = {"view"}
        lead.sess.status = "FINISHED:COMPLETED"
    src.poll_once()
    if failure == "download refused":
        src.poll_once()
    assert rx.sites()
    for site, (state, reason) in states(rx).items():
        assert state in (UNAVAILABLE, ENDED) and reason, (site, state, reason)
    if failure == "unreachable":  # shown while it lasts, cleared by the next good poll
        assert "server unreachable" in states(rx)["server"][1]
        lead.sess.unreachable = False
        lead.sess.grants |= {"get_job_log"}
        src.poll_once()
        assert rx.site("server").state not in (UNAVAILABLE,)


def test_source_thread_ends_after_the_download(lead):
    rx = Receiver(name="t")
    src = make_source(lead, rx)
    lead.sess.status = "FINISHED:COMPLETED"
    src.start()
    deadline = time.monotonic() + 30
    while not rx.all_done and time.monotonic() < deadline:
        time.sleep(0.02)
    src.stop()
    assert rx.all_done and [ln.text for ln in rx.lines("hospital-a") if ln.kind != "marker"]


# -- the widget's model (what the page renders) -------------------------------------------------------
@pytest.mark.parametrize("failure", ["get_job_log refused", "unreachable", "job not found"])
def test_a_view_shows_a_state_for_every_failing_source(lead, failure):
    from flarenb import follower
    from flarenb.live import LogView

    if failure == "unreachable":
        lead.sess.unreachable = True
    job = Job(id=JOB if failure != "job not found" else "1b4c3c8e-8e51-4c57-9a43-1d2e3f4a5b6c", flare=lead)
    view = LogView(job)
    try:

        def shown():
            st = view.site_states
            return st.get("server") and all(v.get("reason") for v in st.values())

        deadline = time.monotonic() + 30
        while not shown() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert shown(), view.site_states
        reason = view.site_states["server"]["reason"]
        expected = {"get_job_log refused": "get_job_log", "unreachable": "unreachable", "job not found": "not found"}
        assert expected[failure] in reason
    finally:
        view.close()
        follower.stop_all()


def test_a_lead_view_fills_from_the_download_when_the_job_ends(lead):
    from flarenb import follower, logsource
    from flarenb.live import LogView

    view = LogView(Job(id=JOB, flare=lead))
    try:
        deadline = time.monotonic() + 30
        while len(view.site_states) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(NEEDS_GET_JOB_LOG in v["reason"] for v in view.site_states.values()), view.site_states
        assert view.live
        lead.sess.status = "FINISHED:COMPLETED"
        deadline = time.monotonic() + 60
        while view.live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not view.live and view.status == "FINISHED:COMPLETED"
        for site, text in LOGS.items():
            shown = [ln.text for ln in view.lines(site) if not ln.text.startswith("[flarenb]")]
            assert "\n".join(shown) + "\n" == text
            assert view.site_states[site]["state"] == "done"
    finally:
        view.close()
        follower.stop_all()
        logsource._statuses.clear()
