"""Jobs over NVFlare's per-file limit for submit tokens: the marker path against a fake server (no POC)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from flarenb import submission as sub
from flarenb.errors import FlareError

LIMIT = 1 << 20


class FakeServer:
    """What the FLARE server does on submit, list and meta, with NVFlare's token hash limit ``limit``."""

    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self.jobs: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}
        self.uploads: list[str | None] = []
        self.fail_with: Exception | None = None

    def submit_job(self, path, submit_token=None):
        self.uploads.append(submit_token)
        if self.fail_with is not None:
            raise self.fail_with
        from nvflare.fuel.flare_api.api_spec import InternalError

        files = [p for p in Path(path).rglob("*") if p.is_file()]
        if submit_token and any(p.stat().st_size > self.limit for p in files):
            raise InternalError("server internal error: exception <class 'ValueError'> occurred")
        if submit_token in self.tokens:
            return self.tokens[submit_token]
        meta = json.loads((Path(path) / "meta.json").read_text())
        job_id = str(uuid.uuid4())
        meta.update(job_id=job_id, status="SUBMITTED", submitter_name="admin", submit_time_iso=f"t{len(self.jobs)}")
        self.jobs[job_id] = meta
        if submit_token:
            self.tokens[submit_token] = job_id
        return job_id

    def list_jobs(self, detailed=False, name_prefix=None, submit_token=None):
        if submit_token is not None:
            ids = [self.tokens[submit_token]] if submit_token in self.tokens else []
        else:
            ids = [i for i, m in self.jobs.items() if not name_prefix or m["name"].startswith(name_prefix)]
        rows = [dict(self.jobs[i]) for i in ids]
        if detailed:
            return rows
        return [{"job_id": r["job_id"], "job_name": r["name"], "status": r["status"]} for r in rows]

    def get_job_meta(self, job_id):
        return dict(self.jobs[job_id])


class FakeFlare:
    poc = None
    study = "default"
    kit = SimpleNamespace(username="admin", path="/nowhere")

    def __init__(self, server: FakeServer):
        self.server = server

    def call(self, fn, retry=True):
        return fn(self.server)

    def close(self):
        pass


@pytest.fixture
def big_job(tmp_path, monkeypatch):
    import nvflare.apis.utils.job_submit_token as T

    monkeypatch.setattr(T, "_MAX_HASH_ZIP_MEMBER_SIZE", LIMIT)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sub, "_NOTED", set())
    monkeypatch.setattr(sub, "_UNHASHABLE", set())
    job = tmp_path / "job"
    (job / "app" / "custom").mkdir(parents=True)
    (job / "app" / "config").mkdir()
    (job / "meta.json").write_text(json.dumps({"name": "big", "deploy_map": {"app": ["@ALL"]}, "min_clients": 1}))
    (job / "app" / "config" / "config_fed_client.json").write_text('{"components": []}')
    (job / "app" / "config" / "config_fed_server.json").write_text('{"components": []}')
    (job / "app" / "custom" / "model.pt").write_bytes(os.urandom(LIMIT + 1))
    return job


def test_a_job_over_the_limit_is_submitted_once_and_found_again_by_its_marker(big_job, capsys):
    server = FakeServer()
    f = FakeFlare(server)
    first = sub.submit(str(big_job), name="cell", flare=f)
    note = capsys.readouterr().out
    assert note == (
        "flarenb: app/custom/model.pt (1.0 MiB) is over NVFlare's 1.0 MiB per-file limit for server-side submit "
        "tokens, so reruns of this job are matched by a marker in its meta.json instead (see the README: 'Jobs with "
        "big files')\n"
    )
    assert server.uploads == [None] and not first.reattached
    marker = server.jobs[first.id]["flarenb_submit"]
    assert marker["submit_token"] == first.submit_token and marker["content_hash"].startswith("sha256:")
    for _ in range(2):
        again = sub.submit(str(big_job), name="cell", flare=f)
        assert (again.id, again.reattached, again.submit_token) == (first.id, True, first.submit_token)
    assert server.uploads == [None] and capsys.readouterr().out == ""  # said once
    assert "flarenb_submit" not in (big_job / "meta.json").read_text()  # the user's meta.json is untouched

    model = big_job / "app" / "custom" / "model.pt"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    changed = sub.submit(str(big_job), name="cell", flare=f)
    assert changed.id != first.id and len(server.jobs) == 2
    fresh = sub.submit(str(big_job), name="cell", new=True, flare=f)
    assert fresh.id not in (first.id, changed.id)


def test_an_explicit_token_keeps_its_meaning_on_the_marker_path(big_job):
    server = FakeServer()
    f = FakeFlare(server)
    a = sub.submit(str(big_job), submit_token="exp-1", flare=f)
    assert sub.submit(str(big_job), submit_token="exp-1", flare=f).id == a.id
    (big_job / "app" / "custom" / "extra.py").write_text("x = 1\n")
    with pytest.raises(FlareError) as e:
        sub.submit(str(big_job), submit_token="exp-1", flare=f)
    assert str(e.value) == (
        f"Submit token exp-1 already submitted job {a.id} with different content. "
        "Drop --submit-token to let flarenb derive one, or pass a new token to submit anew"
    )
    assert len(server.jobs) == 1


