"""Round progress, the metrics trait and the live metrics feed (flarenb/progress.py, flarenb/metricsfeed.py) from
plain data: no widget, no POC."""

from __future__ import annotations

import json
import threading

import pytest

from flarenb import metricsfeed, snapshot
from flarenb.metrics import AGGREGATED, Metrics
from flarenb.metricsfeed import MetricsFeed
from flarenb.progress import MAX_POINTS, metrics_payload, num_rounds, progress, round_seconds, rounds_in_config

SITES = ["server", "site-1", "site-2"]


def row(rnd: int, sites=("site-1", "site-2"), **values) -> dict:
    values = values or {"loss": 1.0 / (rnd + 1)}
    metrics = [{"name": k, "value": v} for k, v in values.items()]
    return {
        "round": rnd,
        "aggregated_metrics": metrics,
        "sites": [{"name": s, "metrics": metrics, "weight": 1} for s in sites],
    }


def table(*rows: dict) -> Metrics:
    return Metrics.from_rows("job-1", rows)


# ------------------------------------------------------------------------------------------ progress
def test_no_round_no_progress():
    assert progress(None) == {}
    assert progress(table(), sites=SITES, total=5) == {}
    assert metrics_payload(table()) == {} and metrics_payload(None) == {}


def test_latest_round_sites_and_total():
    m = table(row(0), row(1, sites=("site-1",)))
    p = progress(m, sites=SITES, total=5)
    assert p == {
        "round": 1,
        "total": 5,
        "sites": {"site-1": "reported", "site-2": "training"},
        "round_seconds": None,
        "eta_seconds": None,
    }


def test_silent_sites_come_from_the_view_states():
    m = table(row(0, sites=("site-1",)))
    states = {"site-2": {"state": "quiet"}, "site-3": {"state": "unavailable"}, "site-1": {"state": "quiet"}}
    p = progress(m, sites=[*SITES, "site-3", "site-4"], states=states)
    assert p["sites"] == {"site-1": "reported", "site-2": "silent", "site-3": "silent", "site-4": "training"}
    # a site known only from the metrics is shown too; the server and the aggregate never are
    assert progress(table(row(0, sites=("site-9",))), sites=["server"])["sites"] == {"site-9": "reported"}


def test_round_seconds_is_the_median_gap_once_two_gaps():
    assert round_seconds({0: 10.0, 1: 13.0}) == (None, False)
    assert round_seconds({0: 10.0, 1: 13.0, 2: 16.5}) == (3.25, True)
    # rounds seen in one read (no gap) do not count
    assert round_seconds({0: 10.0, 1: 10.0, 2: 10.0, 3: 13.0}) == (None, False)
    per, regular = round_seconds({0: 0.0, 1: 3.0, 2: 6.0, 3: 20.0})
    assert per == 3.0 and not regular


def test_eta_only_with_a_total_and_regular_rounds():
    m = table(row(0), row(1), row(2))
    arrivals = {0: 0.0, 1: 3.0, 2: 6.0}
    p = progress(m, sites=SITES, arrivals=arrivals, total=5)
    assert p["round_seconds"] == 3.0 and p["eta_seconds"] == 6.0
    assert progress(m, sites=SITES, arrivals=arrivals)["eta_seconds"] is None  # no total
    irregular = progress(m, sites=SITES, arrivals={0: 0.0, 1: 1.0, 2: 9.0}, total=5)
    assert irregular["round_seconds"] == 4.5 and irregular["eta_seconds"] is None
    done = progress(table(row(0), row(1), row(2)), arrivals=arrivals, total=3)
    assert done["round"] == 2 and done["eta_seconds"] is None  # the last round has results: nothing to wait for
    # a total below what ran is not believed
    assert progress(m, total=2)["total"] is None
    assert progress(m, total=True)["total"] is None


def test_metrics_payload_numeric_only():
    m = table(row(0, loss=0.5, acc=1, note="hello", flag=True), row(1, loss=float("nan"), acc=2))
    payload = metrics_payload(m)
    keys = [(s["metric"], s["site"]) for s in payload["series"]]
    assert keys == [(n, s) for n in ("loss", "acc") for s in (AGGREGATED, "site-1", "site-2")]
    assert payload["series"][0]["points"] == [[0, 0.5]]  # nan was kept by the records as text: skipped here
    assert payload["series"][3]["points"] == [[0, 1.0], [1, 2.0]]
    json.dumps(payload, allow_nan=False)


# ------------------------------------------------------------------------------------------ total rounds
def _config(tmp_path, app: str, workflows) -> None:
    folder = tmp_path / app / "config"
    folder.mkdir(parents=True)
    (folder / "config_fed_server.json").write_text(json.dumps({"format_version": 2, "workflows": workflows}))


