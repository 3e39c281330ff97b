"""Experiment tracking on the real local POC: ``add_experiment_tracking(recipe, "mlflow")`` and clients that log
scalars with NVFlare's ``SummaryWriter``; the scalars are in ``job.metrics()`` while the job runs and after it."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from flarenb import progress
from flarenb import submission as sub
from flarenb.metrics import MetricRecord

pytestmark = pytest.mark.poc

CLIENT = """
import time

import nvflare.client as flare
from nvflare.client.tracking import SummaryWriter

flare.init()
site = flare.get_site_name()
writer = SummaryWriter()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    r = model.current_round
    time.sleep(3)
    writer.add_scalar("train/loss", (2.0 if site == "site-2" else 1.0) / (r + 1), global_step=r)
    flare.send(flare.FLModel(params={k: v + 1 for k, v in model.params.items()}, metrics={"loss": 1.0 / (r + 1)}))
"""


def key(r: MetricRecord) -> tuple:
    return r.round, r.site, r.metric


def expected(rounds: int) -> list[MetricRecord]:
    return sorted(
        (
            MetricRecord(r, site, "mlflow/train/loss", (2.0 if site == "site-2" else 1.0) / (r + 1))
            for r in range(rounds)
            for site in ("site-1", "site-2")
        ),
        key=key,
    )


def export_tracked_job(dest: Path, rounds: int) -> Path:
    from conftest import make_recipe
    from nvflare.recipe.utils import add_experiment_tracking

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "client.py").write_text(CLIENT)
    cwd = os.getcwd()
    os.chdir(dest)  # the recipe takes train_script relative to the cwd
    try:
        with contextlib.redirect_stdout(None):
            recipe = make_recipe("mlflow-tracked", rounds)
            add_experiment_tracking(recipe, "mlflow")
            recipe.export(job_dir=str(dest / "export"))
    finally:
        os.chdir(cwd)
    return dest / "export" / "mlflow-tracked"


def panel(view) -> dict[str, list]:
    """The tracked scalar's series in the view's ``metrics`` trait, by site."""
    series = (view.widget.metrics or {}).get("series", [])
    return {s["site"]: s["points"] for s in series if s["metric"] == "mlflow/train/loss"}


def tracked(metrics) -> list[MetricRecord]:
    return sorted((r for r in metrics.records if r.metric.startswith("mlflow/")), key=key)


def test_summary_writer_scalars_arrive_while_running_and_after(ip, flarenb_poc, tmp_path):
    job = sub.submit(str(export_tracked_job(tmp_path, rounds=4)), new=True, flare=flarenb_poc)
    view = job.view()
    try:
        deadline = time.monotonic() + 180
        while not tracked(live := job.metrics()):
            assert time.monotonic() < deadline, "no tracked scalars while the job ran"
            time.sleep(0.5)
        while not panel(view):
            assert time.monotonic() < deadline, "no tracked scalars in the view's metrics panel while the job ran"
            time.sleep(0.2)
        status = flarenb_poc.call(lambda s: s.get_job_meta(job.id))["status"]
        assert status == "RUNNING", f"the first scalars arrived only after the job ended ({status})"
        assert live.source == "local"
        assert set(tracked(live)) <= set(expected(4))

        ip.run_line_magic("flare", f"wait {job.id} --timeout 300 --interval 1")
        while view.live:
            assert time.monotonic() < deadline + 300, "the view did not finish"
            time.sleep(0.2)
        chart = progress.SIGNIFICANT  # the chart's values keep 7 significant digits (job.metrics() keeps them all)
        assert panel(view) == {
            site: [[r, float(f"{(2.0 if site == 'site-2' else 1.0) / (r + 1):.{chart}g}")] for r in range(4)]
            for site in ("site-1", "site-2")
        }
        assert view.widget.progress["round"] == 3  # rounds from round_metrics.jsonl, not the scalars' steps
    finally:
        view.close()
    after = job.metrics()
    assert after.complete and after.source == "download"
    assert tracked(after) == expected(4)
    assert after.filter(metric="loss").rounds == [0, 1, 2, 3]  # the round metrics are still there, unchanged
    data = ip.run_line_magic("flare", f"metrics {job.id} --site site-2 --metric mlflow/train/loss --format json")
    assert [(r["round"], r["value"]) for r in data["records"]] == [(r, 2.0 / (r + 1)) for r in range(4)]
    shutil.rmtree(tmp_path / "export", ignore_errors=True)
