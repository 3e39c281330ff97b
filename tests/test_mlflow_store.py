"""The MLflow store of a job's experiment tracking, read without mlflow: synthetic stores in MLflow's layouts."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path

from flarenb import metric_sources, mlflow_store
from flarenb.metrics import AGGREGATED, MetricRecord
from flarenb.metricsfeed import MetricsFeed

JOB = "0123456789ab-cdef"
HOSTILE = "<img src=x onerror=alert(1)>"

# The tables MLflow's SQLAlchemy store creates (the columns flarenb reads, as MLflow 3 declares them).
SCHEMA = """
CREATE TABLE runs (run_uuid VARCHAR(32) NOT NULL PRIMARY KEY, name VARCHAR(250), status VARCHAR(9),
    lifecycle_stage VARCHAR(20), experiment_id INTEGER);
CREATE TABLE tags ("key" VARCHAR(250) NOT NULL, value VARCHAR(8000), run_uuid VARCHAR(32) NOT NULL,
    PRIMARY KEY ("key", run_uuid));
CREATE TABLE metrics ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL,
    run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL,
    PRIMARY KEY ("key", timestamp, step, run_uuid, value, is_nan));
"""


def run_name(site: str) -> str:
    """The name NVFlare's MLflowReceiver gives the run of ``site``."""
    return f"{site}-{JOB[:6]}-numpy-fedavg-numpy-fedavg-Server"


def make_db(path: Path, values: dict[str, list[tuple[str, float, int]]]) -> None:
    """An MLflow SQLite store: one run per site, ``values[site] = [(key, value, step), ...]``."""
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    for i, (site, rows) in enumerate(values.items()):
        uuid = f"{i:032x}"
        con.execute("INSERT INTO runs VALUES (?, ?, 'RUNNING', 'active', 1)", (uuid, run_name(site)))
        con.executemany(
            "INSERT INTO tags VALUES (?, ?, ?)",
            [("job_id", JOB, uuid), ("run_name", run_name(site), uuid), ("mlflow.runName", run_name(site), uuid)],
        )
        con.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
            [(k, 0.0 if math.isnan(v) else v, 1_700_000_000_000 + s, uuid, s, int(math.isnan(v))) for k, v, s in rows],
        )
    con.commit()
    con.close()


def make_file_store(root: Path, site: str, metrics: dict[str, str], run: str = "f" * 32) -> Path:
    """An MLflow file store run (``mlruns/1/<run>/``) with metric files of the given text."""
    folder = root / "1" / run
    (folder / "tags").mkdir(parents=True)
    (folder / "tags" / "mlflow.runName").write_text(run_name(site))
    (folder / "tags" / "job_id").write_text(JOB)
    (folder / "meta.yaml").write_text(f"run_id: {run}\nrun_name: {run_name(site)}\nexperiment_id: '1'\n")
    for key, text in metrics.items():
        path = folder / "metrics" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_site_of_an_nvflare_run_name():
    assert mlflow_store.site_of(run_name("site-1"), JOB) == "site-1"
    assert mlflow_store.site_of("my-site-2-012345-x-y", JOB) == "my-site-2"
    assert mlflow_store.site_of("a run of someone else", JOB) == "a run of someone else"
    assert mlflow_store.site_of(run_name("site-1"), None) == run_name("site-1")


def test_a_sqlite_store_becomes_records_per_site_and_step(tmp_path):
    make_db(
        tmp_path / "mlflow.db",
        {
            "site-1": [("train_loss", 0.5, 0), ("train_loss", 0.25, 1), (HOSTILE, float("nan"), 0)],
            "site-2": [("train_loss", 0.75, 0)],
        },
    )
    found = mlflow_store.read_db(tmp_path / "mlflow.db")
    assert found is not None
    assert sorted(found, key=lambda r: (r.round, r.site, r.metric)) == [
        MetricRecord(0, "site-1", "mlflow/" + HOSTILE, "nan"),
        MetricRecord(0, "site-1", "mlflow/train_loss", 0.5),
        MetricRecord(0, "site-2", "mlflow/train_loss", 0.75),
        MetricRecord(1, "site-1", "mlflow/train_loss", 0.25),
    ]
    assert all(mlflow_store.tracked(r) for r in found)


def test_a_missing_symlinked_or_unreadable_database(tmp_path):
    assert mlflow_store.read_db(tmp_path / "mlflow.db") == []
    outside = tmp_path / "outside.db"
    make_db(outside, {"site-1": [("x", 1.0, 0)]})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mlflow.db").symlink_to(outside)
    assert mlflow_store.read_db(tmp_path / "run" / "mlflow.db") == []
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    assert mlflow_store.read_db(tmp_path / "garbage.db") is None  # cannot be read now: the caller keeps what it had


def test_the_database_is_opened_read_only(tmp_path):
    make_db(tmp_path / "mlflow.db", {"site-1": [("x", 1.0, 0)]})
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert mlflow_store.read_db(tmp_path / "mlflow.db")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_a_file_store_hostile_names_symlinks_and_a_torn_last_line(tmp_path):
    root = tmp_path / "mlruns"
    run = make_file_store(
        root,
        "site-1",
        {
            "train_loss": "1700000000000 0.5 0\n1700000000001 0.25 1\n1700000000002 0.1 2",  # the last is being written
            "val/acc": "1700000000000 0.9 0\nnot a line\n",
            HOSTILE: "1700000000000 nan 3\n",
        },
    )
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "leak").write_text("1 42 0\n")
    (run / "metrics" / "linked").symlink_to(secret / "leak")  # a metric file pointing out of the store
    (run / "metrics" / "linked_dir").symlink_to(secret, target_is_directory=True)
    (root / "1" / ("e" * 32)).symlink_to(run, target_is_directory=True)  # a run that is a symlink
    (root / "2").symlink_to(root / "1", target_is_directory=True)  # an experiment that is a symlink

    found = mlflow_store.read_file_store(root)
    assert sorted(found, key=lambda r: (r.round, r.metric)) == [
        MetricRecord(0, "site-1", "mlflow/train_loss", 0.5),
        MetricRecord(0, "site-1", "mlflow/val/acc", 0.9),
        MetricRecord(1, "site-1", "mlflow/train_loss", 0.25),
        MetricRecord(3, "site-1", "mlflow/" + HOSTILE, "nan"),
    ]
    with open(run / "metrics" / "train_loss", "a") as f:
        f.write("\n")  # the torn line is complete now
    assert MetricRecord(2, "site-1", "mlflow/train_loss", 0.1) in mlflow_store.read_file_store(root)