def test_num_rounds_from_the_server_config(tmp_path):
    assert num_rounds(tmp_path) is None and num_rounds(None) is None
    _config(tmp_path, "app_server", [{"id": "x", "path": "custom.Thing", "args": {}}, {"args": {"num_rounds": 7}}])
    assert num_rounds(tmp_path) == 7


def test_num_rounds_in_another_app_and_bad_files(tmp_path):
    (tmp_path / "app_server" / "config").mkdir(parents=True)
    (tmp_path / "app_server" / "config" / "config_fed_server.json").write_text("{not json")
    _config(tmp_path, "app_other", [{"args": {"num_rounds": 4}}])
    assert num_rounds(tmp_path) == 4
    assert rounds_in_config({"workflows": [{"args": {"num_rounds": "5"}}, "x", {"args": {"num_rounds": 0}}]}) is None
    assert rounds_in_config([]) is None


def test_a_recipe_default_is_the_workflow_class_default():
    # NumpyFedAvgRecipe(num_rounds=5) exports FedAvg without num_rounds (5 is its default)
    wf = {"path": "nvflare.app_common.workflows.fedavg.FedAvg", "args": {"num_clients": 2}}
    assert rounds_in_config({"workflows": [wf]}) == 5
    assert rounds_in_config({"workflows": [{"path": "os.path.join", "args": {}}]}) is None  # only nvflare.*


# ------------------------------------------------------------------------------------------ the feed
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _feed(tmp_path, **kw):
    pushed: list[tuple[dict, dict]] = []
    clock = Clock()
    states: dict = {}
    feed = MetricsFeed(
        "job-1",
        lambda m, p: pushed.append((m, p)),
        lambda: (SITES, states),
        metrics_dir=tmp_path / "metrics",
        run_dir=tmp_path,
        clock=clock,
        **kw,
    )
    return feed, pushed, clock, states


