"""LogView under a log flood, measured in a real JupyterLab in headless Chromium.

    python bench/bench_widget_browser.py [--seconds 60] [--rate 5000] [--baseline-seconds N] [--out bench/results]

Phase 1 (widget): a notebook cell creates ``flarenb.widget.LogView(job_id, sites=[server, site-1, site-2])`` and
a background thread appends ``--rate`` lines/s in total (split evenly over the three sites, in 10 ms batches)
for ``--seconds``. While it runs, the page records:

* frame times: ``requestAnimationFrame`` deltas (median, p95, max) while the view follows the tail;
* kernel -> browser traffic of this widget: every websocket frame Playwright sees, decoded (Jupyter's v1 binary
  kernel protocol or JSON), keeping iopub ``comm_msg`` whose ``comm_id`` is the widget's model id, bucketed
  per second by the kernel's ``header.date`` (msgs/s and bytes/s = websocket frame bytes);
* JS heap: CDP ``Performance.getMetrics`` ``JSHeapUsedSize`` at start, middle and end;
* lines held per site (rows in the DOM of the "All sites" lane, which shows every stored entry) and whether the
  "older lines left this view" notice appears.

Phase 2 (baseline, same run, same page, widget closed first; ``--baseline-seconds``, default 20): the same lines
printed with ``print()`` per line from a thread (iopub ``stream`` messages), measured the same way. Its lines are
counted from the stream frames; afterwards the page is not waited for (JupyterLab may render that output for minutes).

Prints a table and writes JSON to ``bench/results/widget_browser-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("flarenb_bench_lab", REPO / "tests" / "browser" / "lab.py")
lab = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = lab
_spec.loader.exec_module(lab)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

JOB_ID = "bench-flood-0001"
SITES = ["server", "site-1", "site-2"]

# Cells. {seconds} / {rate} are filled in; the generator paces itself on a monotonic clock (10 ms batches).
CELL_SETUP = """\
import json, threading, time, random
from flarenb.widget import LogView
SITES = {sites!r}
view = LogView({job_id!r}, job_name="flood", sites=SITES)
view.set_status("RUNNING", start_time=time.time())
gen_stats = {{}}

def make_line(site, i):
    lvl = "ERROR" if i % 997 == 0 else ("WARNING" if i % 50 == 0 else "INFO")
    ts = time.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (i % 1000)
    text = (f"{{ts}} - ClientRunner - {{lvl}} - [identity={{site}}, run=bench, peer=server, task_name=train]: "
            f"round {{i // 1000}} step {{i}} loss={{random.random():.6f}}")
    return text, lvl, ts[11:19]

def flood(sink, seconds, rate, key):
    per_batch = max(1, int(rate / 100))
    t0 = time.monotonic(); n = 0; seq = {{s: 0 for s in SITES}}; k = 0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        due = int((now - t0) * rate)
        while n < due:
            batch = {{s: [] for s in SITES}}
            for _ in range(min(per_batch, due - n)):
                site = SITES[k % len(SITES)]; k += 1
                seq[site] += 1
                batch[site].append((seq[site],) + make_line(site, seq[site]))
                n += 1
            sink(batch)
        time.sleep(0.01)
    gen_stats[key] = {{"lines": n, "seconds": time.monotonic() - t0, "per_site": seq}}

def to_widget(batch):
    for site, rows in batch.items():
        if rows:
            view.append(site, rows)  # (seq, text, level, ts) tuples

def to_stdout(batch):
    for site, rows in batch.items():
        for r in rows:
            print(f"[{{site}}] {{r[1]}}")

