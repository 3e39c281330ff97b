"""The kernel side of the log cursor (flarenb.cursorpoll.CursorPoll) against flarenb's real job component, in-process.

The job component (``flarenb/jobcode/flarenb_log_receiver.py``) answers the ``flarenb.logs`` app command from real
files; ``ask`` calls it directly instead of through NVFlare's admin channel (``test_cursor_poc.py`` goes through a
real server). Every test checks the one promise: the receiver ends with each file's lines exactly once.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cursor_component import JOB, Ctx, Engine, mod, start_run

from flarenb import jobconfig
from flarenb.receiver import Receiver
from flarenb.sources import AdminPoll
from flarenb.sources.cursor import CursorPoll, SiteCursor, why_unavailable

TRUNC = "[flarenb] … log file truncated or replaced; reading it again from the start …"


class Job:
    """A running job's files on the 'server', its component, and a whole-log fetch (the finished-job path)."""

    def __init__(self, root):
        self.engine = Engine(str(root))
        self.run_dir = root / JOB
        os.makedirs(self.run_dir)
        self.component = mod.FlarenbLogReceiver(dest_dir=str(root))
        start_run(self.component, Ctx(self.engine))
        self.status = "RUNNING"
        self.calls = 0
        self.fail: BaseException | None = None
        self.path = {"server": self.run_dir / "log.txt"}
        self.path["server"].write_bytes(b"")

    def write(self, site, data: bytes):
        if site == "server":
            with open(self.path["server"], "ab") as f:
                f.write(data)
        else:  # a client's chunk arrives through the receiver's stream callback, as NVFlare delivers it
            from nvflare.app_common.streamers.log_streamer import KEY_FILE_NAME
            from test_cursor_component import Peer

            self.__dict__.setdefault("streams", {}).setdefault(site, {KEY_FILE_NAME: "log.txt"})
            self.component._on_chunk_received(data, self.streams[site], Ctx(None, Peer(site)))
            self.path[site] = self.run_dir / site / "log.txt"

    def ask(self, request):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        if self.status != "RUNNING":
            raise RuntimeError(f"Job_id: {JOB} is not running.")
        return self.component._answer_cursor(mod.CURSOR_TOPIC, request, Ctx(self.engine))

    def fetch(self, target):
        return {"logs": {s: p.read_bytes().decode("utf-8", "replace") for s, p in self.path.items()}}

    def transport(self, rx, **kw):
        def then(primed, done=frozenset()):
            poll = AdminPoll(rx, self.fetch, status=lambda: self.status, final_grace=0)
            poll.prime(primed or {})
            return poll

        return CursorPoll(rx, self.ask, status=lambda: self.status, then=then, **kw)


def lines(path):
    return path.read_bytes().decode("utf-8", "replace").splitlines()


def texts(rx, site):
    return [ln.text for ln in rx.lines(site)] if site in rx.sites() else []


@pytest.fixture
def job(tmp_path):
    return Job(tmp_path / "ws")


def test_lines_arrive_once_while_running_and_the_end_comes_by_hand_over(job):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    job.write("server", b"s1\ns2\n")
    job.write("site-1", b"a1\na2\npart")
    assert t.poll_once() > 0
    assert texts(rx, "server") == ["s1", "s2"] and texts(rx, "site-1") == ["a1", "a2"]
    job.write("site-1", b"ial\na3\n")
    t.poll_once()
    t.poll_once()  # nothing new: nothing repeated
    assert texts(rx, "site-1") == ["a1", "a2", "partial", "a3"]
    job.write("site-1", b"a4 written after the last reply\n")  # then the job ends: app commands stop
    job.write("server", b"s3\n")
    job.status = "FINISHED:COMPLETED"
    for _ in range(5):
        if t.finished:
            break
        t.poll_once()
    assert t.finished and t.fallback_reason is None
    for site in ("server", "site-1"):
        assert texts(rx, site) == lines(job.path[site])
    assert rx.all_done


def test_truncation_restarts_with_a_marker_and_a_replaced_file_too(job):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    job.write("server", b"old 1\nold 2\n")
    t.poll_once()
    job.path["server"].write_bytes(b"new\n")  # truncated in place
    t.poll_once()
    assert texts(rx, "server") == ["old 1", "old 2", TRUNC, "new"]
    os.replace(job.path["server"], job.run_dir / "rotated.txt")
    job.path["server"].write_bytes(b"again, a longer first line\n")
    t.poll_once()
    assert texts(rx, "server")[-2:] == [TRUNC, "again, a longer first line"]


