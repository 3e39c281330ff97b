"""flarenb.compare_metrics: several runs' metrics in one chart per metric (fast: fake Metrics, no FLARE)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import flarenb
from flarenb import svgchart
from flarenb.compare import compare_metrics
from flarenb.metrics import AGGREGATED, MetricRecord, Metrics

HOSTILE = "<img src=x onerror=alert(1)>"
SVG = "{http://www.w3.org/2000/svg}"


def run(job_id: str, values: dict[str, list[float]], *, site: str = AGGREGATED, complete: bool = True) -> Metrics:
    """A job's metrics: ``values[metric][round]`` at ``site`` and, beside it, a site-1 value that must not leak in."""
    records = []
    for metric, per_round in values.items():
        for rnd, v in enumerate(per_round):
            records.append(MetricRecord(rnd, site, metric, v, None if site == AGGREGATED else 10.0))
            records.append(MetricRecord(rnd, "site-1", metric, -1.0, 10.0))
    return Metrics(job_id, records, complete=complete, source="download")


SLOW = run("job-a", {"loss": [4.0, 3.0, 2.5]})
FAST = run("job-b", {"loss": [4.0, 1.0, 0.25], "accuracy": [0.5, 0.75, 0.875]})


def polylines(markup: str) -> list[ET.Element]:
    return list(ET.fromstring(markup).iter(f"{SVG}polyline"))


def test_two_runs_share_one_chart_per_metric_one_line_per_run():
    c = flarenb.compare_metrics({"lr=0.01": SLOW, "lr=0.1": FAST}, metric="loss")
    assert c.metrics == ["loss"] and c.labels == ["lr=0.01", "lr=0.1"]
    assert c.series["loss"] == {"lr=0.01": [(0, 4.0), (1, 3.0), (2, 2.5)], "lr=0.1": [(0, 4.0), (1, 1.0), (2, 0.25)]}
    assert str(c).splitlines() == [
        "loss (aggregated) per round",
        "round  lr=0.01  lr=0.1",
        "0      4        4",
        "1      3        1",
        "2      2.5      0.25",
    ]
    lines = polylines(c.svg())
    assert [p.get("data-site") for p in lines] == ["lr=0.01", "lr=0.1"]
    assert lines[0].get("stroke") != lines[1].get("stroke")
    ys = [[float(xy.split(",")[1]) for xy in p.get("points", "").split()] for p in lines]
    assert ys[0][0] == ys[1][0] and ys[1][2] > ys[0][2]  # same start; the lower loss is drawn lower (larger y)
    page = c._repr_html_()
    assert page.count("<svg") == 1 and "lr=0.01" in page and "lr=0.1" in page
    for points in re.findall(r'points="([^"]*)"', page):
        assert re.fullmatch(r"[0-9., -]+", points), points


def test_every_metric_by_default_and_a_run_without_one_keeps_its_colour():
    c = compare_metrics({"slow": SLOW, "fast": FAST})
    assert c.metrics == ["loss", "accuracy"]
    assert c.series["accuracy"]["slow"] == []
    assert "accuracy (aggregated) per round" in str(c) and "0            0.5" in str(c)
    colour = {p.get("data-site"): p.get("stroke") for p in polylines(c.svg("loss"))}
    (only,) = polylines(c.svg("accuracy"))
    assert only.get("data-site") == "fast" and only.get("stroke") == colour["fast"]
    assert c._repr_html_().count("<svg") == 2
    assert compare_metrics({"a": SLOW, "b": FAST}, ["accuracy", "loss"]).metrics == ["accuracy", "loss"]


def test_one_site_instead_of_the_aggregate_and_a_running_run_is_marked():
    live = run("job-c", {"loss": [9.0]}, site="site-2", complete=False)
    c = compare_metrics({"done": run("job-d", {"loss": [8.0, 7.0]}, site="site-2"), "live": live}, site="site-2")
    assert c.series["loss"] == {"done": [(0, 8.0), (1, 7.0)], "live": [(0, 9.0)]}
    assert str(c).splitlines()[:2] == ["loss (site-2) per round", "round  done  live (running)"]
    assert [p.get("data-site") for p in polylines(c.svg())] == ["done", "live (running)"]


