"""The live metrics panel under a 1,000-round x 20-site x 5-metric job, in a real JupyterLab + headless Chromium.

    python bench/bench_metrics_panel.py [--rounds 1000] [--sites 20] [--metrics 5] [--seconds 60] [--out DIR]

A notebook cell shows ``flarenb.widget.LogView(job_id, sites=[server, site-1..site-20])`` and starts the kernel-side
feed a live view uses (:class:`flarenb.metricsfeed.MetricsFeed`, pushing through ``LogView.set_metrics``) on a temp
folder; a kernel thread then appends a synthetic ``round_metrics.jsonl`` in NVFlare's ``MetricsArtifactWriter``
format (one compact JSON object per round: ``aggregated_metrics`` and per site ``metrics``, ``weight``,
``weight_key``) at an even pace, ``--rounds`` rounds in ``--seconds``. The page opens the Metrics panel as soon as
its toggle shows and keeps it in view. Measured, in the same run and page:

* page: frame times (``requestAnimationFrame`` deltas: median, p95, max; at 60 Hz an on-time frame is 16.7 ms), the
  main thread's work (CDP ``Performance.getMetrics`` ``TaskDuration`` delta: busy share and ms per frame), long
  animation frames (``long-animation-frame`` entries, > 50 ms, with their script/render split), JS heap; phases:
  idle (before any round), updating (panel open while the file grows), settled (panel open, file complete, 5 s);
* traffic: this widget's iopub ``comm_msg`` frames that carry ``metrics``/``progress`` (Playwright websocket events,
  bucketed per second by the kernel's ``header.date``): messages/s and KB/s (websocket frame bytes);
* kernel: each push of the feed (time, ``wire_size`` of the traits it changed), the thread CPU of ``publish``
  (building and sending), and the process CPU over the run;
* the end state: charts, polylines per chart, points per polyline, the header's "round k".

Prints a table and writes JSON to ``bench/results/metrics_panel-<timestamp>.json``. Run under
``flock /tmp/flarenb-poc.lock`` (it starts a JupyterLab).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import bench_widget_browser as wb  # noqa: E402  (loads tests/browser/lab.py as wb.lab)
from playwright.sync_api import expect, sync_playwright  # noqa: E402

lab = wb.lab
JOB_ID = "bench-metrics-0001"

CELL_SETUP = """\
import json, math, os, random, tempfile, threading, time
from pathlib import Path
from flarenb.widget import LogView
from flarenb.metricsfeed import MetricsFeed
from flarenb.safetext import wire_size

ROUNDS, SITES, METRICS = {rounds}, [f"site-{{i}}" for i in range(1, {sites} + 1)], {metric_names!r}
folder = Path(tempfile.mkdtemp(prefix="flarenb-bench-metrics-")) / "metrics"
folder.mkdir()
view = LogView({job_id!r}, job_name="metrics bench", sites=["server", *SITES])
view.set_status("RUNNING", start_time=time.time())
pushes, publish_cpu, gen, sent = [], [], {{}}, [None]

def push(metrics, progress):  # what set_metrics sends: the traits that changed
    m = wire_size(metrics) if metrics is not sent[0] and metrics != view.metrics else 0
    p = wire_size(progress) if progress != view.progress else 0
    sent[0] = metrics
    pushes.append((time.time(), m, p, len(metrics.get("series", ()))))
    view.set_metrics(metrics, progress)

feed = MetricsFeed({job_id!r}, push, lambda: (list(view.sites), dict(view.site_states)), metrics_dir=folder)
_publish = feed.publish
def timed_publish(force=False):
    t0 = time.thread_time()
    try:
        return _publish(force)
    finally:
        publish_cpu.append(time.thread_time() - t0)
feed.publish = timed_publish
feed.start()

def value(metric, site_i, r):
    base = 1.0 / (1 + r / 50) if metric == "loss" else 1 - 0.5 / (1 + r / 80)
    return round(base + 0.02 * site_i / len(SITES) + random.gauss(0, 0.01), 6)

def record(r):
    sites = [{{"name": s, "metrics": [{{"name": m, "value": value(m, i, r)}} for m in METRICS],
              "weight": 100 + i, "weight_key": "NUM_STEPS_CURRENT_ROUND"}} for i, s in enumerate(SITES)]
    agg = [{{"name": m, "value": value(m, len(SITES) / 2, r)}} for m in METRICS]
    return {{"round": r, "aggregated_metrics": agg, "sites": sites, "skipped_metrics": []}}