def _append(tmp_path, *rows: dict, torn: str = "") -> None:
    (tmp_path / "metrics").mkdir(exist_ok=True)
    with open(tmp_path / "metrics" / "round_metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows) + torn)


def test_the_feed_reads_new_bytes_and_pushes_only_changes(tmp_path):
    feed, pushed, clock, states = _feed(tmp_path)
    assert feed.poll_once() == 0 and not feed.publish()  # no file yet: nothing, nothing pushed
    _config(tmp_path, "app_server", [{"args": {"num_rounds": 3}}])
    _append(tmp_path, row(0), torn='{"round": 1, "aggreg')
    assert feed.poll_once() == 3
    feed._read_total()
    assert feed.publish()
    metrics, prog = pushed[-1]
    assert prog["round"] == 0 and prog["total"] == 3 and len(metrics["series"]) == 3
    assert not feed.publish(force=True)  # nothing changed
    clock.now += 0.1
    states["site-2"] = {"state": "quiet"}
    assert not feed.publish()  # changed, but within 0.5 s of the last push
    clock.now += 0.5
    assert not feed.publish()  # site-2 reported in the latest round: its quiet log changes nothing
    # the torn line completes; the earlier bytes are not read again
    with open(tmp_path / "metrics" / "round_metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row(1))[len('{"round": 1, "aggreg') :] + "\n")
    clock.now += 3
    assert feed.poll_once() == 3 and feed.poll_once() == 0
    assert feed.publish() and pushed[-1][1]["round"] == 1
    assert feed.metrics().rounds == [0, 1]
    _append(tmp_path, row(2, sites=("site-1",)))
    clock.now += 3
    feed.poll_once()
    assert feed.publish() and pushed[-1][1]["sites"] == {"site-1": "reported", "site-2": "silent"}
    assert (
        pushed[-1][1]["round_seconds"] == pytest.approx(3.3) and pushed[-1][1]["eta_seconds"] is None
    )  # the last round


def test_feed_bytes_from_another_source(tmp_path):
    feed, pushed, _clock, _ = _feed(tmp_path)
    data = (json.dumps(row(0)) + "\n" + json.dumps(row(1))).encode()
    assert feed.feed(data[:10]) == 0 and feed.feed(data[10:]) == 3 and feed.feed(b"\n") == 3
    assert feed.publish() and pushed[-1][1]["round"] == 1


def test_a_replaced_file_is_read_again(tmp_path):
    feed, _pushed, _clock, _ = _feed(tmp_path)
    _append(tmp_path, row(0), row(1))
    feed.poll_once()
    (tmp_path / "metrics" / "round_metrics.jsonl").write_text(json.dumps(row(0)) + "\n")
    feed.poll_once()
    assert feed.metrics().rounds == [0]


def test_the_thread_polls_then_reads_the_final_metrics_once(tmp_path):
    calls = []

    def final():
        calls.append(1)
        return table(row(0), row(1), row(2)), 3

    feed, pushed, _clock, _ = _feed(tmp_path, final=final, poll=0.01, min_push=0.0)
    feed.start()
    _append(tmp_path, row(0))
    for _ in range(500):
        if pushed:
            break
        threading.Event().wait(0.01)
    assert pushed and pushed[-1][1]["round"] == 0
    (tmp_path / "metrics" / "round_metrics.jsonl").unlink()  # the run folder moved into the job store
    done = threading.Event()
    feed.finish(then=done.set)
    assert done.wait(5)
    feed.stop()
    assert not feed.alive and calls == [1]
    assert pushed[-1][1]["round"] == 2 and pushed[-1][1]["total"] == 3


def test_no_final_read_when_every_round_was_seen_or_after_stop(tmp_path):
    feed, _pushed, _clock, _ = _feed(tmp_path, final=lambda: pytest.fail("downloaded"))  # type: ignore[arg-type]
    feed.feed((json.dumps(row(0)) + "\n").encode())
    feed.total = 1
    feed.finish()  # no thread: the last read happens here
    stopped, pushed, _clock, _ = _feed(tmp_path, final=lambda: pytest.fail("downloaded"))  # type: ignore[arg-type]
    stopped.start()
    stopped.stop(timeout=5)
    assert not stopped.alive and pushed == []


# ------------------------------------------------------------------------------------------ snapshot
HOSTILE = "<img src=x onerror=alert(1)>"


def test_the_snapshot_has_round_progress_and_one_escaped_chart_per_metric():
    m = table(row(0, **{"loss": 1.0, HOSTILE: 2}), row(1, **{"loss": 0.5, HOSTILE: 3}))
    snap = snapshot.render(
        "job-1",
        "hello",
        live=False,
        status="FINISHED:COMPLETED",
        sites=SITES,
        progress=progress(m, sites=SITES, total=2),
        metrics=metrics_payload(m),
    )
    assert snap.header.startswith("flarenb job hello (job-1) — FINISHED:COMPLETED — round 2 of 2")
    text = snap.text()
    assert "===== metrics =====" in text
    assert "loss (round 2): aggregated 0.5, site-1 0.5, site-2 0.5" in text
    assert f"{HOSTILE} (round 2): aggregated 3" in text  # text/plain: the name as it is (no markup there)
    page = snap.html()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<svg") == 2 and page.count("<polyline") == 6
    assert page.count('stroke-width="2.5"') == 2  # the aggregate, bold
    # coordinates are numbers only
    import re

    for points in re.findall(r'points="([^"]*)"', page):
        assert re.fullmatch(r"[0-9., -]+", points), points
    live = snapshot.render("job-1", live=True, progress={"round": 0, "total": 2}, metrics=metrics_payload(m))
    assert live.charts == () and "round" not in live.header


def test_snapshot_charts_ignore_junk_and_cap_the_metrics():
    assert snapshot.metric_charts({"series": [{"metric": 1}, {"metric": "a", "site": "s", "points": [["x", 1]]}]}) == []
    many = {"series": [{"metric": f"m{i}", "site": "s", "points": [[0, i]]} for i in range(20)]}
    charts = snapshot.metric_charts(many)
    assert len(charts) == snapshot.MAX_CHARTS + 1 and charts[-1].text.startswith("… 8 more metrics")
    assert snapshot.round_text({"round": 3}) == "round 4" and snapshot.round_text({}) == ""


# ------------------------------------------------------------------------------------------ the widget
def test_set_metrics_syncs_the_traits_once_and_the_snapshot_shows_them(views, fake_comm):
    from test_widget import make

    view, comm = make(views, fake_comm, "job-1", job_name="hello", sites=SITES)
    assert view.progress == {} and view.metrics == {}
    m = table(row(0, **{HOSTILE: 1.0}), row(1, **{HOSTILE: 2.0}))
    prog, payload = progress(m, sites=SITES, total=5), metrics_payload(m)
    view.set_metrics(payload, prog)
    view.set_metrics(payload, prog)
    assert comm.updates("progress") == [prog] and comm.updates("metrics") == [payload]
    view.set_metrics(None, None)
    assert view.progress == {} and view.metrics == {}
    view.set_metrics(payload, prog)
    view.close_follow("FINISHED:COMPLETED")
    data, _ = view._repr_mimebundle_()
    assert "round 2 of 5" in data["text/plain"].splitlines()[0]
    assert "<img" not in data["text/html"] and data["text/html"].count("<svg") == 1


# ------------------------------------------------------------------------------------------ the view owns the feed
class _Poc:
    running = True
    server_name = "server"
    clients = ("site-1", "site-2")

    def __init__(self, prod_dir) -> None:
        self.prod_dir = prod_dir


class _Job:
    id = "job-1"
    name = "hello"
    key = ("test", "job-1")

    def __init__(self, poc) -> None:
        self.connection = type("Conn", (), {"poc": poc})()


def test_a_view_feeds_metrics_only_for_a_job_on_the_running_local_poc(tmp_path, fake_comm):
    from flarenb import live

    poc = _Poc(tmp_path)
    view = live.LogView(_Job(poc), follow=False)
    try:
        assert view.metrics_feed is None and view.progress == {} and view.metrics == {}  # not following: no feed
        feed = view._make_metrics_feed()
        assert feed is not None and feed._path == tmp_path / "server" / "job-1" / "metrics" / "round_metrics.jsonl"
        assert feed._run_dir == tmp_path / "server" / "job-1"
        poc.running = False
        assert view._make_metrics_feed() is None
        assert live.LogView(_Job(None), follow=False)._make_metrics_feed() is None  # a remote deployment
    finally:
        view.close()


def test_a_view_that_cannot_attach_stops_its_feed(tmp_path, fake_comm, monkeypatch):
    from flarenb import live

    def fail(self):
        raise RuntimeError("no server")

    monkeypatch.setattr(live.LogView, "_attach", fail)
    with pytest.raises(RuntimeError):
        live.LogView(_Job(_Poc(tmp_path)))
    alive = [t for t in threading.enumerate() if t.name == "flarenb-metrics-job-1"]
    for t in alive:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in alive)


def test_the_metrics_trait_is_bounded():
    m = table(*(row(r) for r in range(1000)))
    payload = metrics_payload(m, max_series=2, max_points=10)
    assert [(s["metric"], s["site"]) for s in payload["series"]] == [("loss", AGGREGATED), ("loss", "site-1")]
    rounds = [r for r, _ in payload["series"][0]["points"]]
    assert len(rounds) == 10 and rounds[0] == 0 and rounds[-1] == 999 and rounds == sorted(rounds)
    assert len(metrics_payload(m)["series"][0]["points"]) == MAX_POINTS


def test_thinning_keeps_spikes_and_values_are_compact():
    rows = [row(r, loss=1.0 / (r + 1) + (5.0 if r == 501 else 0.0) + (-3.0 if r == 777 else 0.0)) for r in range(1000)]
    points = metrics_payload(table(*rows), max_points=20)["series"][0]["points"]
    assert len(points) <= 20 and [501, 1.0 / 502 + 5.0] in [[r, pytest.approx(v)] for r, v in points]
    assert any(r == 777 for r, _ in points) and points[0][0] == 0 and points[-1][0] == 999
    # a value keeps 7 significant digits in the trait (the charts show 4); job.metrics() keeps them all
    assert metrics_payload(table(row(0, loss=0.123456789012)))["series"][0]["points"] == [[0, 0.1234568]]


def test_progress_is_not_held_back_by_a_big_metrics_trait(tmp_path, monkeypatch):
    monkeypatch.setattr(metricsfeed, "BYTES_PER_SEC", 1)  # each metrics trait "costs" its size in seconds
    feed, pushed, clock, _ = _feed(tmp_path)
    feed.feed((json.dumps(row(0)) + "\n").encode())
    assert feed.publish() and pushed[-1][1]["round"] == 0 and len(pushed[-1][0]["series"]) == 3
    first_metrics = pushed[-1][0]
    feed.feed((json.dumps(row(1)) + "\n").encode())
    clock.now += 1
    assert feed.publish() and pushed[-1][1]["round"] == 1  # the header moves on ...
    assert pushed[-1][0] is first_metrics  # ... the charts wait for their budget
    clock.now += 1
    assert not feed.publish()  # nothing new to show yet
    clock.now += 10_000
    assert feed.publish() and len(pushed[-1][0]["series"][0]["points"]) == 2 and pushed[-1][1]["round"] == 1
    feed.feed((json.dumps(row(2)) + "\n").encode())
    clock.now += 1
    assert feed.publish(force=True) and len(pushed[-1][0]["series"][0]["points"]) == 3  # force: everything now


def test_finish_now_reads_in_the_caller_and_the_thread_does_not(tmp_path):
    calls = []

    def final():
        calls.append(threading.current_thread().name)
        return table(row(0), row(1)), 2

    feed, pushed, _clock, _ = _feed(tmp_path, final=final, poll=0.01)
    feed.start()
    feed.finish_now()
    assert calls == [threading.current_thread().name] and pushed[-1][1]["round"] == 1
    feed.stop(timeout=5)
    assert not feed.alive and len(calls) == 1
