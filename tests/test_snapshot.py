"""The static snapshot renderer (flarenb/snapshot.py) from plain data: no widget, no comm."""

from __future__ import annotations

from flarenb import snapshot
from flarenb.snapshot import LINE_PREFIX, Snapshot, render, site_lines

HOSTILE = "<script>alert(1)</script> & <img src=x onerror=alert(1)> &amp;"


def finished(**kwargs):
    args = {"job_id": "job-1", "job_name": "hello", "live": False, "status": "FINISHED:COMPLETED"}
    return render(**{**args, **kwargs})


def test_while_following_the_snapshot_is_the_title_only():
    snap = render("job-7", live=True, sites=["server"], lines={"server": ["a live line"]})
    assert snap == Snapshot("flarenb job job-7 — following live; this snapshot is replaced when the job ends", [])
    assert snap.text() == snap.header
    named = render("job-7", "hello", live=True, problem="server unreachable: refused")
    assert named.header == (
        "flarenb job hello (job-7) — following live; this snapshot is replaced when the job ends"
        " — server unreachable: refused"
    )


def test_the_header_says_status_problem_times_and_site_states():
    snap = finished(
        problem="job not found",
        submit_time="2024-05-01 12:00:00",
        duration="0:00:42",
        sites=["server", "site-1", "site-2"],
        site_states={"server": {"state": "done"}, "site-2": {"state": "unavailable", "reason": "no route"}},
    )
    assert snap.header == (
        "flarenb job hello (job-1) — FINISHED:COMPLETED — job not found — submitted 2024-05-01 12:00:00"
        " — duration 0:00:42\nsites: server: done · site-2: unavailable (no route)"
    )
    assert finished(sites=["server"]).header == "flarenb job hello (job-1) — FINISHED:COMPLETED"


def test_sites_are_shown_server_first_then_in_natural_order():
    snap = finished(sites=["site-10", "site-2", "server", "site-1", "site-2"])
    assert [site for site, _ in snap.blocks] == ["server", "site-1", "site-2", "site-10"]
    assert snap.lines()[1::2] == [f"===== {s} =====" for s in ("server", "site-1", "site-2", "site-10")]
    states = {"site-10": {"state": "done"}, "server": {"state": "done"}}
    head = finished(sites=["site-10", "server"], site_states=states).header
    assert head.endswith("sites: server: done · site-10: done")


def test_a_hostile_site_and_line_stay_text_escaped_in_html():
    site = "<b>site</b>\x1b[2J"
    snap = finished(
        sites=[site],
        site_states={site: {"state": "unavailable", "reason": "<i>x</i>"}},
        lines={site: [HOSTILE, "\x1b]52;c;ZXZpbA==\x07ok\x00"]},
    )
    assert snap.blocks == [("<b>site</b>", [LINE_PREFIX + HOSTILE, LINE_PREFIX + "ok␀"])]
    page = snap.html()
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page and "<img" not in page
    assert "===== &lt;b&gt;site&lt;/b&gt; =====" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; &amp;amp;" in page
    assert "unavailable (&lt;i&gt;x&lt;/i&gt;)" in page
    text = snap.text()
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert f"===== <b>site</b> =====\n{LINE_PREFIX}{HOSTILE}" in text  # text/plain keeps the text as it is


def test_the_html_wraps_the_same_text_in_pre_blocks():
    snap = finished(sites=["server", "site-1"], lines={"server": ["a", "b"]})
    assert snap.html() == (
        '<div class="flarenb-logview-static">'
        "<pre><strong>flarenb job hello (job-1) — FINISHED:COMPLETED</strong></pre>"
        f"<pre>===== server =====\n{LINE_PREFIX}a\n{LINE_PREFIX}b</pre>"
        "<pre>===== site-1 =====\n(no lines)</pre>"
        "</div>"
    )


def test_the_tail_keeps_the_last_lines_and_counts_the_earlier_ones():
    lines = [f"round {i}" for i in range(1, 26)]
    assert site_lines(lines, 3) == ["│ … 22 earlier lines", "│ round 23", "│ round 24", "│ round 25"]
    assert site_lines(lines, 100) == [f"│ round {i}" for i in range(1, 26)]
    assert site_lines(lines, 0) == ["│ … 25 earlier lines"]
    assert site_lines(lines, -8) == ["│ … 25 earlier lines"]  # a negative tail shows no lines
    assert site_lines([], 20) == ["(no lines)"]
    # only the last lines given: the count of all received says how many came before
    assert site_lines(lines[-2:], 2, received=1000) == ["│ … 998 earlier lines", "│ round 24", "│ round 25"]
    assert site_lines(lines[-1:], 1, received=50, dropped=7) == [
        "│ … 49 earlier lines (7 dropped from history: download for the complete log)",
        "│ round 25",
    ]


def test_render_applies_the_tail_per_site():
    snap = finished(
        sites=["server", "site-1"],
        lines={"server": ["s1", "s2", "s3"], "site-1": ["c1"]},
        received={"server": 10},
        tail=2,
    )
    assert snap.lines() == [
        "flarenb job hello (job-1) — FINISHED:COMPLETED",
        "===== server =====",
        "│ … 8 earlier lines",
        "│ s2",
        "│ s3",
        "===== site-1 =====",
        "│ c1",
    ]


def test_the_title_without_a_name_is_the_id():
    assert snapshot.title("job-3") == "flarenb job job-3"
    assert snapshot.title("job-3", "n") == "flarenb job n (job-3)"
