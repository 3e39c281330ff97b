"""Cost of reading a job's MLflow store (flarenb.mlflow_store) in the kernel.

    python bench/bench_mlflow_store.py [--rows 100000] [--new 100] [--runs 5]

Builds a SQLite store with MLflow's ``metrics``/``runs``/``tags`` tables (10 sites x 5 scalars, ``--rows`` values in
all), then, ``--runs`` times: appends ``--new`` values (what one flush of MLflowReceiver adds) and measures a whole read
(``read_folder``: what ``job.metrics()`` does) and one poll of the live feed (``FolderTail.read``: only the new rows).
Prints the medians and their ratio.
"""

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_mlflow_store import make_db  # the store as MLflow lays it out

from flarenb import mlflow_store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flarenb-bench-mlflow-"))
    try:
        per = args.rows // 50
        make_db(
            folder / "mlflow.db",
            {f"site-{s}": [(f"m{k}", 0.1 * i, i) for k in range(5) for i in range(per)] for s in range(10)},
        )
        tail = mlflow_store.FolderTail(folder)
        tail.read()
        whole, poll = [], []
        for j in range(args.runs):
            con = sqlite3.connect(folder / "mlflow.db")
            rows = [(10**13 + j * args.new + i, f"{0:032x}", per + j * args.new + i) for i in range(args.new)]
            con.executemany("INSERT INTO metrics VALUES ('m0', 1.0, ?, ?, ?, 0)", rows)
            con.commit()
            con.close()
            t = time.perf_counter()
            mlflow_store.read_folder(folder)
            whole.append(time.perf_counter() - t)
            t = time.perf_counter()
            found = tail.read()
            poll.append(time.perf_counter() - t)
        assert found is not None and len(found) == args.rows + args.runs * args.new
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    w, p = statistics.median(whole), statistics.median(poll)
    print(
        f"{args.rows:,} values: whole read median {w * 1000:.0f} ms; live poll (+{args.new} values) median "
        f"{p * 1000:.1f} ms; ratio {w / p:.0f}x"
    )


if __name__ == "__main__":
    main()
