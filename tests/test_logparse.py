"""flarenb.logparse's batch parsing gives what the per-line regex defines (pure, no threads)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from flarenb.logparse import _HEAD_RE, _WINDOW, Line, text_lines
from flarenb.receiver import Receiver

NAMES = st.sampled_from(["ClientRunner", "A", "a - b", "x - INFO", "é" * 5, "n" * (_WINDOW - 40), "n" * (_WINDOW - 36)])
TS = st.sampled_from(
    [
        "2026-05-01 12:00:00,001",
        "2026-05-01T12:00:00",
        "[2026-05-01 12:00:00,123]",
        "2026-05-01 12:00:00,0012",
        "٢٠٢٦-05-01 12:00:00,001",
    ]
)
LEVEL = st.sampled_from(["INFO", "ERROR", "DEBUG", "WARNING", "CRITICAL", "info", "NOTICE"])
MSG = st.lists(st.sampled_from([*"ab -0INFOERé[]", " - INFO - ", " - ERROR - "]), max_size=40).map("".join)
LOG_LINE = st.one_of(
    st.builds(lambda ts, n, lv, m: f"{ts} - {n} - {lv} - {m}", TS, NAMES, LEVEL, MSG),
    st.builds(lambda ts, lv, m: f"{ts} - {lv} - {m}", TS, LEVEL, MSG),
    st.builds(lambda ts, m: f"{ts}{m}", TS, MSG),
    MSG,
)
OUTCOMES: dict = {}  # shared by every example, as a stream's cache is shared by its batches


def reference(parts, level):
    """One _HEAD_RE match per line; continuation lines inherit the level."""
    out = []
    for t in parts:
        m = _HEAD_RE.match(t)
        if m is not None:
            level = m.group(2)
        out.append((t, level, m.group(1) if m else None))
    return out, level


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(LOG_LINE, min_size=1, max_size=12), level=st.sampled_from([None, "ERROR"]))
def test_batch_parsing_is_the_per_line_regex(parts, level):
    lines, last, _ts_bytes = text_lines("s", 7, level, parts, 65_536, OUTCOMES)
    want, want_last = reference(parts, level)
    assert [(ln.text, ln.level, ln.ts) for ln in lines] == want
    assert last == want_last
    assert [ln.seq for ln in lines] == list(range(8, 8 + len(parts)))
    assert all(type(ln) is Line and ln.site == "s" and ln.kind == "log" and not ln.truncated for ln in lines)


def test_an_over_long_partial_line_loses_one_trailing_cr_as_before():
    rx = Receiver(fmt="text", max_line_chars=5)
    rx.feed("s", b"abcde\r")  # a partial line of 6 characters: cut now, the rest skipped
    rx.feed("s", b"zz\nok\r\n")
    assert [(ln.text, ln.truncated) for ln in rx.lines("s")] == [("abcde", False), ("ok", False)]


def test_memory_account_follows_lines_in_and_out():
    rx = Receiver(fmt="text", max_lines=50, max_bytes=20_000)
    for i in range(200):
        rx.feed(
            f"site-{i % 3}",
            "".join(f"2026-05-01 12:00:00,{j:03d} - X - INFO - line {i} {j}\n" for j in range(7)).encode(),
        )
        rx.marker("site-0", "[flarenb] gap")
    sites = [rx.site(f"site-{k}") for k in range(3)]
    assert rx.nbytes == sum(s.nbytes for s in sites) <= 20_000
    assert all(0 < len(s.lines) <= 50 and s.nbytes > 0 for s in sites)
    assert all(s.total - s.dropped == len(s.lines) for s in sites)
    assert all(
        sum(n for n, _ in s._batches) == len(s.lines) and sum(b for _, b in s._batches) == s.nbytes for s in sites
    )


def test_lines_decided_past_the_window_edge_are_parsed_like_the_regex():
    ts = "2026-05-01 12:00:00,001"
    parts = []
    for n in range(_WINDOW - 45, _WINDOW - 15):  # the level ends just before, at, or after the window's end
        parts.append(f"{ts} - {'n' * n} - WARNING - x")
        parts.append(f"{ts} - INFO - {'m' * n} - ERROR - x")  # the later level wins (_HEAD_RE's lazy group)
        parts.append(f"{ts} - {'n' * n} - nope - {'m' * n} - DEBUG - y")
        parts.append(f"{ts} - {'n' * n}")
    outcomes: dict = {}
    for _ in range(2):  # the second time from the cache
        lines, _last, _ts_bytes = text_lines("s", 0, None, parts, 65_536, outcomes)
        assert [(ln.text, ln.level, ln.ts) for ln in lines] == reference(parts, None)[0]
