"""Ingest rate of flarenb.receiver.Receiver (target: >= 300k lines/s for 1M lines).

    python bench/bench_receiver_ingest.py [--lines 1000000] [--runs 5] [--chunk 65536]

Feeds a synthetic nvflare-style log.txt (timestamped lines with levels, 10% traceback-like
continuation lines) in fixed-size byte chunks into one site, with one subscriber attached, and
prints the median over several runs in lines/s, next to a naive baseline
(``bytes.decode().splitlines()`` on the whole buffer: no levels, no Line objects, no chunking).
Also: the same for log.json records, and the CPU time AdminPoll's LogCursor spends on one
5 MiB whole-log reply (what each poll of a big log costs in the kernel).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flarenb.receiver import Receiver
from flarenb.sources import LogCursor


def make_text_log(n):
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(f'  File "/work/app/custom/client.py", line {i % 400}, in train')
        else:
            level = "ERROR" if i % 97 == 0 else "INFO"
            out.append(
                f"2026-05-01 12:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d} - ClientRunner - {level} - "
                f"[identity=site-1, run=0a1b2c3d, peer=server, task_name=train] - round {i // 1000} step {i} é"
            )
    return ("\n".join(out) + "\n").encode()


def make_json_log(n):
    rec = {"asctime": "2026-05-01 12:00:00,000", "name": "ClientRunner", "fullName": "nvflare.private.ClientRunner"}
    lines = []
    for i in range(n):
        r = dict(rec, levelname="INFO", fl_ctx="[identity=site-1]", message=f"round {i // 1000} step {i}")
        lines.append(json.dumps(r))
    return ("\n".join(lines) + "\n").encode()


def ingest(buf, chunk, fmt):
    rx = Receiver(fmt=fmt)
    count = [0]
    rx.subscribe(lambda u: count.__setitem__(0, count[0] + len(u.lines)))
    t = time.perf_counter()
    for i in range(0, len(buf), chunk):
        rx.feed("site-1", buf[i : i + chunk])
    rx.end("site-1")
    dt = time.perf_counter() - t
    return dt, count[0]


def naive(buf):
    t = time.perf_counter()
    n = len(buf.decode("utf-8").splitlines())
    return time.perf_counter() - t, n


def cursor_poll_cost(runs):
    """CPU of one poll: a 5 MiB truncated reply whose last 4 KiB are new."""
    line = "2026-05-01 12:00:00,000 - ClientRunner - INFO - [identity=site-1] - step %d\n"
    body = "".join(line % i for i in range(80_000))
    body = body[-5 * 1024 * 1024 :]
    old, new = body[:-4096], body
    times = []
    for _ in range(runs):
        c = LogCursor()
        c.take(f"... output truncated to last 5242880 bytes ...\n{old}")
        t = time.perf_counter()
        c.take(f"... output truncated to last 5242880 bytes ...\n{new}")
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=65536)
    a = ap.parse_args()

    buf = make_text_log(a.lines)
    runs = [ingest(buf, a.chunk, "text") for _ in range(a.runs)]
    assert all(n == a.lines for _, n in runs), runs
    base = [naive(buf) for _ in range(a.runs)]
    rx_rate = a.lines / statistics.median(dt for dt, _ in runs)
    base_rate = a.lines / statistics.median(dt for dt, _ in base)
    print(f"log.txt: {a.lines:,} lines, {len(buf) / 2**20:.1f} MiB, {a.chunk} B chunks, median of {a.runs} runs")
    print(f"  receiver : {rx_rate:>12,.0f} lines/s  ({len(buf) / 2**20 * rx_rate / a.lines:.1f} MiB/s)")
    print(f"  naive    : {base_rate:>12,.0f} lines/s  (bytes.decode().splitlines(), whole buffer)")
    print(
        f"  ratio    : receiver = {rx_rate / base_rate:.3f} x naive; target 300,000 lines/s -> "
        f"{'OK' if rx_rate >= 300_000 else 'BELOW TARGET'}"
    )

    jn = max(1, a.lines // 5)
    jbuf = make_json_log(jn)
    jruns = [ingest(jbuf, a.chunk, "json") for _ in range(a.runs)]
    print(f"log.json: {jn:,} records: {jn / statistics.median(dt for dt, _ in jruns):,.0f} lines/s")
    print(f"AdminPoll cursor, one 5 MiB reply with 4 KiB new: {cursor_poll_cost(a.runs) * 1000:.2f} ms CPU")


if __name__ == "__main__":
    main()
