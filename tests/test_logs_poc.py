"""`%flare logs` against a real job, with NVFlare's own `nvflare job logs` CLI as the oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from flarenb import submission as sub
from flarenb.errors import FlareError

pytestmark = pytest.mark.poc


def cli(flare, job_id: str, *args: str, json_mode: bool = False) -> str:
    fmt = ["--format", "json"] if json_mode else []
    out = subprocess.run(
        [sys.executable, "-m", "nvflare.cli", *fmt, "job", "logs", job_id, *args, "--startup-kit", flare.kit.path],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def cli_logs(flare, job_id: str, *args: str) -> dict:
    return json.loads(cli(flare, job_id, *args, json_mode=True).strip().splitlines()[-1])["data"]


def ours(ip, job_id: str) -> str:
    return str(ip.run_line_magic("flare", f"logs {job_id} --site all --tail 20"))


def theirs(flare, job_id: str) -> str:
    out = cli(flare, job_id, "--site", "all", "--tail", "20")
    return out[out.index("===== ") :]  # drop the CLI's own "Connecting to FLARE ..." chatter


def agree(ip, flare, job_id: str, attempts: int = 8) -> str:
    """Ours and the CLI's text agree exactly (retried: a running job may write between the two reads)."""
    last = None
    for _ in range(attempts):
        a = ours(ip, job_id)
        b = theirs(flare, job_id)
        c = ours(ip, job_id)
        if a == c:
            if a.rstrip("\n") == b.rstrip("\n"):
                return a
            last = (a, b)
    raise AssertionError(f"%flare logs and nvflare job logs disagree: {last}")


def blocks(text: str) -> dict:
    sites, current = {}, None
    for line in text.splitlines():
        if line.startswith("===== ") and line.endswith(" ====="):
            current = line[6:-6]
            sites[current] = []
        elif current is not None:
            sites[current].append(line)
    return sites


def test_logs_match_the_cli_during_and_after_the_run(ip, flarenb_poc, tmp_path):
    from conftest import export_job

    from flarenb.jobs import is_terminal

    job = sub.submit(
        str(export_job(tmp_path, name="logs-oracle", rounds=3, train_args="--sleep 6")), new=True, flare=flarenb_poc
    )
    deadline = time.monotonic() + 120
    while "round 0 on site-1:" not in flarenb_poc.call(lambda s: s.get_job_logs(job.id, "site-1"))["logs"].get(
        "site-1", ""
    ):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    during = blocks(agree(ip, flarenb_poc, job.id))
    status = flarenb_poc.call(lambda s: s.get_job_meta(job.id))["status"]
    assert status == "RUNNING"
    assert {"server", "site-1", "site-2"} <= set(during)
    assert all(0 < len([x for x in lines if x]) <= 20 for lines in during.values())
    ip.run_line_magic("flare", f"wait {job.id} --timeout 240 --interval 1")
    assert is_terminal(flarenb_poc.call(lambda s: s.get_job_meta(job.id))["status"])
    after = blocks(agree(ip, flarenb_poc, job.id))
    assert {"server", "site-1", "site-2"} <= set(after)


def test_logs_json_has_the_cli_fields(ip, flarenb_poc, tmp_path):
    from conftest import export_job

    job = sub.submit(str(export_job(tmp_path, name="logs-json", rounds=1)), new=True, flare=flarenb_poc)
    ip.run_line_magic("flare", f"wait {job.id} --timeout 240 --interval 1")
    data = ip.run_line_magic("flare", f"logs {job.id} --site all --format json")
    cli = cli_logs(flarenb_poc, job.id, "--site", "all")
    assert set(data) >= {"job_id", "target", "logs", "logs_truncated", "sites", "filters"}
    assert data["filters"]["default_tail_applied"] is True and cli["filters"]["default_tail_applied"] is True
    assert set(data["sites"]) == set(cli["sites"])
    for info in data["sites"].values():
        assert info["available"] is True and {"lines", "bytes"} <= set(info)
    assert data["logs"] == cli["logs"]


MISSING = "3b1d5e8c-0f6a-4a51-9c2e-7d0b8a6f4e21"  # a well-formed job id no server has


def test_bad_input_is_one_line(ip, flarenb_poc, tmp_path):
    from conftest import export_job
    from IPython.core.error import UsageError

    job = sub.submit(str(export_job(tmp_path, name="logs-bad", rounds=1)), name="logs-bad", flare=flarenb_poc)
    cases = {
        f"logs {MISSING}": f"Job {MISSING} not found in study 'default'. List the jobs with %flare list, or pass"
        " --study NAME if it is in another study",
        f"logs {job.id} --tail -3": f"--tail must be a non-negative integer, got '-3'. Example: %flare logs {job.id}"
        " --tail 20",
        f"logs {job.id} --tail ten": f"--tail must be a non-negative integer, got 'ten'. Example: %flare logs {job.id}"
        " --tail 20",
        f"logs {job.id} --max-bytes -1": f"--max-bytes must be a non-negative integer, got '-1'. Example: %flare logs"
        f" {job.id} --max-bytes 65536",
        f"logs {job.id} --since yesterday": "--since must be a timestamp like 2026-04-28T10:00:00 or"
        f" 2026-04-28T10:00:00Z, got 'yesterday'. Example: %flare logs {job.id} --since 2026-04-28T10:00:00",
    }
    for line, message in cases.items():
        with pytest.raises(FlareError) as e:
            ip.run_line_magic("flare", line)
        assert str(e.value) == message, line
    with pytest.raises(UsageError, match=r"^%flare logs: argument JOB_ID: Invalid job id 'no-such-job': a FLARE job"):
        ip.run_line_magic("flare", "logs no-such-job")  # malformed: refused before the server is asked
    with pytest.raises(FlareError) as e:
        ip.run_line_magic("flare", f"logs {job.id} --site nowhere")
    assert str(e.value).startswith(f"No log for site 'nowhere' of job {job.id}: ")
    assert str(e.value).endswith(f". Run %flare logs {job.id} --site all to see which sites have logs")
    assert "\n" not in str(e.value)
    flarenb_poc.call(lambda s: s.abort_job(job.id))
