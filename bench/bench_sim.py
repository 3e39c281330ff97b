"""The simulator from a notebook: ``%flare submit recipe --sim`` vs NVFlare's own ``recipe.execute(SimEnv)`` vs the POC.

    python bench/bench_sim.py [--runs 3] [--rounds 2] [--no-poc]

All in one run, from a real Jupyter kernel (``tests/kernel.py``) with the tests' NumPy FedAvg recipe (2 clients):

1. **time to the first client line**, from the moment the cell's execute request is sent:
   * ``--sim``: ``job = %flare submit recipe --sim --new --no-follow``; the first line in any client's
     ``<workspace>/<site>/log.txt`` (the files the live view tails); also when the cell returned;
   * ``recipe.execute(SimEnv(num_clients=2))`` in a subprocess with captured output (what a user of NVFlare's
     tutorials gets): its first output line at all, and its first line from a client;
   * the POC path (``%flare poc start`` already done, reused): ``job = %flare submit recipe --new --no-follow``;
     the first line in a client's job log on the POC;
2. **kernel responsiveness during a run**: a trivial ``execute("1")`` every 0.5 s while the run goes on, latency
   from request to reply (median, p95), with ``--sim`` and with a blocking ``recipe.execute(SimEnv)`` in the kernel.

Prints medians and ratios; writes ``bench/results/sim-*.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

CLIENT_MARK = "round 0 on "


def first_line_at(paths, t0: float, timeout: float, mark: str = "") -> float | None:
    """Seconds from ``t0`` until any of ``paths`` holds a line (containing ``mark``); None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in paths():
            try:
                text = Path(p).read_text(errors="replace")
            except OSError:
                continue
            if text and (not mark or mark in text):
                return time.perf_counter() - t0
        time.sleep(0.02)
    return None


