"""Kernel memory of one live view fed 1M lines of 2 KiB from 3 sites (fake sources, no server).

    python bench/bench_widget_memory.py [--lines 1000000] [--line-bytes 2048] [--history-mib 64]

Feeds the lines through the real path — ``Receiver`` (bytes -> lines, its own byte budget) -> ``LogView.append``
(history budget, outbox) with the flusher running against a dummy comm — and reports the process's RSS
(``VmRSS``) and peak (``VmHWM``) before and after, in MiB, as JSON. Pass: the growth stays under the view's
history budget + the receiver's budget + the outbox's bounded queue.
"""

from __future__ import annotations

import argparse
import json
import time


def rss_mib() -> tuple[float, float]:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--line-bytes", type=int, default=2048)
    ap.add_argument("--history-mib", type=int, default=64)
    args = ap.parse_args()

    from flarenb.receiver import Receiver
    from flarenb.widget import LogView

    sites = ["server", "site-1", "site-2"]
    view = LogView("bench", sites=sites, history_bytes=args.history_mib << 20)
    rx = Receiver(fmt="text")
    rx.subscribe(lambda u: view.append(u.site, u.lines))
    base, _ = rss_mib()
    pad = "x" * (args.line_bytes - 60)
    per_chunk = 64
    t0 = time.perf_counter()
    n = 0
    while n < args.lines:
        for site in sites:
            chunk = "".join(
                f"2026-12-04 06:00:00,000 - bench - INFO - {site} {n + i:08d} {pad}\n" for i in range(per_chunk)
            )
            rx.feed(site, chunk.encode())
        n += per_chunk * len(sites)
    elapsed = time.perf_counter() - t0
    rss, peak = rss_mib()
    result = {
        "lines": n,
        "line_bytes": args.line_bytes,
        "fed_mib": round(n * args.line_bytes / 2**20),
        "seconds": round(elapsed, 1),
        "lines_per_s": round(n / elapsed),
        "rss_before_mib": round(base, 1),
        "rss_after_mib": round(rss, 1),
        "peak_mib": round(peak, 1),
        "growth_mib": round(rss - base, 1),
        "view_history_mib": round(view._hist.nbytes / 2**20, 1),
        "receiver_mib": round(rx.nbytes / 2**20, 1),
        "history_dropped": {s: view.history_dropped(s) for s in sites},
        "budget_mib": args.history_mib + rx.max_bytes / 2**20 + 4 * 0.5,
    }
    result["under_budget"] = result["growth_mib"] <= result["budget_mib"]
    view.close_follow("FINISHED:COMPLETED")
    view.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