def test_a_dropped_connection_loses_and_repeats_nothing(job):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    job.write("server", b"1\n")
    t.poll_once()
    job.fail = ConnectionError("server unreachable")
    job.write("server", b"2\n")
    with pytest.raises(ConnectionError):
        t.poll_once()
    assert t.interval > t.min_interval  # it backs off while the server is away
    job.fail = None
    job.write("server", b"3\n")
    t.poll_once()
    assert texts(rx, "server") == ["1", "2", "3"]


@pytest.mark.parametrize(
    "error, reason",
    [
        (RuntimeError("command execution error: rc='EXECUTION_EXCEPTION' no app command func for topic"), "no flarenb"),
        (type("AuthorizationError", (Exception,), {})("user 'lead@x' is not authorized for 'app_command'"), "right"),
    ],
)
def test_without_the_channel_it_falls_back_and_says_so_once(job, error, reason):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    job.write("server", b"s1\n")
    job.fail = error
    t.poll_once()
    assert t.fallback_reason is not None and reason in t.fallback_reason
    job.write("server", b"s2\n")
    for _ in range(3):
        t.poll_once()
    got = texts(rx, "server")
    notes = [x for x in got if x.startswith("[flarenb] following by whole-log polling")]
    assert len(notes) == 1 and "app_command" in notes[0]
    assert [x for x in got if x not in notes] == ["s1", "s2"]
    assert job.calls == 1  # the cursor was asked once, then never again


def test_why_unavailable_leaves_passing_problems_alone():
    assert why_unavailable(ConnectionError("reset by peer")) is None
    assert why_unavailable(TimeoutError()) is None


def test_bytes_transferred_stay_near_the_new_bytes(job):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    new = 0
    job.write("server", b"started\n")
    for i in range(20):
        for k in range(10):  # what a site writes between two polls
            data = f"2026-12-04 10:00:{i % 60:02d},000 - x - INFO - round {i}: step {k} loss 0.123\n".encode()
            job.write("site-1", data)
            new += len(data)
        t.poll_once()
    assert t.bytes_read <= 1.3 * new  # the JSON envelope is small, and idle files are left out
    before = t.bytes_read
    for _ in range(10):
        t.poll_once()  # idle: a few bytes per reply, whatever the size of the logs
    assert t.bytes_read - before <= 10 * 80


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=12), cap=st.integers(8, 64))
def test_any_bytes_any_cap_arrive_exactly(tmp_path_factory, chunks, cap):
    job = Job(tmp_path_factory.mktemp("ws"))
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx, max_bytes=cap)
    for c in chunks:
        job.write("site-1", c)
        t.poll_once()
    fed = b""
    cursor = SiteCursor()
    reply = job.ask({"cursors": {}, "max_bytes": cap})
    while "site-1" in reply["sites"]:
        raw, _ = cursor.take(reply["sites"]["site-1"])
        fed += raw
        if not raw:
            break
        reply = job.ask({"cursors": {"site-1": cursor.request()}, "max_bytes": cap})
    assert fed == b"".join(chunks)


def test_through_the_registry_an_ended_site_is_not_fetched_again(job):
    from test_cursor_component import Peer

    from flarenb.sources import JobLogs, pick

    asked = []

    def fetch(target, log_file_name=None):
        asked.append(target)
        return job.fetch(target)

    rx = Receiver(fmt="text", idle_timeout=None)
    spec = JobLogs(JOB, status=lambda: job.status, fetch=fetch, ask=job.ask)
    assert pick(spec).name == "cursor"
    src = pick(spec).open(rx, spec)
    job.write("server", b"s1\n")
    job.write("site-1", b"a1\n")
    src.poll_once()
    job.component._on_stream_done(job.streams["site-1"], Ctx(None, Peer("site-1")))  # site-1's stream ended
    src.poll_once()
    job.write("server", b"s2 after the last reply\n")
    job.status = "FINISHED:COMPLETED"
    for _ in range(5):
        if src.finished:
            break
        src.poll_once()
    assert src.finished and asked == ["server"]
    assert texts(rx, "server") == ["s1", "s2 after the last reply"] and texts(rx, "site-1") == ["a1"]
    assert pick(JobLogs(JOB, status=lambda: "RUNNING", fetch=fetch)).name == "admin"  # no cursor: whole logs


