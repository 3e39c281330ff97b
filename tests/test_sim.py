"""The simulator as a live, non-blocking job target (``%flare submit recipe --sim``), against real NVFlare
simulator runs. The simulations of this module start together (module fixture) and run concurrently."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLIENT, make_recipe

from flarenb import simprocs

DEADLINE = 240.0


def _until(fn, timeout=DEADLINE, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="module")
def simroot(tmp_path_factory):
    """A private flarenb data folder (XDG_DATA_HOME) and a notebook folder holding the client script; guards
    every deletion to stay inside it."""
    root = tmp_path_factory.mktemp("sim")
    saved = {k: os.environ.get(k) for k in ("XDG_DATA_HOME",)}
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    nb = root / "nb"
    nb.mkdir()
    shutil.copy(CLIENT, nb / "client.py")
    cwd = os.getcwd()
    os.chdir(nb)
    try:
        yield root
    finally:
        os.chdir(cwd)
        for sim_id in os.listdir(root / "data" / "flarenb" / "simulations") if (root / "data").exists() else []:
            simprocs.kill_tree(sim_id)  # nothing of a failed test may outlive the module
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def guarded_rmtree(monkeypatch, simroot):
    real = shutil.rmtree

    def rmtree(path, *a, **kw):
        p = Path(path).resolve()
        if simroot.resolve() not in p.parents and not str(p).startswith("/tmp/flarenb-sim-export-"):
            raise AssertionError(f"refusing to delete {p} outside the test folder")
        return real(path, *a, **kw)

    monkeypatch.setattr(shutil, "rmtree", rmtree)


@pytest.fixture(scope="module")
def background(simroot):
    """Simulations started at once for the tests below: a failing one (through NVFlare's SimEnv) and a long
    one to abort."""
    from nvflare.recipe.sim_env import SimEnv

    import flarenb
    from flarenb import sim

    failing = flarenb.submit(
        make_recipe("sim-failing", rounds=1, train_args="--sleep 1 --fail-site site-1"),
        env=SimEnv(num_clients=2),
        scope="test-failing",
    )
    long = sim.submit(make_recipe("sim-abort", rounds=40, train_args="--sleep 5"), clients=2, scope="test-abort")
    return {"failing": failing, "long": long}


# -- without a simulation ---------------------------------------------------------------------------------
def test_site_names_and_settings_are_checked():
    from flarenb import sim

    assert sim.site_names() == ["site-1", "site-2"]
    assert sim.site_names(clients=3) == ["site-1", "site-2", "site-3"]
    assert sim.site_names(sites=["a", " b"]) == ["a", "b"]
    for bad in ({"clients": 0}, {"sites": ["a", "a"]}, {"sites": ["server"]}, {"sites": ["a b"]}):
        with pytest.raises(sim.SimError):
            sim.site_names(**bad)
    with pytest.raises(sim.SimError, match="cannot be combined"):
        sim.site_names(clients=2, sites=["a"])
    assert sim.is_sim_id("sim-0123456789ab") and not sim.is_sim_id("0123-uuid") and not sim.is_sim_id(None)


def test_outcome_comes_from_the_exit_code_and_the_server_log(tmp_path):
    from flarenb._simrun import outcome

    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "log.txt").write_text("all good\n")
    assert outcome(0, tmp_path, aborted=False) == "FINISHED:COMPLETED"
    assert outcome(2, tmp_path, aborted=False) == "FINISHED:EXECUTION_EXCEPTION"
    assert outcome(-15, tmp_path, aborted=True) == "FINISHED:ABORTED"
    (tmp_path / "server" / "log.txt").write_text("Aborting current RUN due to FATAL_SYSTEM_ERROR received\n")
    assert outcome(0, tmp_path, aborted=False) == "FINISHED:EXECUTION_EXCEPTION"


FAKE_SIMULATOR = """
import pathlib, subprocess, sys, time
ws = pathlib.Path(sys.argv[1])
count = ws / "attempts"
n = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(n))
if n <= int(sys.argv[2]):  # hang as NVFlare's simulator does: a client in its own session, the runner waiting
    subprocess.Popen(["sleep", "600"], start_new_session=True)
    print("ClientTaskWorker run error: EOFError: Ran out of input", flush=True)
    print("RuntimeError: Failed to create connection to the child process in SimulatorClientRunner, timeout: 60",
          flush=True)
    time.sleep(600)
