"""Every private NVFlare name flarenb uses, in one place, so an NVFlare upgrade that renames one breaks here.

NVFlare 2.9 keeps the semantics of ``nvflare job logs`` / ``download`` / ``wait`` in underscore helpers of
``nvflare/tool/job/job_cli.py``, its study-name rule in ``Session._validate_study_name`` and the submit token's
file-size limit in ``job_submit_token._MAX_HASH_ZIP_MEMBER_SIZE``. flarenb reuses them (so a cell behaves as the CLI
does) through the functions below — the rest of flarenb imports from here, never a private NVFlare name.

:data:`PRIVATE` lists each one; ``tests/test_nvflare_private.py`` checks that the installed NVFlare has them all.
Each function looks its name up when called (NVFlare imports lazily, as everywhere in flarenb, and a test that
monkeypatches NVFlare's module sees its value).
"""

from __future__ import annotations

import importlib
from typing import Any

#: ``(module, name)`` of every private NVFlare name used; ``name`` may be dotted (``Class._method``)
PRIVATE: tuple[tuple[str, str], ...] = (
    ("nvflare.tool.job.job_cli", "_normalize_log_timestamp"),
    ("nvflare.tool.job.job_cli", "_DEFAULT_JOB_LOG_TAIL_LINES"),
    ("nvflare.tool.job.job_cli", "_preferred_job_log_file"),
    ("nvflare.tool.job.job_cli", "_fallback_job_log_file"),
    ("nvflare.tool.job.job_cli", "_job_log_result_needs_fallback"),
    ("nvflare.tool.job.job_cli", "_merge_job_log_fallback_result"),
    ("nvflare.tool.job.job_cli", "_select_job_logs_for_output"),
    ("nvflare.tool.job.job_cli", "_apply_job_log_bounds"),
    ("nvflare.tool.job.job_cli", "_job_terminal_failure_error"),
    ("nvflare.tool.job.job_cli", "_discover_job_download_artifacts"),
    ("nvflare.fuel.flare_api.flare_api", "Session._validate_study_name"),
    ("nvflare.apis.utils.job_submit_token", "_MAX_HASH_ZIP_MEMBER_SIZE"),
)


def resolve(module: str, name: str) -> Any:
    """The object ``module.name`` (``name`` may be dotted); ImportError/AttributeError if NVFlare has none."""
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _job_cli():
    from nvflare.tool.job import job_cli

    return job_cli


# -- nvflare job logs ------------------------------------------------------------------------------------------


def normalize_log_timestamp(value: str):
    """``--since`` as the CLI reads it (ValueError/OverflowError if it is not a timestamp)."""
    return _job_cli()._normalize_log_timestamp(value)


def default_job_log_tail_lines() -> int:
    """The CLI's default ``--tail`` when no bound is given."""
    return _job_cli()._DEFAULT_JOB_LOG_TAIL_LINES


def preferred_job_log_file(json_mode: bool) -> str:
    return _job_cli()._preferred_job_log_file(json_mode)


def fallback_job_log_file(json_mode: bool) -> str:
    return _job_cli()._fallback_job_log_file(json_mode)


def job_log_result_needs_fallback(result: dict, site: str) -> bool:
    return _job_cli()._job_log_result_needs_fallback(result, site)


def merge_job_log_fallback_result(result: dict, fallback: dict) -> dict:
    return _job_cli()._merge_job_log_fallback_result(result, fallback)


def select_job_logs_for_output(result: dict, json_mode: bool) -> dict:
    return _job_cli()._select_job_logs_for_output(result, json_mode)


def apply_job_log_bounds(logs: dict, tail, since_ts, max_bytes):
    """``(logs, sites, logs_truncated, since_applied)`` with the CLI's ``--tail``/``--since``/``--max-bytes``."""
    return _job_cli()._apply_job_log_bounds(logs, tail, since_ts, max_bytes)


# -- nvflare job wait / download -------------------------------------------------------------------------------


def job_terminal_failure_error(status: str):
    """The CLI's ``(error code, ...)`` for a terminal failure status, else a falsy value."""
    return _job_cli()._job_terminal_failure_error(status)


def discover_job_download_artifacts(path: str) -> tuple[dict, list]:
    """``(artifacts, missing)`` of a downloaded job folder, as ``nvflare job download`` reports them."""
    return _job_cli()._discover_job_download_artifacts(path)


# -- sessions and submit tokens ---------------------------------------------------------------------------------


def study_name_rule():
    """NVFlare's own study-name rule: a function of the name that raises if it is not valid."""
    from nvflare.fuel.flare_api.flare_api import Session

    return Session._validate_study_name


def max_hash_zip_member_size() -> int | None:
    """The largest file (bytes) the server hashes for a submit token; None if this NVFlare has no such limit."""
    try:
        from nvflare.apis.utils.job_submit_token import _MAX_HASH_ZIP_MEMBER_SIZE
    except ImportError:
        return None
    return int(_MAX_HASH_ZIP_MEMBER_SIZE)
