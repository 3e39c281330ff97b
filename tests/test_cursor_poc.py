"""The log cursor through a real NVFlare server (the session's POC, reached through its admin API like a remote
deployment): lines arrive while RUNNING, each site's log ends byte for byte equal to its file, the hand-over to the
finished-job path repeats nothing, and a job without flarenb's component falls back and says why."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from flarenb import jobconfig
from flarenb import submission as sub
from flarenb.receiver import Receiver
from flarenb.sources import AdminPoll
from flarenb.sources.cursor import CursorPoll, ask_job, server_log_readiness
from flarenb.vocab import is_terminal

pytestmark = pytest.mark.poc


class CachedStatus:
    """The job's status, asked at most once a second (as the live view's status cache does)."""

    def __init__(self, flare, job_id):
        self.flare, self.job_id, self.at, self.value = flare, job_id, 0.0, None
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            if time.monotonic() - self.at > 1.0:
                self.value = self.flare.call(lambda s: s.get_job_meta(self.job_id))["status"]
                self.at = time.monotonic()
            return self.value


def follow(flare, job_id):
    rx = Receiver(fmt="text", idle_timeout=None)
    status = CachedStatus(flare, job_id)

    def fetch(target):
        return flare.call(lambda s: s.get_job_logs(job_id, target=target))

    def then(primed, done=frozenset()):
        poll = AdminPoll(rx, fetch, status=status, name=job_id)
        poll.prime(primed or {})
        return poll

    # as the live view decides: a job whose meta carries flarenb's mark is expected to answer, once its server's log
    # says the command is registered (a few seconds after NVFlare lists it RUNNING); any other job is asked at once
    expected = jobconfig.answers_cursor(flare.call(lambda s: s.get_job_meta(job_id)))
    cursor = CursorPoll(
        rx,
        ask_job(flare, job_id),
        status=status,
        then=then,
        name=job_id,
        expected=expected,
        ready=server_log_readiness(flare, job_id),
    )
    return rx, status, cursor.start()


def texts(rx, site):
    return [ln.text for ln in rx.lines(site)] if site in rx.sites() else []


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.2)


def state(t, rx) -> str:
    """What the cursor source did (for a failure message)."""
    return (
        f"polls={t.polls} errors={t.errors} last_error={t.last_error!r} fallback={t.fallback_reason!r} "
        f"next={type(t.next).__name__ if t.next else None} sites={rx.sites()} problem={rx.problem!r} "
        f"cursors={ {s: c.request() for s, c in t.cursors.items()} }"
    )


def site_file(flare, job_id: str, site: str) -> Path:
    poc = flare.poc
    folder = poc.server_name if site == "server" else site
    return Path(poc.prod_dir) / folder / job_id / "log.txt"


def test_lines_arrive_live_and_end_equal_to_each_file(flarenb_poc, tmp_path):
    from conftest import export_job

    job = sub.submit(
        str(export_job(tmp_path, name="cursor-live", rounds=3, train_args="--sleep 3")), new=True, flare=flarenb_poc
    )
    rx, status, t = follow(flarenb_poc, job.id)  # at once: before NVFlare lists the job RUNNING
    try:
        wait_for(
            lambda: any("round 0 on site-1" in x for x in texts(rx, "site-1")),
            180,
            lambda: "no client line by cursor: " + state(t, rx),
        )
        assert flarenb_poc.call(lambda s: s.get_job_meta(job.id))["status"] == "RUNNING"
        assert t.next is None and t.fallback_reason is None and t.polls > 0  # the cursor, not whole-log polling
        # the view's debug info while it runs (the "every client's log ended" state only near the job's end)
        assert t.describe() == "log cursor (the job's flarenb.logs app command), every 0.1 to 4 s", t.describe()
        wait_for(lambda: t.finished, 300, "the cursor never handed over and finished")
        assert t.describe().startswith(
            "log cursor (the job's flarenb.logs app command) until the job ended, then admin API: whole logs"
        ), t.describe()
    finally:
        t.stop()
    assert is_terminal(status())
    # what the server holds of each site's log (the server's own, and each client's streamed copy: what the CLI and
    # the job's download show) is what the cursor and its hand-over delivered, line for line
    for site in ("server", "site-1", "site-2"):
        text = flarenb_poc.call(lambda s, site=site: s.get_job_logs(job.id, target=site))["logs"][site]
        got = [ln.text for ln in rx.lines(site)]
        assert got == text.splitlines(), f"{site}: {len(got)} lines by cursor vs {len(text.splitlines())} on the server"
        if site == "server":  # never asked before its server registered the command (NVFlare would log an ERROR)
            assert not [line for line in got if "no app command func" in line or " ERROR " in line]
    assert len(site_file(flarenb_poc, job.id, "site-1").read_text().splitlines()) >= len(rx.lines("site-1"))


def test_a_job_without_the_component_falls_back_and_says_why(flarenb_poc, tmp_path):
    from conftest import export_job

    job = sub.submit(
        str(export_job(tmp_path, name="cursor-fallback", rounds=1, train_args="--sleep 2")),
        new=True,
        stream_logs=False,
        flare=flarenb_poc,
    )
    wait_for(lambda: flarenb_poc.call(lambda s: s.get_job_meta(job.id))["status"] == "RUNNING", 120, "never ran")
    rx, _, t = follow(flarenb_poc, job.id)
    try:
        wait_for(lambda: t.fallback_reason is not None or t.finished, 60, "no fallback")
        assert "no flarenb log component" in (t.fallback_reason or "")
        assert t.describe().startswith("admin API: whole logs of every site, polling every"), t.describe()
        assert t.describe().endswith(f"(no log cursor: {t.fallback_reason})"), t.describe()
        wait_for(lambda: t.finished, 300, "the fallback never finished")
    finally:
        t.stop()
    notes = [ln.text for ln in rx.lines("server") if ln.text.startswith("[flarenb] following by whole-log polling")]
    assert len(notes) == 1 and "app_command" in notes[0]
    assert any("round 0" in ln.text or "Round 0" in ln.text for ln in rx.lines("server"))
