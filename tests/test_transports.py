"""Tests of flarenb.sources (real temp files for LocalTail, a fake server for AdminPoll)
and flarenb.follower."""

import os
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flarenb import follower
from flarenb.receiver import Receiver
from flarenb.sources import AdminPoll, LocalTail, LogCursor, local_job_log_paths, localtail, make_transport

BODY = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=12)
TRUNC_MARK = "[flarenb] … log file truncated; reading it again from the start …"


def texts(rx, site):
    return [ln.text for ln in rx.lines(site)]


class Counter:
    def __init__(self):
        self.n = 0

    def lines(self, bodies):
        out = []
        for b in bodies:
            self.n += 1
            out.append(f"{self.n}:{b}")  # unique lines: a repeat or a loss is visible
        return out


def cut(data, cuts):
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)], strict=True)]


# ------------------------------------------------------------------------------ LocalTail
SEGMENT = st.tuples(
    st.lists(BODY, max_size=8),  # complete lines
    BODY,  # trailing partial line
    st.lists(st.integers(0, 500), max_size=6),  # write boundaries (bytes)
    st.lists(st.booleans(), max_size=8),  # poll after each write?
    st.sampled_from(["rotate", "truncate", "none"]),
)


MECHANISMS = ["polling", "events"]


def caught_up(t, path):
    """The file tail ``t`` has read the file now at ``path`` to its end: the same file (``st_dev``/``st_ino``), its
    size, and the bytes it read still there (the size alone is not enough: a file truncated and written again to
    the same size between two looks of the tail has the tail's old offset as its size)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            offset, head, last = t.offset, t.head, t.last  # the tail's thread may move on meanwhile: then not yet
            if t.ident != (st.st_dev, st.st_ino) or offset != st.st_size:
                return False
            data = f.read(offset)
    except FileNotFoundError:
        return False
    n = min(offset, t.FP)
    return len(head) == len(last) == n and data.startswith(head) and data.endswith(last)


def catch_up(tail, path, timeout=5.0):
    """The tail's own thread, woken by file-system notifications only (its safety poll is a minute away), has read
    the file now at ``path`` to its end."""
    t = tail._tails[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if caught_up(t, path):
            return
        time.sleep(0.001)
    raise AssertionError(f"the tail was not woken: offset {t.offset}, file size {os.path.getsize(path)}")


def events_tail(rx, paths, **kw):
    """A started LocalTail that can only learn of changes through notifications (no safety poll within the test,
    never switching to polling because they come fast)."""
    tail = LocalTail(rx, paths, mechanism="events", safety_period=60, busy_events=1e9, **kw).start()
    assert tail.mechanism == "inotify" and tail._watcher is not None, tail.describe()
    return tail


@pytest.mark.parametrize("mechanism", MECHANISMS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(SEGMENT, min_size=1, max_size=5), crlf=st.booleans())
def test_localtail_rotation_truncation_property(tmp_path_factory, mechanism, segments, crlf):
    """Polling: ``poll_once()`` at the drawn moments. Events: the tail's thread, woken by notifications only,
    and the test waits for it to catch up at the same moments."""
    d = tmp_path_factory.mktemp("tail")
    path = str(d / "log.txt")
    rx = Receiver(fmt="text", idle_timeout=None)
    if mechanism == "polling":
        tail = LocalTail(rx, {"site-1": path}, mechanism="polling")
        assert tail.poll_once() == 0  # the file does not exist yet: wait for it

        def poll():
            tail.poll_once()
    else:
        tail = events_tail(rx, {"site-1": path})

        def poll():
            catch_up(tail, path)

    assert rx.site("site-1").state == "waiting"
    counter, expected, carry = Counter(), [], ""
    eol = "\r\n" if crlf else "\n"
    polled_since_rotation = False  # the file must have been opened once before it rotates
    for k, (bodies, partial, cuts, polls, end) in enumerate(segments):
        lines = counter.lines(bodies)
        data = ("".join(line + eol for line in lines) + partial).encode()
        with open(path, "ab"):
            pass
        for i, chunk in enumerate(cut(data, cuts)):
            with open(path, "ab") as f:
                f.write(chunk)
            if polls and polls[i % len(polls)]:
                poll()
                polled_since_rotation = True
        if carry and lines:  # the previous segment's partial line is finished by this one
            lines = [carry + lines[0]] + lines[1:]
            carry = ""
        carry += partial
        if end != "none" or k == len(segments) - 1:
            expected += lines + ([carry] if carry else [])
            carry = ""
        else:
            expected += lines
        if end == "rotate":
            if not polled_since_rotation:  # only one rotation between two polls is followed
                poll()
            os.replace(path, path + ".1")
            polled_since_rotation = False
        elif end == "truncate":
            poll()  # bytes not read before a truncation are lost for everyone
            visible = tail._tails[0].offset > 0  # truncating an empty file changes nothing
            os.truncate(path, 0)
            counter.n += 1
            with open(path, "ab") as f:  # something unique, as any real log line is
                f.write(f"{counter.n}:after truncation\n".encode())
            expected += [TRUNC_MARK] * visible + [f"{counter.n}:after truncation"]
    tail.finish()
    if mechanism == "polling":
        for _ in range(10):
            tail.poll_once()
    else:
        deadline = time.monotonic() + 5
        while not tail.finished and time.monotonic() < deadline:
            time.sleep(0.001)
    assert tail.finished
    assert texts(rx, "site-1") == expected
    assert rx.site("site-1").state == "ended"
    tail.stop()


def _read_after(monkeypatch, path, rewrite):
    """The next ``fstat`` the tail makes is followed by ``rewrite(path)`` before it reads: the file changes between
    its size check and its read (as when the event path's thread reads while the writer truncates)."""
    real, done = os.fstat, []

    def fstat(fd):
        st = real(fd)
        if not done:
            done.append(1)
            rewrite(path)
        return st

    monkeypatch.setattr(localtail.os, "fstat", fstat)


def _replace_content(data):
    def rewrite(path):
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(data)

    return rewrite


def _tail_all(tail):
    tail.finish()
    for _ in range(5):
        tail.poll_once()
    assert tail.finished


def test_localtail_truncated_and_grown_past_the_offset_between_size_check_and_read(tmp_path, monkeypatch):
    """The check shared by both paths: the size looked fine, but the bytes before the offset are not the ones read
    (checked in the same pread as the new bytes), so the rewritten file is read again, not glued on."""
    p = tmp_path / "log.txt"
    p.write_bytes(b"1:first\n2:partial")
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"site-1": str(p)}, mechanism="polling")
    assert tail.poll_once() == 17
    _read_after(monkeypatch, str(p), _replace_content(b"3:after truncation, longer than before\n"))
    tail.poll_once()
    _tail_all(tail)
    assert texts(rx, "site-1") == ["1:first", "2:partial", TRUNC_MARK, "3:after truncation, longer than before"]