(ws / "server").mkdir(exist_ok=True)
(ws / "server" / "log.txt").write_text("done\\n")
"""


@pytest.mark.parametrize("hangs, status", [(1, "FINISHED:COMPLETED"), (2, "FINISHED:EXECUTION_EXCEPTION")])
def test_a_simulator_that_hangs_at_start_up_is_stopped_and_started_once_more(tmp_path, monkeypatch, hangs, status):
    import json

    from flarenb import _simrun

    sim_id = f"sim-hang{hangs}{os.getpid()}"
    monkeypatch.setenv(simprocs.ENV_MARK, sim_id)  # what flarenb.sim gives the runner, inherited by the simulator
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "state.json").write_text(json.dumps({"workspace": str(ws)}))
    fake = [sys.executable, "-c", FAKE_SIMULATOR, str(ws), str(hangs)]
    monkeypatch.setattr(_simrun, "command", lambda state: fake)
    try:
        assert _simrun.main(str(tmp_path)) == 0
        result = json.loads((tmp_path / "result.json").read_text())
        assert result["status"] == status
        assert (ws / "attempts").read_text() == str(min(hangs + 1, _simrun.ATTEMPTS))
        out = (tmp_path / "simulator.out").read_text()
        assert out.count("[flarenb] NVFlare's simulator could not start a client process") == hangs
        if hangs == _simrun.ATTEMPTS:
            assert "submit the simulation again" in result["reason"]
        # nothing of a hung simulator is left running, its client in another session included
        _until(lambda: not simprocs.processes(sim_id), 15, "the hung simulator's processes to be gone")
    finally:
        simprocs.kill_tree(sim_id, grace=1)


def test_the_process_tree_is_found_by_its_mark_even_in_another_session():
    env = dict(os.environ, **{simprocs.ENV_MARK: "sim-feedfacecafe"})
    # a parent that starts a child in a new session (as NVFlare's simulator starts each client), then waits
    code = "import subprocess,os,sys,time;subprocess.Popen(['sleep','60'],start_new_session=True);time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:

        def both():
            pids = simprocs.processes("sim-feedfacecafe")
            return pids if len(pids) == 2 else None

        found = _until(both, what="the parent and its child in another session")
        assert parent.pid in found
        assert not simprocs.processes("sim-000000000000")
        simprocs.kill_tree("sim-feedfacecafe", parent.pid, grace=1)
        parent.wait(timeout=10)
        _until(lambda: not simprocs.processes("sim-feedfacecafe"), 15, "the tree to be gone")
    finally:
        if parent.poll() is None:
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()


def test_magic_usage_errors(ip):
    from IPython.core.error import UsageError

    ip.user_ns["recipe_for_usage"] = make_recipe()
    with pytest.raises(UsageError, match="only with --sim"):
        ip.run_line_magic("flare", "submit recipe_for_usage --clients 3")
    with pytest.raises(UsageError, match="do not apply to --sim"):
        ip.run_line_magic("flare", "submit recipe_for_usage --sim --study other")
    with pytest.raises(UsageError):
        ip.run_line_magic("flare", "submit recipe_for_usage --sim --clients 2 --sites a,b")


def test_job_commands_take_simulation_ids_and_others_still_check_job_ids(ip, tmp_path, monkeypatch):
    """Every job command accepts a ``sim-…`` id (an unknown one is one line naming %flare list); any other
    malformed id is still refused by the job-id check before anything happens."""
    from IPython.core.error import UsageError

    from flarenb.sim import SimError

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for cmd in ("wait", "monitor", "meta", "logs", "abort", "delete", "download", "stats", "clone"):
        with pytest.raises(SimError, match=r"No local simulation sim-0123456789ab"):
            ip.run_line_magic("flare", f"{cmd} sim-0123456789ab")
    with pytest.raises(UsageError, match="Invalid job id 'sim-0'"):
        ip.run_line_magic("flare", "wait sim-0")


# -- real simulations -------------------------------------------------------------------------------------
SETUP = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import make_recipe
recipe = make_recipe("sim-live", rounds=2, clients=3, train_args="--sleep 3")
%load_ext flarenb
"""
SUBMIT = """t0 = time.monotonic()
job = %flare submit recipe --sim --clients 3
print(f"returned in {time.monotonic() - t0:.2f} s")
job"""


