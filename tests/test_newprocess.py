"""A new kernel reaches the running local FLARE with no connect step, as the ``nvflare job`` CLI would."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import CLIENT
from test_submit import SUBMIT_CELL, cli_jobs

pytestmark = pytest.mark.poc


def test_a_second_process_lists_and_reattaches_without_connecting(flarenb_poc, tmp_path):
    from kernel import Kernel

    workdir = tmp_path / "nb"
    workdir.mkdir()
    shutil.copy(CLIENT, workdir / "client.py")
    name = "new-process"
    cell = SUBMIT_CELL.format(tests=str(Path(__file__).parent), name=name, rounds=1)

    first = Kernel(cwd=str(workdir))  # the notebook that started (here: reused) the local FLARE and submitted
    try:
        assert first.run("%load_ext flarenb\n%flare poc start", cell_id="setup")["status"] == "ok"
        submitted = first.run(cell, cell_id="submit-cell")
        assert submitted["status"] == "ok", submitted["error"]
        job_id = Kernel.metadata(submitted)["flarenb"]["job_id"]
    finally:
        first.shutdown()

    second = Kernel(cwd=str(workdir))  # another notebook: no %flare poc start, no %flare connect
    try:
        assert second.run("%load_ext flarenb")["status"] == "ok"
        listed = second.run("%flare list")
        assert listed["status"] == "ok", listed["error"]
        assert job_id in Kernel.text(listed)
        again = second.run(cell, cell_id="submit-cell")
        assert again["status"] == "ok", again["error"]
        assert Kernel.metadata(again)["flarenb"]["job_id"] == job_id
        assert f"reattached to job {job_id} (" in Kernel.text(again)
        # it recognised the local POC flarenb manages: the fast local log path is used
        local = second.run("import flarenb; print(flarenb.current().poc is not None, flarenb.current().kit.source)")
        assert Kernel.text(local).split() == ["True", "active"]
        waited = second.run(f"%flare wait {job_id} --timeout 240")
        assert waited["status"] == "ok", waited["error"]
    finally:
        second.shutdown()
    assert [j["job_id"] for j in cli_jobs(flarenb_poc, name)] == [job_id]