def test_before_the_job_runs_it_waits_instead_of_handing_over(job):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    job.status = "SUBMITTED"  # the server answers "not running" until the job is deployed
    assert t.poll_once() == 0 and t.next is None and not t.finished
    job.status = "RUNNING"
    job.write("server", b"started\n")
    t.poll_once()
    assert texts(rx, "server") == ["started"] and t.next is None


def test_a_user_refused_whole_logs_too_gets_no_fallback_note(job):
    rx = Receiver(fmt="text", idle_timeout=None)

    def refused(target, log_file_name=None):
        raise type("AuthorizationError", (Exception,), {})("user 'lead' is not authorized for 'get_job_log'")

    t = CursorPoll(rx, job.ask, status=lambda: job.status, then=lambda primed, done: AdminPoll(rx, refused))
    job.fail = type("AuthorizationError", (Exception,), {})("user 'lead' is not authorized for 'app_command'")
    with pytest.raises(Exception, match="get_job_log"):
        t.poll_once()  # (the live view's rights-aware wrapper turns this into its download path)
    assert t.fallback_reason is not None and texts(rx, "server") == []


def test_once_every_client_stream_ended_the_ending_job_is_not_asked_again(job):
    from nvflare.app_common.streamers.log_streamer import KEY_FILE_NAME  # noqa: F401 - (streams opened by write)
    from test_cursor_component import Peer

    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    job.write("server", b"s1\n")
    job.write("site-1", b"a1\n")
    t.poll_once()
    job.component._on_stream_done(job.streams["site-1"], Ctx(None, Peer("site-1")))
    t.poll_once()  # learns that site-1's stream ended
    calls = job.calls
    job.write("server", b"s2: the job is finishing\n")
    for _ in range(3):
        t.poll_once()
    assert job.calls == calls, "the finishing job was asked again"
    job.status = "FINISHED:COMPLETED"
    while not t.finished:
        t.poll_once()
    assert texts(rx, "server") == ["s1", "s2: the job is finishing"] and texts(rx, "site-1") == ["a1"]


def test_metrics_come_by_a_second_cursor_to_every_subscriber_from_the_start(job):
    from flarenb.sources.cursor import read_metrics

    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx)
    metrics = job.run_dir / "metrics" / "round_metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_bytes(b'{"round": 0}\n')
    job.write("server", b"s1\n")
    t.poll_once()
    asked = []
    job_ask = t.ask
    t.ask = lambda request: asked.append(request) or job_ask(request)
    t.poll_once()
    assert not any(r.get("metrics") for r in asked), "nobody reads the metrics: they are not asked for"
    first: list[bytes] = []
    unsubscribe = t.subscribe_metrics(first.append)
    t.poll_once()
    assert asked[-1].get("metrics") is True and b"".join(first) == b'{"round": 0}\n'
    with open(metrics, "ab") as f:
        f.write(b'{"round": 1}\n')
    t.poll_once()
    later: list[bytes] = []
    t.subscribe_metrics(later.append)  # a second view: what came before is replayed, then it follows too
    assert b"".join(first) == b"".join(later) == b'{"round": 0}\n{"round": 1}\n'
    unsubscribe()
    with open(metrics, "ab") as f:
        f.write(b'{"round": 2}\n')
    t.poll_once()
    assert b"".join(first).count(b"round") == 2 and b"".join(later).count(b"round") == 3
    assert texts(rx, "server") == ["s1"], "the metrics never reach a log lane"
    # a one-off reader (job.metrics() of a running remote job) gets the whole file and no log bytes
    replies = []
    whole = read_metrics(lambda request: replies.append(job_ask(request)) or replies[-1])
    assert whole == metrics.read_bytes() and all(set(r["sites"]) <= {"@metrics"} for r in replies)


