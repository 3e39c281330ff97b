"""flarenb.vocab: the words every layer shares (the front end's copy: tests/test_vocab_parity.py)."""

from __future__ import annotations

import json

import pytest

from flarenb import vocab


def test_front_end_constants_are_the_python_names():
    for name, value in vocab.FRONT_END.items():
        python = getattr(vocab, name)
        assert json.loads(json.dumps(python)) == json.loads(json.dumps(value)), name


def test_level_rank_is_pythons_logging_order():
    import logging

    assert [vocab.LEVEL_RANK[n] for n in vocab.LEVELS] == [
        logging.DEBUG,
        logging.INFO,
        logging.WARNING,
        logging.ERROR,
        logging.CRITICAL,
    ]
    assert vocab.norm_level("warn") == "WARNING" and vocab.norm_level("fatal") == "CRITICAL"
    assert vocab.norm_level("trace") is None and vocab.norm_level("") is None and vocab.norm_level(None) is None


def test_every_stream_state_has_a_view_state():
    assert set(vocab.VIEW_STATE_OF) == set(vocab.STREAM_STATES)
    assert set(vocab.VIEW_STATE_OF.values()) <= set(vocab.VIEW_STATES.values())
    assert vocab.STREAM_TERMINAL_STATES.issubset(vocab.STREAM_STATES)


def test_terminal_statuses_agree_with_nvflare():
    from nvflare.apis.job_def import RunStatus
    from nvflare.fuel.flare_api import flare_api

    nvflare_is_terminal = getattr(flare_api, "_is_terminal_job_status", None)
    legacy = getattr(flare_api, "_LEGACY_TERMINAL_JOB_STATUSES", None)
    assert nvflare_is_terminal is not None and legacy is not None, "NVFlare moved its terminal-status check: see vocab"
    for status in [s.value for s in RunStatus] + sorted(legacy):
        assert vocab.is_terminal(status) == nvflare_is_terminal(status), status
        assert vocab.is_terminal(status.lower()) == nvflare_is_terminal(status), status  # ours ignores case
    assert not vocab.is_terminal(None) and not vocab.is_terminal("")


def test_site_orders():
    assert vocab.server_first(["site-2", "site-10", "server", "site-1"]) == ["server", "site-2", "site-10", "site-1"]
    assert vocab.site_order(["site-10", "server", "site-2", "site-2"]) == ["server", "site-2", "site-10"]


@pytest.mark.parametrize(
    ("value", "limit", "text"),
    [
        (ValueError("a\n  b\tc "), None, "a b c"),
        (ValueError(""), None, "ValueError"),
        ("", None, ""),
        ("x" * 10, 4, "xxxx …"),
        (None, None, "None"),
    ],
)
def test_one_line(value, limit, text):
    assert vocab.one_line(value, limit) == text
