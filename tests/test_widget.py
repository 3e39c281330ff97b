"""LogView (flarenb/widget.py) with a fake comm: no kernel, no front end."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import sys
import threading
import time
from dataclasses import dataclass

import pytest

import flarenb.widget as widget_mod
from flarenb.widget import BUILD_HINT, LogLine, LogView

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class FakeComm:
    """Records every message the widget sends, with the time it was sent."""

    kernel = "fake"

    def __init__(self, **kwargs: object) -> None:
        self.comm_id = "fake-comm"
        self.sent: list[tuple[float, dict]] = []
        self.handler = None
        self._lock = threading.Lock()
        self.closed = False

    def send(self, data=None, metadata=None, buffers=None) -> None:
        with self._lock:
            self.sent.append((time.monotonic(), data))

    def on_msg(self, callback) -> None:
        self.handler = callback

    def open(self, *args, **kwargs) -> None:
        pass

    def close(self, *args, **kwargs) -> None:
        self.closed = True

    # helpers
    def messages(self) -> list[tuple[float, dict]]:
        with self._lock:
            return list(self.sent)

    def custom(self, kind: str | None = None) -> list[dict]:
        return [
            d["content"]
            for _, d in self.messages()
            if d.get("method") == "custom" and (kind is None or d["content"].get("kind") == kind)
        ]

    def updates(self, key: str) -> list:
        return [
            d["state"][key] for _, d in self.messages() if d.get("method") == "update" and key in d.get("state", {})
        ]

    def from_frontend(self, content: dict) -> None:
        self.handler({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def make(views: list[LogView], fake_comm: list[FakeComm], *args, **kwargs) -> tuple[LogView, FakeComm]:
    view = LogView(*args, **kwargs)
    views.append(view)
    return view, fake_comm[-1]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def wire_bytes(data: dict) -> int:
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


# ---------------------------------------------------------------------------- budget


def test_50000_lines_stay_within_10_msgs_and_500kb_per_second(fake_comm, views):
    sites = ["server", "site-1", "site-2", "site-3", "site-4"]
    view, c = make(views, fake_comm, "job-1", "busy", sites)
    start_count = len(c.messages())
    per_site = 10_000
    payload = "x" * 90

    def writer() -> None:  # 25,000 lines/s for 2 s, from a background thread
        for chunk in range(0, per_site, 250):
            for site in sites:
                view.append(
                    site,
                    [(seq, f"{seq:06d} {payload}", "INFO", None) for seq in range(chunk + 1, chunk + 251)],
                )
            time.sleep(0.05)

    t = threading.Thread(target=writer)
    t.start()
    t.join()
    view.close_follow("FINISHED:COMPLETED")
    wait_for(lambda: not view._thread.is_alive(), timeout=20)

    msgs = c.messages()[start_count:]
    # any 1-second window: at most 10 messages and 500 KB (content; the envelope is budgeted too)
    for i, (t0, _) in enumerate(msgs):
        window = [d for (ts, d) in msgs[i:] if ts - t0 < 1.0]
        assert len(window) <= 10
        assert sum(wire_bytes(d) for d in window) <= 500_000
    # nothing disappears silently: every seq of every site was either sent or in a skip marker
    seen: dict[str, list[int]] = {s: [] for s in sites}
    markers = 0
    for content in c.custom("lines"):
        for site, items in content["sites"].items():
            for item in items:
                if isinstance(item, list):
                    seen[site].append(item[0])
                else:
                    markers += 1
                    assert item["last"] - item["first"] + 1 == item["skipped"]
                    seen[site].extend(range(item["first"], item["last"] + 1))
    for site in sites:
        assert seen[site] == list(range(1, per_site + 1)), site
    assert markers > 0  # 5.6 MB in ~3 s cannot fit: the view was told what it missed
    assert sum(view.skipped.values()) > 0
    assert view.line_counts == {s: per_site for s in sites}
    assert len(view.lines("site-3")) == per_site  # still downloadable


def test_slow_trickle_is_coalesced_and_nothing_is_skipped(fake_comm, views):
    view, c = make(views, fake_comm, "job-2", sites=["server"])
    t0 = time.monotonic()
    for seq in range(1, 201):
        view.append("server", [(seq, f"line {seq}", "INFO", None)])
        time.sleep(0.0025)
    view.close_follow()
    wait_for(lambda: not view._thread.is_alive())
    elapsed = time.monotonic() - t0
    batches = c.custom("lines")
    assert len(batches) <= int(elapsed * 10) + 2
    sent = [item for b in batches for item in b["sites"]["server"]]
    assert [i[0] for i in sent] == list(range(1, 201))
    assert all(isinstance(i, list) for i in sent)
    assert view.skipped == {"server": 0}


def test_huge_line_is_cut_for_the_browser_but_downloadable(fake_comm, views, tmp_path):
    view, c = make(views, fake_comm, "job-3", max_line_chars=100)
    big = "é" * 300_000
    view.append("site-1", [(1, big, "INFO", None), (2, "after", None, None)])
    view.close_follow()
    wait_for(lambda: not view._thread.is_alive())
    items = [i for b in c.custom("lines") for i in b["sites"]["site-1"]]
    assert items[0][1] == "é" * 100 + " … [299900 more characters in the download]"
    assert items[1] == [2, "after", None, None]
    (path,) = view.download(tmp_path)
    assert path.read_text(encoding="utf-8") == big + "\nafter\n"


# ---------------------------------------------------------------------------- lifecycle


def test_flusher_thread_stops_on_close(fake_comm, views):
    view, c = make(views, fake_comm, "job-4")
    assert view._thread is None  # started lazily
    view.append("server", ["one"])
    assert view._thread is not None and view._thread.is_alive()
    wait_for(lambda: c.custom("lines"))
    thread = view._thread
    view.close()
    assert not thread.is_alive()
    assert c.closed
    before = len(c.messages())
    view.append("server", ["after close"])
    time.sleep(0.3)
    assert len(c.messages()) == before
    assert view._thread is thread and not thread.is_alive()
    assert [x.text for x in view.lines("server")] == ["one", "after close"]


def test_idle_flusher_sends_nothing_until_new_lines_arrive(fake_comm, views):
    view, c = make(views, fake_comm, "job-13", snapshot_interval=0.1)
    view.append("server", ["a"])
    wait_for(lambda: c.updates("snapshot") and c.custom("lines"))
    time.sleep(0.15)
    settled = len(c.messages())
    time.sleep(0.5)
    assert len(c.messages()) == settled  # no polling traffic while nothing happens
    assert view._thread.is_alive()
    view.append("server", ["b"])
    wait_for(lambda: len(c.custom("lines")) == 2)
    assert c.custom("lines")[1] == {"kind": "lines", "sites": {"server": [[2, "b", None, None]]}}


def test_close_follow_sends_the_rest_and_a_final_snapshot(fake_comm, views):
    view, c = make(views, fake_comm, "job-5", sites=["server", "site-1"], snapshot_lines=3)
    view.set_status("RUNNING", start_time=1000.0)
    view.append("site-1", [(i, f"l{i}", "INFO", f"t{i}") for i in range(1, 6)])
    view.close_follow("FINISHED:COMPLETED")
    wait_for(lambda: not view._thread.is_alive())
    assert view.live is False
    assert view.status == "FINISHED:COMPLETED"
    assert view.end_ts is not None and view.end_ts > 1000.0
    assert view.snapshot == {"site-1": [[3, "l3", "INFO", "t3"], [4, "l4", "INFO", "t4"], [5, "l5", "INFO", "t5"]]}
    assert view.line_counts == {"site-1": 5}
    assert c.updates("live") == [False]


# ---------------------------------------------------------------------------- receiver API


def test_status_times_and_site_states(fake_comm, views):
    view, c = make(views, fake_comm, "job-6", "name", ["site-10", "site-2", "server"])
    assert view.sites == ["server", "site-2", "site-10"]
    view.set_status("SUBMITTED", submit_time="2024-05-01T12:00:00+00:00")
    assert view.submit_time == "2024-05-01T12:00:00+00:00"
    assert view.start_ts == 1714564800.0  # elapsed counts from the submission until started
    view.set_status("RUNNING", start_time="2024-05-01T12:00:30+00:00")
    assert view.start_ts == 1714564830.0
    view.set_status("FINISHED:EXECUTION_EXCEPTION", end_time=1714564900, duration="0:01:10")
    assert (view.end_ts, view.duration) == (1714564900.0, "0:01:10")

    view.set_site_state("site-2", "silent")
    view.set_site_state("site-2", "quiet", quiet_for=5)
    view.set_site_state("site-2", "quiet", quiet_for=6)  # same quiet period: no resync
    view.set_site_state("site-3", "unavailable", reason="connection refused")
    assert view.sites == ["server", "site-2", "site-3", "site-10"]
    assert view.site_states["site-3"] == {"state": "unavailable", "reason": "connection refused", "since": None}
    assert view.site_states["site-2"]["state"] == "quiet"
    assert abs(time.time() - 5 - view.site_states["site-2"]["since"]) < 1.5
    assert [list(s) for s in c.updates("site_states")] == [["site-2"], ["site-2"], ["site-2", "site-3"]]


def test_a_finished_job_viewed_later_shows_its_duration_not_the_time_since_submit(fake_comm, views):
    view, _ = make(views, fake_comm, "job-6b")
    # what live.LogView passes for a job that ran 11 s and ended minutes before the view was opened
    view.set_status(
        "FINISHED:COMPLETED",
        submit_time="2024-05-01T12:00:00+00:00",
        start_time="2024-05-01T12:00:01+00:00",
        duration="0:00:11.250000",
    )
    assert view.start_ts == 1714564801.0
    assert view.end_ts - view.start_ts == 11.25
    # a later status poll does not move the end either
    view.set_status("FINISHED:COMPLETED", duration="0:00:11.250000")
    assert view.end_ts - view.start_ts == 11.25


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0:00:09.334051", 9.334051),
        ("1 day, 2:03:04", 93784.0),
        ("3 days, 0:00:01.5", 259201.5),
        ("N/A", None),
        ("", None),
        (None, None),
        (7, 7.0),
    ],
)
def test_duration_seconds_reads_nvflares_timedelta_text(text, seconds):
    from flarenb.widget import _duration_seconds

    assert _duration_seconds(text) == (pytest.approx(seconds) if seconds is not None else None)


@dataclass
class ReceiverLine:
    seq: int
    text: str
    level: str | None
    ts: str | None


def test_append_accepts_every_line_form_and_ignores_duplicates(fake_comm, views):
    view, _ = make(views, fake_comm, "job-7")
    n = view.append(
        "server",
        [
            LogLine(1, "a", "INFO", "t1"),
            (2, "b\n", "warn"),
            {"seq": 3, "text": "c", "level": "error", "ts": None},
            ReceiverLine(4, "d", "bogus", "t4"),
            "e",
            (3, "duplicate", None, None),
        ],
    )
    assert n == 5
    assert view.lines("server") == [
        LogLine(1, "a", "INFO", "t1"),
        LogLine(2, "b", "WARNING", None),
        LogLine(3, "c", "ERROR", None),
        LogLine(4, "d", None, "t4"),
        LogLine(5, "e", None, None),
    ]


# ---------------------------------------------------------------------------- static snapshot


def snapshot_view(views, fake_comm) -> LogView:
    view, _ = make(views, fake_comm, "job-8", "hello-numpy", ["server", "site-1", "site-2"])
    view.set_status("FINISHED:COMPLETED", submit_time="2024-05-01 12:00:00", end_time=1.0, duration="0:00:42")
    view.close_follow()
    view.set_site_state("server", "done")
    view.set_site_state("site-2", "unavailable", reason="no route")
    view.append("server", [(i, f"\x1b[32mround {i}\x1b[0m", "INFO", None) for i in range(1, 26)])
    view.append("site-1", [(1, "<script>alert(1)</script> & <img src=x onerror=alert(1)> &amp;", "ERROR", None)])
    return view


def test_mimebundle_has_plain_and_html_snapshots_and_the_widget_view(fake_comm, views):
    view = snapshot_view(views, fake_comm)
    data, _metadata = view._repr_mimebundle_()
    assert data[WIDGET_MIME]["model_id"] == view.model_id
    assert data["text/plain"] == "\n".join(
        [
            "flarenb job hello-numpy (job-8) — FINISHED:COMPLETED — submitted 2024-05-01 12:00:00 — duration 0:00:42",
            "sites: server: done · site-2: unavailable (no route)",
            "===== server =====",
            "│ … 5 earlier lines",
            *[f"│ round {i}" for i in range(6, 26)],
            "===== site-1 =====",
            "│ <script>alert(1)</script> & <img src=x onerror=alert(1)> &amp;",
            "===== site-2 =====",
            "(no lines)",
        ]
    )
    rounds = "\n".join(f"│ round {i}" for i in range(6, 26))
    assert data["text/html"] == (
        '<div class="flarenb-logview-static">'
        "<pre><strong>flarenb job hello-numpy (job-8) — FINISHED:COMPLETED — submitted 2024-05-01 12:00:00"
        " — duration 0:00:42\nsites: server: done · site-2: unavailable (no route)</strong></pre>"
        f"<pre>===== server =====\n│ … 5 earlier lines\n{rounds}</pre>"
        "<pre>===== site-1 =====\n│ &lt;script&gt;alert(1)&lt;/script&gt; &amp; "
        "&lt;img src=x onerror=alert(1)&gt; &amp;amp;</pre>"
        "<pre>===== site-2 =====\n(no lines)</pre>"
        "</div>"
    )
    assert "<script>" not in data["text/html"]
    # deterministic: the same lines give the same snapshot, later too
    time.sleep(0.05)
    assert view._repr_mimebundle_()[0]["text/plain"] == data["text/plain"]
    assert view.snapshot_text(tail=1).splitlines()[3:5] == ["│ … 24 earlier lines", "│ round 25"]


def test_while_following_the_snapshot_is_the_title_only(fake_comm, views):
    view, _ = make(views, fake_comm, "job-7")
    view.append("server", ["racy live line"])
    data = view._repr_mimebundle_()[0]
    assert data["text/plain"] == "flarenb job job-7 — following live; this snapshot is replaced when the job ends"
    view.close_follow("FINISHED:COMPLETED")
    assert "│ racy live line" in view._repr_mimebundle_()[0]["text/plain"]


def test_hostile_site_names_are_escaped_in_html(fake_comm, views):
    view, _ = make(views, fake_comm, "job-9")
    view.append("<b>site</b>", ["x"])
    view.close_follow()
    html = view._repr_mimebundle_()[0]["text/html"]
    assert "===== &lt;b&gt;site&lt;/b&gt; =====" in html
    assert "<b>" not in html


# ---------------------------------------------------------------------------- downloads


def test_default_download_writes_per_site_files_with_safe_names(fake_comm, views, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    view, c = make(views, fake_comm, "job/../10", sites=["server"])
    view.append("server", ["s1", "s2"])
    view.append("../evil", ["e1"])
    c.from_frontend({"kind": "download", "request_id": "r1"})
    wait_for(lambda: c.custom("download_result"))
    (reply,) = c.custom("download_result")
    assert reply == {
        "kind": "download_result",
        "request_id": "r1",
        "paths": ["job_.._10_logs/server.log", "job_.._10_logs/_evil-8bf37120.log"],  # renamed: hash of the name
        "error": None,
    }
    assert (tmp_path / "job_.._10_logs" / "server.log").read_text() == "s1\ns2\n"
    assert (tmp_path / "job_.._10_logs" / "_evil-8bf37120.log").read_text() == "e1\n"
    assert view.downloads == {"paths": reply["paths"], "error": None}


def test_download_uses_the_receivers_callback_and_reports_errors(fake_comm, views, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    view, c = make(views, fake_comm, "job-11")
    calls = []

    def write_all(directory: pathlib.Path) -> list[pathlib.Path]:
        calls.append(directory)
        path = directory / "server.log"
        path.write_text("complete\n")
        return [path]

    view.on_download(write_all)
    assert view.download() == [tmp_path / "job-11_logs" / "server.log"]
    assert calls == [tmp_path / "job-11_logs"]

    def broken(directory: pathlib.Path) -> list[str]:
        raise PermissionError("read-only file system")

    view.on_download(broken)
    c.from_frontend({"kind": "download", "request_id": "r2"})
    wait_for(lambda: c.custom("download_result"))
    assert c.custom("download_result") == [
        {"kind": "download_result", "request_id": "r2", "paths": [], "error": "PermissionError: read-only file system"}
    ]


# ---------------------------------------------------------------------------- missing bundle


def test_frontend_sources_fall_back_when_the_bundle_is_missing(tmp_path):
    esm, css = widget_mod._frontend_sources(tmp_path)
    assert css == ""
    assert json.dumps(BUILD_HINT) in esm
    assert "npm --prefix js ci && npm --prefix js run build" in BUILD_HINT
    assert "pip install -e ." in BUILD_HINT
    assert "innerHTML" not in esm
    (tmp_path / "widget.js").write_text("export default {}")
    (tmp_path / "widget.css").write_text("")
    assert widget_mod._frontend_sources(tmp_path) == (tmp_path / "widget.js", tmp_path / "widget.css")


def test_module_imports_and_renders_the_hint_without_a_bundle(tmp_path, fake_comm):
    copy = tmp_path / "unbuilt_widget.py"  # a copy whose static/ folder does not exist
    shutil.copy(widget_mod.__file__, copy)
    spec = importlib.util.spec_from_file_location("flarenb.unbuilt_widget", copy)  # in the package: its imports
    mod = importlib.util.module_from_spec(spec)
    sys.modules["flarenb.unbuilt_widget"] = mod
    try:
        spec.loader.exec_module(mod)
        view = mod.LogView("job-12")
        try:
            assert view._esm == mod._FALLBACK_ESM
            assert view._css == ""
        finally:
            view.close()
    finally:
        del sys.modules["flarenb.unbuilt_widget"]


def test_a_bulk_of_lines_reaches_the_browser_whole_even_with_a_snapshot_due(fake_comm, views):
    """A whole log appended at once (a finished job's download) then the end: the browser, which drops any line
    at or below the last seq it has, must still get every line — the snapshot never runs ahead of pending lines."""
    view, c = make(views, fake_comm, "job-bulk", sites=["server"], snapshot_lines=5, snapshot_interval=0.05)
    view.append("server", ["first"])
    wait_for(lambda: c.custom("lines"))
    time.sleep(0.2)  # a snapshot is due when the bulk arrives
    view.append("server", [f"line {i}" for i in range(2, 401)])
    view.close_follow("FINISHED:COMPLETED")
    wait_for(lambda: not view._thread.is_alive())
    last, seen, gaps = 0, [], 0
    for _, d in c.messages():  # what js/src/store.ts does with lines messages and snapshot updates, in order
        if d.get("method") == "custom" and d["content"].get("kind") == "lines":
            rows = d["content"]["sites"].get("server", [])
        elif d.get("method") == "update" and "snapshot" in d.get("state", {}):
            rows = d["state"]["snapshot"].get("server", [])
        else:
            continue
        for row in rows:
            if row[0] <= last:
                continue
            gaps += row[0] > last + 1
            last = row[0]
            seen.append(row[0])
    assert gaps == 0 and seen == list(range(1, 401))
    assert [r[0] for r in view.snapshot["server"]] == [396, 397, 398, 399, 400]  # the final snapshot


def test_the_text_snapshot_cannot_drive_a_terminal(fake_comm, views):
    """A remote site's escape sequences (OSC 52 sets the clipboard, CSI moves the cursor) and control characters
    never reach a saved notebook's text/plain output, nor ``snapshot_text``; a negative tail shows no lines."""
    view, _ = make(views, fake_comm, "job-9", sites=["server", "site\x1b[2J-1"])
    view.append("server", ["ok \x1b]52;c;ZXZpbA==\x07copied", "\x1b[31mred\x1b[0m\rhidden\x00"])
    view.append("site\x1b[2J-1", ["plain"])
    view.close_follow("FINISHED:COMPLETED")
    for text in (view.snapshot_text(), view._repr_mimebundle_()[0]["text/plain"]):
        assert "\x1b" not in text and "\x00" not in text and "\r" not in text
        assert "│ ok copied" in text and "│ red␍hidden␀" in text and "===== site-1 =====" in text
    assert view.snapshot_text(tail=-8).splitlines()[1:] == [
        "===== server =====",
        "│ … 2 earlier lines",
        "===== site-1 =====",
        "│ … 1 earlier lines",
    ]
