"""How a view follows a job's logs, in one line (each source's ``describe()``), and the live view carrying it
(``source_info``: the widget's trait, the view's and the follower handle's attribute, the saved output's metadata).
Real files, real inotify, fake admin API and job; no FLARE (tests/test_live.py checks a real POC job's line)."""

from __future__ import annotations

import time

import pytest

from flarenb import follower, live
from flarenb.dlsource import RightsAwareSource
from flarenb.receiver import Receiver
from flarenb.sources import AdminPoll, Composite, CursorPoll, JobLogs, LocalTail, ThreadedSource, open_source
from flarenb.sources.base import describe_source
from flarenb.sources.cursor import NO_COMPONENT

JOB = "2c9e1f3a-0b4d-4e6f-8a1b-3c5d7e9f0a1b"


def rx() -> Receiver:
    return Receiver(name=JOB, fmt="text", idle_timeout=None)


def fetch(target, log_file_name=None):
    return {"logs": {"server": "a line\n"}, "unavailable": {}}


# ------------------------------------------------------------------------------------------ each source's line
def test_a_local_tail_says_it_listens_to_inotify(tmp_path):
    paths = {s: str(tmp_path / s / "log.txt") for s in ("server", "site-1", "site-2")}
    tail = LocalTail(rx(), paths, name="d1", safety_period=5).start()
    try:
        assert tail.describe() == "3 local log files, inotify notifications (safety poll every 5 s)"
        tail.busy = True  # notifications pour in faster than polling costs: it polls for a while
        assert tail.describe().endswith("; polling every 0.05 s while the logs pour in")
    finally:
        tail.stop()


def test_a_local_tail_polling_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("FLARENB_TAIL", "polling")
    tail = LocalTail(rx(), {"server": str(tmp_path / "log.txt")}, name="d2").start()
    try:
        assert tail.describe() == "1 local log file, polling every 0.05 s (FLARENB_TAIL=polling)"
    finally:
        tail.stop()
    monkeypatch.delenv("FLARENB_TAIL")
    asked = LocalTail(rx(), {"server": str(tmp_path / "log.txt")}, name="d3", mechanism="polling", period=0.1)
    asked.start()
    try:
        assert asked.describe() == "1 local log file, polling every 0.1 s (polling requested (mechanism='polling'))"
    finally:
        asked.stop()
    asked.finished = True
    assert asked.describe().endswith(", ended")


def test_admin_polling_says_what_it_asks_and_how_often():
    poll = AdminPoll(rx(), fetch, status=lambda: "RUNNING", target="all", min_interval=0.3, max_interval=3.0)
    assert poll.describe() == "admin API: whole logs of every site, polling every 0.3 to 3 s"
    server = AdminPoll(rx(), fetch, status=lambda: "FINISHED:COMPLETED", target="server", final_grace=10)
    server.poll_once()  # the job has ended: the final poll is due after the grace
    assert server.describe() == (
        "admin API: whole logs of server, polling every 0.3 to 3 s, final poll after the job ended"
    )
    server.finished = True
    assert server.describe().endswith(", ended")


def test_the_cursor_says_its_state_and_what_it_handed_over_to():
    status = {"value": "RUNNING"}
    asked: list[dict] = []

    def ask(request):
        asked.append(request)
        return {"sites": {}}

    def then(primed, done=frozenset()):
        return AdminPoll(r, fetch, status=lambda: status["value"], final_grace=0)

    r = rx()
    waiting = CursorPoll(r, ask, status=lambda: status["value"], then=then, expected=True, ready=lambda: "waiting")
    waiting.poll_once()
    assert asked == [] and waiting.describe() == (
        "log cursor (the job's flarenb.logs app command), waiting for the job's server to register it"
    )
    cursor = CursorPoll(r, ask, status=lambda: status["value"], then=then, min_interval=0.1, max_interval=4)
    cursor.poll_once()
    assert asked and cursor.describe() == "log cursor (the job's flarenb.logs app command), every 0.1 to 4 s"
    status["value"] = "FINISHED:COMPLETED"
    cursor._status_at = float("-inf")  # the status is asked now
    cursor.poll_once()
    assert cursor.next is not None
    assert cursor.describe().startswith(
        "log cursor (the job's flarenb.logs app command) until the job ended, then admin API: whole logs of every site"
    )

    def refused(request):
        raise RuntimeError("no app command func for topic flarenb.logs")

    status["value"] = "RUNNING"
    fallback = CursorPoll(r, refused, status=lambda: status["value"], then=then)
    fallback.poll_once()
    assert fallback.describe() == (
        f"admin API: whole logs of every site, polling every 0.3 to 3 s (no log cursor: {NO_COMPONENT})"
    )


