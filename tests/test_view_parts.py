"""The log view's parts without a widget, a comm or a thread: intake, lanes, the flusher's tick (a fake clock, no
sleeping), the held-lines download and the outputs of a saved notebook."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flarenb.flusher import Flusher
from flarenb.history import History
from flarenb.intake import LogLine, coerce_line, job_times, same_site_state, site_name, site_state
from flarenb.lanes import Lanes
from flarenb.outbox import WINDOW, Outbox, line_wire_size
from flarenb.outputs import Outputs
from flarenb.safetext import wire_size
from flarenb.viewdownload import download_reply, logs_folder, write_held_lines


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def lanes(max_msgs: float = 10, max_bytes: int = 500_000, clock=None, **kw) -> Lanes:
    return Lanes(History(1 << 20, 1000), Outbox(max_msgs, max_bytes, clock or Clock()), **kw)


# ---------------------------------------------------------------------------- intake


def test_lines_of_any_shape_become_log_lines():
    assert coerce_line("plain", 7) == LogLine(7, "plain")
    assert coerce_line((3, "t\r\n", "warn", "12:00"), 1) == LogLine(3, "t", "WARNING", "12:00")
    assert coerce_line({"seq": "x", "text": None}, 4) == LogLine(4, "")
    ts = coerce_line((1, "ok", None, "t" * 500), 1).ts
    assert ts == "t" * 64 + " … [436 more characters]"
    assert site_name("") == "(unnamed)" and site_name("s" * 1000) == "s" * 128 + " … [872 more characters]"


def test_job_times_of_a_status_update():
    # the start: start_time, else (when the view has none) the submit time
    assert job_times("RUNNING", submit_time=50.0, now=999.0) == (50.0, None)
    assert job_times("RUNNING", submit_time=50.0, start_ts=60.0, now=999.0) == (None, None)
    # a finished job with a duration ends at start + duration, whenever it is looked at
    assert job_times("FINISHED:COMPLETED", duration="0:00:09.5", start_ts=100.0, now=999.0) == (None, 109.5)
    assert job_times("FINISHED:COMPLETED", start_time="1970-01-01T00:01:40Z", duration="1 day, 0:00:01", now=0) == (
        100.0,
        100.0 + 86401,
    )
    # else a finished status ends now, unless the view has an end already; a running one has no end
    assert job_times("FINISHED:ABORTED", start_ts=100.0, now=999.0) == (None, 999.0)
    assert job_times("FINISHED:ABORTED", start_ts=100.0, end_ts=500.0, now=999.0) == (None, None)
    assert job_times("RUNNING", duration="0:00:09", start_ts=100.0, now=999.0) == (None, None)
    assert job_times("FINISHED:COMPLETED", end_time=321.0, duration="N/A", start_ts=1.0, now=999.0) == (None, 321.0)


def test_site_states_are_capped_and_a_quiet_period_resyncs_only_when_it_restarted():
    st = site_state("quiet", None, quiet_for=10, now=1000.0)
    assert st == {"state": "quiet", "reason": None, "since": 990.0}
    assert same_site_state(st, site_state("quiet", None, quiet_for=11.5, now=1001.0))  # the same quiet period
    assert not same_site_state(st, site_state("quiet", None, quiet_for=0, now=1001.0))  # it restarted
    assert not same_site_state(None, st)
    assert not same_site_state(st, site_state("done", None, now=1001.0))
    long = site_state("unavailable\x00" * 10, "r" * 1000, now=0)
    assert long["state"].startswith("unavailable\x00unav") and long["state"].endswith(" … [80 more characters]")
    assert long["reason"] == "r" * 400 + " … [600 more characters]" and long["since"] is None


# ---------------------------------------------------------------------------- lanes


def test_lanes_ignore_duplicates_and_number_plain_strings():
    ln = lanes()
    lane, new = ln.ensure("site-1")
    assert (lane, new) == ("site-1", True) and ln.ensure("site-1") == ("site-1", False)
    assert ln.add(lane, "site-1", ["a", "b"]) == 2
    assert ln.add(lane, "site-1", [(2, "b again"), (3, "c")]) == 1  # seq 2 was taken already
    assert [x.text for x in ln.history.lines["site-1"]] == ["a", "b", "c"]
    assert ln.counts == {"site-1": 3} and ln.last_seq == {"site-1": 3}
    assert [item[0] for item, _ in ln.out.pending["site-1"]] == [1, 2, 3]


def test_lanes_cut_the_browser_text_but_keep_the_whole_line():
    ln = lanes(max_line_chars=10)
    lane, _ = ln.ensure("s")
    ln.add(lane, "s", ["x" * 25])
    assert ln.history.lines["s"][0].text == "x" * 25
    ((item, _),) = ln.out.pending["s"]
    assert item[1] == "x" * 10 + " … [15 more characters in the download]"


def test_sites_beyond_the_limit_share_one_lane_with_their_names():
    ln = lanes(max_sites=2)
    for s in ("server", "site-1"):
        ln.add(ln.ensure(s)[0], s, ["x"])
    lane, new = ln.ensure("site-2")
    assert (lane, new) == ("(other sites)", True)
    ln.add(lane, "site-2", [(5, "hello")])
    assert ln.ensure("site-3") == ("(other sites)", False)
    ln.add("(other sites)", "site-3", ["hi"])
    assert [(x.seq, x.text) for x in ln.history.lines["(other sites)"]] == [(1, "[site-2] hello"), (2, "[site-3] hi")]


# ---------------------------------------------------------------------------- the flusher's tick


def flusher(ln: Lanes, sent: list, published: list, snapshot_interval: float = 2.0) -> Flusher:
    return Flusher(
        ln.out,
        ln,
        threading.RLock(),
        label="job-x",
        snapshot_lines=5,
        snapshot_interval=snapshot_interval,
        publish_snapshot=published.append,
        send=sent.append,
    )


def test_one_message_per_tick_within_the_message_budget():
    clock = Clock()
    ln = lanes(max_msgs=2, clock=clock)
    sent: list = []
    f = flusher(ln, sent, [], snapshot_interval=1000)
    lane, _ = ln.ensure("server")
    ln.add(lane, "server", ["a"])
    assert f.flush_once(clock()) is False
    assert sent == [{"kind": "lines", "sites": {"server": [[1, "a", None, None]]}}]
    ln.add(lane, "server", ["b"])
    f.flush_once(clock())  # too soon after the last message (1 / max_msgs): it waits
    assert len(sent) == 1 and ln.out.has_pending()
    clock.t += 0.5
    f.flush_once(clock())
    assert sent[1]["sites"]["server"] == [[2, "b", None, None]]
    ln.add(lane, "server", ["c"])
    clock.t += 0.5  # 2 messages in this window already
    f.flush_once(clock())
    assert len(sent) == 2
    clock.t += WINDOW
    f.flush_once(clock())
    assert len(sent) == 3 and not ln.out.has_pending()


def test_the_snapshot_when_due_then_the_end_once_everything_was_sent():
    clock = Clock()
    ln = lanes(clock=clock)
    sent: list = []
    published: list = []
    f = flusher(ln, sent, published, snapshot_interval=2.0)
    lane, _ = ln.ensure("site-1")
    ln.add(lane, "site-1", ["a", "b"])
    f.snapshot_dirty = True
    assert f.flush_once(clock()) is False  # due: it goes first, without the lines not sent yet
    assert published[-1]["snapshot"] == {} and published[-1]["line_counts"] == {"site-1": 2} and not sent
    clock.t += 1
    f.flush_once(clock())  # then the lines (never starved by snapshots)
    assert sent[-1]["sites"]["site-1"] == [[1, "a", None, None], [2, "b", None, None]]
    clock.t += 0.5
    f.flush_once(clock())  # the next snapshot is not due yet
    assert len(published) == 1 and f.snapshot_dirty
    clock.t += 0.5
    f.flush_once(clock())
    assert published[-1]["snapshot"] == {"site-1": [[1, "a", None, None], [2, "b", None, None]]}
    assert f.snapshot_dirty is False
    ln.add(lane, "site-1", ["c"])
    f.snapshot_dirty = True
    f.follow_closed = True
    clock.t += 1
    assert f.flush_once(clock()) is False  # following ended: the last line first
    assert sent[-1]["sites"]["site-1"] == [[3, "c", None, None]]
    clock.t += 1
    assert f.flush_once(clock()) is True  # then the final snapshot: done
    assert [r[0] for r in published[-1]["snapshot"]["site-1"]] == [1, 2, 3]


def test_a_failing_send_is_logged_and_does_not_kill_the_thread(caplog):
    ln = lanes()
    tried = threading.Event()

    def send(msg):
        tried.set()
        raise OSError("comm gone")

    f = Flusher(
        ln.out,
        ln,
        threading.RLock(),
        label="job-f",
        snapshot_lines=5,
        snapshot_interval=0.0,
        publish_snapshot=lambda snap: None,
        send=send,
    )
    lane, _ = ln.ensure("s")
    ln.add(lane, "s", ["a"])
    f.kick()
    assert tried.wait(10)
    f.close()
    assert not f.thread.is_alive()
    errors = [r for r in caplog.records if "could not send" in r.getMessage()]
    assert len(errors) == 1 and "job-f" in errors[0].getMessage() and errors[0].name == "flarenb.widget"
    f.kick()  # never again after close
    assert not f.thread.is_alive()


# ---------------------------------------------------------------------------- downloads and outputs


def test_held_lines_are_written_per_site_with_safe_distinct_names(tmp_path):
    contents = {"server": ([LogLine(1, "a"), LogLine(2, "b")], 0), "../x": ([LogLine(1, "c")], 3)}
    paths = write_held_lines(tmp_path, contents)
    assert all(p.parent == tmp_path for p in paths) and len({p.name for p in paths}) == 2
    assert (tmp_path / "server.log").read_text() == "a\nb\n"
    other = next(p for p in paths if p.name != "server.log")
    assert other.read_text() == "[flarenb: 3 earlier lines were dropped from the view's history]\nc\n"


def test_the_logs_folder_and_the_download_reply(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = logs_folder("job/1")
    assert folder.parent == tmp_path and folder.is_dir() and folder.name.endswith("_logs")
    assert logs_folder("j", tmp_path / "given") == tmp_path / "given"
    assert download_reply(lambda: [folder / "server.log", "/elsewhere/x.log"]) == {
        "paths": [f"{folder.name}/server.log", "/elsewhere/x.log"],
        "error": None,
    }

    def fails():
        raise PermissionError("read-only")

    assert download_reply(fails) == {"paths": [], "error": "PermissionError: read-only"}


def test_outputs_are_shown_with_a_display_id_and_refreshed(monkeypatch, caplog):
    import IPython.display

    class Handle:
        def __init__(self, fail: bool = False) -> None:
            self.updates: list = []
            self.fail = fail

        def update(self, data, raw, metadata):
            if self.fail:
                raise RuntimeError("gone")
            self.updates.append(data)

    handles = [Handle(), Handle(fail=True)]
    shown: list = []

    def display(data, raw, metadata, display_id):
        assert raw is True and display_id is True
        shown.append(data)
        return handles[len(shown) - 1]

    monkeypatch.setattr(IPython.display, "display", display)
    out = Outputs("job-o")
    out.show({"text/plain": "live"}, {})
    out.show({"text/plain": "live"}, {})
    assert len(out) == 2 and shown == [{"text/plain": "live"}] * 2
    out.refresh({"text/plain": "final"}, {})
    assert handles[0].updates == [{"text/plain": "final"}]
    assert any("job-o" in r.getMessage() and "could not update" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("tail", [0, 1, 5])
def test_the_view_s_history_renders_directly(tail):
    from flarenb.snapshot import render

    hist = {"server": [LogLine(i, f"l{i}") for i in range(1, 4)]}
    snap = render("j", live=False, status="FINISHED:COMPLETED", sites=["server"], lines=hist, tail=tail)
    shown = [x for x in snap.blocks[0][1] if not x.startswith("│ …")]
    assert shown == [f"│ l{i}" for i in range(1, 4)][3 - min(tail, 3) :]


@given(
    seq=st.integers(min_value=0, max_value=10**12),
    text=st.text(st.characters(exclude_categories=("Cs",))),  # lone surrogates are replaced at intake
    level=st.sampled_from([None, "INFO", "ERROR"]),
    ts=st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
)
def test_a_lines_wire_size_is_computed_without_json_but_equal_to_it(seq, text, level, ts):
    assert line_wire_size([seq, text, level, ts]) == wire_size([seq, text, level, ts])


def test_a_lines_wire_size_counts_escapes_and_multibyte_characters():
    for text in ['say "hi"', "back\\slash", "tab\tnew\nline\x00\x1b[31m", "é😀\u2028", ""]:
        assert line_wire_size([7, text, "INFO", "12:00:00"]) == wire_size([7, text, "INFO", "12:00:00"])


def test_a_receiver_line_reaches_the_view_with_its_fields_by_name():
    from flarenb.receiver import Receiver

    rx = Receiver(fmt="text")
    rx.feed("s", b"2026-05-01 12:00:00,001 - R - WARNING - careful\n")
    (line,) = rx.lines("s")
    assert coerce_line(line, 9) == LogLine(
        1, "2026-05-01 12:00:00,001 - R - WARNING - careful", "WARNING", "2026-05-01 12:00:00,001"
    )
