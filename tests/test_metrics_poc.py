"""Per-round metrics of a real job on the local POC: live while it runs, all of them after, equal to its result."""

from __future__ import annotations

import json
import time

import pytest

from flarenb import submission as sub
from flarenb.metrics import AGGREGATED, records_of

pytestmark = pytest.mark.poc


def test_metrics_arrive_while_running_and_equal_the_result_after(ip, flarenb_poc, tmp_path):
    from conftest import export_job

    job = sub.submit(
        str(export_job(tmp_path, name="metrics-live", rounds=5, train_args="--sleep 3")), new=True, flare=flarenb_poc
    )
    deadline = time.monotonic() + 180
    while True:
        live = job.metrics()
        if live.rounds:
            break
        assert time.monotonic() < deadline, "no round metrics while the job ran"
        time.sleep(0.5)
    status = flarenb_poc.call(lambda s: s.get_job_meta(job.id))["status"]
    assert status == "RUNNING", f"round 0 arrived only after the job ended ({status})"
    assert live.source == "local" and not live.complete
    assert live.rounds[0] == 0 and live.rounds[-1] < 4
    assert {"site-1", "site-2", AGGREGATED} <= set(live.filter(metric="loss").sites)

    ip.run_line_magic("flare", f"wait {job.id} --timeout 300 --interval 1")
    after = job.metrics()
    assert after.complete and after.source == "download" and after.rounds == [0, 1, 2, 3, 4]
    result = job.download(output_dir=str(tmp_path / "result"))
    with open(result.artifacts["round_metrics"], encoding="utf-8") as f:
        expected = [r for line in f if line.strip() for r in records_of(json.loads(line))]
    assert after.records == expected
    assert after.records[: len(live.records)] == live.records  # what was seen live is what the result holds

    data = ip.run_line_magic("flare", f"metrics {job.id} --site aggregated --metric loss --format json")
    assert data["job_id"] == job.id and data["complete"] is True
    assert [(r["round"], r["site"], r["metric"]) for r in data["records"]] == [
        (k, AGGREGATED, "loss") for k in range(5)
    ]
    text = str(ip.run_line_magic("flare", f"metrics {job.id} --site site-1"))
    assert text.splitlines()[0] == f"job {job.id}: 5 values, rounds 0–4"