def test_the_interval_stays_short_while_lines_flow_and_backs_off_when_idle(job):
    now = [0.0]
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx, min_interval=0.1, max_interval=1.0, hold=1.0, clock=lambda: now[0])
    job.write("server", b"s1\n")
    t.poll_once()
    for step in (0.3, 0.6, 0.9):  # replies with nothing new, within the hold after the last line
        now[0] = step
        t.poll_once()
        assert t.interval == 0.1
    seen = []
    for step in (1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0, 3.3):  # idle: backing off, up to max_interval
        now[0] = step
        t.poll_once()
        seen.append(t.interval)
    assert seen == sorted(seen) and seen[0] > 0.1 and seen[-1] == 1.0
    job.write("server", b"s2\n")
    t.poll_once()
    assert t.interval == 0.1 and texts(rx, "server") == ["s1", "s2"]


def test_a_lost_server_process_hands_over_once_with_the_gap_marked_and_nothing_repeated(job):
    """A server restart mid-job: app commands say "not running" while NVFlare keeps the job RUNNING for good."""
    from flarenb.sources.cursor import GAP_NOTE, LOST_NOTE

    now = [0.0]
    rx = Receiver(fmt="text", idle_timeout=None)
    t = job.transport(rx, lost_after=15.0, clock=lambda: now[0])
    job.write("server", b"s1\n")
    job.write("site-1", b"a1\n")
    t.poll_once()
    job.write("server", b"s2 written before the server died\n")
    job.write("site-1", b"a2 streamed to the server before it died\n")
    job.fail = RuntimeError(f"Job_id: {JOB} is not running.")  # the job's server process is gone
    for step in (1.0, 5.0, 14.0):
        now[0] = step
        t.poll_once()
        assert t.next is None, "a passing 'not running' (a job process restarting) is waited for"
    now[0] = 16.0
    t.poll_once()
    assert t.lost and t.next is not None and not t.finished  # still RUNNING: whole-log polling goes on
    t.poll_once()
    assert texts(rx, "server") == ["s1", "s2 written before the server died", LOST_NOTE]
    assert texts(rx, "site-1") == ["a1", "a2 streamed to the server before it died", GAP_NOTE]
    job.write("server", b"s3\n")
    t.poll_once()
    assert texts(rx, "server")[-1] == "s3" and texts(rx, "server").count(LOST_NOTE) == 1


def test_an_idle_running_job_keeps_its_sites_quiet_not_timed_out(job):
    """Unchanged files are left out of a reply; each reply still tells that the job runs, so no site of an idle job
    is closed by the receiver's idle timeout (and the follower goes on asking)."""
    now = [0.0]
    rx = Receiver(fmt="text", idle_timeout=30.0, quiet_after=2.0, clock=lambda: now[0])
    t = job.transport(rx, clock=lambda: now[0])
    job.write("server", b"s1\n")
    job.write("site-1", b"a1\n")
    t.poll_once()
    for step in range(1, 120):
        now[0] = float(step)
        t.poll_once()
        rx.tick()
    assert not rx.all_done
    assert {s: rx.site(s).state for s in rx.sites()} == {"server": "quiet", "site-1": "quiet"}


def test_while_the_job_answers_its_status_is_asked_seldom_and_at_once_when_it_stops(job):
    from flarenb.sources.cursor import STATUS_EVERY

    now = [0.0]
    calls = []

    def status():
        calls.append(now[0])
        return job.status

    rx = Receiver(fmt="text", idle_timeout=None)
    t = CursorPoll(rx, job.ask, status=status, clock=lambda: now[0])
    job.write("server", b"s1\n")
    for step in range(60):  # a minute of answers, one a second
        now[0] = float(step)
        t.poll_once()
    assert len(calls) <= 60 / STATUS_EVERY + 1, calls
    job.status = "FINISHED:COMPLETED"  # app commands now say "not running": the status is asked at once
    now[0] = 60.5
    t.poll_once()
    assert calls[-1] == 60.5 and t.finished


@pytest.mark.parametrize("expected", [True, False])
def test_a_marked_job_still_starting_is_asked_again_not_given_up(job, expected):
    """NVFlare lists a job RUNNING a few seconds before its server job registers the app command: for a job whose
    meta says it has the component, "no app command func" then means "not yet"; for any other job, "none"."""
    now = [0.0]
    rx = Receiver(fmt="text", idle_timeout=None)
    real_ask, calls = job.ask, []

    def ask(request):
        calls.append(now[0])
        if len(calls) <= 3:
            raise RuntimeError("AppCommandProcessor: no app command func for topic flarenb.logs")
        return real_ask(request)

    t = CursorPoll(rx, ask, status=lambda: job.status, clock=lambda: now[0], expected=expected, ready=lambda: "ready")
    job.write("server", b"s1\n")
    for step in range(6):
        now[0] = float(step)
        t.poll_once()
    if expected:
        assert t.fallback_reason is None and t.polls > 0 and texts(rx, "server") == ["s1"]
    else:
        assert t.fallback_reason and "no flarenb log component" in t.fallback_reason and len(calls) == 1