def test_a_file_store_run_named_only_in_meta_yaml(tmp_path):
    run = make_file_store(tmp_path / "mlruns", "site-7", {"loss": "1 2.5 4\n"})
    os.remove(run / "tags" / "mlflow.runName")
    assert mlflow_store.read_file_store(tmp_path / "mlruns") == [MetricRecord(4, "site-7", "mlflow/loss", 2.5)]


def test_tracked_scalars_join_the_round_metrics_of_a_run_folder(tmp_path):
    (tmp_path / "metrics").mkdir()
    row = {"round": 0, "aggregated_metrics": [{"name": "loss", "value": 1.0}], "sites": []}
    (tmp_path / "metrics" / "round_metrics.jsonl").write_text(json.dumps(row) + "\n")
    make_db(tmp_path / "mlflow.db", {"site-1": [("train_loss", 0.5, 7)]})
    found = metric_sources.from_folder("job", tmp_path / "metrics", complete=True, source="download")
    assert found.records == [
        MetricRecord(0, AGGREGATED, "loss", 1.0),  # the jsonl records unchanged, first
        MetricRecord(7, "site-1", "mlflow/train_loss", 0.5),
    ]
    assert found.filter(metric="mlflow/train_loss").sites == ["site-1"]
    assert "mlflow/train_loss" in str(found)


def test_the_live_feed_shows_tracked_scalars_but_counts_rounds_from_the_jsonl_only(tmp_path):
    pushed: list[tuple[dict, dict]] = []
    feed = MetricsFeed(
        "job",
        lambda m, p: pushed.append((m, p)),
        lambda: (["site-1"], {}),
        metrics_dir=tmp_path / "metrics",
        run_dir=tmp_path,
        min_push=0,
    )
    (tmp_path / "metrics").mkdir()
    row = {"round": 0, "aggregated_metrics": [{"name": "loss", "value": 1.0}], "sites": []}
    (tmp_path / "metrics" / "round_metrics.jsonl").write_text(json.dumps(row) + "\n")
    make_db(tmp_path / "mlflow.db", {"site-1": [("train_loss", 0.5, 0), ("train_loss", 0.4, 9)]})
    feed.poll_once()
    assert feed.poll_tracked() == 2
    assert feed.poll_tracked() == 0  # unchanged: not read again
    assert feed.publish()
    metrics, progress = pushed[-1]
    assert [(s["metric"], s["site"], s["points"]) for s in metrics["series"]] == [
        ("loss", AGGREGATED, [[0, 1.0]]),
        ("mlflow/train_loss", "site-1", [[0, 0.5], [9, 0.4]]),
    ]
    assert progress["round"] == 0  # step 9 of a tracked scalar is not round 9
    assert [r.metric for r in feed.metrics().records] == ["loss", "mlflow/train_loss", "mlflow/train_loss"]


def test_the_database_is_tailed_new_rows_and_new_runs_only(tmp_path):
    db = tmp_path / "mlflow.db"
    make_db(db, {"site-1": [("loss", 1.0, 0)]})
    tail = mlflow_store.FolderTail(tmp_path)
    assert tail.read() == [MetricRecord(0, "site-1", "mlflow/loss", 1.0)]
    con = sqlite3.connect(db)
    con.execute("INSERT INTO runs VALUES (?, ?, 'RUNNING', 'active', 1)", ("b" * 32, run_name("site-2")))
    con.execute("INSERT INTO tags VALUES ('mlflow.runName', ?, ?)", (run_name("site-2"), "b" * 32))
    con.execute("INSERT INTO tags VALUES ('job_id', ?, ?)", (JOB, "b" * 32))
    con.execute("INSERT INTO metrics VALUES ('loss', 2.0, 1, ?, 1, 0)", ("b" * 32,))
    con.commit()
    con.close()
    assert tail._db.poll() == 1  # only the new row is read
    assert tail.read() == [MetricRecord(0, "site-1", "mlflow/loss", 1.0), MetricRecord(1, "site-2", "mlflow/loss", 2.0)]
    os.remove(db)
    make_db(db, {"site-3": [("acc", 0.5, 0)]})  # replaced (a new store): read from its start
    assert tail.read() == [MetricRecord(0, "site-3", "mlflow/acc", 0.5)]


def test_a_file_store_written_by_mlflow_itself():
    """``tests/data/mlruns``: written by mlflow-skinny 3.18's FileStore (``MLFLOW_ALLOW_FILE_STORE=true``), two
    NVFlare-named runs, ``train/loss`` over steps 0–2."""
    found = mlflow_store.read_file_store(Path(__file__).parent / "data" / "mlruns")
    assert sorted(found, key=lambda r: (r.round, r.site)) == [
        MetricRecord(step, site, "mlflow/train/loss", scale / (step + 1))
        for step in range(3)
        for site, scale in (("site-1", 1.0), ("site-2", 2.0))
    ]