def test_localtail_rewritten_with_the_same_bytes_before_the_offset_but_another_head(tmp_path):
    """Only the head tells: the ``FP`` bytes before the offset are the same in the new file."""
    p = tmp_path / "log.txt"
    body = b"a" * 100 + b"\n"
    p.write_bytes(b"1:" + body)
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"site-1": str(p)}, mechanism="polling")
    tail.poll_once()
    _replace_content(b"2:" + body + b"3:more\n")(str(p))
    tail.poll_once()
    _tail_all(tail)
    assert texts(rx, "site-1") == ["1:" + "a" * 100, TRUNC_MARK, "2:" + "a" * 100, "3:more"]


def test_localtail_rewritten_to_the_same_size_is_seen_once_it_grows(tmp_path):
    """Same size, maybe the same mtime (coarse clock): nothing to read yet; the first bytes after it are not glued
    on."""
    p = tmp_path / "log.txt"
    p.write_bytes(b"1:abcdef\n")
    rx = Receiver(fmt="text", idle_timeout=None)
    tail = LocalTail(rx, {"site-1": str(p)}, mechanism="polling")
    tail.poll_once()
    st = os.stat(p)
    _replace_content(b"2:ghijkl\n")(str(p))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # as if in the same clock tick
    tail.poll_once()
    with open(p, "ab") as f:
        f.write(b"3:more\n")
    tail.poll_once()
    _tail_all(tail)
    assert texts(rx, "site-1") == ["1:abcdef", TRUNC_MARK, "2:ghijkl", "3:more"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_localtail_thread_ends_when_job_finished(tmp_path, mechanism):
    paths = {"server": str(tmp_path / "server" / "log.txt"), "site-1": str(tmp_path / "s1" / "log.txt")}
    os.makedirs(tmp_path / "server")
    finished = threading.Event()
    done = []
    rx = Receiver(fmt="text", on_done=lambda site, s: done.append(site))
    tail = LocalTail(
        rx,
        paths,
        is_finished=finished.is_set,
        period=0.01,
        finish_check_period=0.01,
        name="t1",
        mechanism=mechanism,
        safety_period=0.2,  # is_finished() has no file-system event: the safety poll asks it
    )
    tail.start()
    assert tail.mechanism == {"events": "inotify"}.get(mechanism, mechanism)
    with open(paths["server"], "ab") as f:
        for i in range(100):
            f.write(f"2026-05-01 12:00:00,000 - X - INFO - line {i}\n".encode())
            f.flush()
    time.sleep(0.05)
    with open(paths["server"], "ab") as f:
        f.write(b"last line without newline")
    finished.set()
    deadline = time.time() + 5
    while not tail.finished and time.time() < deadline:
        time.sleep(0.01)
    assert tail.finished
    tail.stop()
    assert not any(t.name == "flarenb-tail-t1" for t in threading.enumerate())
    got = texts(rx, "server")
    assert len(got) == 101 and got[-1] == "last line without newline" and got[0].endswith("line 0")
    assert sorted(done) == ["server", "site-1"]
    s1 = rx.site("site-1")
    assert (s1.state, s1.reason) == ("ended", f"log file never appeared: {paths['site-1']}")
    assert tail.bytes_read == os.path.getsize(paths["server"])


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_localtail_json_file_is_rendered(tmp_path, mechanism):
    p = tmp_path / "log.json"
    rx = Receiver()
    tail = events_tail(rx, {"server": str(p)}) if mechanism == "events" else LocalTail(rx, {"server": str(p)})
    p.write_text('{"asctime": "2026-05-01 12:00:00,001", "name": "X", "levelname": "ERROR", "message": "m"}\n')
    if mechanism == "events":
        catch_up(tail, str(p))
        tail.stop()
    else:
        tail.poll_once()
    assert [(ln.text, ln.level) for ln in rx.lines("server")] == [("2026-05-01 12:00:00,001 - X - ERROR - m", "ERROR")]


def make_poc(tmp_path):
    root = tmp_path / "prod_00"
    for name, cfg in [("server", "fed_server.json"), ("site-1", "fed_client.json"), ("site-2", "fed_client.json")]:
        (root / name / "startup").mkdir(parents=True)
        (root / name / "startup" / cfg).write_text("{}")
    (root / "admin@nvidia.com" / "startup").mkdir(parents=True)
    (root / "admin@nvidia.com" / "startup" / "fed_admin.json").write_text("{}")
    return root


def test_local_paths_and_factory(tmp_path):
    root = make_poc(tmp_path)
    paths = local_job_log_paths(str(root), "job1")
    assert paths == {
        "server": str(root / "server" / "job1" / "log.txt"),
        "site-1": str(root / "site-1" / "job1" / "log.txt"),
        "site-2": str(root / "site-2" / "job1" / "log.txt"),
    }
    assert list(paths) == ["server", "site-1", "site-2"]
    rx = Receiver()
    t = make_transport(rx, "job1", local_root=str(root), status=lambda: "RUNNING")
    assert isinstance(t, LocalTail) and not t.is_finished()
    t = make_transport(Receiver(), "job1", local_root=str(root), target="site-2")
    assert [x.site for x in t._tails] == ["site-2"]
    t = make_transport(Receiver(), "job1", fetch=lambda target: {}, local_root=str(tmp_path / "nope"))
    assert isinstance(t, AdminPoll)
    with pytest.raises(ValueError):
        make_transport(Receiver(), "job1")


# ------------------------------------------------------------------------------ AdminPoll
class FakeServer:
    """Whole-log replies like job_cmds.py: the last `window` bytes with the truncation prefix."""

    def __init__(self, window):
        self.window = window
        self.logs = {}
        self.unavailable = {}
        self.status = "RUNNING"

    def write(self, site, data):
        self.logs.setdefault(site, bytearray()).extend(data)

    def restart(self, site):
        self.logs[site] = bytearray()

    def fetch(self, target):
        out = {}
        for site, raw in self.logs.items():
            if target in ("all", site):
                if len(raw) > self.window:
                    text = raw[-self.window :].decode("utf-8", errors="replace")
                    text = f"... output truncated to last {self.window} bytes ...\n{text}"
                else:
                    text = bytes(raw).decode("utf-8", errors="replace")
                out[site] = text
        reply = {"logs": out}
        if self.unavailable:
            reply["unavailable"] = dict(self.unavailable)
        return reply


def check_no_repeat_no_silent_loss(got, truth):
    """Lines in order, none repeated; every skipped run of lines is marked by a marker line."""
    index = {line: i for i, line in enumerate(truth)}
    last, marker_since = -1, True
    for ln in got:
        if ln.kind == "marker":
            marker_since = True
            continue
        i = index[ln.text]
        assert i > last, f"repeated or reordered: {ln.text!r}"
        assert i == last + 1 or marker_since, f"lines {last + 1}..{i - 1} lost without a marker"
        last, marker_since = i, False
    assert last == len(truth) - 1 or (not truth)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.lists(BODY, max_size=30), BODY),
        st.tuples(st.just("poll")),
        st.tuples(st.just("restart")),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, window=st.integers(300, 3000))
