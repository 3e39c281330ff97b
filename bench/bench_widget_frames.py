"""The widget's front end alone under a flood: frame times and a flush's cost, without JupyterLab.

    python bench/bench_widget_frames.py [--static flarenb/static] [--seconds 8] [--throttle 1] [--trace]

Serves a bare page with the built bundle (``--static``: a folder holding ``widget.js`` and ``widget.css``; pass
another checkout's to compare) and a fake anywidget model, then feeds it what the kernel sends under a flood:
10 ``lines`` messages/s, each with a skip marker and 105 nvflare-like lines for each of 3 sites (≈ 48 KB). Prints
the ``requestAnimationFrame`` work per flush and the frame times (``--throttle N``: Chromium's CPU throttling, to
stand in for a loaded machine; ``--trace``: also the time in Layout / Paint / style from a Chromium trace). No
JupyterLab and no FLARE: no lock needed; for the real page see ``bench_widget_browser.py``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import http.server
import json
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"

MAIN_JS = r"""
import w from './widget.js';
const handlers = new Map();
const model = { state: {job_id: 'j', job_name: 'flood', sites: ['server', 'site-1', 'site-2'], status: 'RUNNING',
  submit_time: null, start_ts: Date.now() / 1000, end_ts: null, duration: null, site_states: {}, snapshot: {},
  line_counts: {}, skipped: {}, live: true, downloads: {}, browser_max_lines: 5000, progress: {}, metrics: {}},
  get(k) { return this.state[k]; }, set(k, v) { this.state[k] = v; }, save_changes() {},
  on(e, f) { (handlers.get(e) || handlers.set(e, new Set()).get(e)).add(f); },
  off(e, f) { handlers.get(e)?.delete(f); },
  send() {}, widget_manager: {} };
const raf = window.requestAnimationFrame.bind(window);
window.__work = [];
window.requestAnimationFrame = (cb) => raf((t) => {
  const a = performance.now(); cb(t); const d = performance.now() - a; if (d > 0.5) window.__work.push(d);
});
const props = { model, el: document.getElementById('app') };
w.initialize(props); w.render(props);
const seq = {server: 0, 'site-1': 0, 'site-2': 0};
window.__frames = []; let last = null;
const tick = (t) => { if (last !== null) window.__frames.push(t - last); last = t; raf(tick); };
raf(tick);
window.__start = () => setInterval(() => {
  const sites = {};
  for (const s of Object.keys(seq)) {
    seq[s] += 1000;
    const rows = [{skipped: 1000, first: seq[s] - 999, last: seq[s]}];
    for (let i = 0; i < 105; i++) {
      seq[s]++;
      const lvl = seq[s] % 997 == 0 ? 'ERROR' : seq[s] % 50 == 0 ? 'WARNING' : 'INFO';
      const text = `2024-05-01 12:00:00,000 - ClientRunner - ${lvl} - [identity=${s}, run=bench, peer=server, ` +
        `task_name=train]: round ${seq[s] / 1000 | 0} step ${seq[s]} loss=${Math.random().toFixed(6)}`;
      rows.push([seq[s], text, lvl, '12:00:00']);
    }
    sites[s] = rows;
  }
  const msg = JSON.parse(JSON.stringify({kind: 'lines', sites}));  // as the widget manager hands it over
  for (const f of handlers.get('msg:custom') || []) f(msg);
}, 100);
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def run(static: Path, seconds: float, throttle: float, trace: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="flarenb-frames-"))
    (root / "widget.js").write_text((static / "widget.js").read_text())
    (root / "main.js").write_text(MAIN_JS)
    css = (static / "widget.css").read_text()
    (root / "index.html").write_text(
        f"<!doctype html><html><head><style>{css}</style></head><body><div id=app style='width:1300px'></div>"
        "<script type=module src=main.js></script></body></html>"
    )
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    out: dict = {"static": str(static), "seconds": seconds, "throttle": throttle}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/index.html")
            page.wait_for_function("() => window.__start !== undefined")
            page.wait_for_timeout(500)
            cdp = page.context.new_cdp_session(page)
            if throttle != 1:
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            if trace:
                browser.start_tracing(page=page, categories=["devtools.timeline"])
            page.evaluate("() => { window.__frames = []; window.__work = []; window.__start(); }")
            page.wait_for_timeout(int(seconds * 1000))
            frames = page.evaluate("() => window.__frames")
            work = page.evaluate("() => window.__work")
            if trace:
                events = json.loads(browser.stop_tracing())
                events = events["traceEvents"] if isinstance(events, dict) else events
                total: collections.Counter = collections.Counter()
                for e in events:
                    if e.get("ph") == "X" and e.get("name") in ("Layout", "UpdateLayoutTree", "Paint", "PrePaint"):
                        total[e["name"]] += e["dur"] / 1000
                out["trace_ms"] = {k: round(v) for k, v in total.items()}
            out["nodes"] = page.evaluate("() => document.getElementsByTagName('*').length")
            browser.close()
    finally:
        srv.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    out["flush_ms"] = {"count": len(work), "median": statistics.median(work) if work else 0, "p95": _pct(work, 95)}
    out["frames"] = {
        "count": len(frames),
        "median_ms": statistics.median(frames),
        "p95_ms": _pct(frames, 95),
        "max_ms": max(frames),
        "over_17_5ms": sum(1 for x in frames if x > 17.5),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--static", type=Path, default=REPO / "flarenb" / "static")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--throttle", type=float, default=1.0)
    ap.add_argument("--trace", action="store_true")
    args = ap.parse_args(argv)
    r = run(args.static, args.seconds, args.throttle, args.trace)
    f, w = r["frames"], r["flush_ms"]
    print(
        f"{r['static']} (throttle {r['throttle']}x): flush work median {w['median']:.1f} ms, p95 {w['p95']:.1f} ms "
        f"({w['count']} flushes); frames median {f['median_ms']:.1f} / p95 {f['p95_ms']:.1f} / max {f['max_ms']:.0f} "
        f"ms, {f['over_17_5ms']} of {f['count']} over 17.5 ms; DOM nodes {r['nodes']}"
        + (f"; trace ms {r['trace_ms']}" if "trace_ms" in r else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
