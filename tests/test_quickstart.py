"""The README's quickstart: `jupyter execute notebooks/01_quickstart.ipynb` runs to the end against a real FLARE."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.poc


def test_quickstart_notebook_runs_to_the_end(flarenb_poc, tmp_path):
    nb = tmp_path / "quickstart.ipynb"
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", nb)
    shutil.copy(ROOT / "notebooks" / "fedavg_client.py", tmp_path / "fedavg_client.py")
    jupyter = Path(sys.executable).with_name("jupyter")
    result = subprocess.run(
        [str(jupyter), "execute", "--inplace", "--timeout=300", str(nb)],
        env=dict(os.environ),  # the fixture's HOME and NVFLARE_POC_WORKSPACE: the notebook reuses its POC
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cells = nbformat.read(nb, as_version=4).cells
    texts, images = [], 0
    for cell in cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            texts.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
            images += "image/png" in out.get("data", {})
    joined = "\n".join(texts)
    assert "Local FLARE reused: 2 clients connected (site-1, site-2)" in joined  # the display, updated in place
    assert "clients (2): site-1, site-2" in joined
    assert ": FINISHED:COMPLETED" in joined
    assert "sites: server: done · site-1: done · site-2: done" in joined
    assert "loss per round: {0: 1.0, 1: 0.5, 2: 0.3333333333333333}" in joined
    assert images == 1  # the plot of the loss and the global model