display(view)
print("MODEL_ID=" + view.model_id)
"""

CELL_WIDGET = """\
threading.Thread(target=flood, args=(to_widget, {seconds}, {rate}, "widget"), daemon=True).start()
"""

CELL_CLOSE = """\
print(json.dumps({"gen": gen_stats.get("widget"), "line_counts": view.line_counts, "skipped": view.skipped}))
view.close()
"""

CELL_BASELINE = """\
threading.Thread(target=flood, args=(to_stdout, {seconds}, {rate}, "baseline"), daemon=True).start()
"""


FRAMES_JS = """() => {
    if (window.__bench) return;
    const b = window.__bench = { phase: 'idle', frames: {}, last: null };
    const tick = (t) => {
        if (b.last !== null) (b.frames[b.phase] = b.frames[b.phase] || []).push(t - b.last);
        b.last = t;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""

DOM_JS = """(root) => {
    const bySite = {};
    for (const l of root.querySelectorAll('[data-testid="flarenb-line"]'))
        bySite[l.dataset.site] = (bySite[l.dataset.site] || 0) + 1;
    const gaps = root.querySelectorAll('[data-testid="flarenb-gap"]').length;
    const notice = root.querySelector('[data-testid="flarenb-evicted-notice"]');
    return { bySite, gaps, notice: notice && !notice.hidden ? notice.textContent : null,
             nodes: root.getElementsByTagName('*').length };
}"""


# ------------------------------------------------------------------------------------------ websocket capture
def _decode(payload) -> tuple[str, dict] | None:
    """(channel, msg) of one kernel websocket frame (v1 binary protocol, or the legacy JSON text)."""
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            return msg.get("channel", ""), msg
        n = int.from_bytes(payload[:8], "little")
        offs = [int.from_bytes(payload[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
        channel = payload[offs[0] : offs[1]].decode()
        parts = [payload[offs[i] : offs[i + 1]] for i in range(1, n - 1)]
        msg = {"header": json.loads(parts[0]), "content": json.loads(parts[3])}
        return channel, msg
    except Exception:
        return None


class Capture:
    """Kernel -> browser frames, tagged by kind: this widget's comm_msg, stream, other."""

    def __init__(self):
        self.model_id: str | None = None
        self.events: list[tuple[float, str, int, str]] = []  # (kernel time, kind, bytes, extra)
        self.rate_warnings: list[str] = []
        self.stream_lines: list[tuple[float, int]] = []  # (kernel time, lines in that stream message)

    def on_websocket(self, ws) -> None:
        if "/api/kernels/" in ws.url and "/channels" in ws.url:
            ws.on("framereceived", self.on_frame)

    def on_frame(self, payload) -> None:
        size = len(payload.encode() if isinstance(payload, str) else payload)
        decoded = _decode(payload)
        if decoded is None:
            return
        channel, msg = decoded
        if channel != "iopub":
            return
        header, content = msg.get("header", {}), msg.get("content", {})
        mtype = header.get("msg_type", "")
        try:
            at = dt.datetime.fromisoformat(header["date"].replace("Z", "+00:00")).timestamp()
        except Exception:
            at = time.time()
        if mtype == "comm_msg" and self.model_id and content.get("comm_id") == self.model_id:
            method = (content.get("data") or {}).get("method", "")
            self.events.append((at, "widget", size, method))
        elif mtype == "stream":
            text = content.get("text", "")
            if "IOPub data rate exceeded" in text or "IOPub message rate exceeded" in text:
                self.rate_warnings.append(text[:200])
            self.events.append((at, "stream", size, ""))
            self.stream_lines.append((at, text.count("\n")))
        else:
            self.events.append((at, mtype, size, ""))

    def rates(self, kind: str, t0: float, t1: float) -> dict:
        """Per-second buckets of ``kind`` frames with kernel time in [t0, t1)."""
        msgs, nbytes = Counter(), Counter()
        methods = Counter()
        for at, k, size, extra in self.events:
            if k == kind and t0 <= at < t1:
                sec = int(at - t0)
                msgs[sec] += 1
                nbytes[sec] += size
                methods[extra] += 1
        seconds = max(1, int(t1 - t0))
        m = [msgs.get(i, 0) for i in range(seconds)]
        b = [nbytes.get(i, 0) for i in range(seconds)]
        return {
            "seconds": seconds,
            "msgs_total": sum(m),
            "bytes_total": sum(b),
            "msgs_per_s_median": statistics.median(m),
            "msgs_per_s_max": max(m),
            "msgs_per_s_mean": sum(m) / seconds,
            "bytes_per_s_median": statistics.median(b),
            "bytes_per_s_max": max(b),
            "bytes_per_s_mean": sum(b) / seconds,
            "by_method": dict(methods),
        }


# ------------------------------------------------------------------------------------------ helpers
def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _frames(page, phase: str) -> dict:
    xs = page.evaluate("(p) => (window.__bench.frames[p] || [])", phase)
    return {
        "count": len(xs),
        "median_ms": statistics.median(xs) if xs else float("nan"),
        "p95_ms": _pct(xs, 95),
        "max_ms": max(xs) if xs else float("nan"),
        "over_50ms": sum(1 for x in xs if x > 50),
        # time-weighted: a few long frames cover most of the wall time while many short ones set the median
        "fps": len(xs) / (sum(xs) / 1000) if xs else float("nan"),
        "time_in_long_frames": sum(x for x in xs if x > 50) / sum(xs) if xs else float("nan"),
    }


def _heap(cdp) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics.get("JSHeapUsedSize", float("nan"))


def _busy_after(page) -> float | None:
    """Seconds until the page answers a trivial evaluate (its main thread is free)."""
    t0 = time.monotonic()
    try:
        page.evaluate("() => 1")  # blocks while the main thread renders
    except Exception:
        return None
    return round(time.monotonic() - t0, 2)


def _set_phase(page, phase: str) -> None:
    page.evaluate("(p) => { window.__bench.phase = p; window.__bench.last = null; }", phase)


def _follow_phase(page, cdp, seconds: float, probe=None, end_hook=None) -> dict:
    """Pump Playwright events for ``seconds`` (plus the flood's start-up), sampling the heap at start/middle/end."""
    heap = {"start": _heap(cdp)}
    samples = []
    t0 = time.monotonic()
    mid_done = False
    while (elapsed := time.monotonic() - t0) < seconds:
        page.wait_for_timeout(250)  # a bench, not a test: this pumps websocket events while the flood runs
        if not mid_done and elapsed >= seconds / 2:
            heap["middle"] = _heap(cdp)
            mid_done = True
            if probe is not None:
                samples.append(("middle", probe()))
    if end_hook is not None:
        end_hook()
    heap["end"] = _heap(cdp)
    if probe is not None:
        samples.append(("end", probe()))
    return {"heap": heap, "probes": samples}


# ------------------------------------------------------------------------------------------ main
def run(seconds: float, rate: int, baseline_seconds: float) -> dict:
    server = lab.start_lab_server()
    cap = Capture()
    result: dict = {
        "seconds": seconds,
        "rate": rate,
        "baseline_seconds": baseline_seconds,
        "sites": SITES,
        "lab_startup_s": server.startup_seconds,
    }
    try:
        cells = [
            CELL_SETUP.format(sites=SITES, job_id=JOB_ID),
            CELL_WIDGET.format(seconds=seconds, rate=rate),
            CELL_CLOSE,
            CELL_BASELINE.format(seconds=baseline_seconds, rate=rate),
            'print("GEN=" + json.dumps(gen_stats))',
        ]
        lab.write_notebook(server.root_dir, "flood.ipynb", cells)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=lab.CHROMIUM, args=lab.CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(120_000)
            page = context.new_page()
            page.on("websocket", cap.on_websocket)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            lab.open_notebook(page, server, "flood.ipynb")
            page.evaluate(FRAMES_JS)

            out = lab.run_cell(page, 0)
            view = out.get_by_test_id("flarenb-logview")
            expect(view).to_be_visible(timeout=60_000)
            expect(out).to_contain_text("MODEL_ID=", timeout=60_000)
            cap.model_id = out.inner_text().split("MODEL_ID=", 1)[1].split()[0].strip()
            result["model_id"] = cap.model_id

            # idle reference
            _set_phase(page, "idle")
            page.wait_for_timeout(3000)
            result["frames_idle"] = _frames(page, "idle")
            result["heap_idle"] = _heap(cdp)

            # ---- phase 1: the widget under the flood
            view.scroll_into_view_if_needed()
            _set_phase(page, "widget")
            t_widget = time.time()
            lab.run_cell(page, 1)
            probe = lambda: view.evaluate(DOM_JS)  # noqa: E731
            phase = _follow_phase(page, cdp, seconds, probe)
            t_widget_end = time.time()
            result["frames_widget"] = _frames(page, "widget")
            result["heap_widget"] = phase["heap"]
            result["dom_widget"] = dict(phase["probes"])
            result["following_at_end"] = view.get_by_test_id("flarenb-follow").get_attribute("aria-pressed")
            # drain: the flusher sends what its budget allows, then stops
            _set_phase(page, "drain")
            page.wait_for_timeout(3000)
            result["dom_after_drain"] = view.evaluate(DOM_JS)
            lanes = {}
            for site in SITES:
                view.get_by_test_id(f"flarenb-lane-tab-{site}").click()
                lane = view.get_by_test_id(f"flarenb-lane-{site}")
                expect(lane).to_be_visible()
                lanes[site] = lane.evaluate(
                    "(l) => ({ lines: l.querySelectorAll('[data-testid=\"flarenb-line\"]').length,"
                    " notice: (n => n && !n.hidden ? n.textContent : null)"
                    "(l.parentElement.querySelector('[data-testid=\"flarenb-evicted-notice\"]')) })"
                )
            result["lanes_held"] = lanes
            result["rates_widget"] = cap.rates("widget", t_widget, t_widget_end)
            closed = lab.run_cell(page, 2)
            text = closed.inner_text()
            result["kernel_widget"] = json.loads(text[text.index("{") : text.rindex("}") + 1])
            page.wait_for_timeout(2000)

            # ---- phase 2: baseline, print() per line
            _set_phase(page, "baseline")
            heap0 = _heap(cdp)
            t_base = time.time()
            lab.run_cell(page, 3)
            phase = _follow_phase(
                page, cdp, baseline_seconds, end_hook=lambda: result.update(baseline_busy_after_s=_busy_after(page))
            )
            t_base_end = time.time()
            result["frames_baseline"] = _frames(page, "baseline")
            result["heap_baseline"] = {"before": heap0, **phase["heap"]}
            result["rates_baseline"] = cap.rates("stream", t_base, t_base_end)
            result["iopub_rate_warnings"] = cap.rate_warnings[:5]
            # lines the browser received as stream text (the kernel may still be printing the last ones)
            page.wait_for_timeout(2000)
            result["baseline_lines_received"] = sum(n for at, n in cap.stream_lines if at >= t_base)
            try:  # the kernel's own count of the baseline's lines (the page may still be busy rendering)
                page.wait_for_timeout(int(max(0.0, t_base + baseline_seconds - time.time()) * 1000) + 1000)
                rep = lab.run_cell(page, 4, timeout=120)
                rtext = rep.inner_text()
                result["generated"] = json.loads(rtext[rtext.index("GEN=") + 4 :].strip().splitlines()[0])
            except Exception as exc:
                result["generated"] = {"error": repr(exc)[:200]}
            result["server_log_rate_lines"] = [
                ln for ln in server.log_tail(400).splitlines() if "rate exceeded" in ln.lower()
            ][:5]
            # the page may still be rendering the baseline's output: do not wait for it
            browser.close()
    finally:
        server.stop()
    return result


def table(r: dict) -> str:
    w, b = r["rates_widget"], r["rates_baseline"]
    fw, fb, fi = r["frames_widget"], r["frames_baseline"], r["frames_idle"]
    hw, hb = r["heap_widget"], r["heap_baseline"]
    mb = 1 / (1024 * 1024)

    def ratio(x, y):
        return f"{x / y:.2f}" if y else "-"

    rows = [
        ("", "LogView", "print() baseline", "LogView / baseline"),
        (
            "lines generated / received as text",
            f"{r['kernel_widget']['gen']['lines']:,}",
            f"{r['generated'].get('baseline', {}).get('lines', -1):,} / {r['baseline_lines_received']:,}",
            "",
        ),
        (
            "msgs/s median (max)",
            f"{w['msgs_per_s_median']:.0f} ({w['msgs_per_s_max']})",
            f"{b['msgs_per_s_median']:.0f} ({b['msgs_per_s_max']})",
            ratio(w["msgs_per_s_median"], b["msgs_per_s_median"]),
        ),
        (
            "KB/s median (max)",
            f"{w['bytes_per_s_median'] / 1000:.0f} ({w['bytes_per_s_max'] / 1000:.0f})",
            f"{b['bytes_per_s_median'] / 1000:.0f} ({b['bytes_per_s_max'] / 1000:.0f})",
            ratio(w["bytes_per_s_median"], b["bytes_per_s_median"]),
        ),
        (
            "frame ms median / p95 / max",
            f"{fw['median_ms']:.1f} / {fw['p95_ms']:.1f} / {fw['max_ms']:.0f}",
            f"{fb['median_ms']:.1f} / {fb['p95_ms']:.1f} / {fb['max_ms']:.0f}",
            ratio(fw["median_ms"], fb["median_ms"]),
        ),
        ("frames > 50 ms", f"{fw['over_50ms']} of {fw['count']}", f"{fb['over_50ms']} of {fb['count']}", ""),
        (
            "fps / time in frames > 50 ms",
            f"{fw['fps']:.1f} / {fw['time_in_long_frames']:.0%}",
            f"{fb['fps']:.1f} / {fb['time_in_long_frames']:.0%}",
            "",
        ),
        (
            "JS heap MiB start / mid / end",
            f"{hw['start'] * mb:.0f} / {hw.get('middle', 0) * mb:.0f} / {hw['end'] * mb:.0f}",
            f"{hb['start'] * mb:.0f} / {hb.get('middle', 0) * mb:.0f} / {hb['end'] * mb:.0f}",
            "",
        ),
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = [" | ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * x for x in widths))
    end = r["dom_after_drain"]
    lines += [
        "",
        f"idle frame ms median {fi['median_ms']:.1f} (p95 {fi['p95_ms']:.1f}); "
        f"following at end: {r['following_at_end']}",
        f"baseline: page main thread busy {r['baseline_busy_after_s']}s after the flood ended",
        f"lines held per site (All sites lane, after drain): {end['bySite']} + {end['gaps']} gap markers; "
        f"DOM nodes {end['nodes']}",
        f"per-site lanes: {r['lanes_held']}",
        f"evicted notice: {end['notice']!r}",
        f"kernel: line_counts {r['kernel_widget']['line_counts']} skipped {r['kernel_widget']['skipped']}",
        f"widget comm msgs by method: {w['by_method']}",
        f"iopub rate warnings seen by the browser: {len(r['iopub_rate_warnings'])}; "
        f"in the server log: {len(r['server_log_rate_lines'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=5000, help="lines/s in total over the three sites")
    ap.add_argument(
        "--baseline-seconds",
        type=float,
        default=20.0,
        help="print() baseline duration (default 20: JupyterLab renders that output for minutes after "
        "a longer one, and the page cannot be measured meanwhile)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    started = time.monotonic()
    r = run(args.seconds, args.rate, args.baseline_seconds)
    r["wall_s"] = time.monotonic() - started
    print(table(r))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"widget_browser-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(r, indent=1, default=str))
    print(f"\nwall {r['wall_s']:.0f}s; JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