def _sim_dirs(root: Path) -> list[str]:
    base = root / "data" / "flarenb" / "simulations"
    return sorted(n for n in os.listdir(base) if (base / n / "state.json").exists()) if base.exists() else []


@pytest.mark.sim
def test_submit_returns_while_the_simulation_runs_live_and_reruns_reattach(simroot, background, tmp_path):
    from kernel import Kernel

    from flarenb import sim
    from flarenb.simview import follow_sim

    k = Kernel(cwd=str(simroot / "nb"))
    try:
        assert k.run(SETUP, cell_id="setup")["status"] == "ok"
        before = set(_sim_dirs(simroot))
        first = k.run(SUBMIT, cell_id="submit-cell")
        assert first["status"] == "ok", first["error"]
        record = Kernel.metadata(first)["flarenb"]
        sim_id = record["job_id"]
        assert sim.is_sim_id(sim_id) and record["target"] == "simulator" and record["reattached"] is False
        assert f"started simulation {sim_id}" in Kernel.text(first)
        assert any(m["msg_type"] == "display_data" for m in first["outputs"])  # the live view
        s = sim.get(sim_id)

        # the kernel is free while the simulation runs
        busy = k.run("print(job.status)")
        assert busy["status"] == "ok"
        assert s.status in ("SUBMITTED", "RUNNING"), s.status

        # every site's lane gets lines while RUNNING
        handle = follow_sim(s)
        try:
            seen_running: set[str] = set()

            def every_site_has_lines_while_running():
                for site in s.sites:
                    if handle.receiver.lines(site) and s.status == "RUNNING":
                        seen_running.add(site)
                return seen_running == set(s.sites)

            _until(every_site_has_lines_while_running, what="lines from every site while RUNNING")
        finally:
            handle.release()

        # rerun twice, once in a new kernel: reattached, one simulation on disk
        again = k.run(SUBMIT, cell_id="submit-cell")
        assert Kernel.metadata(again)["flarenb"]["job_id"] == sim_id
        assert f"reattached to simulation {sim_id}" in Kernel.text(again)
        k.restart()
        assert k.run(SETUP, cell_id="setup")["status"] == "ok"
        third = k.run(SUBMIT, cell_id="submit-cell")
        assert Kernel.metadata(third)["flarenb"] == {**record, "reattached": True}
        assert set(_sim_dirs(simroot)) - before == {sim_id}

        listed = k.run("%flare list")
        assert listed["status"] == "ok", listed["error"]
        row = next(line for line in Kernel.text(listed).splitlines() if line.startswith(sim_id))
        assert row.split()[-1] == "simulator"

        waited = k.run(f"%flare wait {sim_id} --timeout {DEADLINE:g}")
        assert waited["status"] == "ok", waited["error"]
        assert s.status == "FINISHED:COMPLETED"

        logs = k.run(f"r = %flare logs {sim_id} --site all --tail 5\nprint(r)")
        text = Kernel.text(logs)
        assert all(f"===== {site} =====" in text for site in s.sites), text
        full = s.logs(site="site-2", tail=1000)
        assert "round 1 on site-2" in full["site-2"]

        show = "print(type(d).__name__, sorted(d.client_logs), d.global_model)"
        dl = k.run(f"d = %flare download {sim_id} -o {str(tmp_path)!r}\n{show}")
        out = Kernel.text(dl)
        assert out.startswith("Download ['site-1', 'site-2', 'site-3'] ") and out.strip().endswith("server.npy"), out
        import numpy as np

        assert np.load(str(tmp_path / sim_id / "workspace" / "models" / "server.npy")).tolist() == [[2.0] * 3] * 2

        # --new runs again: two simulations of this cell on disk
        fresh = k.run(SUBMIT.replace("--sim", "--sim --new --no-follow"), cell_id="submit-cell")
        fresh_id = Kernel.metadata(fresh)["flarenb"]["job_id"]
        assert fresh_id != sim_id and set(_sim_dirs(simroot)) - before == {sim_id, fresh_id}
        assert k.run(f"%flare abort {fresh_id}")["status"] == "ok"
    finally:
        k.shutdown()


