"""LocalTail woken by file-system notifications (flarenb.sources.fswatch, watchdog's inotify observer here): the
mechanism is chosen automatically and reported, polling takes over where notifications are unavailable, folders that
appear later are followed, an idle tail wakes only for its safety poll, and every observer thread is joined on stop.
Real files and real inotify; the failures of the platform are injected where they cannot be caused safely."""

import errno
import os
import sys
import threading
import time

import pytest

from flarenb import logsource
from flarenb.receiver import Receiver
from flarenb.sources import Composite, JobLogs, LocalTail, finish_local_tails, fswatch, open_source
from flarenb.vocab import is_terminal


def texts(rx, site):
    return [ln.text for ln in rx.lines(site)]


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.002)
    return cond()


def new_threads(before):
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


def test_notifications_are_chosen_and_reported_and_every_thread_is_joined(tmp_path):
    before = set(threading.enumerate())
    path = tmp_path / "log.txt"
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"s": str(path)}, name="ev1", safety_period=60)
    assert tail.mechanism is None and "not started" in tail.describe()
    tail.start()
    assert tail.mechanism == "inotify" and tail.mechanism_reason is None
    assert tail.describe() == "1 local log file, inotify notifications (safety poll every 60 s)"
    assert "flarenb-fswatch-ev1" in new_threads(before) and len(new_threads(before)) >= 4  # + reader, emitters
    path.write_bytes(b"one\n")
    assert wait_for(lambda: texts(rx, "s") == ["one"])
    t0 = time.monotonic()
    tail.stop()
    assert time.monotonic() - t0 < 2
    assert new_threads(before) == []


def test_a_tail_that_ends_by_itself_leaves_no_observer_thread(tmp_path):
    before = set(threading.enumerate())
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"s": str(tmp_path / "log.txt")}, name="ev2", period=0.01).start()
    (tmp_path / "log.txt").write_bytes(b"last\n")
    tail.finish()
    assert wait_for(lambda: tail.finished and new_threads(before) == [])
    assert texts(rx, "s") == ["last"]
    tail.stop()


@pytest.mark.parametrize(
    "how, reason",
    [
        ("env", "FLARENB_TAIL=polling"),
        ("arg", "polling requested (mechanism='polling')"),
        ("no watchdog", "watchdog is not installed"),
        ("no inotify watch left", "file-system notifications unavailable: [Errno 28] inotify watch limit reached"),
    ],
)
def test_polling_takes_over_where_notifications_are_unavailable(tmp_path, monkeypatch, how, reason):
    if how == "env":
        monkeypatch.setenv(fswatch.ENV, "polling")
    elif how == "no watchdog":
        monkeypatch.setitem(sys.modules, "watchdog.observers", None)  # import fails as if not installed
    elif how == "no inotify watch left":
        real = fswatch._observer_class()

        class Exhausted(real):
            def schedule(self, *a, **kw):
                raise OSError(errno.ENOSPC, "inotify watch limit reached")

        monkeypatch.setattr(fswatch, "_observer_class", lambda: Exhausted)
    before = set(threading.enumerate())
    rx = Receiver(fmt="text", idle_timeout=None)
    kw = {"mechanism": "polling"} if how == "arg" else {}
    tail = LocalTail(rx, {"s": str(tmp_path / "log.txt")}, name="p1", period=0.01, **kw).start()
    assert tail.mechanism == "polling" and tail.mechanism_reason.startswith(reason)
    assert tail.describe() == f"1 local log file, polling every 0.01 s ({tail.mechanism_reason})"
    assert new_threads(before) == ["flarenb-tail-p1"]  # no observer thread left behind
    (tmp_path / "log.txt").write_bytes(b"polled\n")
    assert wait_for(lambda: texts(rx, "s") == ["polled"])
    tail.stop()
    assert new_threads(before) == []


