"""The log cursor on a real provisioned deployment when its server is killed and restarted mid-job.

NVFlare 2.9 keeps such a job RUNNING in its job store for good while its server process is gone (app commands:
"not running"). The cursor then hands over to whole-log polling of what the server still holds: each lane ends
equal to the server's copy of its log, line for line (nothing repeated, nothing lost of what the server had), with
one note in the server's lane and the gap marked in each client's lane. A deployment of its own: the job it
leaves RUNNING must not meet other tests.
"""

from __future__ import annotations

import time

import pytest
from conftest import export_job

from flarenb import dllogs, live, submission
from flarenb.provisioned import Deployment
from flarenb.sources.cursor import GAP_NOTE, LOST_NOTE, CursorPoll

pytestmark = pytest.mark.deployment

ADMIN = "admin@example.org"


def until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def test_a_server_restart_mid_job_gives_a_marked_gap_and_no_repeated_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    d = Deployment(clients=("hospital-a", "hospital-b")).start()
    handle = None
    try:
        admin = d.flare(ADMIN)
        job_dir = export_job(tmp_path / "src", name="restart", rounds=30, train_args="--sleep 2")
        job = submission.submit(str(job_dir), flare=admin, scope=f"restart-{time.time()}")
        handle = live.follow_job(job, cursor=True)
        rx = handle.receiver
        source = getattr(handle.transport, "inner", handle.transport)
        assert isinstance(source, CursorPoll), type(source).__name__

        def lines(site):
            return [ln.text for ln in rx.lines(site)] if site in rx.sites() else []

        def state():
            return (
                f"lost={source.lost} next={type(source.next).__name__} polls={source.polls} "
                f"errors={source.errors} last_error={source.last_error!r} "
                f"sites={ {s: len(lines(s)) for s in rx.sites()} }"
            )

        until(lambda: all(any("on " + c in x for x in lines(c)) for c in d.clients), 180, "client lines by cursor")
        assert source.next is None and source.polls > 0
        d.restart()  # SIGKILL the server mid-job, start it again
        until(lambda: source.lost and LOST_NOTE in lines("server"), 120, lambda: "the hand-over: " + state())

        def stored(site):
            return admin.call(lambda s: s.get_job_logs(job.id, target=site))["logs"].get(site, "").splitlines()

        for site in ("server", *d.clients):
            notes = (LOST_NOTE,) if site == "server" else (GAP_NOTE,)

            def same(site=site, notes=notes):
                return [x for x in lines(site) if x not in notes] == stored(site)

            until(same, 60, lambda site=site: f"{site}: {len(lines(site))} lines vs {len(stored(site))} stored")
            assert sum(x in notes for x in lines(site)) == 1, f"{site}: one note"  # equal to the file: none twice
        for client in d.clients:
            assert lines(client)[-1] == GAP_NOTE, "the gap is marked after what the server held of the site"
    finally:
        if handle is not None:
            handle.release()
        dllogs.forget_all()
        d.stop()
        d.remove()
