"""The notebook check can fail: nbval with flarenb's sanitizer rejects a stored output that no longer matches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from flarenb.pytest_plugin import SANITIZE_FILE


def notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    """A notebook whose code cells have the given stored stdout."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, (source, stored) in enumerate(cells, start=1):
        cell = new_code_cell(source, execution_count=i)
        cell.outputs = [new_output("stream", name="stdout", text=stored)] if stored else []
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--nbval",
            "--nbval-sanitize-with",
            SANITIZE_FILE,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=path.parent,
        env=dict(os.environ),
    )


JOB = 'print("job 8631cadf-c779-47a9-8fa3-66b6ceb4e14a: FINISHED:COMPLETED at 2026-11-22T15:32:40.591772+00:00")'


def test_masked_parts_may_differ(tmp_path):
    nb = notebook(
        tmp_path / "ok.ipynb",
        [
            (JOB, "job 00000000-1111-2222-3333-444444444444: FINISHED:COMPLETED at 2020-01-01T00:00:00+00:00\n"),
            ('print("│ 2026-11-22 15:32:55,611 - FedAvg - INFO - round 2 of 3")', "│ anything at all\n"),
        ],
    )
    result = nbval(nb)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout


def test_a_stored_output_that_no_longer_matches_fails(tmp_path):
    nb = notebook(
        tmp_path / "stale.ipynb",
        [
            (JOB, "job 00000000-1111-2222-3333-444444444444: FINISHED:ABORTED at 2020-01-01T00:00:00+00:00\n"),
            (
                "%load_ext flarenb\n%flare help",
                "Usage: %flare COMMAND [flags]\n\nCommands:\n  submit  an old summary\n",
            ),
        ],
    )
    result = nbval(nb)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "2 failed" in result.stdout
    assert "Cell outputs differ" in result.stdout
