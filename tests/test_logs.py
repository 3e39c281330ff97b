"""flarenb.logs against nvflare's own `nvflare job logs` command run on the same fake session."""

import argparse
import contextlib
import io
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flarenb.errors import FlareError
from flarenb.logs import JobLogs, LogsInputError, get_logs

SERVER_LOG = (
    "... output truncated to last 5242880 bytes ...\n"
    "ut line\n"
    "2026-04-28 09:59:59,100 - ServerRunner - INFO - [identity=server] - starting\n"
    "2026-04-28 10:00:00,000 - FedAvg - ERROR - boom <script>alert(1)</script>\n"
    "Traceback (most recent call last):\n"
    "ZeroDivisionError: division by zero\n"
    "2026-04-28 10:00:01,500 - FedAvg - INFO - round 1 é\n"
    "plain print\n"
)
SITE1_JSON = "".join(
    json.dumps({"asctime": f"2026-04-28 10:00:0{i},000", "name": "C", "levelname": "INFO", "message": f"msg {i}"})
    + "\n"
    for i in range(4)
)


class FakeSession:
    """get_job_logs like flare_api: log.txt for server/site-1; site-1 only has log.json for json."""

    def __init__(self, logs=None, unavailable=None, json_logs=None):
        self.logs = {"server": SERVER_LOG, "site-1": SITE1_JSON} if logs is None else logs
        self.json_logs = json_logs if json_logs is not None else {"server": SERVER_LOG}
        self.unavailable = {"site-2": "log not streamed to the server"} if unavailable is None else unavailable
        self.calls = []

    def get_job_logs(self, job_id, target="server", log_file_name="log.txt"):
        self.calls.append((target, log_file_name))
        source = self.logs if log_file_name == "log.txt" else self.json_logs
        names = list(source) + list(self.unavailable) if target == "all" else [target]
        out = {"logs": {}}
        for name in names:
            if name in source:
                out["logs"][name] = source[name]
            else:
                out.setdefault("unavailable", {})[name] = self.unavailable.get(name, "no such site")
        return out

    def fetch(self, target, log_file_name="log.txt"):
        return self.get_job_logs("job1", target, log_file_name)


def run_cli(monkeypatch, sess, json_mode, **args):
    """Run nvflare's cmd_job_logs against `sess`; return (json data or stdout text, stderr text)."""
    from nvflare.tool import cli_output, cli_schema
    from nvflare.tool.job import job_cli

    captured, out, err = {}, io.StringIO(), io.StringIO()

    def print_human(*a, file=None, **kw):
        print(*a, file=err if file is sys.stderr else out, **kw)

    monkeypatch.setattr(cli_output, "is_json_mode", lambda: json_mode)
    monkeypatch.setattr(cli_output, "output_ok", lambda data, **kw: captured.setdefault("data", data))
    monkeypatch.setattr(cli_output, "output_error", lambda code, **kw: captured.setdefault("error", (code, kw)))
    monkeypatch.setattr(cli_output, "print_human", print_human)
    monkeypatch.setattr(cli_schema, "handle_schema_flag", lambda *a, **k: None)
    monkeypatch.setattr(job_cli, "_job_session_for_args", lambda *a, **k: contextlib.nullcontext(sess))
    ns = argparse.Namespace(job_id="job1", study="default", site="server", tail=None, since=None, max_bytes=None)
    for k, v in args.items():
        setattr(ns, k, v)
    job_cli.cmd_job_logs(ns)
    if "error" in captured:
        return captured["error"], err.getvalue()
    return (captured["data"] if json_mode else out.getvalue()), err.getvalue()


CASES = [
    {},
    {"site": "all"},
    {"site": "site-1"},
    {"site": "all", "tail": 2},
    {"site": "all", "tail": 0},
    {"site": "all", "since": "2026-04-28T10:00:00"},
    {"site": "all", "since": "2026-04-28T10:00:00Z", "tail": 3, "max_bytes": 40},
    {"site": "server", "max_bytes": 10},
    {"site": "server", "since": "2026-04-28 10:00:01"},
]


@pytest.mark.parametrize("args", CASES)
def test_json_matches_the_cli(monkeypatch, args):
    expected, _ = run_cli(monkeypatch, FakeSession(), True, **args)
    got = get_logs(FakeSession().fetch, "job1", fmt="json", **args)
    assert got == expected


@pytest.mark.parametrize("args", CASES)
def test_text_matches_the_cli(monkeypatch, args):
    out, err = run_cli(monkeypatch, FakeSession(), False, **args)
    got = get_logs(FakeSession().fetch, "job1", **args)
    assert isinstance(got, JobLogs)
    text = str(got)
    if got.unavailable:
        text, _, rest = text.partition("Unavailable logs:\n")
        assert "Unavailable logs:\n" + rest == err
    assert text == out


