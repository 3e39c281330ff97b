"""Kernel-side cost of following an idle job, per transport, on a real local POC.

    python bench/bench_idle_follow.py [--window 40] [--warmup 3] [--local-only] [--sim | --sim-only]

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

``--views``: one more POC window, **LocalTail view** (``job.view()``: the follower plus the view's own threads), to
compare with the simulation's view.

``--sim`` (first, before the POC starts) or ``--sim-only``: the simulator path. A simulation of the tests' NumPy
FedAvg recipe (2 clients, ``notebooks/fedavg_client.py --hold-until PATH``: each client prints its ``round 0`` line,
then holds without logging), then windows: **baseline (sim)** (the simulation runs, nothing followed), **Sim
follower** (``follow_sim``: what the view of ``%flare submit --sim`` follows with) and **Sim view** (``sim.view()``:
the follower plus the view's own threads: its watch of the status, the widget's and the metrics' threads). Besides
the admin calls (a simulation has no admin API: any is a bug) it counts the status work a follower repeats: reads of
the simulation's files (``Simulation.meta``/``.status``), checks of its runner process (``simprocs.alive``) and full
process scans; and per thread, the wake-ups (context switches in ``/proc/self/task/<tid>/status``). At the end the
held clients are released with a view following: how long after the simulation's end (``result.json``) the view
has finished.

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
LV = "LocalTail view (job.view())"


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


def thread_switches() -> dict[str, int]:
    """``{thread name: context switches so far}`` (voluntary + not) of this process's live Python threads: each
    voluntary one is the thread going to sleep, i.e. one wake-up per switch (Linux /proc)."""
    import threading

    out: dict[str, int] = {}
    for t in threading.enumerate():
        tid = getattr(t, "native_id", None)
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                text = f.read()
        except (OSError, TypeError):
            continue
        n = sum(int(line.split()[1]) for line in text.splitlines() if "ctxt_switches:" in line)
        key = t.name
        while key in out:
            key += "'"
        out[key] = n
    return out


def window(seconds: float, transport=None, counts=None) -> dict:
    """Measure this process for ``seconds`` of wall time."""
    sw0 = thread_switches()
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
    sw = {k: v - sw0[k] for k, v in thread_switches().items() if k in sw0 and v > sw0[k]}
    wakeups = {k: round(60 * v / wall, 1) for k, v in sorted(sw.items(), key=lambda kv: -kv[1])}
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
        "wakeups_per_min": wakeups,  # per thread that existed through the window (context switches)
        "flarenb_wakeups_per_min": sum(v for k, v in wakeups.items() if k.startswith("flarenb-")),
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


SF, SV, SB = "Sim follower (follow_sim)", "Sim view (sim.view())", "baseline (sim)"
SR = "Sim view, reattached"  # the view of a simulation another kernel started (its runner is not this one's child)


def count_sim_work(counts: collections.Counter) -> None:
    """Count what a simulation's follower may repeat while idle: reads of its state files (``Simulation.meta``,
    ``.status``), checks of its runner process (``simprocs.alive``), scans of all processes
    (``simprocs.processes``, ``procs.pids``, ``procs.job_processes``) and admin calls (``Flare.call``: there is no
    admin API for a simulation, so any would be a bug)."""
    from flarenb import procs, session, sim, simprocs

    def wrap(owner, name, key):
        orig = getattr(owner, name)
        if isinstance(orig, property):

            def get(self):
                counts[key] += 1
                return orig.fget(self)

            setattr(owner, name, property(get))
            return

        def counted(*a, **kw):
            counts[key] += 1
            return orig(*a, **kw)

        setattr(owner, name, counted)

    wrap(sim.Simulation, "meta", "sim.meta")
    wrap(sim.Simulation, "status", "sim.status")
    wrap(sim.Simulation, "running", "sim.running (end-signal check)")
    wrap(simprocs, "alive", "simprocs.alive")
    wrap(simprocs, "processes", "simprocs.processes (scan)")
    wrap(simprocs, "pids", "procs.pids (scan)")
    wrap(procs, "job_processes", "procs.job_processes (scan)")
    wrap(session.Flare, "call", "admin call")


def sim_phase(args, root: Path, results: dict, res: dict) -> None:
    """Start a small simulation whose clients hold their first round (nothing logged), then the windows: baseline
    (the simulation runs, nothing followed), the follower ``%flare submit --sim`` uses (``follow_sim``), and the
    whole view (``sim.view()``: the follower plus the view's own watch of the status)."""
    import os
    import shutil

    from flarenb import sim as simmod
    from flarenb.logsource import follow_sim
    from flarenb.vocab import is_terminal
    from tests.conftest import make_recipe

    hold = root / "sim-hold"
    nb = root / "sim-nb"
    nb.mkdir()
    shutil.copy(common.REPO / "notebooks" / "fedavg_client.py", nb / "client.py")
    cwd = os.getcwd()
    os.chdir(nb)  # the recipe takes its train_script relative to the cwd
    try:
        recipe = make_recipe("bench-idle-sim", rounds=1, train_args=f"--sleep 0 --hold-until {hold}")
        sim = simmod.submit(recipe, clients=2, new=True)
    finally:
        os.chdir(cwd)
    res["sim_id"] = sim.id
    print(f"simulation {sim.id} started; waiting for its clients to hold", flush=True)
    counts: collections.Counter = collections.Counter()
    try:
        logs = [sim.site_log(site) for site in sim.clients]
        deadline = time.monotonic() + 180
        while not all(p.is_file() and "round 0 on" in p.read_text(errors="replace") for p in logs):
            if time.monotonic() > deadline or not sim.running():
                raise RuntimeError(f"the simulation's clients did not start ({sim.status}; see {sim.root})")
            time.sleep(0.5)
        time.sleep(args.settle)
        count_sim_work(counts)
        print(f"{SB} ({args.window:g} s) …", flush=True)
        results[SB] = window(args.window, counts=counts)
        for name in (SF, SV, SR):
            runner = simmod._children.pop(sim.id) if name == SR else None  # as if another kernel had started it
            view = (simmod.get(sim.id) if name == SR else sim).view() if name in (SV, SR) else None
            h = view._handle if view is not None else follow_sim(sim)
            transport = h.transport
            try:
                time.sleep(args.warmup)
                print(f"{name} ({args.window:g} s, {transport.bytes_read} bytes read in warm-up) …", flush=True)
                results[name] = r = window(args.window, transport, counts)
                r["baseline"] = SB
                results[name]["source"] = transport.describe()
                results[name]["lines_in_receiver"] = {s: len(h.receiver.lines(s)) for s in h.receiver.sites()}
                results[name]["site_states"] = {s: h.receiver.site(s).state for s in h.receiver.sites()}
                results[name]["watcher_events"] = getattr(getattr(transport, "_watcher", None), "events", None)
            finally:
                if view is not None:
                    view.close()
                else:
                    h.release()
                if runner is not None:
                    simmod._children[sim.id] = runner
        res["sim_status_at_end"] = sim.status
        if sim.status != "RUNNING":
            print(f"WARNING: the simulation was {sim.status} at the end of its windows", file=sys.stderr)
        res["sim_unit_costs"] = sim_unit_costs(sim)
        res["sim_end"] = sim_end(sim, hold)
    finally:
        hold.touch()
        if not is_terminal(sim.status):
            sim.abort()
    res["sim_counts_total"] = dict(counts)
    for r in [results[k] for k in (SB, SF, SV, SR) if k in results]:
        work = r.pop("admin_calls")
        r["admin_calls"] = {k: v for k, v in work.items() if k == "admin call"}
        r["admin_calls_per_min"] = 60 * sum(r["admin_calls"].values()) / r["wall_s"]
        r["sim_work_per_min"] = {k: round(60 * v / r["wall_s"], 1) for k, v in work.items() if k != "admin call"}


def sim_unit_costs(sim, n: int = 200) -> dict:
    """CPU of the status work a simulation's follower may repeat (in this process)."""
    from flarenb import simprocs
    from flarenb.logsource import SimStatus

    def cpu_us(fn):
        t = time.process_time()
        for _ in range(n):
            fn()
        return round(1e6 * (time.process_time() - t) / n, 1)

    from flarenb import sim as simmod

    st = sim.state
    status = SimStatus(sim)
    mine = cpu_us(sim.running)
    runner = simmod._children.pop(sim.id)
    try:
        other = cpu_us(simmod.get(sim.id).running)
    finally:
        simmod._children[sim.id] = runner
    return {
        "Simulation.running()_us (this kernel's runner)": mine,
        "Simulation.running()_us (reattached)": other,
        "sim.meta()_us": cpu_us(sim.meta),
        "SimStatus(fresh=True)_us": cpu_us(lambda: status(fresh=True)),
        "SimStatus()_us": cpu_us(status),
        "simprocs.alive(runner)_us": cpu_us(lambda: simprocs.alive(st.get("pid"), st.get("pid_ticks"))),
    }


def sim_end(sim, hold: Path, timeout: float = 120.0) -> dict:
    """Release the held clients with a view following: how long after the simulation's end (its ``result.json``
    written) the view had every stream closed and its follow finished."""
    view = sim.view()
    try:
        time.sleep(1.0)
        hold.touch()
        deadline = time.monotonic() + timeout
        while view.widget.live and time.monotonic() < deadline:
            time.sleep(0.01)
        done = time.time()
        end = simmod_end_time(sim)
        return {
            "status": sim.status,
            "view_finished": not view.widget.live,
            "seconds_after_result": round(done - end, 3) if end else None,
        }
    finally:
        view.close()


def simmod_end_time(sim) -> float | None:
    from flarenb.simfolder import mtime

    return mtime(sim.root / "result.json")


def poc_phase(args, root: Path, results: dict, res: dict, sleep: float) -> str:
    """The POC's windows (see the module docstring); returns the job's id."""
    import flarenb
    from flarenb.jobs import Job
    from flarenb.live import follow_job

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
            if args.views:
                plan.append((LV, f, counts_local))
            if args.whatif:
                plan.append((WHATIF, f, counts_local))
            for name, flare, counts in plan:
                if name == WHATIF:
                    from flarenb import logsource

                    logsource.STATUS_TTL = 5.0
                    logsource._LocalLiveness.TTL = 5.0
                    logsource._statuses.clear()
                this = Job(id=job.id, name=job.name, flare=flare)
                view = this.view() if name == LV else None
                if view is not None:
                    h = view._handle
                else:
                    h = common.polling_tail(this) if name == LP else follow_job(this, cursor=name == "Cursor")
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
                    if view is not None:
                        view.close()
                    else:
                        h.release()
            res["unit_costs"] = unit_costs(f, job.id, bp.poc)
            status = str(f.call(lambda s: s.get_job_meta(job.id)).get("status"))
            res["job_status_at_end"] = status
            if common.terminal(status):
                print(f"WARNING: the job ended ({status}) before the last window finished", file=sys.stderr)
        finally:
            common.abort_quietly(f, job.id)

    return job.id


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
    ap.add_argument("--sim", action="store_true", help="also the simulator: an idle simulation followed (first)")
    ap.add_argument("--sim-only", action="store_true", help="only the simulator's windows (no POC)")
    ap.add_argument("--views", action="store_true", help="one more POC window: the job's whole view (job.view())")
    ap.add_argument("--keep", action="store_true", help="keep the temp POC workspace")
    args = ap.parse_args(argv)

    root = common.isolate("idle")
    import shutil

    n_windows = (3 if args.local_only else 5) + args.whatif + args.views
    sleep = args.settle + n_windows * (args.window + args.warmup) + 60
    sleep += n_windows * 60 if args.log_mb else 0  # catching up with a big log (the job is aborted at the end)
    res: dict = {"args": vars(args), "client_sleep_s": sleep}
    t_total = time.monotonic()
    results: dict = {}
    job_id = None
    try:
        if args.sim or args.sim_only:
            sim_phase(args, root, results, res)
        if not args.sim_only:
            job_id = poc_phase(args, root, results, res, sleep)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    rows = []
    for name, r in results.items():
        is_base = name in ("baseline", SB)
        extra = r["cpu_s"] - results[r.get("baseline", "baseline")]["cpu_s"] if not is_base else 0.0
        r["extra_cpu_pct_core"] = 100 * extra / r["wall_s"]
        rows.append(
            [
                name,
                f"{r['cpu_pct_core']:.3f} %",
                f"{r['extra_cpu_pct_core']:.3f} %" if not is_base else "-",
                f"{100 * r['flarenb_threads_cpu_s'] / r['wall_s']:.2f} %",
                f"{r['flarenb_wakeups_per_min']:.0f}",
                f"{r['bytes_per_min'] / 1024:.1f} KiB",
                f"{r['admin_calls_per_min']:.0f}",
                f"{r['polls_per_min']:.0f}" if r.get("polls_per_min") is not None else "-",
            ]
        )
    res.update(job_id=job_id, windows=results, total_s=time.monotonic() - t_total)
    print()
    headers = ["window", "process CPU", "minus baseline", "flarenb threads", "flarenb wake-ups/min", "bytes/min"]
    print(
        common.table(
            [*headers, "admin calls/min", "polls/min"],
            rows,
            title=f"Idle follow cost ({args.window:g} s windows; CPU as % of one core)",
        )
    )
    u = res.get("unit_costs")
    if u:
        print(
            f"unit CPU costs (this process): get_job_meta call {u['get_job_meta_cpu_ms']:.2f} ms, "
            f"get_job_logs(site-1) call {u['get_job_logs_cpu_ms']:.2f} ms, local process scan "
            f"{u['process_scan_cpu_ms']:.2f} ms ({u['processes']} processes), LocalTail poll of 3 idle files "
            f"{u['tail_poll_cpu_us']:.0f} µs"
        )
    if "sim_unit_costs" in res:
        print(f"unit CPU costs of a simulation (this process): {res['sim_unit_costs']}")
    if "sim_end" in res:
        print(f"simulation's end, view following: {res['sim_end']}")
    for name in [k for k in results if k not in ("baseline", SB)]:
        r = results[name]
        print(f"{name}: admin calls {r['admin_calls']}; busiest threads {dict(list(r['threads_cpu_s'].items())[:4])}")
        print(f"{name}: wake-ups/min per thread {r['wakeups_per_min']}")
        if r.get("sim_work_per_min") is not None:
            print(f"{name}: status work per minute {r['sim_work_per_min']}")
        if r.get("source"):
            print(f"{name}: {r['source']}")
        ok = max(r["extra_cpu_pct_core"], 100 * r["flarenb_threads_cpu_s"] / r["wall_s"]) < 1.0
        print(f"target {name} < 1 % of a core: {'OK' if ok else 'MISSED'}")
        if name in (LT, LV, SF, SV, SR):
            ok = max(r["extra_cpu_pct_core"], 100 * r["flarenb_threads_cpu_s"] / r["wall_s"]) < 0.05
            print(f"target {name} < 0.05 % of a core: {'OK' if ok else 'MISSED'}")
            print(f"target {name} 0 admin calls/min: {'OK' if r['admin_calls_per_min'] == 0 else 'MISSED'}")
    if LT in results and LP in results:
        ratio = common.ratio(results[LP]["extra_cpu_pct_core"], results[LT]["extra_cpu_pct_core"])
        print(f"{LP} / {LT} (CPU minus baseline): {common.fmt(ratio, 'x')}")
    if LT in results and SF in results:
        ratio = common.ratio(results[SF]["extra_cpu_pct_core"], results[LT]["extra_cpu_pct_core"])
        print(f"{SF} / {LT} (CPU minus baseline): {common.fmt(ratio, 'x')}")
    if LV in results and SV in results:
        ratio = common.ratio(results[SV]["extra_cpu_pct_core"], results[LV]["extra_cpu_pct_core"])
        print(f"{SV} / {LV} (CPU minus baseline): {common.fmt(ratio, 'x')}")
    path = common.write_results("idle_follow", res)
    print(f"\nresults: {path}  (total {res['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
