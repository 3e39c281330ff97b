"""Live logs of a real job on the local FLARE: both transports, the widget fed by them, and a dying site."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

from flarenb import follower, live
from flarenb import submission as sub
from flarenb.receiver import ENDED, LIVE, QUIET, TIMED_OUT
from flarenb.widget import _duration_seconds

pytestmark = pytest.mark.poc


def until(cond, timeout=120.0, period=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out waiting for {what}")


def submit_job(flare, tmp_path, name, rounds=2, env=None):
    from conftest import export_job

    job_dir = export_job(tmp_path, name=name, rounds=rounds)
    return sub.submit(str(job_dir), name=name, new=True, flare=flare)


def texts(rx, site):
    return [line.text for line in rx.lines(site)]


@pytest.mark.parametrize("transport", ["local", "admin"])
def test_every_site_streams_live_then_ends(flarenb_poc, tmp_path, transport):
    from flarenb import session

    flare = (
        flarenb_poc if transport == "local" else session.Flare(flarenb_poc.kit, study="default")
    )  # no POC: admin API
    job = submit_job(flare, tmp_path, f"live-{transport}", rounds=3)
    handle = live.follow_job(job)
    try:
        kind = type(handle.transport).__name__
        assert kind == ("LocalTail" if transport == "local" else "RightsAwareSource")
        rx = handle.receiver
        for site in ("site-1", "site-2"):
            until(
                lambda site=site: any(f"round 0 on {site}:" in t for t in texts(rx, site)),
                what=f"{site}'s first round line",
            )
        # the lines arrived while the job was still running
        assert not live.job_status(job)().startswith("FINISHED")
        until(lambda: rx.all_done, timeout=180, what="every stream to end")
        for site in ("server", "site-1", "site-2"):
            assert rx.site(site).state == ENDED, (site, rx.site(site).state, rx.site(site).reason)
            seq = [line.seq for line in rx.lines(site)]
            assert seq == sorted(set(seq))  # none repeated
        rounds = [re.search(r"\b(round \d+) on site-1:", t) for t in texts(rx, "site-1")]
        assert [m.group(1) for m in rounds if m] == ["round 0", "round 1", "round 2"]
    finally:
        handle.release()
        if flare is not flarenb_poc:
            flare.close()
    assert follower.active_followers() == {}


def test_widget_follows_the_job_and_a_second_view_shares_the_follower(flarenb_poc, tmp_path, monkeypatch):
    job = submit_job(flarenb_poc, tmp_path, "live-widget", rounds=2)
    ours = lambda: {t.name for t in threading.enumerate() if t.name.startswith("flarenb")}  # noqa: E731
    before = ours()
    origin = iter([("cell:a", "run-1"), ("cell:b", "run-2"), ("cell:b", "run-3"), ("cell:c", "run-4")])
    monkeypatch.setattr(live, "_display_origin", lambda: next(origin))
    first = job.view()  # the submit cell's view
    other = live.LogView(job)  # a view in another cell: both follow the job to its end, on one follower
    second = live.LogView(job)  # a rerun of that other cell: its old output is gone, the old view detaches
    try:
        assert list(follower.active_followers().values()) == [2]
        # the header's debug info: how the view follows this local job (inotify on Linux; "; polling ... while the
        # logs pour in" may follow while the job starts), set on every view, kept current by the view's watch
        events = "3 local log files, inotify notifications (safety poll every 5 s)"
        for view in (first, second):
            assert view.source_info.startswith(events) and view.widget.source_info == view.source_info, view.source_info
        print(f"source_info of the live view: {second.source_info}")
        assert not other.live
        for site in ("server", "site-1", "site-2"):
            st = other.site_states.get(site) or {}
            assert st.get("state") == "done" or st == {
                "state": "unavailable",
                "reason": "a newer view of this job follows it",
                "since": None,
            }, (site, st)
        until(lambda: all(second.lines(s) for s in ("server", "site-1", "site-2")), what="lines in every lane")
        until(lambda: second.status.startswith("FINISHED"), timeout=180, what="the final status")
        assert second.status == "FINISHED:COMPLETED"
        until(lambda: follower.active_followers() == {}, timeout=30, what="the follower to stop")
        for view in (first, second):  # every live view ends with the job: final status, every site done
            until(lambda view=view: not view.live, timeout=30, what="the view to finish")
            assert view.status == "FINISHED:COMPLETED"
            assert {s: view.site_states[s]["state"] for s in view.sites} == dict.fromkeys(view.sites, "done")
            assert [line.text for line in view.lines("site-1")] == [line.text for line in second.lines("site-1")]
            # the elapsed time is the job's duration (start + NVFlare's duration), not the time since submit
            assert view.duration and view.end_ts - view.start_ts == pytest.approx(
                _duration_seconds(view.duration), abs=0.01
            )
        snap = second._repr_mimebundle_()
        plain = (snap[0] if isinstance(snap, tuple) else snap)["text/plain"]
        assert "===== server =====" in plain and "===== site-1 =====" in plain and "===== site-2 =====" in plain
        assert any("round 1 on site-1:" in line.text for line in second.lines("site-1"))
        # the round progress and metrics of the job (read from the POC's run folder): every round, every site
        until(lambda: second.progress.get("round") == 1, timeout=30, what="the last round's progress")
        assert second.progress["total"] == 2 and second.progress["sites"] == dict.fromkeys(
            ("site-1", "site-2"), "reported"
        )
        series = {(s["metric"], s["site"]): s["points"] for s in second.metrics["series"]}
        assert set(series) == {("loss", site) for site in ("aggregated", "site-1", "site-2")}
        assert [r for r, _ in series[("loss", "aggregated")]] == [0, 1]
        final = second._repr_mimebundle_()[0]["text/plain"]  # the saved snapshot: "round 2 of 2", the metrics
        assert " — round 2 of 2" in final.splitlines()[0] and "===== metrics =====" in final
        # a view of a finished job is complete as soon as it exists: what a saved notebook keeps
        later = live.LogView(job)
        # an ended job's view: the clients' files here, the server's log (moved into the job store) from the admin API
        assert later.source_info.startswith("2 local log files, inotify notifications"), later.source_info
        assert "admin API: whole logs of server" in later.source_info, later.source_info
        assert later._repr_mimebundle_()[1]["flarenb"]["followed_by"] == later.source_info
        print(f"source_info of the ended job's view: {later.source_info}")
        text = later._repr_mimebundle_()[0]["text/plain"]
        assert text.startswith(f"flarenb job live-widget ({job.id}) — FINISHED:COMPLETED")
        assert "sites: server: done · site-1: done · site-2: done" in text, text.splitlines()[:3]
        assert text.count("│ ") >= 3 * 20, [(site, len(later.lines(site))) for site in ("server", "site-1", "site-2")]
        # the download action writes each site's complete log beside the notebook
        paths = later.download(tmp_path / "logs")
        assert sorted(p.name for p in paths) == ["server.log", "site-1.log", "site-2.log"]
        site1 = (tmp_path / "logs" / "site-1.log").read_text()
        assert site1 == flarenb_poc.poc.job_log("site-1", job.id).read_text()
        assert "round 0 on site-1:" in site1
        assert "ServerRunner" in (tmp_path / "logs" / "server.log").read_text()
        later.close()
    finally:
        first.close()
        other.close()
        second.close()
    until(lambda: not (ours() - before), timeout=10, what=f"flarenb's threads to end: {ours() - before}")


def _job_process(site: str, job_id: str) -> int | None:
    """The pid of ``site``'s job process (NVFlare's client ``worker_process`` for this job)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().decode().split("\0")
        except OSError:
            continue
        if "nvflare.private.fed.app.client.worker_process" in argv and job_id in argv and site in argv:
            return int(entry)
    return None