def test_adminpoll_sliding_window_and_restarts_property(ops, window):
    server = FakeServer(window)
    rx = Receiver(fmt="text", idle_timeout=None)
    poll = AdminPoll(rx, server.fetch, status=lambda: server.status, fingerprint=1024, final_grace=0)
    counter, truth = Counter(), []
    seen = None  # the log as of the last poll of this generation: what can be shown of it
    grown, max_growth, restarted = 0, 0, False
    for op in ops:
        if op[0] == "write":
            lines = counter.lines(op[1])
            counter.n += 1
            part = f"{counter.n}:{op[2]}" if op[2] else ""
            data = ("".join(line + "\n" for line in lines) + part).encode()
            server.write("server", data)
            grown += len(data)
        elif op[0] == "poll":
            poll.poll_once()
            seen = bytes(server.logs.get("server", b""))
            max_growth, grown = max(max_growth, grown), 0
        else:
            server.restart("server")
            restarted = True
            truth += log_lines(seen)  # lines written after the last poll were never observable
            seen = None
    server.status = "FINISHED:COMPLETED"
    poll.poll_once()
    truth += log_lines(bytes(server.logs.get("server", b"")))
    max_growth = max(max_growth, grown)
    assert poll.finished
    got = rx.lines("server") if "server" in rx.sites() else []
    check_no_repeat_no_silent_loss(got, truth)
    if not restarted and max_growth + 64 < window - 200:  # the tail of what was read is in every reply
        assert [ln.text for ln in got] == truth


