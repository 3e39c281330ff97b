"""Submit-rerun reattach vs a fresh submit vs the ``nvflare job submit`` CLI, on a real local POC.

    python bench/bench_submit_reattach.py [--reruns 10] [--fresh 10] [--cli 5] [--settle 30]

Target (issue): rerunning a submit cell reattaches, with a live session, in <= 0.5 s.

One POC, one run, one kept admin session (``flarenb.poc.start``):

1. the first ``flarenb.submit(job, name="bench")`` (uploads);
2. ``--reruns`` reruns of exactly that call while the job starts and runs: each must return the same job with
   ``reattached=True``; then the same number of reruns after the job finished;
3. the two parts of a rerun measured alone: the local part (export/stage + NVFlare's content hash) and the one
   server round trip (``list_jobs(submit_token=...)``);
4. ``--fresh`` fresh submits (``new=True``: same content, new token, a new job), each aborted right after and
   waited for (up to ``--settle`` s) so the next one meets an idle POC;
5. ``--cli`` ``nvflare job submit -j <folder> --startup-kit <kit>`` subprocesses (new login each), aborted alike.

Prints median/p95 per kind and the ratios; writes ``bench/results/submit_reattach-*.json``. ~2-3 minutes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reruns", type=int, default=10, help="reruns timed while the job runs, and again after")
    ap.add_argument("--fresh", type=int, default=10, help="fresh submits (new=True), each aborted")
    ap.add_argument("--cli", type=int, default=5, help="'nvflare job submit' CLI calls, each aborted")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the first job")
    ap.add_argument("--settle", type=float, default=30.0, help="max seconds to wait for an aborted job to end")
    ap.add_argument("--keep", action="store_true", help="keep the temp POC workspace")
    args = ap.parse_args(argv)

    root = common.isolate("submit")
    import flarenb
    from flarenb import submission

    res: dict = {"args": vars(args)}
    t_total = time.monotonic()
    with common.BenchPoc(root, clients=2, keep=args.keep) as bp:
        f = bp.flare
        res["poc_start_s"] = bp.started_in
        job_dir = common.export_job(root / "jobs", "bench-submit", rounds=args.rounds, train_args="--sleep 2")

        # 1. first submit
        first_s, job = timed(lambda: flarenb.submit(str(job_dir), name="bench", flare=f))
        assert not job.reattached, job
        res["first_submit_s"] = first_s
        print(f"first submit: job {job.id} in {first_s:.3f} s (connect_count={f.connect_count})", flush=True)

        # 2. reruns
        def reruns(n):
            out = []
            for _ in range(n):
                dt, again = timed(lambda: flarenb.submit(str(job_dir), name="bench", flare=f))
                if again.id != job.id or not again.reattached:
                    raise AssertionError(f"rerun did not reattach: {again!r} vs {job.id}")
                out.append(dt)
            return out

        connects = f.connect_count
        running = reruns(args.reruns)
        status_after = common.wait_status(f, job.id, common.terminal, timeout=180)
        finished = reruns(args.reruns)
        res["rerun_relogins"] = f.connect_count - connects
        res["first_job_status"] = status_after

        # 3. the parts of a rerun
        local = []
        for _ in range(args.reruns):

            def local_part():
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    src = submission.export(str(job_dir), Path(tmp))
                    staged = submission.stage(src, Path(tmp) / "stage" / "x", True, f.poc.clients)
                    return submission.content_hash(staged)

            local.append(timed(local_part)[0])
        lookup = [
            timed(lambda: f.call(lambda s: s.list_jobs(submit_token=job.submit_token)))[0] for _ in range(args.reruns)
        ]

        # 4. fresh submits
        fresh, fresh_ids = [], []
        for _ in range(args.fresh):
            dt, j = timed(lambda: flarenb.submit(str(job_dir), name="bench", new=True, flare=f))
            assert not j.reattached and j.id != job.id
            fresh.append(dt)
            fresh_ids.append(j.id)
            common.abort_quietly(f, j.id)
            common.wait_status(f, j.id, common.terminal, timeout=args.settle)

        # 5. the CLI
        cli, cli_ids = [], []
        for i in range(args.cli):
            folder = root / "cli" / f"job{i}"
            shutil.copytree(job_dir, folder)
            cmd = [
                sys.executable,
                "-m",
                "nvflare.cli",
                "job",
                "submit",
                "-j",
                str(folder),
                "--startup-kit",
                bp.kit_path,
            ]
            dt, p = timed(
                lambda cmd=cmd: subprocess.run(
                    cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
                )
            )
            m = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", p.stdout + p.stderr)
            if p.returncode != 0 or not m:
                print(f"CLI submit failed ({p.returncode}): {(p.stdout + p.stderr)[-400:]}", file=sys.stderr)
                continue
            cli.append(dt)
            cli_ids.append(m.group(0))
            common.abort_quietly(f, m.group(0))
            common.wait_status(f, m.group(0), common.terminal, timeout=args.settle)

    rows = {
        "rerun (job running)": common.summary(running),
        "rerun (job finished)": common.summary(finished),
        "rerun: local stage+hash": common.summary(local),
        "rerun: list_jobs(token)": common.summary(lookup),
        "fresh submit (new=True)": common.summary(fresh),
        "nvflare job submit (CLI)": common.summary(cli),
    }
    all_reruns = common.summary(running + finished)
    ratios = {
        "rerun/fresh (median)": common.ratio(all_reruns["median"], rows["fresh submit (new=True)"]["median"]),
        "rerun, job finished/fresh": common.ratio(
            rows["rerun (job finished)"]["median"], rows["fresh submit (new=True)"]["median"]
        ),
        "rerun, job running/fresh": common.ratio(
            rows["rerun (job running)"]["median"], rows["fresh submit (new=True)"]["median"]
        ),
        "rerun/CLI (median)": common.ratio(all_reruns["median"], rows["nvflare job submit (CLI)"]["median"]),
        "fresh/CLI (median)": common.ratio(
            rows["fresh submit (new=True)"]["median"], rows["nvflare job submit (CLI)"]["median"]
        ),
    }
    res.update(
        job_id=job.id,
        samples={
            "rerun_running": running,
            "rerun_finished": finished,
            "local": local,
            "lookup": lookup,
            "fresh": fresh,
            "cli": cli,
        },
        summary=rows,
        rerun_all=all_reruns,
        ratios=ratios,
        target={"rerun_median_le_s": 0.5, "met": all_reruns["p95"] <= 0.5},
        fresh_ids=fresh_ids,
        cli_ids=cli_ids,
        total_s=time.monotonic() - t_total,
    )
    print()
    print(
        common.table(
            ["what", "n", "median", "p95", "min", "max"],
            [
                [
                    k,
                    v["n"],
                    common.fmt(v["median"], "ms"),
                    common.fmt(v["p95"], "ms"),
                    common.fmt(v["min"], "ms"),
                    common.fmt(v["max"], "ms"),
                ]
                for k, v in rows.items()
            ],
            title=f"Submit: first {first_s * 1000:.0f} ms; reruns all reattached to {job.id} "
            f"({res['rerun_relogins']} re-logins)",
        )
    )
    print()
    for k, v in ratios.items():
        print(f"{k:26s} {common.fmt(v, 'x')}")
    verdict = "OK" if all_reruns["p95"] <= 0.5 else "MISSED"
    print(
        f"target rerun <= 0.5 s: median {all_reruns['median'] * 1000:.0f} ms, p95 {all_reruns['p95'] * 1000:.0f} ms "
        f"-> {verdict}"
    )
    path = common.write_results("submit_reattach", res)
    print(f"\nresults: {path}  (total {res['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
