"""A download's text shows its paths relative to the notebook's folder (the kernel's working directory), so a saved
notebook carries no machine-specific absolute paths; the ``Download`` attributes stay absolute."""

from __future__ import annotations

import os

from flarenb.jobs import Download


def test_paths_inside_the_working_directory_are_shown_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = tmp_path / "results" / "J1"
    elsewhere = tmp_path.parent / "other" / "model.npy"
    result = Download(
        job_id="J1",
        path=str(job),
        artifacts={
            "global_model": str(job / "workspace" / "models" / "server.npy"),
            "client_logs": {"site-1": str(job / "site-1" / "log.txt")},
            "outside": str(elsewhere),
        },
        missing=["tensorboard"],
    )
    rel = os.path.join("results", "J1")
    assert str(result).splitlines() == [
        f"downloaded job J1 to {rel}",
        f"  global_model: {os.path.join(rel, 'workspace', 'models', 'server.npy')}",
        f"  client_logs[site-1]: {os.path.join(rel, 'site-1', 'log.txt')}",
        f"  outside: {elsewhere}",  # not under the notebook's folder: as it is
        "  missing: tensorboard",
    ]
    assert result.path == str(job) and os.path.isabs(result.global_model)