def write(seconds):
    t0 = time.monotonic()
    with open(folder / "round_metrics.jsonl", "a", encoding="utf-8") as f:
        for r in range(ROUNDS):
            delay = t0 + r * seconds / ROUNDS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            f.write(json.dumps(record(r), separators=(",", ":")) + "\\n")
            f.flush()
    gen.update(seconds=time.monotonic() - t0, bytes=os.path.getsize(folder / "round_metrics.jsonl"))

display(view)
print("MODEL_ID=" + view.model_id)
"""

CELL_WRITE = """\
cpu0, wall0 = time.process_time(), time.time()
threading.Thread(target=write, args=({seconds},), daemon=True).start()
"""

CELL_REPORT = """\
feed.stop()
print("REPORT=" + json.dumps({"gen": gen, "pushes": pushes, "publish_cpu": publish_cpu,
    "cpu": time.process_time() - cpu0, "wall": time.time() - wall0, "records": len(feed.metrics().records),
    "round": view.progress.get("round"), "series": len(view.metrics.get("series", ()))}))
import shutil; shutil.rmtree(folder.parent, ignore_errors=True)
"""

# long animation frames (> 50 ms) per phase, next to wb.FRAMES_JS's frame deltas
LOAF_JS = """() => {
    if (window.__loaf) return;
    const l = window.__loaf = {};
    try {
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
                const p = window.__bench ? window.__bench.phase : 'idle';
                (l[p] = l[p] || []).push(e.duration);
                // where the time went: scripts (by function), then style/layout, then the rest (paint)
                const d = (l['detail:' + p] = l['detail:' + p] || []);
                if (d.length < 200) d.push({
                    duration: e.duration,
                    render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
                    layout: e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0,
                    scripts: (e.scripts || []).map(s => [s.invoker, s.sourceFunctionName, Math.round(s.duration)]),
                });
            }
        }).observe({ type: 'long-animation-frame', buffered: false });
    } catch (e) { l.unsupported = String(e); }
}"""

PANEL_JS = """(panel) => ({
    charts: [...panel.querySelectorAll('.flarenb-metric-chart')].map(c => ({
        metric: c.dataset.metric,
        lines: c.querySelectorAll('polyline.flarenb-metric-series').length,
        points: [...c.querySelectorAll('polyline.flarenb-metric-series')].map(p => +p.dataset.points),
        xmax: (c.querySelector('[data-axis="x-max"]') || {}).textContent || null,
    })),
    nodes: panel.getElementsByTagName('*').length,
})"""


class MetricsCapture(wb.Capture):
    """Kernel -> browser frames of one widget: which of them carry the ``metrics``/``progress`` traits."""

    def on_frame(self, payload) -> None:
        size = len(payload.encode() if isinstance(payload, str) else payload)
        decoded = wb._decode(payload)
        if decoded is None or decoded[0] != "iopub":
            return
        header, content = decoded[1].get("header", {}), decoded[1].get("content", {})
        if header.get("msg_type") != "comm_msg" or not self.model_id or content.get("comm_id") != self.model_id:
            return
        try:
            at = dt.datetime.fromisoformat(header["date"].replace("Z", "+00:00")).timestamp()
        except Exception:
            at = time.time()
        keys = set(((content.get("data") or {}).get("state") or {}).keys())
        kind = "metrics" if keys & {"metrics", "progress"} else "widget"
        self.events.append((at, kind, size, ",".join(sorted(keys))))


def _perf(cdp) -> dict:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def _phase(page, cdp, name: str, until) -> dict:
    """Frames, main-thread work and long frames of one phase, which lasts until ``until()`` is true."""
    wb._set_phase(page, name)
    before, t0 = _perf(cdp), time.monotonic()
    while not until():
        page.wait_for_timeout(250)  # pumps the websocket events
    after, wall = _perf(cdp), time.monotonic() - t0
    frames = wb._frames(page, name)
    task = after.get("TaskDuration", 0) - before.get("TaskDuration", 0)
    script = after.get("ScriptDuration", 0) - before.get("ScriptDuration", 0)
    layout = sum(after.get(k, 0) - before.get(k, 0) for k in ("LayoutDuration", "RecalcStyleDuration"))
    loaf = page.evaluate("(p) => (window.__loaf[p] || [])", name)
    return {
        **frames,
        "wall_s": wall,
        "main_thread_busy": task / wall if wall else float("nan"),
        "work_ms_per_frame": 1000 * task / frames["count"] if frames["count"] else float("nan"),
        "script_s": script,
        "layout_style_s": layout,
        "long_frames": len(loaf),
        "long_frames_ms": sorted(loaf)[-5:],
        "long_frames_detail": page.evaluate("(p) => (window.__loaf['detail:' + p] || [])", name),
        "heap_mib": after.get("JSHeapUsedSize", 0) / 2**20,
    }


def _kernel_rates(pushes: list, t0: float, t1: float) -> dict:
    per_s = Counter(int(at - t0) for at, *_ in pushes if t0 <= at < t1)
    kb = Counter()
    for at, m, p, _ in pushes:
        if t0 <= at < t1:
            kb[int(at - t0)] += (m + p) / 1000
    seconds = max(1, int(t1 - t0))
    msgs = [per_s.get(i, 0) for i in range(seconds)]
    sizes = [m + p for at, m, p, _ in pushes if t0 <= at < t1]
    trait = [m for at, m, _, _ in pushes if m and t0 <= at < t1]
    charts = [at for at, m, *_ in pushes if m and t0 <= at < t1]
    gaps = [b - a for a, b in itertools.pairwise(charts)]
    return {
        "pushes": len(sizes),
        "msgs_per_s_mean": len(sizes) / (t1 - t0),
        "msgs_per_s_max": max(msgs),
        "kb_per_s_mean": sum(sizes) / 1000 / (t1 - t0),
        "kb_per_s_max": max(kb.values(), default=0),
        "metrics_kb_median": statistics.median(trait) / 1000 if trait else 0,
        "metrics_kb_max": max(trait) / 1000 if trait else 0,
        "metrics_pushes": len(charts),
        "metrics_gap_s_median": statistics.median(gaps) if gaps else None,
        "metrics_gap_s_max": max(gaps) if gaps else None,
    }


def run(rounds: int, sites: int, metrics: int, seconds: float) -> dict:
    names = ["loss", "accuracy", "f1", "auc", "precision", "recall", "dice", "iou"][:metrics]
    names += [f"metric_{i}" for i in range(len(names), metrics)]
    server = lab.start_lab_server()
    cap = MetricsCapture()
    result: dict = {"rounds": rounds, "sites": sites, "metrics": names, "seconds": seconds}
    try:
        cells = [
            CELL_SETUP.format(rounds=rounds, sites=sites, metric_names=names, job_id=JOB_ID),
            CELL_WRITE.format(seconds=seconds),
            CELL_REPORT,
        ]
        lab.write_notebook(server.root_dir, "metrics.ipynb", cells)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=lab.CHROMIUM, args=lab.CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(120_000)
            page = context.new_page()
            page.on("websocket", cap.on_websocket)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)[:300]))
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            lab.open_notebook(page, server, "metrics.ipynb")
            page.evaluate(wb.FRAMES_JS)
            page.evaluate(LOAF_JS)

            out = lab.run_cell(page, 0)
            view = out.get_by_test_id("flarenb-logview")
            expect(view).to_be_visible(timeout=60_000)
            expect(out).to_contain_text("MODEL_ID=", timeout=60_000)
            cap.model_id = out.inner_text().split("MODEL_ID=", 1)[1].split()[0].strip()
            toggle = view.get_by_test_id("flarenb-metrics-toggle")
            panel = view.get_by_test_id("flarenb-metrics")

            end = time.monotonic() + 3
            result["idle"] = _phase(page, cdp, "idle", lambda: time.monotonic() >= end)

            # ---- updating: the file grows; the panel opens as soon as there is a series, and stays in view
            t_start = time.time()
            lab.run_cell(page, 1)
            expect(toggle).to_be_visible(timeout=30_000)
            toggle.click()
            expect(panel).to_be_visible()
            panel.scroll_into_view_if_needed()
            result["panel_open_after_s"] = time.time() - t_start
            round_ = view.get_by_test_id("flarenb-progress-round")
            last = f"round {rounds}"
            done_at = t_start + seconds

            def finished() -> bool:  # the writer is done and the last round has reached the header
                return time.time() >= done_at and round_.inner_text().strip() == last

            try:
                result["updating"] = _phase(page, cdp, "updating", finished)
            finally:
                result["round_shown"] = round_.inner_text().strip()
            t_shown = time.time()
            result["last_round_shown_after_end_s"] = t_shown - done_at
            end = time.monotonic() + 5
            result["settled"] = _phase(page, cdp, "settled", lambda: time.monotonic() >= end)
            result["panel"] = panel.evaluate(PANEL_JS)
            result["rates_page"] = cap.rates("metrics", t_start, t_shown)
            result["rates_page_other"] = cap.rates("widget", t_start, t_shown)

            rep = lab.run_cell(page, 2)
            text = rep.inner_text()
            kernel = json.loads(text[text.index("REPORT=") + 7 :].strip().splitlines()[0])
            result["kernel"] = {k: v for k, v in kernel.items() if k not in ("pushes", "publish_cpu")}
            result["kernel"]["rates"] = _kernel_rates(kernel["pushes"], t_start, t_shown)
            cpu = kernel["publish_cpu"]
            result["kernel"]["publish_cpu_ms"] = {
                "calls": len(cpu),
                "total": 1000 * sum(cpu),
                "max": 1000 * max(cpu, default=0),
            }
            result["kernel"]["pushes"] = kernel["pushes"]
            result["page_errors"] = errors
            browser.close()
    finally:
        server.stop()
    return result


def table(r: dict) -> str:
    rows = [("phase", "frame ms median / p95 / max", "long frames", "main thread busy", "work ms/frame", "heap MiB")]
    for name in ("idle", "updating", "settled"):
        f = r[name]
        rows.append(
            (
                name,
                f"{f['median_ms']:.1f} / {f['p95_ms']:.1f} / {f['max_ms']:.0f}",
                f"{f['long_frames']} (of {f['count']})",
                f"{f['main_thread_busy']:.0%}",
                f"{f['work_ms_per_frame']:.1f}",
                f"{f['heap_mib']:.0f}",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * x for x in widths))
    p, k = r["rates_page"], r["kernel"]
    kr, cpu = k["rates"], k["publish_cpu_ms"]
    upd, idle = r["updating"], r["idle"]
    lines += [
        "",
        f"updating/idle frame median ratio {upd['median_ms'] / idle['median_ms']:.2f}, "
        f"p95 ratio {upd['p95_ms'] / idle['p95_ms']:.2f}",
        f"page: metrics/progress comm msgs {p['msgs_total']} in {p['seconds']} s = {p['msgs_per_s_mean']:.2f}/s "
        f"(max {p['msgs_per_s_max']} in a second), {p['bytes_per_s_mean'] / 1000:.1f} KB/s mean "
        f"(max {p['bytes_per_s_max'] / 1000:.0f}); other comm msgs of the widget "
        f"{r['rates_page_other']['msgs_total']}",
        f"kernel: {kr['pushes']} pushes = {kr['msgs_per_s_mean']:.2f}/s (max {kr['msgs_per_s_max']}/s), "
        f"{kr['kb_per_s_mean']:.1f} KB/s mean (max {kr['kb_per_s_max']:.0f}); "
        f"of them {kr['metrics_pushes']} with the metrics trait: KB median {kr['metrics_kb_median']:.0f} "
        f"max {kr['metrics_kb_max']:.0f}, every {kr['metrics_gap_s_median']:.1f} s (median; max "
        f"{kr['metrics_gap_s_max']:.1f})",
        f"kernel CPU: publish {cpu['total']:.0f} ms in {cpu['calls']} calls (max {cpu['max']:.0f} ms); "
        f"process {k['cpu']:.1f} s over {k['wall']:.0f} s",
        f"writer: {k['gen']}; records {k['records']}; header {r['round_shown']!r}, "
        f"{r['last_round_shown_after_end_s']:.1f} s after the last round was written",
        f"panel: {len(r['panel']['charts'])} charts, polylines {[c['lines'] for c in r['panel']['charts']]}, "
        f"points/polyline max {max((max(c['points'], default=0) for c in r['panel']['charts']), default=0)}, "
        f"DOM nodes {r['panel']['nodes']}; page errors {len(r['page_errors'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0, help="time over which the rounds are written")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    started = time.monotonic()
    r = run(args.rounds, args.sites, args.metrics, args.seconds)
    r["wall_s"] = time.monotonic() - started
    print(table(r))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"metrics_panel-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(r, indent=1, default=str))
    print(f"\nwall {r['wall_s']:.0f}s; JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