@settings(max_examples=100, deadline=None)
@given(
    tail=st.one_of(st.none(), st.integers(0, 12)),
    max_bytes=st.one_of(st.none(), st.integers(0, 600)),
    since_s=st.one_of(st.none(), st.integers(58, 62)),
    site=st.sampled_from(["server", "all", "site-1"]),
    fmt=st.sampled_from(["text", "json"]),
)
def test_bounds_match_the_cli_property(tail, max_bytes, since_s, site, fmt):
    since = None if since_s is None else f"2026-04-28T{9 + since_s // 60:02d}:{since_s % 60:02d}:00"
    args = {"site": site, "tail": tail, "max_bytes": max_bytes, "since": since}
    with pytest.MonkeyPatch.context() as mp:
        expected, _err = run_cli(mp, FakeSession(), fmt == "json", **args)
    got = get_logs(FakeSession().fetch, "job1", fmt=fmt, **args)
    if fmt == "json":
        assert got == expected
    else:
        assert str(got).partition("Unavailable logs:\n")[0] == expected


def test_default_tail_is_500_lines():
    log = "".join(f"line {i}\n" for i in range(1200))
    got = get_logs(FakeSession({"server": log}, {}, {"server": log}).fetch, "job1", fmt="json")
    assert got["filters"] == {
        "tail": 500,
        "since": None,
        "since_applied": False,
        "max_bytes": None,
        "default_tail_applied": True,
    }
    assert got["logs"]["server"].splitlines() == [f"line {i}" for i in range(700, 1200)]
    size = len(got["logs"]["server"])
    assert got["sites"]["server"] == {"available": True, "lines": 500, "bytes": size, "logs_truncated": True}
    assert got["logs_truncated"] is True
    explicit = get_logs(FakeSession({"server": log}, {}, {"server": log}).fetch, "job1", fmt="json", max_bytes=10**9)
    assert explicit["filters"]["tail"] is None and explicit["sites"]["server"]["lines"] == 1200


def test_fetch_without_log_file_name_is_accepted():
    sess = FakeSession()
    got = get_logs(lambda target: sess.get_job_logs("job1", target), "job1", site="all", tail=1)
    assert sess.calls == [("all", "log.txt")]
    assert got.logs["server"] == "plain print\n"
    # log.json content is rendered as text, like the CLI
    assert got.logs["site-1"] == "2026-04-28 10:00:03,000 - C - INFO - msg 3\n"


def test_fallback_to_the_other_log_file():
    json_logs = {"server": SERVER_LOG, "site-1": SITE1_JSON}
    sess = FakeSession(logs={"server": SERVER_LOG}, json_logs=json_logs, unavailable={})
    got = get_logs(sess.fetch, "job1", site="site-1", tail=1)
    assert sess.calls == [("site-1", "log.txt"), ("site-1", "log.json")]
    assert str(got) == "2026-04-28 10:00:03,000 - C - INFO - msg 3\n"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tail": -3}, "--tail must be a non-negative integer, got '-3'. Example: %flare logs job1 --tail 20"),
        ({"tail": "abc"}, "--tail must be a non-negative integer, got 'abc'. Example: %flare logs job1 --tail 20"),
        ({"tail": 2.5}, "--tail must be a non-negative integer, got '2.5'. Example: %flare logs job1 --tail 20"),
        ({"tail": True}, "--tail must be a non-negative integer, got 'True'. Example: %flare logs job1 --tail 20"),
        (
            {"max_bytes": "-1"},
            "--max-bytes must be a non-negative integer, got '-1'. Example: %flare logs job1 --max-bytes 65536",
        ),
        (
            {"since": "yesterday"},
            "--since must be a timestamp like 2026-04-28T10:00:00 or 2026-04-28T10:00:00Z, got 'yesterday'."
            " Example: %flare logs job1 --since 2026-04-28T10:00:00",
        ),
        ({"site": ""}, "--site must be 'server', 'all' or a site name, got ''. Example: %flare logs job1 --site all"),
        (
            {"site": "site-2"},
            "No log for site 'site-2' of job job1: log not streamed to the server."
            " Run %flare logs job1 --site all to see which sites have logs",
        ),
        ({"fmt": "xml"}, "fmt must be 'text' or 'json', got 'xml'. Example: job.logs(fmt='json')"),
    ],
)
def test_bad_input_raises_one_line_value_error(kwargs, message):
    with pytest.raises(LogsInputError) as info:
        get_logs(FakeSession().fetch, "job1", **kwargs)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FlareError)


def test_numeric_strings_are_accepted():
    got = get_logs(FakeSession().fetch, "job1", tail="2", max_bytes=" 1000 ", fmt="json")
    assert got["filters"]["tail"] == 2 and got["filters"]["max_bytes"] == 1000


def test_html_escapes_remote_text_and_plain_text_has_blocks():
    got = get_logs(FakeSession().fetch, "job1", site="all", tail=3)
    html = got._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in get_logs(FakeSession().fetch, "job1", tail=5)._repr_html_()
    assert "===== server =====" in html and "===== site-1 =====" in html
    assert "site-2: log not streamed to the server" in html
    assert str(got).startswith("===== server =====\n")
    assert "\n===== site-1 =====\n" in str(got)
    assert str(got).endswith("Unavailable logs:\nsite-2: log not streamed to the server\n")
    evil = FakeSession({"server": "x\n"}, {"<b>site</b>": "<img src=x onerror=alert(1)>"})
    html = get_logs(evil.fetch, "job1", site="all")._repr_html_()
    assert "<img" not in html and "<b>site" not in html


def test_empty_log_shows_no_content_marker():
    got = get_logs(FakeSession({"server": ""}, {}).fetch, "job1")
    assert str(got) == "(no log content)\n"
    assert "(no log content)" in got._repr_html_()
