"""Log delivery latency on a real local POC: client line written -> line in the kernel's receiver.

    python bench/bench_log_latency.py [--rounds 2] [--duration 30] [--period 0.25] [--cli-from-round 1]

Targets: local tail woken by file-system notifications median <= 0.01 s and p95 <= 0.03 s (polling: median
<= 0.2 s); admin polling median <= 0.8 s and p95 <= 1.5 s; cursor median <= 0.35 s,
p95 <= 0.6 s and bytes transferred <= 1.5x the log bytes the job wrote (AdminPoll: whole logs every poll).

The job's client prints ``LAT <seq> <time.time()> round=<r> site=<site>`` every ``--period`` s for
``--duration`` s per round (flush=True). One job, followed at the same time by

* **LocalTail (events)** - ``follow_job`` through the POC connection (``Flare.poc`` set: the sites' log files),
  woken by file-system notifications (inotify here; the mechanism is reported);
* **LocalTail (polling)** - the same files and end detection, a second follower whose LocalTail polls every
  0.05 s (``mechanism="polling"``: what LocalTail did before notifications, and does where they are unavailable);
* **AdminPoll** - ``follow_job(cursor=False)`` through a second connection with the same admin kit and no
  ``.poc`` (reached through a symlink so it gets its own follower): ``get_job_logs`` polling, as for a remote
  deployment before the cursor channel;
* **Cursor** - ``follow_job`` through a third such connection: the ``flarenb.logs`` app command of flarenb's job
  component (only the new bytes), as a remote deployment is followed now;
* **CLI baseline** - back-to-back ``nvflare job logs <job> --site site-1 --tail 50 --startup-kit <kit>``
  subprocesses, from the first line of round ``--cli-from-round`` on (0: the whole job); a line's delay is the
  return of the first call that showed it minus its embedded time.

Each flarenb transport subscribes to its receiver and records, per line, arrival ``time.time()`` minus the
embedded time (same clock). The job is submitted with ``flarenb.submit`` (which adds live log streaming) through
the connection without ``.poc``, so its deploy map keeps ``@ALL`` as a remote job's would (``--named-sites``:
through the POC connection, sites named; then AdminPoll asks ``target="all"`` once per poll). Reports median/p95
per transport and site, split into rounds before the CLI loop starts (no CLI load) and after; writes
``bench/results/log_latency-*.json``. ~2 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

CLIENT = '''\
"""flarenb bench client: prints a timestamped LAT line every PERIOD s for DURATION s each round."""
import argparse
import time

import nvflare.client as flare

p = argparse.ArgumentParser()
p.add_argument("--period", type=float, default=0.25)
p.add_argument("--duration", type=float, default=30.0)
args, _ = p.parse_known_args()

flare.init()
site = flare.get_site_name()
seq = 0
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    r = model.current_round
    end = time.time() + args.duration
    while time.time() < end:
        seq += 1
        print(f"LAT {seq} {time.time():.6f} round={r} site={site}", flush=True)
        time.sleep(args.period)
    params = {k: v + 1 for k, v in model.params.items()}
    flare.send(flare.FLModel(params=params, metrics={"loss": 1.0}))
'''

LAT = re.compile(r"LAT (\d+) (\d+\.\d+) round=(\d+) site=(\S+)")
LT, LP = "LocalTail (events)", "LocalTail (polling)"


class Recorder:
    """First arrival of each (site, seq) LAT line for one consumer."""

    def __init__(self, name):
        self.name = name
        self.seen: dict[tuple[str, int], dict] = {}
        self.lock = threading.Lock()
        self.first_round_seen: dict[int, float] = {}
        self.until = float("inf")
        self.since = 0.0  # lines written before this (time.time()) are not counted (the CLI starts late)

    def add(self, text: str, arrival: float) -> None:
        for m in LAT.finditer(text):
            seq, emb, rnd, site = int(m.group(1)), float(m.group(2)), int(m.group(3)), m.group(4)
            with self.lock:
                if emb < self.since or (site, seq) in self.seen:
                    continue
                self.seen[(site, seq)] = {"site": site, "seq": seq, "round": rnd, "emb": emb, "delay": arrival - emb}
                self.first_round_seen.setdefault(rnd, arrival)

    def on_update(self, update) -> None:
        if update.lines:
            now = time.time()
            for line in update.lines:
                self.add(line.text, now)

    def delays(self, site=None, rounds=None):
        with self.lock:
            rows = list(self.seen.values())
        return [
            r["delay"] for r in rows if (site is None or r["site"] == site) and (rounds is None or r["round"] in rounds)
        ]


def cli_loop(job_id, kit, rec: Recorder, start: threading.Event, stop: threading.Event, calls: list):
    start.wait()
    rec.since = time.time()
    cmd = [
        sys.executable,
        "-m",
        "nvflare.cli",
        "job",
        "logs",
        job_id,
        "--site",
        "site-1",
        "--tail",
        "50",
        "--startup-kit",
        kit,
    ]
    while not stop.is_set():
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        t1 = time.time()
        calls.append({"s": t1 - t0, "rc": p.returncode})
        rec.add(p.stdout, t1)
        rec.until = t0  # lines written up to the start of the last call have had their chance


def _log_bytes(bp, job_id: str) -> int:
    """The bytes of every site's job log the job wrote (server + clients, on the POC's disk; the server's run folder
    may already have moved into the job store, then its log comes from the admin API)."""
    poc = bp.flare.poc
    total = 0
    for site in ("site-1", "site-2"):
        path = Path(poc.prod_dir) / site / job_id / "log.txt"
        total += path.stat().st_size if path.exists() else 0
    server = Path(poc.prod_dir) / poc.server_name / job_id / "log.txt"
    if server.exists():
        total += server.stat().st_size
    else:
        text = bp.flare.call(lambda s: s.get_job_logs(job_id, target="server"))["logs"].get("server", "")
        total += len(text.encode("utf-8"))
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of LAT lines per round")
    ap.add_argument("--period", type=float, default=0.25, help="seconds between LAT lines")
    ap.add_argument(
        "--cli-from-round",
        type=int,
        default=1,
        help="start the CLI loop at this round (0: at once; -1: no CLI baseline)",
    )
    ap.add_argument("--named-sites", action="store_true", help="submit through the POC connection (sites named)")
    ap.add_argument("--keep", action="store_true", help="keep the temp POC workspace")
    args = ap.parse_args(argv)

    root = common.isolate("latency")
    import flarenb
    from flarenb.jobs import Job
    from flarenb.live import follow_job

    res: dict = {"args": vars(args)}
    t_total = time.monotonic()
    recs = {k: Recorder(k) for k in (LT, LP, "AdminPoll", "Cursor", "CLI")}
    cli_calls: list = []
    transports = {}
    with common.BenchPoc(root, clients=2, keep=args.keep) as bp:
        f = bp.flare
        remote = bp.admin_flare(alias=True)
        remote2 = bp.admin_flare(alias="admin-kit-alias-2")
        res["poc_start_s"] = bp.started_in
        job_dir = common.export_job(
            root / "jobs",
            "bench-latency",
            rounds=args.rounds,
            client_src=CLIENT,
            train_args=f"--period {args.period} --duration {args.duration}",
        )
        job = flarenb.submit(str(job_dir), name="latency", flare=f if args.named_sites else remote)
        print(f"job {job.id} submitted; following it locally and through the admin API", flush=True)
        handles = {
            LT: follow_job(Job(id=job.id, name=job.name, flare=f)),
            LP: common.polling_tail(Job(id=job.id, name=job.name, flare=f)),
            "AdminPoll": follow_job(Job(id=job.id, name=job.name, flare=remote), cursor=False),
            "Cursor": follow_job(Job(id=job.id, name=job.name, flare=remote2), cursor=True),
        }
        for name, h in handles.items():
            inner = getattr(h.transport, "inner", h.transport)  # the live view's rights-aware wrapper
            transports[name] = type(inner).__name__
            h.subscribe(recs[name].on_update, replay=True)
        want = {LT: "LocalTail", LP: "LocalTail", "AdminPoll": "AdminPoll", "Cursor": "CursorPoll"}
        assert transports == want, transports
        res["mechanisms"] = {k: handles[k].transport.describe() for k in (LT, LP)}
        print(f"mechanisms: {res['mechanisms']}", flush=True)
        cursor0 = getattr(handles["Cursor"].transport, "inner", handles["Cursor"].transport)
        polls0 = handles["AdminPoll"].transport

        start_cli, stop_cli = threading.Event(), threading.Event()
        cli_thread = None
        if args.cli_from_round >= 0:
            cli_thread = threading.Thread(
                target=cli_loop, args=(job.id, bp.kit_path, recs["CLI"], start_cli, stop_cli, cli_calls), daemon=True
            )
            cli_thread.start()
        try:
            deadline = time.monotonic() + args.rounds * (args.duration + 30) + 90
            status = ""
            while time.monotonic() < deadline:
                if (
                    args.cli_from_round >= 0
                    and not start_cli.is_set()
                    and args.cli_from_round in recs[LT].first_round_seen
                ):
                    start_cli.set()
                status = str(f.call(lambda s: s.get_job_meta(job.id)).get("status"))
                if common.terminal(status):
                    break
                if int(time.monotonic() - t_total) % 10 == 0:
                    print(
                        f"  {status}: {len(recs[LT].seen)} LAT lines tailed, "
                        f"{len(recs['AdminPoll'].seen)} polled, {len(recs['Cursor'].seen)} by cursor, "
                        f"{len(recs['CLI'].seen)} via CLI "
                        f"({len(cli_calls)} calls)",
                        flush=True,
                    )
                time.sleep(1.0)
            res["job_status"] = status
        finally:
            stop_cli.set()
            start_cli.set()
            if cli_thread is not None:
                cli_thread.join(timeout=60)
            time.sleep(3.0)  # let the transports drain
            res["admin_polls"] = getattr(polls0, "polls", None)
            res["bytes_read"] = {k: h.transport.bytes_read for k, h in handles.items()}
            nxt = getattr(cursor0, "next", None)
            res["bytes_read"]["Cursor"] = cursor0.bytes_read + (nxt.bytes_read if nxt is not None else 0)
            res["cursor"] = {
                "polls": cursor0.polls,
                "fallback": cursor0.fallback_reason,
                "bytes_by_cursor": cursor0.bytes_read,
                "bytes_after_the_job": nxt.bytes_read if nxt is not None else 0,
            }
            res["log_bytes"] = _log_bytes(bp, job.id)
            ev = handles[LT].transport
            res["events_tail"] = {"end": ev.describe(), "busy_switches": ev.busy_switches, "polls": ev.polls}
            res["polling_tail_polls"] = handles[LP].transport.polls
            for h in handles.values():
                h.release()

    emitted_rounds = sorted({r["round"] for r in recs[LT].seen.values()})
    quiet_rounds = [r for r in emitted_rounds if args.cli_from_round < 0 or r < args.cli_from_round]
    loaded_rounds = [r for r in emitted_rounds if r not in quiet_rounds]
    expected = {s: sum(1 for r in recs[LT].seen.values() if r["site"] == s) for s in ("site-1", "site-2")}

    summary, rows = {}, []
    for name in (LT, LP, "AdminPoll", "Cursor", "CLI"):
        rec = recs[name]
        for site in ("site-1", "site-2", None):
            if name == "CLI" and site != "site-1":
                continue
            label = site or "both"
            for part, rounds in (("all", None), ("no CLI load", quiet_rounds), ("with CLI loop", loaded_rounds)):
                if name == "CLI" and part != "all":
                    continue
                if part != "all" and (not rounds or args.cli_from_round < 0):
                    continue
                s = common.summary(rec.delays(site, rounds))
                summary[f"{name}/{label}/{part}"] = s
                got = len(rec.delays(site))
                exp = expected.get(site) if site else sum(expected.values())
                if name == "CLI":  # only lines written while the CLI loop ran count
                    exp = sum(
                        1
                        for r in recs[LT].seen.values()
                        if r["site"] == "site-1" and r["emb"] >= rec.since and r["emb"] <= recs["CLI"].until
                    )
                rows.append(
                    [
                        f"{name} {label} ({part})",
                        s["n"],
                        common.fmt(s["median"]),
                        common.fmt(s["p95"]),
                        common.fmt(s["max"]),
                        f"{got}/{exp}" if part == "all" else "",
                    ]
                )

    def med(key):
        return summary.get(key, {}).get("median", float("nan"))

    ratios = {
        f"{LP}/{LT} (median, both sites)": common.ratio(med(f"{LP}/both/all"), med(f"{LT}/both/all")),
        f"AdminPoll/{LT} (median, both sites)": common.ratio(med("AdminPoll/both/all"), med(f"{LT}/both/all")),
        "Cursor/AdminPoll (median, both sites)": common.ratio(med("Cursor/both/all"), med("AdminPoll/both/all")),
        "Cursor bytes / log bytes": common.ratio(res["bytes_read"]["Cursor"], res["log_bytes"]),
        "AdminPoll bytes / log bytes": common.ratio(res["bytes_read"]["AdminPoll"], res["log_bytes"]),
        "CLI/AdminPoll (median, site-1)": common.ratio(med("CLI/site-1/all"), med("AdminPoll/site-1/all")),
        f"CLI/{LT} (median, site-1)": common.ratio(med("CLI/site-1/all"), med(f"{LT}/site-1/all")),
    }
    lt, ap_ = summary.get(f"{LT}/both/all", {}), summary.get("AdminPoll/both/all", {})
    lp = summary.get(f"{LP}/both/all", {})
    cu = summary.get("Cursor/both/all", {})
    targets = {
        f"{LT} median <= 0.01 s": lt.get("median", 9) <= 0.01,
        f"{LT} p95 <= 0.03 s": lt.get("p95", 9) <= 0.03,
        f"{LP} median <= 0.2 s": lp.get("median", 9) <= 0.2,
        "AdminPoll median <= 0.8 s": ap_.get("median", 9) <= 0.8,
        "AdminPoll p95 <= 1.5 s": ap_.get("p95", 9) <= 1.5,
        "Cursor median <= 0.35 s": cu.get("median", 9) <= 0.35,
        "Cursor p95 <= 0.6 s": cu.get("p95", 9) <= 0.6,
        "Cursor bytes <= 1.5x log bytes": res["bytes_read"]["Cursor"] <= 1.5 * res["log_bytes"],
    }
    cli_s = common.summary([c["s"] for c in cli_calls])
    res.update(
        job_id=job.id,
        transports=transports,
        summary=summary,
        ratios=ratios,
        targets=targets,
        cli_calls={"n": len(cli_calls), "failed": sum(1 for c in cli_calls if c["rc"]), "duration": cli_s},
        quiet_rounds=quiet_rounds,
        loaded_rounds=loaded_rounds,
        samples={k: list(r.seen.values()) for k, r in recs.items()},
        total_s=time.monotonic() - t_total,
    )
    print()
    print(
        common.table(
            ["consumer / site (rounds)", "n", "median", "p95", "max", "lines"],
            rows,
            title=f"Log delivery latency, job {job.id} ({res.get('job_status')}); "
            f"CLI loop from round {args.cli_from_round}",
        )
    )
    print()
    for k, v in ratios.items():
        print(f"{k:42s} {common.fmt(v, 'x')}")
    print(
        f"CLI calls: {len(cli_calls)}, median {cli_s['median']:.2f} s each; AdminPoll polls: {res['admin_polls']}; "
        f"bytes read: {res['bytes_read']}"
    )
    print(f"{LT}: {res['events_tail']}; {LP}: {res['polling_tail_polls']} polls")
    for k, ok in targets.items():
        print(f"target {k}: {'OK' if ok else 'MISSED'}")
    path = common.write_results("log_latency", res)
    print(f"\nresults: {path}  (total {res['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
