"""CPU of following local log files while they are written, LocalTail woken by notifications vs polling (no FLARE).

    python bench/bench_tail_cost.py [--seconds 10] [--rates 0,4,10,40,200]

A writer process logs like an NVFlare job's process: each line goes through Python ``logging`` into three files of
one run folder (``log.txt``, ``log.json``, ``log_fl.txt``), for two sites, at each rate (lines per second per site;
0: idle). LocalTail follows each site's ``log.txt`` (with a subscribed receiver, as a view would). Per rate and
mechanism: this process's CPU (``time.process_time()``) as % of one core, the tail's polls, and — for the event
path — its switches to polling (``busy_switches``: more than ``busy_events`` notifications a second). The
mechanisms alternate, twice each; the table shows the median. Writes ``bench/results/tail_cost-*.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

WRITER = """
import logging, sys, time
rate, seconds, folders = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
loggers = []
for i, d in enumerate(folders):
    lg = logging.getLogger(f"site{i}")
    lg.propagate = False
    for name in ("log.txt", "log.json", "log_fl.txt"):
        lg.addHandler(logging.FileHandler(f"{d}/{name}"))
    lg.setLevel(logging.INFO)
    loggers.append(lg)
t0, n = time.time(), 0
while time.time() < t0 + seconds:
    if rate <= 0:
        time.sleep(seconds)
        break
    n += 1
    for lg in loggers:
        lg.info("2026-05-01 12:00:00,000 - X - INFO - line %d", n)
    delay = t0 + n / rate - time.time()
    if delay > 0:
        time.sleep(delay)
"""


def run(mechanism: str, rate: float, seconds: float) -> dict:
    from flarenb.receiver import Receiver
    from flarenb.sources import LocalTail

    root = Path(tempfile.mkdtemp(prefix="tailcost-"))
    folders = [root / f"site-{i}" / "job" for i in (1, 2)]
    for d in folders:
        d.mkdir(parents=True)
        (d / "log.txt").write_bytes(b"")
    rx = Receiver(fmt="text", idle_timeout=None, max_lines=10_000_000)
    got = [0]
    rx.subscribe(lambda u: got.__setitem__(0, got[0] + len(u.lines)), replay=False)
    tail = LocalTail(rx, {d.parent.name: str(d / "log.txt") for d in folders}, mechanism=mechanism, name=mechanism)
    tail.start()
    time.sleep(0.5)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(rate), str(seconds), *map(str, folders)])
    c0, t0, p0 = time.process_time(), time.monotonic(), tail.polls
    writer.wait()
    time.sleep(0.3)
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    out = {
        "cpu_pct_core": 100 * cpu / wall,
        "polls_per_s": (tail.polls - p0) / wall,
        "busy_switches": tail.busy_switches,
        "lines": got[0],
        "source": tail.describe(),
    }
    tail.stop()
    rx.stop()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", default="0,4,10,40,200", help="lines per second per site, comma-separated")
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    res: dict = {"args": vars(args), "runs": {}}
    rows = []
    for rate in rates:
        runs: dict[str, list[dict]] = {"events": [], "polling": []}
        for _ in range(2):
            for mechanism in ("events", "polling"):
                runs[mechanism].append(run(mechanism, rate, args.seconds))
        res["runs"][rate] = runs
        cpu = {m: statistics.median(r["cpu_pct_core"] for r in rs) for m, rs in runs.items()}
        rows.append(
            [
                f"{rate:g}",
                f"{cpu['events']:.3f} %",
                f"{cpu['polling']:.3f} %",
                common.fmt(common.ratio(cpu["events"], cpu["polling"]), "x"),
                f"{statistics.median(r['polls_per_s'] for r in runs['events']):.1f}",
                f"{statistics.median(r['polls_per_s'] for r in runs['polling']):.1f}",
                str(max(r["busy_switches"] for r in runs["events"])),
            ]
        )
    print(
        common.table(
            ["lines/s per site", "events CPU", "polling CPU", "events/polling", "polls/s ev", "polls/s poll", "busy"],
            rows,
            title=f"LocalTail CPU (% of one core, median of 2), 2 sites × 3 files, {args.seconds:g} s per run",
        )
    )
    path = common.write_results("tail_cost", res)
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