class AsyncKernel:
    """Execute requests without waiting, replies matched by id (to measure latency while another cell runs)."""

    def __init__(self, k):
        self.k = k
        self.sent: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="bench-shell-reader", daemon=True)
        self._thread.start()

    def send(self, code: str) -> str:
        msg_id = self.k.kc.execute(code)
        self.sent[msg_id] = time.perf_counter()
        return msg_id

    def _read(self):
        while not self._stop.is_set():
            try:
                msg = self.k.kc.get_shell_msg(timeout=0.2)
            except Exception:
                continue
            self.done[msg["parent_header"].get("msg_id")] = time.perf_counter()

    def wait(self, msg_id: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while msg_id not in self.done and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.done[msg_id] - self.sent[msg_id]

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def probe_latencies(ak: AsyncKernel, running, period: float = 0.5, timeout: float = 300) -> list[float]:
    """Trivial executes every ``period`` s while ``running()``; their request→reply latencies."""
    ids = []
    while running():
        ids.append(ak.send("1"))
        time.sleep(period)
    return [ak.wait(i, timeout) for i in ids]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-poc", action="store_true")
    args = ap.parse_args()

    root = common.isolate("sim")
    nb = root / "nb"
    nb.mkdir()
    shutil.copy(common.REPO / "notebooks" / "fedavg_client.py", nb / "client.py")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(common.REPO), os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, str(common.REPO / "tests"))
    from kernel import Kernel

    from flarenb import sim, simstore

    setup = (
        f"import sys, time\nsys.path.insert(0, {str(common.REPO / 'tests')!r})\nfrom conftest import make_recipe\n"
        f"recipe = make_recipe('bench-sim', rounds={args.rounds}, train_args='--sleep 2')\n%load_ext flarenb\n"
    )
    out: dict = {
        "sim_first_client": [],
        "sim_cell_return": [],
        "execute_first_line": [],
        "execute_first_client": [],
        "poc_first_client": [],
        "latency_sim": [],
        "latency_blocking": [],
    }
    bp = None
    k = Kernel(cwd=str(nb))
    ak = None
    try:
        assert k.run(setup)["status"] == "ok"
        for i in range(args.runs):
            # 1a. --sim from a cell
            before = {s.id for s in simstore.all_simulations()}
            t0 = time.perf_counter()
            r = k.run("job = %flare submit recipe --sim --new --no-follow")
            assert r["status"] == "ok", r["error"]
            out["sim_cell_return"].append(time.perf_counter() - t0)
            (new,) = [s for s in simstore.all_simulations() if s.id not in before]
            clients = [new.site_log(c) for c in new.clients]
            out["sim_first_client"].append(first_line_at(lambda clients=clients: clients, t0, 180, CLIENT_MARK))
            new.wait(timeout=300)

            # 1b. recipe.execute(SimEnv) in a captured subprocess
            code = (
                f"import sys; sys.path.insert(0, {str(common.REPO / 'tests')!r})\n"
                "from conftest import make_recipe\nfrom nvflare.recipe.sim_env import SimEnv\n"
                f"make_recipe('bench-exec', rounds={args.rounds}, train_args='--sleep 2')"
                f".execute(SimEnv(num_clients=2, workspace_root={str(root / 'exec')!r}))\n"
            )
            t0 = time.perf_counter()
            p = subprocess.Popen(
                [sys.executable, "-u", "-c", code],
                cwd=nb,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            first = client = None
            for line in p.stdout:
                if first is None:
                    first = time.perf_counter() - t0
                if client is None and CLIENT_MARK in line:
                    client = time.perf_counter() - t0
            p.wait()
            out["execute_first_line"].append(first)
            out["execute_first_client"].append(client)
            print(
                f"run {i + 1}: --sim first client line {out['sim_first_client'][-1]:.2f} s (cell returned in "
                f"{out['sim_cell_return'][-1]:.2f} s); execute(SimEnv): first line {first:.2f} s, first client "
                f"line {client:.2f} s",
                flush=True,
            )

        # 2. responsiveness: --sim vs a blocking execute in the kernel
        ak_k = Kernel(cwd=str(nb))
        ak = AsyncKernel(ak_k)
        ak.wait(ak.send(setup), 60)
        before = {s.id for s in simstore.all_simulations()}
        ak.wait(ak.send("job = %flare submit recipe --sim --new"), 60)  # with the live view following
        (new,) = [s for s in simstore.all_simulations() if s.id not in before]
        out["latency_sim"] = probe_latencies(ak, lambda: not sim.is_terminal(new.status))
        blocking = ak.send(
            f"from nvflare.recipe.sim_env import SimEnv\n"
            f"recipe.execute(SimEnv(num_clients=2, workspace_root={str(root / 'exec2')!r}))"
        )
        time.sleep(0.5)
        out["latency_blocking"] = probe_latencies(ak, lambda: blocking not in ak.done)

        # 1c. the POC path, POC already running
        if not args.no_poc:
            bp = common.BenchPoc(root, clients=2, keep=True).__enter__()
            out["poc_start_s"] = bp.started_in
            assert k.run("%flare poc start")["status"] == "ok"
            for i in range(args.runs):
                t0 = time.perf_counter()
                r = k.run("job = %flare submit recipe --new --no-follow\nprint(job.id)")
                assert r["status"] == "ok", r["error"]
                job_id = Kernel.text(r).strip().splitlines()[-1]
                logs = [bp.poc.job_log(c, job_id) for c in bp.poc.clients]
                out["poc_first_client"].append(first_line_at(lambda logs=logs: logs, t0, 180, CLIENT_MARK))
                common.wait_status(bp.flare, job_id, common.terminal, 300)
                print(f"POC run {i + 1}: first client line {out['poc_first_client'][-1]:.2f} s", flush=True)
    finally:
        if ak is not None:
            ak.close()
            ak.k.shutdown()
        k.shutdown()
        for s in simstore.all_simulations():
            if not sim.is_terminal(s.status):
                s.abort()
        if bp is not None:
            bp.keep = False
            bp.__exit__(None, None, None)
        shutil.rmtree(root, ignore_errors=True)

    lists = {key: [v for v in vals if v is not None] for key, vals in out.items() if isinstance(vals, list)}
    med = {key: common.pct(vals, 0.5) for key, vals in lists.items()}
    p95 = {key: common.pct(vals, 0.95) for key, vals in lists.items()}
    print("\nmedians (s):", {k2: round(v, 3) for k2, v in med.items()})
    print("p95 (s):", {k2: round(v, 3) for k2, v in p95.items()})
    ratio = f"first client line: --sim / execute(SimEnv) = {med['sim_first_client'] / med['execute_first_client']:.2f}x"
    if out["poc_first_client"]:
        ratio += f", --sim / POC = {med['sim_first_client'] / med['poc_first_client']:.2f}x"
    print(ratio)
    print(
        f"trivial execute during a run: --sim median {med['latency_sim'] * 1000:.0f} ms p95 "
        f"{p95['latency_sim'] * 1000:.0f} ms; blocking execute median {med['latency_blocking']:.1f} s p95 "
        f"{p95['latency_blocking']:.1f} s"
    )
    common.write_results("sim", {"args": vars(args), "samples": out, "median": med, "p95": p95})


if __name__ == "__main__":
    main()