def test_running_out_of_watches_later_falls_back_to_polling(tmp_path, monkeypatch):
    """The job's folder appears once the tail runs; watching it is refused (no inotify watch left): the tail says
    so and polls, and still reads the file."""
    real = fswatch._observer_class()
    calls = []

    class RunsOut(real):
        def schedule(self, *a, **kw):
            if not str(a[1]).startswith(str(tmp_path)):  # another test's tail, still closing: not this one's
                return super().schedule(*a, **kw)
            calls.append(a[1])
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
            return super().schedule(*a, **kw)

    monkeypatch.setattr(fswatch, "_observer_class", lambda: RunsOut)
    before = set(threading.enumerate())
    path = tmp_path / "job" / "log.txt"
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"s": str(path)}, name="p2", period=0.01, safety_period=60).start()
    assert tail.mechanism == "inotify" and calls == [str(tmp_path)]
    path.parent.mkdir()
    path.write_bytes(b"still read\n")
    assert wait_for(lambda: texts(rx, "s") == ["still read"])
    assert wait_for(lambda: tail.mechanism == "polling"), tail.describe()
    assert "inotify watch limit reached" in str(tail.mechanism_reason)
    assert wait_for(lambda: new_threads(before) == ["flarenb-tail-p2"]), new_threads(before)
    tail.stop()


def test_folders_that_appear_move_away_and_come_back_are_followed_by_notifications(tmp_path):
    """The POC's shape: ``<site>/<job>/log.txt``, the job's folder created once the job is deployed, and (server)
    moved into the job store at the end. No safety poll within the test: only notifications bring the lines."""
    site = tmp_path / "site-1"
    site.mkdir()
    run = site / "job1"
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"s": str(run / "log.txt")}, name="ev3", safety_period=60, busy_events=1e9).start()
    assert tail._watcher.folders == [str(site)]
    time.sleep(0.05)
    run.mkdir()
    (run / "log.txt").write_bytes(b"first\n")
    assert wait_for(lambda: texts(rx, "s") == ["first"], 2)
    assert tail._watcher.folders == [str(site), str(run)]
    with open(run / "log.txt", "ab") as f:
        f.write(b"second\n")
    assert wait_for(lambda: texts(rx, "s") == ["first", "second"], 2)
    os.rename(run, tmp_path / "store")  # the run folder moves away (the old file is still open)...
    run.mkdir()  # ... and a new one comes at the same place
    (run / "log.txt").write_bytes(b"third\n")
    assert wait_for(lambda: texts(rx, "s") == ["first", "second", "third"], 2)
    tail.stop()


def test_an_idle_tail_wakes_only_for_its_safety_poll_and_not_for_other_files(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"x\n")
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"s": str(path)}, name="ev4", safety_period=0.5).start()
    polling = LocalTail(Receiver(fmt="text", idle_timeout=None), {"s": str(path)}, name="p4", mechanism="polling")
    polling.start()
    assert wait_for(lambda: texts(rx, "s") == ["x"])
    p0, q0 = tail.polls, polling.polls
    for i in range(15):  # another file in the same folder (NVFlare's log.json beside log.txt) changes
        (tmp_path / "log.json").write_text(f"{i}\n")
        time.sleep(0.1)
    woke, polled = tail.polls - p0, polling.polls - q0
    tail.stop()
    polling.stop()
    assert 2 <= woke <= 4, woke  # 1.5 s: the safety poll every 0.5 s, nothing else
    assert polled >= 6, polled  # the polling tail: every 0.2 s once idle
    assert tail.busy is False


def test_notifications_pouring_in_switch_to_polling_until_quiet(tmp_path):
    """Above ``busy_events`` notifications per second: polling, until a second without new bytes."""
    path = tmp_path / "log.txt"
    rx = Receiver(fmt="text", idle_timeout=None, max_lines=100_000)
    tail = LocalTail(rx, {"s": str(path)}, name="ev5", period=0.02, busy_events=50, busy_hold=60).start()
    with open(path, "ab") as f:
        for i in range(300):  # 200 writes per second for 1.5 s
            f.write(f"{i}\n".encode())
            f.flush()
            time.sleep(0.005)
    assert tail.busy and tail._watcher is None and tail.mechanism == "inotify"
    assert "polling every 0.02 s while the logs pour in" in tail.describe()
    assert wait_for(lambda: len(texts(rx, "s")) == 300)
    assert wait_for(lambda: not tail.busy and tail._watcher is not None, 3)  # quiet for a second: listening again
    with open(path, "ab") as f:
        f.write(b"after\n")
    assert wait_for(lambda: texts(rx, "s")[-1:] == ["after"], 1)
    assert texts(rx, "s") == [str(i) for i in range(300)] + ["after"]
    tail.stop()


class FakeLiveness:
    def __init__(self):
        self.server = None
        self.clients = {"site-1": True}
        self.sites = ["server", "site-1"]

    def __call__(self, site):
        return self.server if site == "server" else self.clients[site]


