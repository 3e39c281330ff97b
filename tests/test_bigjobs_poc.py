"""Jobs shipping a model over NVFlare's per-file limit for submit tokens, on the real local FLARE (issue 18).

Checked as a user would: cells run in real kernels, jobs counted with NVFlare's own ``nvflare job list``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import export_job

from flarenb import submission as sub
from flarenb import workarea

pytestmark = pytest.mark.poc


@pytest.fixture
def scratch(tmp_path):
    """``tmp_path``, emptied afterwards: the models (and a killed kernel's upload zip) are hundreds of MB."""
    yield tmp_path
    for child in tmp_path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink()


CELL = "job = %flare submit {path} --no-follow\njob"


def cli_jobs(flare, name: str) -> list[dict]:
    """Jobs named ``name``, counted by NVFlare's own CLI (``nvflare job list``); a failed call is retried."""
    cmd = [
        sys.executable,
        "-m",
        "nvflare.cli",
        "--format",
        "json",
        "job",
        "list",
        "-n",
        name,
        "--startup-kit",
        flare.kit.path,
    ]
    for attempt in range(3):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
        if out.returncode == 0 or attempt == 2:
            break
        time.sleep(2)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return [j for j in data["data"] if j["job_name"] == name]


def _job_with_model(root: Path, name: str, size: int) -> Path:
    """A job shipping a ``size``-byte model, that the POC never schedules (it needs a site that never connects).

    NVFlare 2.9's POC cannot deploy a job this size to its clients (their connections drop; see the README), which
    would disturb every later test of the session: these tests are about submitting, so the job never deploys.
    """
    job = export_job(root / name, name=name, rounds=1)
    meta = json.loads((job / "meta.json").read_text())
    # a site that never connects is required: never scheduled (the POC cannot deploy a job this size)
    meta.update(
        deploy_map={"app": ["server", "site-1", "site-2", "offline-site"]},
        min_clients=3,
        mandatory_clients=["offline-site"],
    )
    (job / "meta.json").write_text(json.dumps(meta, indent=4))
    with open(job / "app" / "custom" / "model.pt", "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 8 << 20))
            f.write(block)
            left -= len(block)
    return job


def _abort(flare, job_id: str) -> None:
    from nvflare.fuel.flare_api.api_spec import JobNotRunning

    try:
        flare.call(lambda s: s.abort_job(job_id))
    except JobNotRunning:  # already ended (e.g. the scheduler gave up on it)
        pass


def _flip_one_byte(job: Path, at: int = 12345) -> None:
    with open(job / "app" / "custom" / "model.pt", "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))


def _record(result: dict) -> dict:
    from kernel import Kernel

    assert result["status"] == "ok", result["error"]
    return Kernel.metadata(result)["flarenb"]


def _setup(tmp_path: Path):
    from kernel import Kernel

    k = Kernel(cwd=str(tmp_path))
    assert k.run("%load_ext flarenb\n%flare poc start", cell_id="setup")["status"] == "ok"
    return k


def test_a_model_over_the_limit_is_one_job_across_reruns_kernels_and_a_kill(flarenb_poc, scratch, monkeypatch):
    tmp_path = scratch
    from kernel import Kernel

    kernel_tmp = tmp_path / "kernel-tmp"  # the kernels' system temp folder (NVFlare zips the upload there)
    kernel_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(kernel_tmp))
    jobs = {
        "model-12mib": _job_with_model(tmp_path, "model-12mib", 12 << 20),
        "model-200mb": _job_with_model(tmp_path, "model-200mb", 200_000_000),
    }
    cells = {name: CELL.format(path=path) for name, path in jobs.items()}
    ids = {}
    k = _setup(tmp_path)
    try:
        for name, cell in cells.items():
            results = [k.run(cell, cell_id=f"cell-{name}") for _ in range(3)]
            records = [_record(r) for r in results]
            assert [r["reattached"] for r in records] == [False, True, True]
            assert len({r["job_id"] for r in records}) == 1
            assert "app/custom/model.pt (" in Kernel.text(results[0])
            assert "per-file limit for server-side submit tokens" in Kernel.text(results[0])
            assert "marker" not in Kernel.text(results[1]) + Kernel.text(results[2])  # said once
            ids[name] = records[0]["job_id"]
    finally:
        k.shutdown()

    k = _setup(tmp_path)  # a new kernel
    try:
        for name, cell in cells.items():
            record = _record(k.run(cell, cell_id=f"cell-{name}"))
            assert (record["job_id"], record["reattached"]) == (ids[name], True)
        meta = k.run(f"%flare meta {ids['model-12mib']}")  # the server keeps the marker with the job
        assert meta["status"] == "ok" and "flarenb_submit" in Kernel.text(meta), meta

        # one byte of the big model changes, and the kernel is SIGKILLed inside that submit
        _flip_one_byte(jobs["model-200mb"])
        k.kc.session.metadata = {"cellId": "cell-model-200mb"}
        k.kc.execute(cells["model-200mb"])
        deadline = time.monotonic() + 180
        while not list(kernel_tmp.iterdir()):  # NVFlare is zipping or uploading the job
            assert time.monotonic() < deadline, "the submit never reached the upload"
            time.sleep(0.05)
        os.kill(k.km.provisioner.process.pid, signal.SIGKILL)
    finally:
        k.shutdown()

    k = _setup(tmp_path)
    try:
        after_kill = _record(k.run(cells["model-200mb"], cell_id="cell-model-200mb"))
        again = _record(k.run(cells["model-200mb"], cell_id="cell-model-200mb"))
        assert after_kill["job_id"] == again["job_id"] != ids["model-200mb"]  # changed content: a new job
        assert again["reattached"] is True
    finally:
        k.shutdown()
    assert [j["job_id"] for j in cli_jobs(flarenb_poc, "model-12mib")] == [ids["model-12mib"]]
    assert sorted(j["job_id"] for j in cli_jobs(flarenb_poc, "model-200mb")) == sorted(
        [ids["model-200mb"], after_kill["job_id"]]
    )
    assert list((workarea.root() / "work").iterdir()) == []  # the killed kernel's work folder was swept
    for job_id in (*ids.values(), after_kill["job_id"]):
        _abort(flarenb_poc, job_id)


def test_submits_and_reruns_of_a_50mb_job_leave_nothing_behind(flarenb_poc, scratch, monkeypatch):
    tmp_path = scratch
    poc = flarenb_poc.poc
    environ = Path(f"/proc/{poc.server_pid}/environ").read_bytes().split(b"\0")
    assert f"TMPDIR={poc.tmp_dir}".encode() in environ  # the server's uploads go to the POC's own temp folder

    system_tmp = Path(tempfile.gettempdir())
    before = {p.name for p in system_tmp.iterdir()}
    own_tmp = tmp_path / "systmp"
    own_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))  # where NVFlare zips this process's uploads
    job = _job_with_model(tmp_path, "disk-50mb", 50_000_000)
    ids = []
    for i in range(3):  # three contents, each submitted and rerun
        if i:
            _flip_one_byte(job, at=1000 * i)
        first = sub.submit(str(job), name="disk", flare=flarenb_poc)
        again = sub.submit(str(job), name="disk", flare=flarenb_poc)
        assert again.id == first.id and again.reattached
        ids.append(first.id)
        _abort(flarenb_poc, first.id)
    assert len(set(ids)) == 3
    assert list(own_tmp.iterdir()) == []

    new = [system_tmp / n for n in {p.name for p in system_tmp.iterdir()} - before]
    assert not [p for p in new if p.name in ids or (p.is_file() and p.stat().st_size >= 50_000_000)]
    cache = workarea.root()
    assert list((cache / "work").iterdir()) == []
    big = [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert big == []  # kept jobs are manifests, not copies of the model
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) < workarea.JOBS_MAX_BYTES
