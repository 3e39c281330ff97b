"""Every job command of `nvflare job`, through flarenb, against a real local FLARE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from flarenb import jobs
from flarenb.errors import FlareError

pytestmark = pytest.mark.poc


def until(cond, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_meta_stats_log_config_clone_list_abort_download_delete(ip, flarenb_poc, tmp_path):
    from conftest import export_job

    ip.user_ns["job_dir"] = str(export_job(tmp_path, name="lifecycle", rounds=3, train_args="--sleep 3"))
    job = ip.run_line_magic("flare", "submit {job_dir} --name lifecycle --new --no-follow")
    assert isinstance(job, jobs.Job) and job.reattached is False
    until(lambda: ip.run_line_magic("flare", f"meta {job.id}")["status"] == "RUNNING", what="RUNNING")

    meta = ip.run_line_magic("flare", f"meta {job.id}")
    assert meta["job_id"] == job.id and meta["name"] == "lifecycle"

    def stats():
        try:
            r = ip.run_line_magic("flare", f"stats {job.id} --site server")
        except FlareError as e:  # the server job process may still be starting
            assert str(e) == f"Job {job.id} is RUNNING but has no statistics yet. Try again in a few seconds"
            return None
        # the server answers before its runner registers its statistics: ask again until it has
        return r if isinstance(r.get("server"), dict) and "ServerRunner" in r["server"] else None

    assert until(stats, what="stats")["server"]["ServerRunner"]["job_id"] == job.id

    def site_stats():  # site-1's job process answers once it is up
        try:
            r = ip.run_line_magic("flare", f"stats {job.id} --site site-1")
        except FlareError:
            return None
        return r if isinstance(r.get("site-1"), dict) and "ClientRunner" in r["site-1"] else None

    assert until(site_stats, what="site-1's stats")["site-1"]["ClientRunner"]["job_id"] == job.id

    applied = ip.run_line_magic("flare", f"log-config {job.id} debug --site site-1")
    assert applied == {"job_id": job.id, "config": "DEBUG", "sites": ["site-1"], "status": "applied"}
    with pytest.raises(FlareError, match=r"^Unknown log level or mode 'LOUD'. Use one of: DEBUG, INFO"):
        ip.run_line_magic("flare", f"log-config {job.id} LOUD")

    copy = ip.run_line_magic("flare", f"clone {job.id}")
    assert isinstance(copy, jobs.Job) and copy.id != job.id

    listed = ip.run_line_magic("flare", "list -n lifecycle")
    assert {row["job_id"] for row in listed} == {job.id, copy.id}
    table = str(listed)
    assert table.splitlines()[0].split() == ["job_id", "job_name", "status", "submit_time", "duration"]
    assert job.id in table and copy.id in table and "<table" in listed._repr_html_()
    assert [r["job_id"] for r in ip.run_line_magic("flare", f"list -i {job.id[:8]} -m 1")] == [job.id]

    assert ip.run_line_magic("flare", f"abort {copy.id} --force") == f"aborted job {copy.id}"
    until(lambda: jobs.is_terminal(copy.status), what="the clone to stop")
    with pytest.raises(FlareError) as e:
        ip.run_line_magic("flare", f"abort {copy.id}")
    assert str(e.value) == f"Job {copy.id} is not running ({copy.status}). There is nothing to abort"

    done = ip.run_line_magic("flare", f"wait {job.id} --timeout 240 --interval 1")
    assert str(done) == f"job {job.id}: FINISHED:COMPLETED"

    result = ip.run_line_magic("flare", f"download {job.id} --output-dir {tmp_path / 'dl'}")
    assert Path(result.path).is_dir() and Path(result.global_model).is_file()
    assert sorted(result.client_logs) == ["site-1", "site-2"]
    assert all(Path(p).is_file() for p in result.client_logs.values())
    assert [r for r, _ in result.metric_per_round("loss")] == [0, 1, 2]
    with pytest.raises(FlareError) as e:
        ip.run_line_magic("flare", f"download {job.id} --output-dir {tmp_path / 'dl'}")
    assert (
        str(e.value)
        == f"{tmp_path / 'dl' / job.id} already exists. Pass --force to replace it, or choose another --output-dir"
    )

    assert ip.run_line_magic("flare", f"delete {copy.id} --force") == f"deleted job {copy.id}"
    with pytest.raises(FlareError) as e:
        ip.run_line_magic("flare", f"meta {copy.id}")
    assert str(e.value) == (
        f"Job {copy.id} not found in study 'default'. List the jobs with %flare list, or pass --study NAME if it is"
        " in another study"
    )


def test_wait_on_a_job_whose_client_raises_fails_the_cell(flarenb_poc, tmp_path):
    from conftest import export_job
    from kernel import Kernel

    job_dir = export_job(tmp_path / "job", name="client-raises", rounds=2, train_args="--fail-site site-2")
    k = Kernel(cwd=str(tmp_path))
    try:
        k.run("%load_ext flarenb\n%flare poc start")
        sub = k.run(f"job = %flare submit {job_dir} --new --no-follow\nprint(job.id)")
        job_id = Kernel.text(sub).strip().splitlines()[-1]
        monitored = k.run(f"%flare monitor {job_id} --timeout 240 --interval 0.5")
        shown = [m for m in monitored["outputs"] if m["msg_type"] in ("display_data", "update_display_data")]
        texts = [m["content"]["data"]["text/plain"] for m in shown]
        assert shown[0]["msg_type"] == "display_data" and len(shown) >= 2  # progress, updated in place
        assert all(t.startswith(f"job {job_id}: ") and t.endswith(" s)") for t in texts), texts
        assert texts[-1].startswith(f"job {job_id}: FINISHED:EXECUTION_EXCEPTION (")
        assert monitored["status"] == "error"
        failed = k.run(f"%flare wait {job_id} --timeout 240 --interval 1")
        assert failed["status"] == "error"  # "Run All" stops here
        errors = [m["content"] for m in failed["outputs"] if m["msg_type"] == "error"]
        assert errors[0]["ename"] == "JobFailed"
        assert errors[0]["evalue"] == (
            f"Job {job_id} ended FINISHED:EXECUTION_EXCEPTION (JOB_FINISHED_EXCEPTION). "
            f"See which site failed with %flare logs {job_id} --site all"
        )
        assert len(errors[0]["traceback"]) == 1
        timeout = k.run(f"%flare wait {job_id} --timeout 0.01")  # already ended: no timeout, the same failure
        assert timeout["status"] == "error"
    finally:
        k.shutdown()


def test_wait_times_out_with_one_line(flarenb_poc, tmp_path):
    from conftest import export_job

    from flarenb import submission

    job = submission.submit(
        str(export_job(tmp_path, name="slow", rounds=2, train_args="--sleep 20")), new=True, flare=flarenb_poc
    )
    try:
        with pytest.raises(jobs.JobWaitTimeout) as e:
            jobs.wait(job.id, timeout=1, interval=0.2, flare=flarenb_poc)
        assert str(e.value).startswith(f"Job {job.id} is still ")
        assert str(e.value).endswith(
            f"after 1 s. Wait longer with %flare wait {job.id} --timeout N, or stop it with %flare abort {job.id}"
        )
    finally:
        flarenb_poc.call(lambda s: s.abort_job(job.id))


def test_a_process_that_never_closes_its_session_still_exits(flarenb_poc):
    """NVFlare hangs a process at exit on an unclosed session; flarenb closes it first."""
    code = (
        "import flarenb, sys\n"
        f"f = flarenb.connect(startup_kit={flarenb_poc.kit.path!r})\n"
        "assert f.system_info().client_names == ['site-1', 'site-2']\n"
        "print('connected', flush=True)\n"
    )
    for ending, exit_code in (("", 0), ("raise RuntimeError('boom')\n", 1)):
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-c", code + ending], capture_output=True, text=True, timeout=60, env=dict(os.environ)
        )
        assert out.returncode == exit_code, out.stderr[-2000:]
        assert out.stdout.strip() == "connected"  # and no "Connecting to FLARE ..." chatter
        assert time.monotonic() - t0 < 30


def test_a_server_that_does_not_answer_is_one_line(flarenb_poc, tmp_path):
    import shutil
    import socket

    from flarenb import session

    kit = tmp_path / "kit"
    shutil.copytree(flarenb_poc.kit.path, kit)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf_file = kit / "startup" / "fed_admin.json"
    conf = json.loads(conf_file.read_text())
    text = json.dumps(conf).replace(str(flarenb_poc.poc.ports[0]), str(port))
    conf_file.write_text(text)
    t0 = time.monotonic()
    with pytest.raises(FlareError) as e:
        session.Flare(session.resolve_kit(startup_kit=str(kit)), timeout=3).system_info()
    assert time.monotonic() - t0 < 30
    assert str(e.value).startswith("The FLARE server did not answer within 3 s (")
    assert str(e.value).endswith(
        "). Start it (%flare poc start for the local FLARE) or check the startup kit's host and port"
    )
    assert "\n" not in str(e.value)


def test_unknown_variable_and_bad_flags_for_submit(ip, flarenb_poc):
    with pytest.raises(FlareError) as e:
        ip.run_line_magic("flare", "submit no_such_recipe")
    assert str(e.value) == (
        "No variable or job folder named 'no_such_recipe'. Pass a job folder path, or the name of a variable "
        "holding an NVFlare Recipe or FedJob"
    )
    with pytest.raises(UsageError) as u:
        ip.run_line_magic("flare", "submit x --new --submit-token t")
    assert str(u.value) == (
        "%flare submit: argument --submit-token: not allowed with argument --new. See '%flare help submit'"
    )


def test_a_kernel_with_a_live_session_shuts_down_by_itself(flarenb_poc, tmp_path):
    """The session is closed when the kernel shuts down: the kernel exits on its own, it is not killed."""
    from kernel import Kernel

    k = Kernel(cwd=str(tmp_path))
    try:
        result = k.run(f"%load_ext flarenb\n%flare connect --startup-kit {flarenb_poc.kit.path}\n%flare info")
        assert result["status"] == "ok" and "clients (2): site-1, site-2" in Kernel.text(result)
        assert "Connecting to FLARE" not in Kernel.text(result)  # NVFlare's chatter stays out of the cell
        k.kc.shutdown()
        until(lambda: not k.km.is_alive(), timeout=20, what="the kernel to exit after a shutdown request")
    finally:
        k.shutdown()