def log_lines(raw):
    if not raw:
        return []
    lines = raw.decode().split("\n")
    return lines if lines[-1] else lines[:-1]


@settings(max_examples=150, deadline=None)
@given(
    writes=st.lists(st.tuples(st.lists(BODY, max_size=10), st.integers(0, 2000)), max_size=30),
    window=st.integers(2048, 4096),
)
def test_adminpoll_exact_when_polled_within_the_window(writes, window):
    """Growth between polls smaller than the window minus the fingerprint: exactly the lines."""
    server = FakeServer(window)
    rx = Receiver(fmt="text", idle_timeout=None)
    poll = AdminPoll(rx, server.fetch, status=lambda: server.status, fingerprint=256, final_grace=0)
    counter, truth = Counter(), []
    for bodies, cutpos in writes:
        lines = counter.lines(bodies)
        data = "".join(line + "\n" for line in lines).encode()
        for piece in cut(data, [cutpos]):  # a reply may end inside a line or a UTF-8 character
            server.write("site-1", piece)
            poll.poll_once()
        truth += lines
    server.status = "FINISHED:ABORTED"
    poll.poll_once()
    got = rx.lines("site-1") if truth else []
    assert [ln.text for ln in got] == truth
    assert all(ln.kind == "log" for ln in got)