@pytest.mark.sim
def test_a_failing_client_fails_the_simulation_and_wait_fails_the_cell(background, ip, guarded_rmtree):
    from flarenb.jobs import JobFailed

    failing = background["failing"]
    with pytest.raises(JobFailed, match="EXECUTION_EXCEPTION"):
        ip.run_line_magic("flare", f"wait {failing.id} --timeout {DEADLINE:g}")
    assert failing.status == "FINISHED:EXECUTION_EXCEPTION"
    site1 = failing.logs(site="site-1", tail=2000)["site-1"]
    assert "cannot read its data (this failure is on purpose)" in site1
    listed = str(ip.run_line_magic("flare", "sim list"))
    assert any(line.startswith(failing.id) and "FINISHED:EXECUTION_EXCEPTION" in line for line in listed.splitlines())
    assert "deleted simulation" in ip.run_line_magic("flare", f"delete {failing.id}")
    assert not failing.root.exists()


@pytest.mark.sim
def test_abort_stops_the_whole_tree_and_keeps_the_logs(background, ip, guarded_rmtree, simroot):
    from flarenb import simstore

    s = background["long"]
    _until(
        lambda: s.site_log("site-1").exists() and "round 0 on site-1" in s.site_log("site-1").read_text(),
        what="the first round on site-1",
    )
    pids = simprocs.processes(s.id, s.state["pid"])
    assert len(pids) >= 3, pids  # runner, simulator (+ its server), client workers

    assert s.id not in simstore.clean()  # never a running one
    assert "aborted simulation" in ip.run_line_magic("flare", f"abort {s.id}")
    assert s.status == "FINISHED:ABORTED"
    assert not simprocs.processes(s.id, s.state["pid"])
    survivors = [p for p in pids if simprocs.alive(p)]
    assert not survivors, survivors
    root = str(s.root)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            assert root not in cmdline, cmdline
    assert "round 0 on site-1" in s.site_log("site-1").read_text()
    assert s.site_log("server").stat().st_size > 0

    assert s.id not in simstore.clean(older_than=1)  # ended just now
    assert s.id in ip.run_line_magic("flare", "sim clean")
    assert not s.root.exists()


@pytest.mark.poc
def test_poc_env_and_prod_env_submit_to_the_same_deployment(flarenb_poc, simroot):
    """NVFlare's PocEnv reuses the managed local FLARE (never wiped); ProdEnv connects with its startup kit: the
    same cell scope and content reattach to the same job there."""
    from nvflare.recipe.poc_env import PocEnv
    from nvflare.recipe.prod_env import ProdEnv

    import flarenb

    recipe = make_recipe("env-dispatch", rounds=1)
    job = flarenb.submit(recipe, env=PocEnv(num_clients=2), scope="test-envs")
    try:
        assert isinstance(job, flarenb.Job) and not job.id.startswith("sim-")
        kit = str(flarenb_poc.kit.path)
        again = flarenb.submit(recipe, env=ProdEnv(startup_kit_location=kit), scope="test-envs")
        assert again.id == job.id and again.reattached
        with pytest.raises(flarenb.FlareError, match="env or flare"):
            flarenb.submit(recipe, env=ProdEnv(startup_kit_location=kit), flare=flarenb_poc)
    finally:
        try:
            job.abort()
        except flarenb.FlareError:
            pass  # it already ended
