"""Unit and property tests of flarenb.receiver (no nvflare, no threads unless stated)."""

import copy
import json
import pickle
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flarenb.logparse import line_size
from flarenb.receiver import Line, Receiver, Update, format_json_record

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def chunked(data, cuts):
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    prev = 0
    for c in cuts + [len(data)]:
        yield data[prev:c]
        prev = c


def texts(rx, site="server"):
    return [ln.text for ln in rx.lines(site)]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(TEXT, max_size=40),
    partial=TEXT,
    crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_random_chunking_gives_the_file_lines(lines, partial, crlf, cuts):
    eol = "\r\n" if crlf else "\n"
    data = ("".join(line + eol for line in lines) + partial).encode("utf-8")
    rx = Receiver(fmt="text")
    for chunk in chunked(data, cuts):  # splits inside lines and inside multibyte characters
        rx.feed("site-1", chunk)
    assert texts(rx, "site-1") == lines
    assert rx.site("site-1").pending == partial
    rx.end("site-1")
    expected = lines + ([partial] if partial else [])
    assert texts(rx, "site-1") == expected
    assert [ln.seq for ln in rx.lines("site-1")] == list(range(1, len(expected) + 1))
    assert rx.site("site-1").state == "ended"


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40),
)
def test_long_lines_are_cut_and_marked_but_following_lines_kept(lengths, cuts):
    cap = 10
    lines = [f"{i:02d}" + "é" * n for i, n in enumerate(lengths)]
    data = "".join(line + "\n" for line in lines).encode()
    rx = Receiver(max_line_chars=cap, fmt="text")
    for chunk in chunked(data, cuts):
        rx.feed("s", chunk)
    got = rx.lines("s")
    assert [ln.text for ln in got] == [line[:cap] for line in lines]
    assert [ln.truncated for ln in got] == [len(line) > cap for line in lines]


def test_decode_errors_are_replaced():
    rx = Receiver(fmt="text")
    rx.feed("s", b"ok \xff\xfe bad\nnext\n")
    assert texts(rx, "s") == ["ok \ufffd\ufffd bad", "next"]


def test_level_and_timestamp_and_continuation_lines():
    log = (
        "2026-05-01 12:00:00,001 - FedAvg - INFO - [identity=site-1, run=abc] - round 1\n"
        "2026-05-01 12:00:01,002 - ClientRunner - ERROR - boom\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ZeroDivisionError: division by zero\n"
        "2026-05-01 12:00:02,003 - WARNING - concise format\n"
        "printed by the client\n"
        "2026-05-01T12:00:03 no level here\n"
    )
    rx = Receiver(fmt="text")
    rx.feed("server", log.encode())
    got = [(ln.level, ln.ts) for ln in rx.lines("server")]
    assert got == [
        ("INFO", "2026-05-01 12:00:00,001"),
        ("ERROR", "2026-05-01 12:00:01,002"),
        ("ERROR", None),
        ("ERROR", None),
        ("ERROR", None),
        ("WARNING", "2026-05-01 12:00:02,003"),
        ("WARNING", None),
        (None, "2026-05-01T12:00:03"),
    ]
    assert {ln.site for ln in rx.lines("server")} == {"server"}


def test_level_survives_across_chunks():
    rx = Receiver(fmt="text")
    rx.feed("s", b"2026-05-01 12:00:01,002 - X - ERROR - boom\nTrace")
    rx.feed("s", b"back\n")
    assert [(ln.text, ln.level) for ln in rx.lines("s")] == [
        ("2026-05-01 12:00:01,002 - X - ERROR - boom", "ERROR"),
        ("Traceback", "ERROR"),
    ]


def test_json_records_are_rendered_like_log_txt():
    recs = [
        {
            "asctime": "2026-05-01 12:00:00,001",
            "name": "FedAvg",
            "fullName": "nvflare.app_common.workflows.FedAvg",
            "levelname": "INFO",
            "fl_ctx": "[identity=site-1, run=abc]",
            "message": "hello",
        },
        {"asctime": "2026-05-01 12:00:01,000", "name": "X", "levelname": "WARNING", "fl_ctx": "", "message": "a\nb"},
    ]
    data = "".join(json.dumps(r) + "\n" for r in recs).encode()
    rx = Receiver()  # fmt="auto" detects JSON
    for i in range(0, len(data), 7):
        rx.feed("site-1", data[i : i + 7])
    got = [(ln.text, ln.level, ln.ts) for ln in rx.lines("site-1")]
    assert got == [
        (
            "2026-05-01 12:00:00,001 - FedAvg - INFO - [identity=site-1, run=abc] - hello",
            "INFO",
            "2026-05-01 12:00:00,001",
        ),
        ("2026-05-01 12:00:01,000 - X - WARNING - a", "WARNING", "2026-05-01 12:00:01,000"),
        ("b", "WARNING", None),
    ]
    assert [ln.seq for ln in rx.lines("site-1")] == [1, 2, 3]
    assert format_json_record({"weird": 1}) == '{"weird": 1}'


