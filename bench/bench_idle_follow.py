"""Kernel-side cost of following an idle job, per transport, on a real local POC.

    python bench/bench_idle_follow.py [--window 40] [--warmup 3]

Targets: < 1 % of a core while following an idle job; LocalTail woken by file-system notifications < 0.05 % of a
core and no admin call while idle (the job's end is noticed locally, then confirmed by one status call).

The job's client prints one ``IDLE start`` line, then sleeps without logging (one round, long enough for every
window). Once that line is in the client's log (plus ``--settle`` s), three windows of ``--window`` s each, one
after the other, in this process (the "kernel"):

1. **baseline** - nothing followed (the two open admin sessions' own threads still run);
2. **LocalTail (events)** - ``follow_job`` through the POC connection (``Flare.poc`` set): woken by file-system
   notifications (inotify here) plus a safety poll every 5 s;
   **LocalTail (polling)** - the same, polling every 0.05 s (0.2 s once idle), as where notifications are unavailable;
3. **AdminPoll** - ``follow_job(cursor=False)`` through a second connection with the same kit and no ``.poc``;
4. **Cursor** - ``follow_job`` through a third such connection: the ``flarenb.logs`` app command (only new bytes).

``--log-mb 4`` makes the client write that many MiB of log before it goes quiet, to show that the cursor's idle
cost does not grow with the log's size (AdminPoll's does: whole logs every poll).

Each follower is given ``--warmup`` s, then as long as it still reads (bytes read growing over 3 s, at most 120 s),
to read the log so far before its window starts, and is released after.
Per window: the process's CPU (``time.process_time()`` delta), per-thread CPU (``/proc/self/task/<tid>/stat``),
bytes the transport read (``transport.bytes_read``: file bytes for LocalTail, log text of ``get_job_logs``
replies for AdminPoll), and admin API calls per method (every ``Flare.call`` of both connections is counted).
The follow cost is the window's CPU minus the baseline's. Writes ``bench/results/idle_follow-*.json``.
~3.5 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

CLIENT = '''\
"""flarenb bench client: one line, then a long silence."""
import argparse
import time

import nvflare.client as flare

p = argparse.ArgumentParser()
p.add_argument("--sleep", type=float, default=150.0)
p.add_argument("--log-mb", type=float, default=0.0)
args, _ = p.parse_known_args()

flare.init()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    filler = "x" * 100
    for i in range(int(args.log_mb * 1024 * 1024 / 110)):
        print(f"FILL {i:07d} {filler}")
    print(f"IDLE start {time.time():.3f}", flush=True)
    time.sleep(args.sleep)
    flare.send(flare.FLModel(params=model.params, metrics={"loss": 1.0}))
'''


LT, LP, WHATIF = "LocalTail (events)", "LocalTail (polling)", "LocalTail (5 s status/scan)"


class _Counting:
    """A Session proxy that counts the admin API methods used through it."""

    def __init__(self, sess, counts):
        self._s, self._counts = sess, counts

    def __getattr__(self, name):
        self._counts[name] += 1
        return getattr(self._s, name)


def count_calls(flare, counts: collections.Counter) -> None:
    orig = flare.call

    def call(fn, *, retry=True):
        return orig(lambda s: fn(_Counting(s, counts)), retry=retry)

    flare.call = call  # instance attribute: every user of this Flare goes through it


def window(seconds: float, transport=None, counts=None) -> dict:
    """Measure this process for ``seconds`` of wall time."""
    th0, cpu0, t0 = common.thread_cpu(), time.process_time(), time.monotonic()
    b0 = transport.bytes_read if transport is not None else 0
    p0 = getattr(transport, "polls", None)
    c0 = collections.Counter(counts) if counts is not None else collections.Counter()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    th1 = common.thread_cpu()
    threads = {k: v - th0.get(k, 0.0) for k, v in th1.items()}
    threads = {k: round(v, 3) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v > 0}
    calls = dict(collections.Counter(counts) - c0) if counts is not None else {}
    p1 = getattr(transport, "polls", None)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_pct_core": 100 * cpu / wall,
        "flarenb_threads_cpu_s": sum(v for k, v in threads.items() if k.startswith("flarenb-")),
        "threads_cpu_s": threads,
        "bytes": (transport.bytes_read - b0) if transport is not None else 0,
        "bytes_per_min": 60 * ((transport.bytes_read - b0) if transport is not None else 0) / wall,
        "admin_calls": calls,
        "admin_calls_per_min": 60 * sum(calls.values()) / wall,
        "polls_per_min": 60 * (p1 - p0) / wall if p0 is not None and p1 is not None else None,
    }


def unit_costs(flare, job_id: str, poc, n: int = 20) -> dict:
    """CPU (process-wide, so NVFlare's connection threads count) of the steps an idle follower repeats."""
    import os

    from flarenb.logsource import _LocalLiveness
    from flarenb.receiver import Receiver
    from flarenb.sources import LocalTail, local_job_log_paths

    def cpu_per(fn, k):
        t = time.process_time()
        for _ in range(k):
            fn()
        return (time.process_time() - t) / k

    meta = cpu_per(lambda: flare.call(lambda s: s.get_job_meta(job_id)), n)
    logs = cpu_per(lambda: flare.call(lambda s: s.get_job_logs(job_id, target="site-1")), n)
    scan = cpu_per(_LocalLiveness(job_id)._scan, n)
    tail = LocalTail(Receiver(), local_job_log_paths(str(poc.prod_dir), job_id))
    tail.poll_once()
    poll = cpu_per(tail.poll_once, 50 * n)
    tail.stop()
    return {
        "get_job_meta_cpu_ms": 1000 * meta,
        "get_job_logs_cpu_ms": 1000 * logs,
        "process_scan_cpu_ms": 1000 * scan,
        "processes": sum(1 for e in os.listdir("/proc") if e.isdigit()),
        "tail_poll_cpu_us": 1e6 * poll,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=40.0, help="seconds measured per transport (and baseline)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds a new follower reads the log so far")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the client's last line")
    ap.add_argument("--log-mb", type=float, default=0.0, help="MiB of log each client writes before going quiet")
    ap.add_argument("--named-sites", action="store_true", help="submit through the POC connection (sites named)")
    ap.add_argument(
        "--whatif",
        action="store_true",
        help="one more LocalTail window with the job status and the "
        "process scan rate-limited to every 5 s (flarenb.live.STATUS_TTL, _LocalLiveness.TTL patched)",
    )
    ap.add_argument("--local-only", action="store_true", help="only the LocalTail windows (no AdminPoll, Cursor)")
    ap.add_argument("--keep", action="store_true", help="keep the temp POC workspace")
    args = ap.parse_args(argv)

    root = common.isolate("idle")
    import flarenb
    from flarenb.jobs import Job
    from flarenb.live import follow_job

    n_windows = (3 if args.local_only else 5) + args.whatif
    sleep = args.settle + n_windows * (args.window + args.warmup) + 60
    sleep += n_windows * 60 if args.log_mb else 0  # catching up with a big log (the job is aborted at the end)
    res: dict = {"args": vars(args), "client_sleep_s": sleep}
    t_total = time.monotonic()
    results = {}
    with common.BenchPoc(root, clients=2, keep=args.keep) as bp:
        f = bp.flare
        remote = bp.admin_flare(alias=True)
        remote2 = bp.admin_flare(alias="admin-kit-alias-2")
        counts_local, counts_remote = collections.Counter(), collections.Counter()
        counts_remote2: collections.Counter = collections.Counter()
        count_calls(f, counts_local)
        count_calls(remote, counts_remote)
        count_calls(remote2, counts_remote2)
        job_dir = common.export_job(
            root / "jobs",
            "bench-idle",
            rounds=1,
            client_src=CLIENT,
            train_args=f"--sleep {sleep:.0f} --log-mb {args.log_mb:g}",
        )
        job = flarenb.submit(str(job_dir), name="idle", flare=f if args.named_sites else remote)
        print(f"job {job.id} submitted; waiting for the clients to go quiet", flush=True)
        logs = [bp.poc.job_log(site, job.id) for site in bp.poc.clients]
        deadline = time.monotonic() + 120
        while not all(p.is_file() and "IDLE start" in p.read_text(errors="replace") for p in logs):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the clients did not start: {common.wait_status(f, job.id, lambda s: True, 0)}")
            time.sleep(0.5)
        time.sleep(args.settle)
        try:
            print(f"baseline ({args.window:g} s) …", flush=True)
            results["baseline"] = window(args.window)
            plan = [(LT, f, counts_local), (LP, f, counts_local)]
            if not args.local_only:
                plan += [("AdminPoll", remote, counts_remote), ("Cursor", remote2, counts_remote2)]
            if args.whatif:
                plan.append((WHATIF, f, counts_local))
            for name, flare, counts in plan:
                if name == WHATIF:
                    from flarenb import logsource

                    logsource.STATUS_TTL = 5.0
                    logsource._LocalLiveness.TTL = 5.0
                    logsource._statuses.clear()
                this = Job(id=job.id, name=job.name, flare=flare)
                h = common.polling_tail(this) if name == LP else follow_job(this, cursor=name == "Cursor")  # (forced)
                try:
                    kind = type(getattr(h.transport, "inner", h.transport)).__name__  # (the rights-aware wrapper)
                    assert kind == {"Cursor": "CursorPoll"}.get(name, name.split()[0]), kind
                    time.sleep(args.warmup)
                    # then until it has caught up (a 4 MiB log takes the cursor several replies): the window
                    # measures following an idle job, not reading its past
                    deadline, last = time.monotonic() + 120, -1
                    while h.transport.bytes_read != last and time.monotonic() < deadline:
                        last = h.transport.bytes_read
                        time.sleep(3.0)
                    print(f"{name} ({args.window:g} s, {h.transport.bytes_read} bytes read in warm-up) …", flush=True)
                    results[name] = window(args.window, h.transport, counts)
                    describe = getattr(h.transport, "describe", None)
                    results[name]["source"] = describe() if describe is not None else kind
                    results[name]["lines_in_receiver"] = {s: len(h.receiver.lines(s)) for s in h.receiver.sites()}
                    results[name]["site_states"] = {s: h.receiver.site(s).state for s in h.receiver.sites()}
                finally:
                    h.release()
            res["unit_costs"] = unit_costs(f, job.id, bp.poc)
            status = str(f.call(lambda s: s.get_job_meta(job.id)).get("status"))
            res["job_status_at_end"] = status
            if common.terminal(status):
                print(f"WARNING: the job ended ({status}) before the last window finished", file=sys.stderr)
        finally:
            common.abort_quietly(f, job.id)

    base = results["baseline"]
    rows = []
    for name, r in results.items():
        extra = r["cpu_s"] - base["cpu_s"] if name != "baseline" else 0.0
        r["extra_cpu_pct_core"] = 100 * extra / r["wall_s"]
        rows.append(
            [
                name,
                f"{r['cpu_pct_core']:.2f} %",
                f"{r['extra_cpu_pct_core']:.2f} %" if name != "baseline" else "-",
                f"{100 * r['flarenb_threads_cpu_s'] / r['wall_s']:.2f} %",
                f"{r['bytes_per_min'] / 1024:.1f} KiB",
                f"{r['admin_calls_per_min']:.0f}",
                f"{r['polls_per_min']:.0f}" if r.get("polls_per_min") is not None else "-",
            ]
        )
    res.update(job_id=job.id, windows=results, total_s=time.monotonic() - t_total)
    print()
    print(
        common.table(
            ["window", "process CPU", "minus baseline", "flarenb threads", "bytes/min", "admin calls/min", "polls/min"],
            rows,
            title=f"Idle follow cost ({args.window:g} s windows, job {job.id}; CPU as % of one core)",
        )
    )
    u = res["unit_costs"]
    print(
        f"unit CPU costs (this process): get_job_meta call {u['get_job_meta_cpu_ms']:.2f} ms, "
        f"get_job_logs(site-1) call {u['get_job_logs_cpu_ms']:.2f} ms, local process scan "
        f"{u['process_scan_cpu_ms']:.2f} ms ({u['processes']} processes), LocalTail poll of 3 idle files "
        f"{u['tail_poll_cpu_us']:.0f} µs"
    )
    for name in [k for k in results if k != "baseline"]:
        r = results[name]
        print(f"{name}: admin calls {r['admin_calls']}; busiest threads {dict(list(r['threads_cpu_s'].items())[:4])}")
        if r.get("source"):
            print(f"{name}: {r['source']}")
        ok = max(r["extra_cpu_pct_core"], 100 * r["flarenb_threads_cpu_s"] / r["wall_s"]) < 1.0
        print(f"target {name} < 1 % of a core: {'OK' if ok else 'MISSED'}")
        if name == LT:
            ok = max(r["extra_cpu_pct_core"], 100 * r["flarenb_threads_cpu_s"] / r["wall_s"]) < 0.05
            print(f"target {name} < 0.05 % of a core: {'OK' if ok else 'MISSED'}")
            print(f"target {name} 0 admin calls/min: {'OK' if r['admin_calls_per_min'] == 0 else 'MISSED'}")
    if LT in results and LP in results:
        ratio = common.ratio(results[LP]["extra_cpu_pct_core"], results[LT]["extra_cpu_pct_core"])
        print(f"{LP} / {LT} (CPU minus baseline): {common.fmt(ratio, 'x')}")
    path = common.write_results("idle_follow", res)
    print(f"\nresults: {path}  (total {res['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