class FakeStatus:
    """``value``: what the server would say; ``ended``: what the last call said (as the shared status)."""

    def __init__(self):
        self.value, self.calls, self.not_found, self.seen = "RUNNING", 0, False, "RUNNING"

    def __call__(self):
        self.calls += 1
        self.seen = self.value
        return self.value

    @property
    def ended(self):
        return is_terminal(self.seen)


def test_local_end_asks_the_server_only_on_a_local_signal(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(logsource.time, "monotonic", lambda: clock[0])
    run = tmp_path / "server" / "job1"
    run.mkdir(parents=True)
    alive, status = FakeLiveness(), FakeStatus()
    end = logsource._local_end(alive, status, every=10.0, run_dir=str(run), every_alive=300.0)
    assert not end() and status.calls == 0
    clock[0] += 11  # the server's job process not seen yet: ask now and then
    assert not end() and status.calls == 1
    alive.server = True  # it runs: no admin call for minutes
    for _ in range(29):
        clock[0] += 10
        assert not end()
    assert status.calls == 1
    clock[0] += 11  # ... but a safety net every 300 s
    assert not end() and status.calls == 2
    run.rename(tmp_path / "store")  # the run folder moved into the job store: ask at once
    clock[0] += 1
    status.value = "FINISHED:COMPLETED"
    assert end() and status.calls == 3


def test_local_end_asks_once_the_server_process_is_gone(tmp_path):
    alive, status = FakeLiveness(), FakeStatus()
    end = logsource._local_end(alive, status, run_dir=str(tmp_path / "nope"))
    alive.server = True
    assert not end() and status.calls == 0
    alive.server = False
    assert not end() and status.calls == 1
    status.value = "FINISHED:ABORTED"
    assert end() and status.calls == 2


def test_local_end_asks_when_a_clients_process_is_gone(tmp_path):
    """A client's job process ending (the job may be ending, or the site died) is a local signal too."""
    alive, status = FakeLiveness(), FakeStatus()
    end = logsource._local_end(alive, status, run_dir=str(tmp_path / "nope"))
    alive.server = True
    assert not end() and status.calls == 0
    alive.clients["site-1"] = False
    assert not end() and status.calls == 1


def test_liveness_stops_scanning_processes_once_every_site_is_found(monkeypatch):
    found = {"server": 11, "site-1": 12}
    monkeypatch.setattr(logsource.procs, "job_processes", lambda job_id: dict(found))
    monkeypatch.setattr(logsource.procs, "alive", lambda pid: pid in found.values())
    monkeypatch.setattr(logsource._LocalLiveness, "TTL", 0.0)
    monkeypatch.setattr(logsource._LocalLiveness, "SCAN", 0.0)
    some = logsource._LocalLiveness("job1", sites=["server", "site-1", "site-2"])
    every = logsource._LocalLiveness("job1", sites=["server", "site-1"])
    for _ in range(5):
        assert some("site-2") is None and every("site-1") is True
    assert some.scans == 5 and every.scans == 1  # a site never seen: scan again; all found: pid checks only
    del found["site-1"]
    assert every("site-1") is False and every("server") is True and every.scans == 1


def test_a_burst_of_notifications_does_not_keep_a_slowly_logging_tail_polling(tmp_path):
    """A job starting logs a burst, then a line now and then (never a quiet second): after ``busy_hold`` s of
    polling it listens again."""
    path = tmp_path / "log.txt"
    rx = Receiver(fmt="text", idle_timeout=None, max_lines=100_000)
    tail = LocalTail(rx, {"s": str(path)}, name="ev6", period=0.02, busy_events=50, busy_hold=0.3).start()
    with open(path, "ab") as f:
        for i in range(300):
            f.write(f"{i}\n".encode())
            f.flush()
            time.sleep(0.005)
        switches = tail.busy_switches
        assert switches >= 1
        for i in range(15):  # 5 lines a second
            f.write(f"slow {i}\n".encode())
            f.flush()
            time.sleep(0.2)
    assert not tail.busy and tail._watcher is not None and tail.busy_switches <= switches + 1
    assert wait_for(lambda: len(texts(rx, "s")) == 315)
    tail.stop()


def test_local_end_is_finished_once_the_shared_status_says_the_job_ended_without_asking(tmp_path):
    """A view (or anyone) saw the job end before any local signal: the server's process still runs (no call for
    300 s), yet the tail is finished at its next look, with no admin call."""
    run = tmp_path / "server" / "job1"
    run.mkdir(parents=True)
    alive, status = FakeLiveness(), FakeStatus()
    alive.server = True
    end = logsource._local_end(alive, status, run_dir=str(run))
    assert not end() and status.calls == 0
    status.value = "FINISHED:COMPLETED"
    status()  # the view's request
    assert end() and status.calls == 1


def _job_files(tmp_path, sites=("site-1", "site-2"), n=500):
    paths = {}
    for site in sites:
        (tmp_path / site / "job1").mkdir(parents=True)
        p = tmp_path / site / "job1" / "log.txt"
        p.write_text("".join(f"2026-05-01 12:00:00,000 - X - INFO - {site} line {i}\n" for i in range(n)))
        paths[site] = str(p)
    return paths


def test_an_ended_jobs_local_tail_reads_every_file_and_finishes_at_once_on_the_event_path(tmp_path):
    paths = _job_files(tmp_path)
    rx = Receiver(fmt="text")
    tail = LocalTail(rx, paths, is_finished=lambda: True, mechanism="events", safety_period=60).start()
    try:
        assert tail.mechanism == "inotify"
        assert wait_for(lambda: tail.finished and rx.all_done, 1.0), tail.describe()
        for site in paths:
            assert len(texts(rx, site)) == 500 and rx.site(site).state == "ended"
    finally:
        tail.stop()


def test_an_ended_poc_jobs_composite_finishes_its_local_part_at_once_on_the_event_path(tmp_path, monkeypatch):
    """The registry's entry for an ended POC job: the clients' files here (event path), the server's log from the
    admin API."""
    monkeypatch.setenv(fswatch.ENV, "events")
    paths = {"server": str(tmp_path / "server" / "job1" / "log.txt"), **_job_files(tmp_path)}  # server's moved
    fetch = lambda target, log_file_name=None: {"logs": {"server": "2026-05-01 12:00:00,000 - S - INFO - done\n"}}  # noqa: E731
    spec = JobLogs("job1", status=lambda: "FINISHED:COMPLETED", paths=paths, ended=True, fetch=fetch)
    rx = Receiver(fmt="text")
    source = open_source(rx, spec)
    assert isinstance(source, Composite)
    local = source.transports[0]
    source.start()
    try:
        assert local.mechanism == "inotify"
        assert wait_for(lambda: local.finished, 1.0), local.describe()
        assert all(rx.site(s).state == "ended" and len(texts(rx, s)) == 500 for s in ("site-1", "site-2"))
        assert wait_for(lambda: rx.all_done, 10.0)  # the server's part keeps its grace for the last lines
        assert texts(rx, "server")[-1].endswith("done")
    finally:
        source.stop()


def test_a_tail_that_followed_the_running_job_finishes_at_once_when_a_view_sees_it_ended(tmp_path):
    """nb03: the submit cell's view follows the job (event path, local end signals); the job ends; a later view of
    the ended job shares that follower and must show it done at once, not wait for the tail's own end signal
    (here: none for minutes, the server's process still runs)."""
    paths = _job_files(tmp_path, n=50)
    run = tmp_path / "server"
    alive, status = FakeLiveness(), FakeStatus()
    alive.server, alive.sites = True, ["server", *paths]
    alive.clients = dict.fromkeys(paths, True)
    rx = Receiver(fmt="text")
    end = logsource._local_end(alive, status, run_dir=str(run))
    tail = LocalTail(rx, paths, is_finished=end, mechanism="events", safety_period=60, finish_check_period=0.0)
    tail.start()
    try:
        assert wait_for(lambda: all(len(texts(rx, s)) == 50 for s in paths), 2.0)
        time.sleep(0.2)
        assert not tail.finished
        with open(paths["site-1"], "a") as f:
            f.write("2026-05-01 12:00:01,000 - X - INFO - the last line\n")
        status.value = "FINISHED:COMPLETED"
        status()  # the view's request: the job ended
        t0 = time.monotonic()
        finish_local_tails(Composite([tail]))  # what the view does before waiting for the streams
        assert wait_for(lambda: rx.all_done, 1.0), tail.describe()
        assert time.monotonic() - t0 < 1.0
        assert texts(rx, "site-1")[-1].endswith("the last line")
        assert status.calls == 1  # the tail asked nothing
    finally:
        tail.stop()