def test_auto_detects_text():
    rx = Receiver()
    rx.feed("s", b"{not json\nplain\n")
    assert texts(rx, "s") == ["{not json", "plain"]
    assert rx.site("s").fmt == "text"


def test_bounded_memory_counts_dropped_lines():
    rx = Receiver(max_lines=100, fmt="text")
    data = "".join(f"line {i}\n" for i in range(1, 1001)).encode()
    for i in range(0, len(data), 333):
        rx.feed("s", data[i : i + 333])
    s = rx.site("s")
    assert len(s.lines) == 100
    assert s.dropped == 900
    assert s.total == 1000
    assert [ln.seq for ln in s.lines] == list(range(901, 1001))
    assert s.lines[0].text == "line 901"


def test_subscribers_get_every_line_once_in_order_and_replay():
    rx = Receiver(fmt="text")
    rx.feed("server", b"a\nb\nc")
    seen = []
    unsub = rx.subscribe(seen.append, replay=True)
    rx.feed("server", b"\nd\n")
    rx.feed("site-1", b"x\n")
    lines = [ln.text for u in seen for ln in u.lines]
    assert lines == ["a", "b", "c", "d", "x"]
    assert seen[0] == Update("server", rx.lines("server")[:2], "live", None)
    assert [u.state for u in seen if u.site == "site-1"] == ["waiting", "live"]
    unsub()
    rx.feed("server", b"e\n")
    assert [ln.text for u in seen for ln in u.lines] == ["a", "b", "c", "d", "x"]


def test_failing_subscriber_does_not_break_ingest():
    rx = Receiver(fmt="text")
    rx.subscribe(lambda u: 1 / 0)
    assert rx.feed("s", b"a\nb\n") == 2
    assert texts(rx, "s") == ["a", "b"]


def test_quiet_then_idle_timeout_closes_and_rejects_late_data():
    clock = Clock()
    done = []
    rx = Receiver(quiet_after=10, idle_timeout=60, clock=clock, on_done=lambda site, s: done.append((site, s.state)))
    rx.feed("s", b"hello\npart")
    assert rx.site("s").state == "live"
    clock.t = 9.9
    rx.tick()
    assert rx.site("s").state == "live"
    clock.t = 10.0
    rx.tick()
    assert rx.site("s").state == "quiet"
    clock.t = 50
    rx.heartbeat("s")  # alive but quiet: the idle clock restarts
    clock.t = 109.9
    rx.tick()
    assert rx.site("s").state == "quiet"
    clock.t = 110.0
    rx.tick()
    s = rx.site("s")
    assert s.state == "timed_out"
    assert s.reason == "no data or heartbeat for 60.0s (sender vanished?)"
    assert texts(rx, "s") == ["hello", "part"]  # the partial line was flushed
    assert done == [("s", "timed_out")]
    assert rx.feed("s", b"late\n") == 0
    assert s.late_bytes == 5
    rx.end("s")
    rx.tick(1000)
    assert done == [("s", "timed_out")]


def test_data_after_quiet_is_live_again():
    clock = Clock()
    rx = Receiver(quiet_after=1, idle_timeout=None, clock=clock)
    rx.feed("s", b"a\n")
    clock.t = 5
    rx.tick()
    assert rx.site("s").state == "quiet"
    rx.feed("s", b"b\n")
    assert rx.site("s").state == "live"
    clock.t = 10_000
    rx.tick()
    assert rx.site("s").state == "quiet"  # idle timeout disabled


def test_unavailable_sites_carry_the_reason():
    rx = Receiver(fmt="text")
    rx.set_unavailable("site-2", "log not streamed to the server")
    s = rx.site("site-2")
    assert (s.state, s.reason, s.done) == ("unavailable", "log not streamed to the server", False)
    rx.end("site-2")
    assert (s.state, s.reason) == ("ended", "log not streamed to the server")
    rx.set_unavailable("site-3", "x")
    rx.feed("site-3", b"now here\n")
    assert (rx.site("site-3").state, rx.site("site-3").reason) == ("live", None)