def test_adminpoll_gap_marker_when_the_window_slides_past_what_was_read():
    server = FakeServer(200)
    rx = Receiver(fmt="text", idle_timeout=None)
    poll = AdminPoll(rx, server.fetch, status=lambda: server.status, fingerprint=1024, final_grace=0)
    server.write("server", b"".join(b"first %d\n" % i for i in range(3)))
    poll.poll_once()
    server.write("server", b"".join(b"line %03d\n" % i for i in range(100)))  # 900 bytes > window
    poll.poll_once()
    got = texts(rx, "server")
    # the 200-byte window starts 2 bytes before the end of 'line 077\n': 78..99 are received
    assert got[:3] == ["first 0", "first 1", "first 2"]
    assert got[3] == (
        "[flarenb] … some lines not received (log truncated by the server to its last 200 bytes;"
        " at least 2 bytes skipped) …"
    )
    assert got[4:] == [f"line {i:03d}" for i in range(78, 100)]


def test_adminpoll_restart_marker_and_new_log_from_start():
    server = FakeServer(10_000)
    rx = Receiver(fmt="text", idle_timeout=None)
    poll = AdminPoll(rx, server.fetch, final_grace=0)
    server.write("server", b"old 1\nold 2\n")
    poll.poll_once()
    server.restart("server")
    server.write("server", b"new 1\n")
    poll.poll_once()
    server.write("server", b"new 2\n")
    poll.poll_once()
    assert texts(rx, "server") == [
        "old 1",
        "old 2",
        "[flarenb] … the log was restarted or replaced; showing the new log …",
        "new 1",
        "new 2",
    ]


def test_adminpoll_first_reply_already_truncated():
    server = FakeServer(20)
    rx = Receiver(fmt="text")
    poll = AdminPoll(rx, server.fetch)
    server.write("server", b"aaaaaaaaa\nbbbbbbbbb\nccccccccc\n")  # 30 bytes
    poll.poll_once()
    # the window starts exactly at 'bbbbbbbbb', but a cut line cannot be told from a whole one
    assert texts(rx, "server") == [
        "[flarenb] … older lines not received (log truncated by the server to its last 20 bytes;"
        " at least 10 bytes skipped) …",
        "ccccccccc",
    ]


def test_adminpoll_terminal_status_final_poll_unavailable_bytes_and_backoff():
    server = FakeServer(10_000)
    server.unavailable = {"site-2": "log not streamed"}
    status = ["RUNNING"]
    done = []
    rx = Receiver(fmt="text", on_done=lambda site, s: done.append((site, s.state, s.reason)))
    t = [0.0]
    poll = AdminPoll(
        rx,
        server.fetch,
        status=lambda: status[0],
        min_interval=0.3,
        max_interval=1.0,
        final_grace=2.0,
        clock=lambda: t[0],
    )
    server.write("server", b"one\ntwo, partial")
    assert poll.poll_once() == 1
    assert poll.interval == 0.3
    assert rx.site("site-2").state == "unavailable"
    poll.poll_once()
    assert poll.interval == pytest.approx(0.45)
    poll.poll_once()
    poll.poll_once()
    poll.poll_once()
    assert poll.interval == 1.0
    status[0] = "FINISHED:COMPLETED"
    poll.poll_once()  # terminal seen: final poll after the grace period
    assert not poll.finished
    t[0] = 2.0
    server.write("server", b" done")
    poll.poll_once()
    assert poll.finished
    assert texts(rx, "server") == ["one", "two, partial done"]
    assert sorted(done) == [("server", "ended", None), ("site-2", "ended", "log not streamed")]
    assert poll.bytes_read == 6 * len("one\ntwo, partial") + len("one\ntwo, partial done")
    assert poll.polls == 7


