"""Against a real local FLARE (NVFlare POC: server and clients as separate processes)."""

from __future__ import annotations

import time

import pytest

import flarenb
from flarenb import jobconfig, poc
from flarenb.errors import PocError

pytestmark = pytest.mark.poc


def test_start_connect_system_info_lists_every_client(flarenb_poc):
    info = flarenb_poc.system_info()
    assert sorted(info.client_names) == ["site-1", "site-2"]
    assert "site-1" in str(info) and "site-2" in info._repr_html_()


def test_second_start_reuses_the_same_server_in_under_3s(flarenb_poc):
    p = poc.Poc(poc.default_workspace())
    pid = p.server_pid
    assert pid is not None
    t0 = time.monotonic()
    again = poc.start(progress=False)
    assert time.monotonic() - t0 < 3.0
    assert p.server_pid == pid
    assert sorted(again.system_info().client_names) == ["site-1", "site-2"]


def test_a_new_connection_also_reuses_it(flarenb_poc):
    """What a new kernel does: no live session, the POC found on disk and reused within seconds."""
    from flarenb import session

    p = poc.Poc(poc.default_workspace())
    pid = p.server_pid
    session.set_current(None)
    t0 = time.monotonic()
    fresh = poc.start(progress=False)
    assert time.monotonic() - t0 < 3.0
    assert fresh is not flarenb_poc and fresh.connect_count == 1
    assert p.server_pid == pid


def test_start_with_other_sites_while_running_is_refused(flarenb_poc):
    with pytest.raises(PocError) as e:
        poc.start(sites=["hospital-a"], progress=False)
    assert str(e.value) == (
        f"The local FLARE at {poc.default_workspace()} is running with sites site-1, site-2. "
        "Stop it with %flare poc stop to change its sites, or start it without --clients/--sites"
    )


def test_the_session_is_kept_across_calls(flarenb_poc):
    flarenb_poc.system_info()  # logged in (again, if an earlier test closed it)
    before = flarenb_poc.connect_count
    for _ in range(3):
        flarenb_poc.system_info()
    assert flarenb_poc.connect_count == before


def test_client_job_log_is_readable_through_get_job_logs_while_the_job_runs(flarenb_poc, tmp_path):
    from conftest import export_job

    job = export_job(tmp_path, name="live-logs", rounds=3)
    jobconfig.enable_live_logs(job, ["site-1", "site-2"])
    job_id = flarenb_poc.call(lambda s: s.submit_job(str(job)))
    seen_running = {}
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(seen_running) < 2:
            status = flarenb_poc.call(lambda s: s.get_job_meta(job_id)).get("status")
            for site in ("site-1", "site-2"):
                text = flarenb_poc.call(lambda s, site=site: s.get_job_logs(job_id, target=site))["logs"].get(site, "")
                if f"round 0 on {site}:" in text and status == "RUNNING":
                    # the job was still running when the line was read: the log is live
                    seen_running[site] = status
            assert not str(status).startswith("FINISHED"), f"job ended before client logs were live: {status}"
            time.sleep(0.5)
        assert sorted(seen_running) == ["site-1", "site-2"]
        text = flarenb_poc.call(lambda s: s.get_job_logs(job_id, target="all"))["logs"]
        assert {"server", "site-1", "site-2"} <= set(text)
    finally:
        flarenb_poc.call(lambda s: s.abort_job(job_id)) if _running(flarenb_poc, job_id) else None


def _running(flare, job_id) -> bool:
    return not str(flare.call(lambda s: s.get_job_meta(job_id)).get("status")).startswith("FINISHED")


def test_port_taken_by_another_program_is_one_line_and_starts_nothing(flarenb_poc, tmp_path):
    """A POC in another workspace, asked for the port the running one holds."""
    port = poc.Poc(poc.default_workspace()).ports[0]
    ws = tmp_path / "other"
    with pytest.raises(PocError) as e:
        poc.start(workspace=ws, progress=False, port=port)
    assert str(e.value) == (
        f"Port {port} needed by the local FLARE is in use by another program. "
        "Stop that program (or another FLARE: nvflare poc stop), or start on another port with --port N"
    )
    assert not poc.Poc(ws).running
    assert not ws.exists()  # refused before anything was prepared (nor the kit registry touched)


def test_stop_leaves_no_process_and_frees_the_ports_then_start_again(flarenb_poc):
    from flarenb import session

    p = poc.Poc(poc.default_workspace())
    pids = [pid for pid in p.pids().values() if pid]
    assert len(pids) == 3
    bystander = session.Flare(flarenb_poc.kit)  # a live session the restart will break
    assert bystander.system_info().client_names == ["site-1", "site-2"]
    st = poc.stop(progress=False)
    assert st.running is False
    assert poc._poc_processes(p) == []
    assert all(poc._port_free(port) for port in p.ports)
    for pid in pids:
        assert not poc._alive(pid)
    # a stopped POC starts again without being re-prepared
    flare = poc.start(progress=False)
    assert sorted(flare.system_info().client_names) == ["site-1", "site-2"]
    assert flarenb.current() is flare
    # the session whose server went away is re-established on its next command
    assert bystander.system_info().client_names == ["site-1", "site-2"]
    bystander.close()