def test_a_composite_names_its_parts_and_the_rights_aware_wrapper_its_inner_source(tmp_path, monkeypatch):
    from flarenb import dlsource

    monkeypatch.setattr(dlsource, "rights_of", lambda flare: type("R", (), {"refused_for": lambda *a: False})())
    spec = JobLogs(JOB, paths={"server": str(tmp_path / "s.txt"), "site-1": str(tmp_path / "1.txt")}, fetch=fetch)
    (tmp_path / "1.txt").write_text("x\n")
    ended = open_source(rx(), JobLogs(**{**spec.__dict__, "ended": True}))
    assert isinstance(ended, Composite)
    assert ended.describe() == (
        "1 local log file, not started + admin API: whole logs of server, polling every 0.3 to 3 s"
    )
    inner = AdminPoll(rx(), fetch)
    flare = type("Flare", (), {})()
    wrapped = RightsAwareSource(rx(), inner, flare, JOB, lambda: "RUNNING")
    wrapped.mode = "live"
    assert wrapped.describe() == inner.describe()
    wrapped.mode = "download"
    assert wrapped.describe() == "the job's download once it ends (live logs need the get_job_log right)"


def test_any_source_can_be_described_in_one_line():
    class Bare:  # a source from elsewhere: no describe()
        kind = "custom"

    class Broken:
        kind = "broken"

        def describe(self):
            raise OSError("gone")

    class Multiline:
        def describe(self):
            return "two\nlines"

    assert describe_source(Bare()) == "Bare (custom)"
    assert describe_source(Broken()) == "Broken (broken) (cannot describe itself: OSError: gone)"
    assert describe_source(Multiline()) == "two lines"
    assert ThreadedSource(rx(), "x").describe() == "transport source"


# ------------------------------------------------------------------------------------------ the view carries it
class FakeSource:
    """A source the test drives: what it says of itself, and when it ends."""

    kind = "fake"
    alive = None
    bytes_read = 0

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.line = "fake: not started"
        self.finished = False
        receiver.site("server")

    def start(self):
        self.line = "fake: 1 file, inotify notifications"
        return self

    def stop(self, timeout: float = 2.0) -> None:
        pass

    def finish(self) -> None:
        pass

    def describe(self) -> str:
        return self.line


class FakeStatus:
    def __init__(self) -> None:
        self.value = "RUNNING"
        self.meta: dict = {}
        self.problem = None
        self.not_found = False

    def __call__(self, fresh: bool = False) -> str:
        return self.value

    @property
    def ended(self) -> bool:
        return self.value.startswith("FINISHED")


class FakeJob:
    id = JOB
    name = "fake"
    key = ("test", JOB)
    connection = type("Conn", (), {"poc": None})()


def until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_the_view_shows_its_source_s_line_and_keeps_it_current(fake_comm, monkeypatch):
    made: list[FakeSource] = []
    status = FakeStatus()

    def follow_job(job, cursor=None):
        return follower.follow(job.id, lambda r: made.append(FakeSource(r)) or made[-1], key=job.key)

    monkeypatch.setattr(live, "follow_job", follow_job)
    monkeypatch.setattr(live, "job_status", lambda job: status)
    view = live.LogView(FakeJob())
    try:
        (source,) = made
        # set when the view attaches: the widget's synced trait, the view's and the handle's attribute
        assert view.source_info == view.widget.source_info == "fake: 1 file, inotify notifications"
        assert view._handle is not None and view._handle.source_info == view.source_info
        assert view._repr_mimebundle_()[1]["flarenb"] == {"job_id": JOB, "followed_by": view.source_info}
        assert "inotify" not in view._repr_mimebundle_()[0]["text/plain"]  # debug info, not in the snapshot shown
        source.line = "fake: polling every 0.05 s (FLARENB_TAIL=polling)\nsecond line"  # the source changed how
        assert until(lambda: view.source_info == "fake: polling every 0.05 s (FLARENB_TAIL=polling) second line")
        source.line = "fake: handed over"
        status.value = "FINISHED:COMPLETED"
        source.receiver.end_all(None)
        source.finished = True
        assert until(lambda: not view.live)
        assert view.source_info == "fake: handed over"  # the last line stays once the view has finished
    finally:
        view.close()
    assert follower.active_followers() == {}


def test_the_trait_is_one_capped_line_sent_only_when_it_changes(fake_comm):
    from flarenb.widget import LogView

    w = LogView(JOB)
    try:
        raw = "a\x1b[31m red\nline " + "x" * 1000
        w.set_source_info(raw)
        assert w.source_info.startswith("a red line xxx") and w.source_info.endswith(" more characters]")
        assert "\n" not in w.source_info and "\x1b" not in w.source_info and len(w.source_info) < 450
        changes = []
        w.observe(lambda change: changes.append(change["new"]), names="source_info")
        w.set_source_info(raw)  # the same line at every look of the view: nothing sent
        assert changes == []
        w.set_source_info(None)
        assert w.source_info == "" and changes == [""]
        assert "flarenb" not in (w._repr_mimebundle_()[1] or {})  # nothing to keep while unknown
    finally:
        w.close()


@pytest.fixture(autouse=True)
def _no_followers_left():
    yield
    follower.stop_all()