def test_adminpoll_job_not_found_ends_streams():
    class JobNotFound(Exception):
        pass

    def fetch(target):
        raise JobNotFound("job xyz does not exist")

    rx = Receiver()
    rx.feed("server", b"x\n")
    poll = AdminPoll(rx, fetch)
    poll.poll_once()
    assert poll.finished
    assert (rx.site("server").state, rx.site("server").reason) == ("ended", "job not found: job xyz does not exist")


def test_adminpoll_fetch_errors_are_shown_and_the_streams_resume_when_the_server_is_back():
    down = [True]

    def fetch(target):
        if down[0]:
            raise ConnectionError("server gone")
        return {"logs": {"server": "x\ny\n"}}

    rx = Receiver(idle_timeout=0.3, quiet_after=0.1, name="gone")
    rx.site("server")
    poll = AdminPoll(rx, fetch, min_interval=0.01, max_interval=0.05, name="gone").start()
    rx.start_watchdog(period=0.02)
    deadline = time.time() + 30
    while rx.problem is None and time.time() < deadline:
        time.sleep(0.02)
    assert rx.problem == "server unreachable: server gone"
    time.sleep(0.6)  # twice the idle timeout: the sender's silence is not observable, the stream stays open
    assert not rx.site("server").done
    down[0] = False
    while (rx.problem is not None or [ln.text for ln in rx.lines("server")] != ["x", "y"]) and time.time() < deadline:
        time.sleep(0.02)
    assert rx.problem is None and [ln.text for ln in rx.lines("server")] == ["x", "y"]
    poll.stop()
    rx.stop_watchdog()
    assert poll.errors >= 1 and isinstance(poll.last_error, type(None))
    assert not [t for t in threading.enumerate() if t.name.endswith("-gone")]


def test_logcursor_prefers_exact_offset_and_handles_crlf():
    c = LogCursor(fingerprint=64)
    assert c.take("a\r\nb\r\nc") == [("text", "a\r\nb\r\n")]
    assert c.take("a\r\nb\r\nc\r\n") == [("text", "c\r\n")]
    assert c.take("a\r\nb\r\nc\r\n") == []
    assert c.take("a\r\nb\r\nc\r\nd", final=True) == [("text", "d")]


def test_logcursor_after_a_gap_never_repeats_a_line_it_showed():
    """Found by the sliding-window property: the window cut into the line before the last one shown, and the
    overlap (that line's tail and the last one) was too short to be trusted as the continuation. The reply then
    restarts at its first complete line: the last one shown, which must not come twice."""
    c = LogCursor(fingerprint=1024)
    shown = "1:" + "x" * 40 + "\n2:ab\n3:cdefg\n4:ÓyÌ€aü€Oò€Ê€\n5:êÇòC€Þ€¨€€\n"
    assert c.take(shown + "6:Å]") == [("text", shown)]
    later = "".join(f"{i}:line {i}\n" for i in range(7, 20))
    cut = "yÌ€aü€Oò€Ê€\n"  # the window starts inside line 4; with line 5 that is 25 characters, too few to trust
    reply = "... output truncated to last 300 bytes ...\n" + cut + "5:êÇòC€Þ€¨€€\n6:Å]x\n" + later
    out = c.take(reply)
    assert out[0] == (
        "marker",
        "[flarenb] … some lines not received (log truncated by the server to its last 300 bytes;"
        f" at least {len(cut.encode())} bytes skipped) …",
    )
    assert out[1:] == [("text", "6:Å]x\n" + later)]


# ------------------------------------------------------------------------------ follower
def flarenb_threads():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("flarenb-"))