@pytest.mark.parametrize(
    ("states", "asked_at"),
    [
        (["waiting"] * 3 + ["ready"], 3),  # its server registered the command: asked at once
        (["waiting", "started", "started", "ready"], 3),  # its run started, then the command is registered
        (["waiting"] + ["started"] * 10, 6),  # an older component never says so: asked READY_GRACE s after it runs
        (["waiting", "unknown"], 11),  # its log is refused: asked BLIND_WAIT s after that is known
        (["waiting"] * 40, 30),  # never: asked after STARTUP_GRACE s (what it answers then decides)
    ],
)
def test_a_marked_job_is_not_asked_before_its_server_says_the_command_is_registered(job, states, asked_at):
    """NVFlare lists a job RUNNING seconds before its server job registers the app command, and logs an ERROR in the
    job's log for anything that reaches the job earlier: a marked job's server log is read first (by the server's
    parent process) until it has the component's ready line."""
    from flarenb.sources.cursor import BLIND_WAIT, READY_GRACE, STARTUP_GRACE

    assert (READY_GRACE, BLIND_WAIT, STARTUP_GRACE) == (5.0, 10.0, 30.0)  # the figures the cases are written for
    now, asks, seen = [0.0], [], []
    rx = Receiver(fmt="text", idle_timeout=None)

    def ready():
        seen.append(now[0])
        return states[min(len(seen) - 1, len(states) - 1)]

    def ask(request):
        asks.append(now[0])
        return job.ask(request)

    t = CursorPoll(rx, ask, status=lambda: job.status, clock=lambda: now[0], expected=True, ready=ready)
    job.write("server", b"s1\n")
    for step in range(40):
        now[0] = float(step)
        t.poll_once()
    assert asks and asks[0] == asked_at, (asks[:3], seen[:8])
    assert texts(rx, "server") == ["s1"] and t.fallback_reason is None
    assert seen[-1] == asked_at, "the readiness is not read once the job has been asked"


def test_an_unmarked_job_is_asked_at_once(job):
    rx = Receiver(fmt="text", idle_timeout=None)
    t = CursorPoll(rx, job.ask, status=lambda: job.status, expected=False, ready=lambda: pytest.fail("ready read"))
    job.write("server", b"s1\n")
    t.poll_once()
    assert texts(rx, "server") == ["s1"]


def test_the_readiness_comes_from_the_server_log_and_never_asks_the_job():
    from flarenb.sources.cursor import RUN_STARTED_LINE, server_log_readiness

    class Flare:
        def __init__(self, text=None, error=None):
            self.text, self.error, self.commands = text, error, []

        def call(self, fn):
            return fn(self)

        def get_job_logs(self, job_id, target):
            self.commands.append(("get_job_logs", job_id, target))
            if self.error:
                raise self.error
            return {"logs": {"server": self.text}}

    cases = [
        (Flare(""), "waiting"),
        (Flare(f"x - ServerRunner - INFO - {RUN_STARTED_LINE} ...\n"), "started"),
        (Flare(f"{RUN_STARTED_LINE} ...\ny - FlarenbLogReceiver - INFO - {jobconfig.CURSOR_READY_LINE}\n"), "ready"),
        (Flare(error=RuntimeError("Job_id: j is not running.")), "waiting"),
        (Flare(error=RuntimeError("AuthorizationError: not authorized for get_job_log")), "unknown"),
    ]
    for i, (flare, state) in enumerate(cases):
        assert server_log_readiness(flare, f"j{i}")() == state
        assert flare.commands == [("get_job_logs", f"j{i}", "server")]  # the log, read by the parent: never the job
    # a job seen ready is not read again (job.metrics() of a running job looks each time it is called)
    again = Flare(error=RuntimeError("must not be read"))
    assert server_log_readiness(again, "j2")() == "ready" and again.commands == []