def test_marker_flushes_partial_line_first():
    rx = Receiver(fmt="text")
    rx.feed("s", b"a\npart")
    rx.marker("s", "[flarenb] gap")
    rx.feed("s", b"b\n")
    got = [(ln.text, ln.kind, ln.seq) for ln in rx.lines("s")]
    assert got == [("a", "log", 1), ("part", "log", 2), ("[flarenb] gap", "marker", 3), ("b", "log", 4)]


@pytest.mark.parametrize("round_", range(30))
def test_done_fires_exactly_once_whatever_races(round_):
    clock = Clock()
    calls = []
    lock = threading.Lock()

    def on_done(site, s):
        with lock:
            calls.append((site, s.state))

    rx = Receiver(idle_timeout=1, clock=clock, on_done=on_done)
    sites = [f"site-{i}" for i in range(5)]
    for s in sites:
        rx.feed(s, b"x\n")
    clock.t = 100
    barrier = threading.Barrier(8)

    def racer(kind):
        barrier.wait()
        for s in sites:
            if kind == 0:
                rx.end(s)
            elif kind == 1:
                rx.tick()
            elif kind == 2:
                rx.stop()
            else:
                rx.feed(s, b"y\n")
                rx.end_all()

    threads = [threading.Thread(target=racer, args=(i % 4,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c[0] for c in calls) == sites
    assert all(rx.site(s).done for s in sites)


def test_watchdog_thread_closes_idle_stream_and_is_joined():
    ended = threading.Event()
    rx = Receiver(idle_timeout=0.2, quiet_after=0.1, on_done=lambda site, s: ended.set(), name="wd-test")
    rx.feed("s", b"a\n")
    rx.start_watchdog(period=0.02)
    assert any(t.name == "flarenb-watchdog-wd-test" for t in threading.enumerate())
    assert ended.wait(5)
    assert rx.site("s").state == "timed_out"
    rx.stop_watchdog()
    assert not any(t.name == "flarenb-watchdog-wd-test" for t in threading.enumerate())


def test_line_equality_and_repr():
    a = Line(1, "x", "INFO", None, "s")
    assert a == Line(1, "x", "INFO", None, "s")
    assert a != Line(2, "x", "INFO", None, "s")
    assert repr(a) == "Line(s#1 INFO 'x')"


def test_a_leading_timestamp_is_read_from_the_text_and_compares_as_given():
    text = "2026-05-01 12:00:00,001 - ClientRunner - INFO - hello"
    rx = Receiver(fmt="text")
    rx.feed("s", (text + "\n[2026-05-01 12:00:01] - X - ERROR - boxed\n  File x\n").encode())
    ln, boxed, cont = rx.lines("s")
    assert (ln.ts, ln.level) == ("2026-05-01 12:00:00,001", "INFO")
    assert (boxed.ts, boxed.level, cont.ts, cont.level) == ("2026-05-01 12:00:01", "ERROR", None, "ERROR")
    # a line built by hand with the same fields is the same line, whichever way its ts is stored
    assert ln == Line(1, text, "INFO", "2026-05-01 12:00:00,001", "s")
    assert boxed == Line(2, "[2026-05-01 12:00:01] - X - ERROR - boxed", "ERROR", "2026-05-01 12:00:01", "s")
    assert ln != Line(1, text, "INFO", "2026-05-01 12:00:00", "s")  # another ts, although a prefix of the text
    assert Line(1, text, "INFO", "2026-05-01 12:00:00", "s").ts == "2026-05-01 12:00:00"
    # copies keep every field
    assert pickle.loads(pickle.dumps(ln)) == ln and copy.deepcopy(boxed) == boxed
    assert pickle.loads(pickle.dumps(ln)).ts == "2026-05-01 12:00:00,001"


def test_memory_counts_only_the_timestamps_stored_apart():
    plain = "".join(f"2026-05-01 12:00:{i % 60:02d},000 - R - INFO - line {i}\n" for i in range(200)).encode()
    boxed = "".join(f"[2026-05-01 12:00:{i % 60:02d},000] - R - INFO - line {i}\n" for i in range(200)).encode()
    sizes = []
    for data in (plain, boxed):
        rx = Receiver(fmt="text")
        rx.feed("s", data)
        s = rx.site("s")
        exact = sum(line_size(ln.text) + (0 if isinstance(ln[3], int) else sys.getsizeof(ln.ts)) for ln in s.lines)
        assert abs(s.nbytes - exact) < 0.05 * exact, (s.nbytes, exact)
        sizes.append(s.nbytes / len(data))
    assert sizes[1] > sizes[0] * 1.2  # each boxed timestamp is a string of its own
