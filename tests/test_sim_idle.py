"""An idle simulation followed costs no periodic reads of its state: its status is read again only on a local end
signal (its runner gone, its ``result.json`` written), and in the kernel that started it the runner's exit ends the
follower at once (no safety poll). A real runner process and real log files; no NVFlare."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flarenb import logsource, sim
from flarenb.logsource import SimStatus, follow_sim


def _make_sim(tmp_path: Path, runner_src: str) -> tuple[sim.Simulation, subprocess.Popen]:
    """A simulation folder whose "runner" is ``runner_src`` (given its root as argv[1]), started as
    :func:`flarenb.sim.submit` starts a runner (registered, reaped), with every site's log written."""
    root = tmp_path / "sim-0123456789ab"
    ws = root / "workspace"
    for site in ("server", "site-1", "site-2"):
        (ws / site).mkdir(parents=True)
        (ws / site / "log.txt").write_text(f"{site} started\n")
    state = {"id": root.name, "name": "idle", "clients": ["site-1", "site-2"], "workspace": str(ws)}
    state["submit_time"] = time.time()
    (root / "state.json").write_text(json.dumps(state))
    proc = subprocess.Popen([sys.executable, "-c", runner_src, str(root)])
    state["pid"] = proc.pid
    (root / "state.json").write_text(json.dumps(state))
    sim._children[root.name] = proc
    threading.Thread(target=sim._reap, args=(root.name, proc), daemon=True).start()
    return sim.Simulation(id=root.name, name="idle", root=root), proc


RUNNER = """import json, os, sys, time
root = sys.argv[1]
while not os.path.exists(os.path.join(root, "go")):
    time.sleep(0.05)
with open(os.path.join(root, "result.json.tmp"), "w") as f:
    json.dump({"returncode": 0, "status": "FINISHED:COMPLETED", "end_time": time.time()}, f)
os.replace(os.path.join(root, "result.json.tmp"), os.path.join(root, "result.json"))
"""


@pytest.fixture
def running_sim(tmp_path):
    s, proc = _make_sim(tmp_path, RUNNER)
    yield s
    (s.root / "go").touch()
    proc.wait(timeout=10)
    sim._children.pop(s.id, None)


def test_a_running_simulations_status_is_read_again_only_on_a_local_end_signal(running_sim, monkeypatch):
    monkeypatch.setattr(logsource, "SIM_STATUS_TTL", 0.0)
    metas = []
    real_meta = sim.Simulation.meta
    monkeypatch.setattr(sim.Simulation, "meta", lambda self: metas.append(1) or real_meta(self))
    status = SimStatus(running_sim)
    assert status() == "RUNNING" and len(metas) == 1
    for _ in range(50):  # the view asks every second, the tail at each poll: nothing changed, nothing read
        assert status() == "RUNNING"
    assert len(metas) == 1 and status.reads == 1
    assert status(fresh=True) == "RUNNING" and len(metas) == 2  # asked for a fresh one: read

    (running_sim.root / "go").touch()  # the runner writes result.json and exits
    deadline = time.monotonic() + 10
    while status() == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert status() == "FINISHED:COMPLETED"
    assert status.meta["status"] == "FINISHED:COMPLETED" and status.meta["end_time"]


def test_the_runners_exit_ends_the_follower_at_once_not_at_its_safety_poll(running_sim, monkeypatch):
    calls = []
    monkeypatch.setattr(sim.Simulation, "meta", lambda self, real=sim.Simulation.meta: calls.append(1) or real(self))
    h = follow_sim(running_sim)
    try:
        tail = h.transport
        assert tail.safety_period >= 5.0
        deadline = time.monotonic() + 10
        sites = running_sim.sites
        while not all(h.receiver.lines(site) for site in sites) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert {site: [line.text for line in h.receiver.lines(site)] for site in sites} == {
            site: [f"{site} started"] for site in sites
        }
        time.sleep(1.2)  # idle: the status is not read again (only the first look)
        assert len(calls) == 1
        with open(running_sim.site_log("server"), "a") as f:
            f.write("server: last line\n")
        (running_sim.root / "go").touch()
        t0 = time.monotonic()
        assert h.wait_done(4.0), "the follower did not end before its safety poll"
        assert time.monotonic() - t0 < 4.0
        assert [line.text for line in h.receiver.lines("server")][-1] == "server: last line"
    finally:
        h.release()


def test_on_runner_exit_is_only_for_a_live_runner_of_this_kernel(running_sim):
    called = threading.Event()
    assert sim.on_runner_exit(running_sim.id, called.set) is True
    assert sim.on_runner_exit("sim-000000000000", called.set) is False  # not started by this kernel
    (running_sim.root / "go").touch()
    assert called.wait(10)
    sim._children[running_sim.id].wait(timeout=10)
    assert sim.on_runner_exit(running_sim.id, called.set) is False  # ended already: never called