def test_a_job_that_fits_keeps_the_server_side_token(big_job):
    (big_job / "app" / "custom" / "model.pt").write_bytes(b"small")
    server = FakeServer()
    job = sub.submit(str(big_job), name="cell", flare=FakeFlare(server))
    assert server.uploads == [job.submit_token] and "flarenb_submit" not in server.jobs[job.id]


def test_a_server_with_a_lower_limit_falls_back_too(big_job, capsys, monkeypatch):
    import nvflare.apis.utils.job_submit_token as T

    monkeypatch.setattr(T, "_MAX_HASH_ZIP_MEMBER_SIZE", 10 * LIMIT)  # this NVFlare thinks the job fits
    server = FakeServer(limit=LIMIT)
    job = sub.submit(str(big_job), name="cell", flare=FakeFlare(server))
    assert server.uploads == [job.submit_token, None] and list(server.jobs) == [job.id]
    again = sub.submit(str(big_job), name="cell", flare=FakeFlare(server))
    assert (again.id, again.reattached) == (job.id, True) and len(server.uploads) == 2  # no second upload
    assert capsys.readouterr().out.startswith(
        "flarenb: the FLARE server could not hash this job for a server-side submit token, so reruns of this job "
        "are matched by a marker"
    )


def test_an_opaque_internal_error_is_one_line_saying_what_to_do(big_job):
    from nvflare.fuel.flare_api.api_spec import InternalError

    (big_job / "app" / "custom" / "model.pt").write_bytes(b"small")
    server = FakeServer()
    server.fail_with = InternalError("server internal error: exception <class 'OSError'> occurred")
    with pytest.raises(FlareError) as e:
        sub.submit(str(big_job), name="cell", flare=FakeFlare(server))
    assert str(e.value) == (
        "The FLARE server failed while accepting the job (server internal error: exception <class 'OSError'> "
        "occurred). See the FLARE server's log (ask its administrator) for the cause, fix it, then run the cell again"
    )


@pytest.mark.parametrize("size", [5, LIMIT + 1], ids=["token", "marker"])
def test_a_rejected_job_is_one_line_on_both_paths(big_job, size):
    from nvflare.fuel.flare_api.api_spec import InvalidJobDefinition

    (big_job / "app" / "custom" / "model.pt").write_bytes(b"x" * size)
    server = FakeServer()
    server.fail_with = InvalidJobDefinition("invalid job definition: min 99 clients required for job big, found 2.")
    with pytest.raises(FlareError) as e:
        sub.submit(str(big_job), name="cell", flare=FakeFlare(server))
    assert str(e.value) == (
        "The server rejected the job: invalid job definition: min 99 clients required for job big, found 2. "
        "Fix the job folder and submit again"
    )


def test_a_connection_dropped_after_the_upload_is_resolved_by_the_marker(big_job):
    from nvflare.fuel.flare_api.api_spec import NoConnection

    server = FakeServer()
    real_submit = server.submit_job
    calls = []

    def drop_after_upload(path, submit_token=None):
        calls.append(1)
        job_id = real_submit(path, submit_token=submit_token)
        if len(calls) == 1:
            raise NoConnection("connection dropped (injected)")
        return job_id

    server.submit_job = drop_after_upload
    job = sub.submit(str(big_job), name="cell", flare=FakeFlare(server))
    assert len(calls) == 1 and list(server.jobs) == [job.id] and not job.reattached


def test_what_is_kept_is_what_was_uploaded_without_the_big_file(big_job, tmp_path):
    job = sub.submit(str(big_job), name="cell", flare=FakeFlare(FakeServer()))
    kept = [p for p in (tmp_path / "cache" / "flarenb" / "jobs").iterdir()]
    assert len(kept) == 1
    meta = json.loads((kept[0] / "meta.json").read_text())
    assert meta["flarenb_submit"]["submit_token"] == job.submit_token
    assert not (kept[0] / "app" / "custom" / "model.pt").exists()
    assert list((tmp_path / "cache" / "flarenb" / "work").iterdir()) == []


# -- the managed POC's temp folder ---------------------------------------------------------------------------
def test_the_pocs_processes_get_a_temp_folder_in_its_workspace_emptied_on_stop(tmp_path, monkeypatch):
    import subprocess

    from flarenb import poc

    ws = tmp_path / "poc"
    (ws / poc.PROJECT / "prod_00" / "server").mkdir(parents=True)
    (ws / "project.yml").write_text("participants:\n- {name: server, type: server, fed_learn_port: 1}\n")
    seen = {}

    def fake_run(cmd, env=None, **kw):
        seen["env"] = env
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    p = poc.Poc(ws)
    poc._nvflare(["poc", "start"], p, timeout=1, tmp=True)
    assert seen["env"]["TMPDIR"] == str(ws / "flarenb-tmp") and p.tmp_dir.is_dir()
    (p.tmp_dir / "upload.zip").write_bytes(b"x" * 100)
    (p.tmp_dir / "0f2c" / "site-1").mkdir(parents=True)
    monkeypatch.setattr(poc, "_poc_processes", lambda _p: [])
    monkeypatch.setattr(poc, "_port_free", lambda _port: True)
    poc.stop(workspace=ws, progress=False)
    assert not p.tmp_dir.exists() and (ws / "project.yml").is_file()
