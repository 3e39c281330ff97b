"""Idempotent submission: tokens, staging, and reruns against a real local FLARE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLIENT

from flarenb import submission as sub
from flarenb.errors import FlareError


# -- unit: tokens and staging ----------------------------------------------------------------------------
def test_token_is_deterministic_valid_and_scoped():
    from nvflare.apis.utils.job_submit_token import validate_submit_token

    t = sub.derive_token("cell:nb.ipynb:abc", "sha256:00ff")
    assert t == sub.derive_token("cell:nb.ipynb:abc", "sha256:00ff")
    assert validate_submit_token(t) == t and t.startswith("flarenb-") and len(t) == 41
    assert t != sub.derive_token("cell:nb.ipynb:abd", "sha256:00ff")  # another cell
    assert t != sub.derive_token("cell:nb.ipynb:abc", "sha256:00fe")  # other content
    assert t != sub.derive_token("cell:nb.ipynb:abc", "sha256:00ff", nonce="x")  # --new


def test_staging_drops_volatile_files_so_the_hash_is_stable(job_dir, tmp_path):
    clean = sub.content_hash(sub.stage(job_dir, tmp_path / "a" / "j", stream_logs=True, sites=["site-1"]))
    (job_dir / "app" / "custom" / "__pycache__").mkdir()
    (job_dir / "app" / "custom" / "__pycache__" / "client.cpython-311.pyc").write_bytes(b"\0junk")
    (job_dir / ".ipynb_checkpoints").mkdir()
    (job_dir / "app" / "custom" / "old.pyc").write_bytes(b"x")
    dirty = sub.content_hash(sub.stage(job_dir, tmp_path / "b" / "other-name", stream_logs=True, sites=["site-1"]))
    assert clean == dirty
    from nvflare.apis.utils.job_submit_token import canonical_job_content_hash

    assert canonical_job_content_hash(str(job_dir)) != clean  # the raw folder would have hashed differently
    changed = job_dir / "app" / "custom" / "client.py"
    changed.write_text(changed.read_text() + "\n# changed\n")
    assert sub.content_hash(sub.stage(job_dir, tmp_path / "c" / "j", stream_logs=True, sites=["site-1"])) != clean


def test_live_log_streaming_is_added_once_and_deterministically(job_dir, tmp_path):
    a = sub.stage(job_dir, tmp_path / "a" / "j", stream_logs=True, sites=["site-2", "site-1"])
    client = json.loads((a / "app" / "config" / "config_fed_client.json").read_text())
    server = json.loads((a / "app" / "config" / "config_fed_server.json").read_text())
    assert [c["id"] for c in client["components"]].count("flarenb_log_streamer") == 1
    assert [c["id"] for c in server["components"]].count("flarenb_log_receiver") == 1
    assert json.loads((a / "meta.json").read_text())["deploy_map"] == {"app": ["server", "site-1", "site-2"]}
    from flarenb import jobconfig

    before = sub.content_hash(a)
    jobconfig.enable_live_logs(a, ["site-1", "site-2"])  # idempotent
    assert sub.content_hash(a) == before
    plain = sub.stage(job_dir, tmp_path / "b" / "j", stream_logs=False, sites=["site-1"])
    assert "flarenb_log_streamer" not in (plain / "app" / "config" / "config_fed_client.json").read_text()


class _NoUpload:
    """A connection that fails the test if anything reaches the server."""

    poc = None
    study = "default"

    def call(self, fn, retry=True):
        raise AssertionError("nothing may be sent to the server")


def test_bad_input_is_refused_before_anything_is_uploaded(tmp_path, job_dir):
    cases = [
        (
            dict(target=str(job_dir), submit_token="has space"),
            "Invalid submit token 'has space': it must be 1-128 characters of letters, digits, '.', '_', ':' or '-'. "
            "Example: --submit-token my-experiment-1",
        ),
        (
            dict(target=str(tmp_path / "missing")),
            f"Job folder {tmp_path / 'missing'} does not exist. Pass a job folder (with meta.json) or the name of a "
            "variable holding a Recipe or FedJob",
        ),
        (
            dict(target=str(tmp_path)),
            f"{tmp_path} is not an NVFlare job folder (no meta.json). Export your job first "
            "(recipe.export(job_dir=...)) or pass the Recipe/FedJob variable itself",
        ),
        (dict(target=42), "Cannot submit a int. Pass a job folder, an NVFlare Recipe or a FedJob"),
    ]
    for kwargs, message in cases:
        with pytest.raises(FlareError) as e:
            sub.submit(flare=_NoUpload(), **kwargs)
        assert str(e.value) == message


def test_cell_scope_prefers_the_cell_id_then_the_source(monkeypatch):
    class FakeKernel:
        def __init__(self, parent):
            self.parent = parent

        def get_parent(self, channel="shell"):
            return self.parent

    class FakeShell:
        def __init__(self, parent):
            self.user_ns = {}
            self.kernel = FakeKernel(parent)

    import IPython

    monkeypatch.setenv("JPY_SESSION_NAME", "/work/nb.ipynb")
    shell = FakeShell({"metadata": {"cellId": "c-1"}, "content": {"code": "%flare submit job"}})
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert sub.cell_scope() == "cell:/work/nb.ipynb:c-1"
    shell.kernel.parent = {"metadata": {}, "content": {"code": "  %flare submit job\n"}}
    assert sub.cell_scope() == "source:/work/nb.ipynb:%flare submit job"


# -- real POC ---------------------------------------------------------------------------------------------
def cli_jobs(flare, name: str) -> list[dict]:
    """Jobs named ``name``, counted by NVFlare's own CLI (``nvflare job list``), not by flarenb."""
    out = subprocess.run(
        [
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
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return [j for j in data["data"] if j["job_name"] == name]


SUBMIT_CELL = """
import sys
sys.path.insert(0, {tests!r})
from conftest import make_recipe
recipe = make_recipe({name!r}, rounds={rounds})
job = %flare submit recipe
job
"""


@pytest.mark.poc
def test_same_cell_five_times_across_a_restart_and_after_the_end_leaves_one_job(flarenb_poc, tmp_path):
    from kernel import Kernel

    workdir = tmp_path / "nb"
    workdir.mkdir()
    import shutil

    shutil.copy(CLIENT, workdir / "client.py")
    name = "rerun-five"
    cell = SUBMIT_CELL.format(tests=str(Path(__file__).parent), name=name, rounds=1)
    k = Kernel(cwd=str(workdir))
    try:
        assert k.run("%load_ext flarenb\n%flare poc start", cell_id="setup")["status"] == "ok"
        first = k.run(cell, cell_id="submit-cell")
        assert first["status"] == "ok", first["error"]
        record = Kernel.metadata(first)["flarenb"]
        job_id = record["job_id"]
        assert f"submitted job {job_id}" in Kernel.text(first)
        assert record["submit_token"].startswith("flarenb-") and record["reattached"] is False

        again = k.run(cell, cell_id="submit-cell")
        assert Kernel.metadata(again)["flarenb"]["job_id"] == job_id
        assert f"reattached to job {job_id} (" in Kernel.text(again)

        k.restart()  # "Restart & Run All"
        assert k.run("%load_ext flarenb\n%flare poc start", cell_id="setup")["status"] == "ok"
        after_restart = k.run(cell, cell_id="submit-cell")
        assert Kernel.metadata(after_restart)["flarenb"]["job_id"] == job_id

        waited = k.run(f"%flare wait {job_id} --timeout 240")
        assert waited["status"] == "ok", waited["error"]
        for _ in range(2):  # after the job finished
            late = k.run(cell, cell_id="submit-cell")
            assert Kernel.metadata(late)["flarenb"]["job_id"] == job_id
            assert "FINISHED:COMPLETED" in Kernel.text(late)

        assert [j["job_id"] for j in cli_jobs(flarenb_poc, name)] == [job_id]

        # changed content -> a second job; --new -> a third
        changed = k.run(cell.replace("rounds=1", "rounds=2"), cell_id="submit-cell")
        second = Kernel.metadata(changed)["flarenb"]["job_id"]
        fresh = k.run(cell.replace("%flare submit recipe", "%flare submit recipe --new"), cell_id="submit-cell")
        third = Kernel.metadata(fresh)["flarenb"]["job_id"]
        assert len({job_id, second, third}) == 3
        assert sorted(j["job_id"] for j in cli_jobs(flarenb_poc, name)) == sorted([job_id, second, third])
        for j in (second, third):
            k.run(f"%flare abort {j}")
    finally:
        k.shutdown()


@pytest.mark.poc
def test_nbclient_without_cell_ids_falls_back_to_the_cell_source(flarenb_poc, tmp_path, job_dir):
    from kernel import Kernel

    k = Kernel(cwd=str(tmp_path))
    try:
        k.run("%load_ext flarenb\n%flare poc start")
        cell = f"%flare submit {job_dir} --name fallback-test"
        a = Kernel.metadata(k.run(cell))["flarenb"]["job_id"]
        b = Kernel.metadata(k.run(cell))["flarenb"]["job_id"]
        assert a == b
        k.run(f"%flare abort {a}")
    finally:
        k.shutdown()


class _DropConnection:
    """Wraps the real connection: the first submit reaches the server, then the connection 'drops'."""

    def __init__(self, real, drop_after_upload: bool):
        self.real = real
        self.poc = real.poc
        self.study = real.study
        self.drop_after_upload = drop_after_upload
        self.submits = 0

    def call(self, fn, retry=True):
        return self.real.call(lambda s: fn(_Proxy(s, self)), retry=retry)

    def close(self):
        self.real.close()


class _Proxy:
    def __init__(self, session, owner):
        self._s = session
        self._o = owner

    def __getattr__(self, name):
        return getattr(self._s, name)

    def submit_job(self, path, submit_token=None):
        from nvflare.fuel.flare_api.api_spec import NoConnection

        self._o.submits += 1
        if self._o.submits == 1:
            if self._o.drop_after_upload:
                self._s.submit_job(path, submit_token=submit_token)
            raise NoConnection("connection dropped (injected)")
        return self._s.submit_job(path, submit_token=submit_token)


@pytest.mark.poc
@pytest.mark.parametrize("after_upload", [True, False], ids=["after-upload", "before-upload"])
def test_a_connection_dropped_mid_submit_still_leaves_one_job(flarenb_poc, tmp_path, after_upload):
    from conftest import export_job

    name = f"dropped-{'after' if after_upload else 'before'}"
    job = export_job(tmp_path, name=name, rounds=1)
    conn = _DropConnection(flarenb_poc, drop_after_upload=after_upload)
    j = sub.submit(str(job), name=name, flare=conn)
    assert [x["job_id"] for x in cli_jobs(flarenb_poc, name)] == [j.id]
    assert conn.submits == (1 if after_upload else 2)
    flarenb_poc.call(lambda s: s.abort_job(j.id))


@pytest.mark.poc
def test_token_conflict_and_deleted_job_messages(flarenb_poc, tmp_path):
    from conftest import export_job

    job = export_job(tmp_path / "a", name="conflict", rounds=1)
    first = sub.submit(str(job), submit_token="conflict-token-1", flare=flarenb_poc)
    changed = export_job(tmp_path / "b", name="conflict", rounds=2)
    with pytest.raises(FlareError) as e:
        sub.submit(str(changed), submit_token="conflict-token-1", flare=flarenb_poc)
    assert str(e.value) == (
        f"Submit token conflict-token-1 already submitted job {first.id} with different content. "
        "Drop --submit-token to let flarenb derive one, or pass a new token to submit anew"
    )
    from flarenb import jobs

    flarenb_poc.call(lambda s: s.abort_job(first.id))
    _wait_terminal(flarenb_poc, first.id)

    def delete():  # the server may still be tearing the aborted job down
        try:
            return jobs.delete(first.id, flare=flarenb_poc)
        except FlareError as e:
            assert str(e) == (
                f"Job {first.id} has not ended yet. Abort it with %flare abort {first.id}, wait until it has ended"
                f" (%flare wait {first.id}), then try again"
            )
            return None

    assert _until(delete) == f"deleted job {first.id}"
    with pytest.raises(FlareError) as e:
        sub.submit(str(job), submit_token="conflict-token-1", flare=flarenb_poc)
    assert str(e.value) == (
        f"Job {first.id}, submitted earlier with token conflict-token-1, was deleted. "
        "Resubmit with --new (or pass another --submit-token)"
    )


def _until(fn, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline
        time.sleep(0.5)


def _wait_terminal(flare, job_id, timeout=120):
    import time

    from flarenb.jobs import is_terminal

    deadline = time.monotonic() + timeout
    while not is_terminal(flare.call(lambda s: s.get_job_meta(job_id)).get("status")):
        assert time.monotonic() < deadline
        time.sleep(0.5)