def test_a_killed_site_turns_quiet_then_closed_while_the_others_go_on(flarenb_poc, tmp_path):
    job = submit_job(flarenb_poc, tmp_path, "live-kill", rounds=6)
    handle = live.follow_job(job, quiet_after=2.0, idle_timeout=6.0)
    try:
        rx = handle.receiver
        until(lambda: any("round 0 on site-2:" in t for t in texts(rx, "site-2")), what="site-2 to start")
        pid = until(lambda: _job_process("site-2", job.id), timeout=30, what="site-2's job process")
        os.kill(pid, signal.SIGKILL)
        until(lambda: rx.site("site-2").state == QUIET, timeout=20, what="site-2 to turn quiet")
        until(lambda: rx.site("site-2").state == TIMED_OUT, timeout=30, what="site-2 closed by the idle timeout")
        # the others go on: their processes live, so a whole idle timeout later their streams are still open,
        # or ended normally with the job (the server may end a job whose client died), never timed out
        time.sleep(6.0 + 2.0)
        for site in ("server", "site-1"):
            state = rx.site(site).state
            assert state in (LIVE, QUIET, ENDED), (site, state)
            if state == ENDED:
                assert live.job_status(job)().startswith("FINISHED")
        assert rx.site("site-2").state == TIMED_OUT
    finally:
        handle.release()
        try:
            flarenb_poc.call(lambda s: s.abort_job(job.id))
        except Exception:
            pass