def test_follower_is_shared_and_stopped_by_the_last_release():
    server = FakeServer(10_000)
    server.write("server", b"hello\n")
    made = []

    def factory(rx):
        made.append(rx)
        return AdminPoll(rx, server.fetch, min_interval=0.01, name="jobF")

    before = flarenb_threads()
    h1 = follower.follow("jobF", factory)
    h2 = follower.follow("jobF", factory)
    assert len(made) == 1 and h1.receiver is h2.receiver
    assert follower.active_followers() == {"jobF": 2}
    assert "flarenb-poll-jobF" in flarenb_threads() and "flarenb-watchdog-jobF" in flarenb_threads()
    seen = []
    h2.subscribe(seen.append)
    deadline = time.time() + 5
    while not h1.receiver.lines("server") and time.time() < deadline:
        time.sleep(0.01)
    h1.release()
    h1.release()  # idempotent
    assert follower.active_followers() == {"jobF": 1}
    assert "flarenb-poll-jobF" in flarenb_threads()
    h2.release()
    assert follower.active_followers() == {}
    assert flarenb_threads() == before
    assert h2.receiver.site("server").state == "stopped"
    assert [ln.text for u in seen for ln in u.lines] == ["hello"]


def test_follower_rerun_cell_leaves_no_threads():
    server = FakeServer(10_000)
    before = flarenb_threads()
    for _ in range(5):  # a cell rerun: release the old handle, follow again
        h = follower.follow("jobR", lambda rx: AdminPoll(rx, server.fetch, min_interval=0.01, name="jobR"))
        h.release()
    assert flarenb_threads() == before
    with follower.follow("jobR", lambda rx: AdminPoll(rx, server.fetch, name="jobR")):
        assert follower.active_followers() == {"jobR": 1}
    assert follower.active_followers() == {}
    h = follower.follow("jobS", lambda rx: AdminPoll(rx, server.fetch, name="jobS"))
    follower.stop_all()
    assert follower.active_followers() == {} and flarenb_threads() == before
    h.release()


def test_follower_finished_job_is_shared_timed_out_one_is_replaced():
    server = FakeServer(10_000)
    server.write("server", b"x\n")
    server.status = "FINISHED:COMPLETED"

    def factory(rx):
        return AdminPoll(rx, server.fetch, status=lambda: server.status, final_grace=0, name="jobE")

    h1 = follower.follow("jobE", factory)
    deadline = time.time() + 5
    while not h1.transport.finished and time.time() < deadline:
        time.sleep(0.01)
    h2 = follower.follow("jobE", factory)
    assert h2.receiver is h1.receiver  # ended normally: its lines are still valid
    h1.receiver.site("late")  # a site that never ends ...
    h1.receiver._close("late", "timed_out", "gone")
    h3 = follower.follow("jobE", factory)
    assert h3.receiver is not h1.receiver
    for h in (h1, h2, h3):
        h.release()
    assert follower.active_followers() == {}


def test_release_from_a_callback_on_the_transport_thread_does_not_deadlock():
    server = FakeServer(10_000)
    server.write("server", b"a\n")
    released = threading.Event()
    holder = {}

    def on_update(u):
        if u.lines and "h" in holder:
            holder["h"].release()  # runs on flarenb-poll-jobCB while the receiver lock is held
            released.set()

    h = follower.follow("jobCB", lambda rx: AdminPoll(rx, server.fetch, min_interval=0.01, name="jobCB"))
    holder["h"] = h
    h.subscribe(on_update, replay=False)
    server.write("server", b"b\n")
    assert released.wait(5)
    deadline = time.time() + 5
    while any(n.endswith("-jobCB") for n in flarenb_threads()) and time.time() < deadline:
        time.sleep(0.01)
    assert not any(n.endswith("-jobCB") for n in flarenb_threads())
    assert follower.active_followers() == {}
    assert h.receiver.site("server").state == "stopped"


def test_localtail_waiting_site_does_not_time_out_while_tailing(tmp_path):
    clock = [0.0]
    rx = Receiver(idle_timeout=60, clock=lambda: clock[0])
    tail = LocalTail(rx, {"site-1": str(tmp_path / "later.txt")})
    for step in range(10):
        clock[0] = step * 30.0
        tail.poll_once()
        rx.tick()
    assert rx.site("site-1").state == "waiting"
    (tmp_path / "later.txt").write_bytes(b"finally\n")
    tail.poll_once()
    assert texts(rx, "site-1") == ["finally"]