def test_hostile_names_are_text_never_markup():
    evil = run("job-e", {HOSTILE: [1.0, 2.0]})
    label = "\x1b]52;c;cGF5bG9hZA==\x07run <script>alert(2)</script>"
    c = compare_metrics({label: evil})
    page = c._repr_html_()
    assert "<img" not in page and "<script" not in page and "\x1b" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page
    doc = ET.fromstring(c.svg())  # well-formed: the names are escaped text inside it
    texts = [t.text for t in doc.iter(f"{SVG}text")]
    assert f"{HOSTILE} (aggregated) per round" in texts and "run <script>alert(2)</script>" in texts
    assert [e.tag for e in doc.iter()] == [e.tag for e in doc.iter() if e.tag.startswith(SVG)]  # nothing foreign
    text = str(c)
    assert "\x1b" not in text and "\x07" not in text and HOSTILE in text  # text/plain: terminal-safe, as it is


def test_runs_are_jobs_or_anything_with_metrics_and_mistakes_are_one_line():
    class FakeJob:
        id = "job-f"

        def metrics(self):
            return SLOW

    assert compare_metrics({"job": FakeJob(), "metrics": FAST}, "loss").series["loss"]["job"][-1] == (2, 2.5)
    with pytest.raises(flarenb.FlareError, match=r"^No run has the metric 'acuracy'\. Metrics found: loss$"):
        compare_metrics({"a": SLOW}, metric="acuracy")
    with pytest.raises(flarenb.FlareError, match="needs the runs by label"):
        compare_metrics([SLOW, FAST])  # type: ignore[arg-type]
    with pytest.raises(flarenb.FlareError, match="needs the runs by label"):
        compare_metrics({})
    with pytest.raises(flarenb.FlareError, match=r"^Cannot read the metrics of a int"):
        compare_metrics({"a": 3})
    no_aggregate = run("job-g", {"loss": [1.0]}, site="site-2")
    only_sites = Metrics("job-g", [r for r in no_aggregate.records if r.site != AGGREGATED])
    with pytest.raises(flarenb.FlareError, match=r"no numeric metrics at 'aggregated'.*site-1, site-2 \(site=\.\.\.\)"):
        compare_metrics({"a": only_sites})
    with pytest.raises(flarenb.FlareError, match="no numeric metrics yet"):
        compare_metrics({"a": Metrics("job-h", complete=False)})
    with pytest.raises(flarenb.FlareError, match="has no metric 'nope'"):
        compare_metrics({"a": SLOW}).svg("nope")


def test_text_values_are_left_out_and_a_round_missing_in_one_run_is_blank():
    a = Metrics("a", [MetricRecord(0, AGGREGATED, "m", 1.0), MetricRecord(1, AGGREGATED, "m", "nan?")], True)
    b = Metrics("b", [MetricRecord(0, AGGREGATED, "m", 2), MetricRecord(1, AGGREGATED, "m", 3.0)], True)
    c = compare_metrics({"a": a, "b": b})
    assert c.series["m"] == {"a": [(0, 1.0)], "b": [(0, 2.0), (1, 3.0)]}
    assert str(c).splitlines()[-1] == "1         3"  # round 1: a blank, b 3


def test_the_shared_renderer_keeps_the_snapshot_chart_as_it_was():
    """The snapshot's chart (no axes, no legend) is the renderer's default: the aggregate bold, sites thin."""
    rows = [(AGGREGATED, [(0.0, 1.0), (1.0, 0.5)]), ("site-1", [(0.0, 2.0), (1.0, 1.0)])]
    markup = svgchart.line_chart("loss", rows, bold=AGGREGATED)
    assert markup.startswith('<svg class="flarenb-metric-static" data-metric="loss" width="240" height="90" ')
    assert "<rect" not in markup and "<circle" not in markup and "<line" not in markup
    agg, site = polylines(markup)
    assert (agg.get("stroke-width"), agg.get("stroke")) == ("2.5", svgchart.BOLD_COLOUR)
    assert agg.get("points") == "6.0,63.3 234.0,84.0" and site.get("stroke-width") == "1"
