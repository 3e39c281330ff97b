"""Per-round metrics: NVFlare's round_metrics.jsonl → records, the live tail of a file being written, the table."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flarenb import metric_sources
from flarenb.metrics import AGGREGATED, JsonlTail, MetricRecord, Metrics, read_rows, records_of
from flarenb.registry import CommandLineError, run_line

ROW0 = {
    "round": 0,
    "aggregated_metrics": [{"name": "loss", "value": 1.0}, {"name": "acc", "value": 0.5}],
    "sites": [
        {"name": "site-2", "metrics": [{"name": "loss", "value": 1.2}], "weight": 3, "weight_key": "NUM_STEPS"},
        {"name": "site-1", "metrics": [{"name": "loss", "value": 0.8}]},
    ],
    "skipped_metrics": [],
}
ROW1 = {**ROW0, "round": 1, "aggregated_metrics": [{"name": "loss", "value": 0.5}]}


def test_a_round_becomes_flat_records():
    assert records_of(ROW0) == [
        MetricRecord(0, AGGREGATED, "loss", 1.0),
        MetricRecord(0, AGGREGATED, "acc", 0.5),
        MetricRecord(0, "site-2", "loss", 1.2, 3.0),
        MetricRecord(0, "site-1", "loss", 0.8, None),
    ]


@pytest.mark.parametrize(
    "row",
    [None, [], "x", {}, {"round": "0"}, {"round": True}, {"round": 1.5}],
)
def test_anything_else_is_no_record(row):
    assert records_of(row) == []


def test_malformed_parts_are_skipped_not_raised():
    row = {
        "round": 2,
        "aggregated_metrics": [{"name": 3, "value": 1}, "x", {"name": "ok", "value": float("nan")}],
        "sites": ["x", {"name": None}, {"name": "s", "metrics": "no"}, {"name": "t", "weight": True, "metrics": [{}]}],
    }
    assert records_of(row) == [MetricRecord(2, AGGREGATED, "ok", "nan")]


def test_the_tail_returns_complete_lines_only_and_counts_bad_ones():
    data = (json.dumps(ROW0) + "\n" + "not json\n" + json.dumps(ROW1) + "\n").encode()
    tail = JsonlTail()
    got = []
    for i in range(0, len(data), 7):  # any chunking
        got += tail.feed(data[i : i + 7])
    assert got == [ROW0, ROW1]
    assert tail.bad == 1 and tail.offset == len(data)
    assert tail.feed(b'{"round": 2') == [] and tail.offset == len(data)  # a torn last line waits


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers()), max_size=5), st.integers(1, 40))
def test_the_tail_equals_reading_the_whole_file(rows, chunk):
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    tail = JsonlTail()
    got = [x for i in range(0, len(data), chunk) for x in tail.feed(data[i : i + chunk])]
    assert got == rows == read_rows(data)


def test_filter_and_series():
    m = Metrics.from_rows("j", [ROW0, ROW1], complete=True, source="local")
    assert m.rounds == [0, 1] and m.names == ["acc", "loss"] and m.sites == [AGGREGATED, "site-1", "site-2"]
    assert m.series("loss") == [(0, 1.0), (1, 0.5)]
    assert m.series("loss", "site-1") == [(0, 0.8), (1, 0.8)]
    only = m.filter(site="site-2", metric="loss")
    assert [r.value for r in only] == [1.2, 1.2] and only.complete and only.source == "local"


def test_text_html_and_json_show_remote_names_as_text():
    hostile = {"round": 0, "sites": [{"name": "<b>s</b>", "metrics": [{"name": "\x1b]52;c;x\x07<img>", "value": 1}]}]}
    m = Metrics.from_rows("j", [hostile])
    text, page = str(m), m._repr_html_()
    assert "\x1b" not in text and "<b>s</b>" in text
    assert "<b>" not in page and "&lt;b&gt;s&lt;/b&gt;" in page and "<img>" not in page
    data = m.to_json()
    assert data["records"] == [
        {"round": 0, "site": "<b>s</b>", "metric": "\x1b]52;c;x\x07<img>", "value": 1, "weight": None}
    ]
    assert data["complete"] is False and json.loads(json.dumps(data)) == data


def test_the_table_is_ordered_by_round_aggregate_first():
    lines = str(Metrics.from_rows("j", [ROW1, ROW0], complete=True)).splitlines()
    assert lines[0] == "job j: 7 values, rounds 0–1"
    assert lines[1].split() == ["round", "site", "metric", "value", "weight"]
    assert [ln.split()[:2] for ln in lines[2:5]] == [["0", AGGREGATED], ["0", AGGREGATED], ["0", "site-1"]]
    assert str(Metrics("j", notice="arrives later")) == "job j: no per-round metrics yet\narrives later"


def test_to_pandas_has_the_columns():
    import pandas as pd

    df = Metrics.from_rows("j", [ROW0]).to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(Metrics.COLUMNS) and len(df) == 4


def test_a_metrics_folder_is_read_without_following_symlinks(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "round_metrics.jsonl").write_text(json.dumps(ROW0) + "\n" + json.dumps(ROW1)[:10])
    (folder / "metrics_summary.json").write_text(json.dumps({"status": "metrics_reported"}))
    m = metric_sources.from_folder("j", folder, complete=True, source="download")
    assert m.rounds == [0] and m.summary == {"status": "metrics_reported"}
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps(ROW1) + "\n")
    (folder / "round_metrics.jsonl").unlink()
    (folder / "round_metrics.jsonl").symlink_to(secret)
    assert len(metric_sources.from_folder("j", folder, complete=False, source="local")) == 0


def test_command_line_is_checked_before_anything_else():
    with pytest.raises(CommandLineError, match="Invalid job id"):
        run_line("metrics ../x")
    with pytest.raises(CommandLineError, match="invalid choice"):
        run_line("metrics 3b1d5e8c-0f6a-4a51-9c2e-7d0b8a6f4e21 --format yaml")


def test_a_simulation_id_reads_its_workspace(tmp_path, monkeypatch):
    class FakeSim:
        id = "sim-0123456789ab"
        status = "FINISHED:COMPLETED"
        workspace = tmp_path / "ws"

    folder = metric_sources.sim_metrics_dir(FakeSim)
    folder.mkdir(parents=True)
    (folder / "round_metrics.jsonl").write_text(json.dumps(ROW0) + "\n")
    monkeypatch.setattr("flarenb.sim.get", lambda sim_id: FakeSim)
    data = run_line("metrics sim-0123456789ab --site site-1 --format json")
    assert data["source"] == "simulator" and data["complete"] is True
    assert data["records"] == [{"round": 0, "site": "site-1", "metric": "loss", "value": 0.8, "weight": None}]
