"""Kernel-served search of a live view (flarenb/viewsearch.py, LogView's ``search`` message): lines the browser
never received (skip markers) or no longer holds are still found, within the message budget, as text."""

from __future__ import annotations

import time

from test_widget import make, wait_for

from flarenb.intake import LogLine
from flarenb.viewsearch import MAX_RESULTS, answer, parse_request


def hist(site_lines: dict[str, list[tuple[str, str | None]]]) -> dict[str, list[LogLine]]:
    return {
        s: [LogLine(i + 1, text, level, None) for i, (text, level) in enumerate(rows)] for s, rows in site_lines.items()
    }


def ask(history, **content):
    req = parse_request({"request_id": "r", **content}, list(history))
    return answer(req, history, {s: 0 for s in history}, max_chars=8000, budget=50_000)


def test_search_is_case_insensitive_skips_held_runs_and_escape_sequences():
    h = hist(
        {
            "server": [("Round 1 started", "INFO"), ("round 2 started", "INFO"), ("other", "INFO")],
            "site-1": [("\x1b[31mRO\x1b[0mUND 9", "WARNING"), ("no", "INFO")],
        }
    )
    r = ask(h, query="rOuNd", held={"server": [[2, 3]]})
    assert [(x[0], x[1]) for x in r["lines"]] == [("server", 1), ("site-1", 1)]
    assert r["matches"] == 2 and not r["truncated"] and r["error"] is None
    assert r["lines"][1][2] == "\x1b[31mRO\x1b[0mUND 9"  # sent as the line's text; the browser renders text


def test_level_filter_counts_a_traceback_without_level_as_an_error_and_sites_restrict():
    h = hist(
        {
            "server": [("fine", "INFO"), ("bad", "ERROR"), ("Traceback (most recent call last):", None)],
            "site-1": [("worse", "CRITICAL"), ("warn", "WARNING")],
        }
    )
    r = ask(h, min_level="error")
    assert sorted((x[0], x[1]) for x in r["lines"]) == [("server", 2), ("server", 3), ("site-1", 1)]
    r = ask(h, min_level="WARNING", sites=["site-1"], query="")
    assert [(x[0], x[1]) for x in r["lines"]] == [("site-1", 1), ("site-1", 2)]


def test_first_error_is_each_sites_first_error_held_or_not():
    h = hist({"server": [("a", "INFO"), ("x", "ERROR"), ("y", "ERROR")], "site-1": [("ok", "INFO")]})
    r = ask(h, first_error=True, held={"server": [[1, 3]]})
    assert r["first_error"] is True
    assert [(x[0], x[1], x[2]) for x in r["lines"]] == [("server", 2, "x")]


def test_results_are_capped_in_count_and_bytes_and_long_lines_cut():
    h = hist(
        {"server": [(f"hit {i} " + "z" * 50, "INFO") for i in range(1000)], "site-1": [("hit " + "é" * 20_000, "INFO")]}
    )
    r = ask(h, query="HIT")
    assert r["matches"] == 1001 and r["truncated"] and len(r["lines"]) == MAX_RESULTS
    req = parse_request({"query": "hit", "sites": ["site-1"]}, list(h))
    r = answer(req, h, {"site-1": 7}, max_chars=100, budget=50_000)
    assert r["lines"][0][2] == "hit " + "é" * 96 + " … [19904 more characters in the download]"
    assert r["dropped"] == 7
    r = answer(parse_request({"query": "hit"}, list(h)), h, {}, max_chars=8000, budget=2_000)
    assert 0 < len(r["lines"]) < 30 and r["truncated"]


def test_malformed_requests_are_answered_not_raised():
    h = hist({"server": [("x", "INFO")]})
    req = parse_request({"query": 5, "sites": "server", "held": {"server": [[3, 1], "x", [1, 2, 3]]}}, ["server"])
    assert req["query"] == "" and req["sites"] == ["server"] and req["held"] == {"server": []}
    r = answer(req, h, {}, max_chars=10, budget=10_000)
    assert r["error"] == "nothing to search for" and r["lines"] == []


def test_the_view_answers_a_search_for_a_skipped_line_within_its_budget(fake_comm, views):
    """A flood the budget cannot carry: the browser gets skip markers; a search still finds a skipped line."""
    view, c = make(views, fake_comm, "job-s1", sites=["server"], max_msgs_per_sec=10, max_bytes_per_sec=20_000)
    for chunk in range(0, 3000, 300):
        view.append(
            "server",
            [
                (s, f"{s:05d} step {'NEEDLE' if s == 1234 else 'hay'} " + "x" * 100, "INFO", None)
                for s in range(chunk + 1, chunk + 301)
            ],
        )
    view.close_follow("FINISHED:COMPLETED")
    wait_for(lambda: not view._thread.is_alive(), timeout=30)
    sent = {i[0] for m in c.custom("lines") for i in m["sites"]["server"] if isinstance(i, list)}
    assert 1234 not in sent and any(isinstance(i, dict) for m in c.custom("lines") for i in m["sites"]["server"])
    held = [[s, s] for s in sorted(sent)]
    start = time.monotonic()
    c.from_frontend({"kind": "search", "request_id": "q1", "query": "needle", "held": {"server": held}})
    wait_for(lambda: c.custom("search_result"), timeout=10)  # the flusher, which had exited, sends it
    (reply,) = c.custom("search_result")
    assert reply["request_id"] == "q1" and reply["matches"] == 1
    assert reply["lines"] == [["server", 1234, "01234 step NEEDLE " + "x" * 100, "INFO", None]]
    assert time.monotonic() - start < 5
    # a line the browser holds is not sent again
    c.from_frontend({"kind": "search", "request_id": "q2", "query": "NEEDLE", "held": {"server": [[1, 3000]]}})
    wait_for(lambda: len(c.custom("search_result")) == 2, timeout=10)
    assert c.custom("search_result")[1]["lines"] == [] and c.custom("search_result")[1]["matches"] == 0
