"""A 1 GB job (one model file, over NVFlare's per-file limit for submit tokens): flarenb vs ``nvflare job submit``.

    python bench/bench_bigjob_submit.py [--size-mb 1000] [--repeats 3] [--reruns 5]

Goal (issue 18): a rerun in <= 0.3 s; a first submit no slower than the CLI.

One POC, one run. Each repeat, in this order:

1. a first ``flarenb.submit(job, name="bench-<i>")`` with the content-hash cache emptied (so it hashes the 1 GB,
   stages by hard links, lists the marked jobs, uploads without a server-side token);
2. ``--reruns`` identical calls: each must reattach to that job (hash from the cache, one ``list_jobs``);
3. ``nvflare job submit -j <folder> --startup-kit <kit>`` as a subprocess (no token: the CLI's default).

The job asks for more clients than the POC has, so it is never scheduled (NVFlare 2.9's POC cannot deploy a job
this size to its clients anyway); every job is aborted and deleted after its measurement. Prints medians and
ratios; writes ``bench/results/bigjob_submit-*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def write_model(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 16 << 20))
            f.write(block)
            left -= len(block)


def cli_submit(job_dir: Path, kit: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "nvflare.cli", "job", "submit", "-j", str(job_dir), "--startup-kit", kit],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    text = out.stdout + out.stderr
    m = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"nvflare job submit failed: {text[-500:]}")
    return m.group(0)


def dispose(f, job_id: str) -> None:
    common.abort_quietly(f, job_id)
    common.wait_status(f, job_id, common.terminal, timeout=120)
    try:
        f.call(lambda s: s.delete_job(job_id))
    except Exception:
        pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1000, help="size of the model file (MB, 10^6 bytes)")
    ap.add_argument("--repeats", type=int, default=3, help="first submits and CLI submits (each)")
    ap.add_argument("--reruns", type=int, default=5, help="reruns timed after each first submit")
    ap.add_argument("--keep", action="store_true", help="keep the temp POC workspace")
    args = ap.parse_args(argv)

    root = common.isolate("bigjob")
    import flarenb
    from flarenb import jobfiles, workarea

    res: dict = {"args": vars(args), "token_limit": jobfiles.token_size_limit()}
    firsts, reruns, clis = [], [], []
    with common.BenchPoc(root, clients=2, keep=args.keep) as bp:
        f = bp.flare
        job_dir = common.export_job(root / "jobs", "bench-bigjob", rounds=1)
        meta = json.loads((job_dir / "meta.json").read_text())
        # a site that never connects is required: never scheduled (the POC cannot deploy a job this size)
        meta.update(
            deploy_map={"app": ["server", "site-1", "site-2", "offline-site"]},
            min_clients=3,
            mandatory_clients=["offline-site"],
        )
        (job_dir / "meta.json").write_text(json.dumps(meta, indent=4))
        write_model(job_dir / "app" / "custom" / "model.pt", args.size_mb * 1_000_000)
        for i in range(args.repeats):
            shutil.rmtree(workarea.root() / "hashes", ignore_errors=True)
            dt, job = timed(lambda i=i: flarenb.submit(str(job_dir), name=f"bench-{i}", flare=f))
            assert not job.reattached, job
            firsts.append(dt)
            print(f"first submit {i}: {dt:.2f} s (job {job.id})", flush=True)
            for _ in range(args.reruns):
                dt, again = timed(lambda i=i: flarenb.submit(str(job_dir), name=f"bench-{i}", flare=f))
                assert again.id == job.id and again.reattached, again
                reruns.append(dt)
            print(f"  reruns: median {common.summary(reruns[-args.reruns :])['median']:.3f} s", flush=True)
            dispose(f, job.id)
            dt, cli_job = timed(lambda: cli_submit(job_dir, bp.kit_path))
            clis.append(dt)
            print(f"nvflare job submit {i}: {dt:.2f} s (job {cli_job})", flush=True)
            dispose(f, cli_job)
        res["poc_tmp_left"] = sorted(os.listdir(bp.poc.tmp_dir)) if bp.poc.tmp_dir.is_dir() else []

    res["first_submit_s"] = common.summary(firsts)
    res["rerun_s"] = common.summary(reruns)
    res["cli_submit_s"] = common.summary(clis)
    res["first_vs_cli"] = common.ratio(res["first_submit_s"]["median"], res["cli_submit_s"]["median"])
    res["rerun_vs_cli"] = common.ratio(res["rerun_s"]["median"], res["cli_submit_s"]["median"])
    rows = [
        [name, common.fmt(s["median"]), common.fmt(s["p95"]), s["n"]]
        for name, s in (
            ("first submit (cold hash cache)", res["first_submit_s"]),
            ("rerun", res["rerun_s"]),
            ("nvflare job submit", res["cli_submit_s"]),
        )
    ]
    print(common.table(["", "median", "p95", "n"], rows, title=f"{args.size_mb} MB job, one file"))
    print(f"first/CLI {common.fmt(res['first_vs_cli'], 'x')}, rerun/CLI {common.fmt(res['rerun_vs_cli'], 'x')}")
    print("results:", common.write_results("bigjob_submit", res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
