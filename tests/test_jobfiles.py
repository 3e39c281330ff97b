"""Job files, staging and the work area without a server: links, hashes, the hash cache, hard links, bounds."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from flarenb import jobfiles, workarea
from flarenb import submission as sub
from flarenb.errors import FlareError


@pytest.fixture
def guard(monkeypatch, tmp_path):
    """Fail before anything is deleted or moved outside this test's tmp folder."""
    root = str(tmp_path)

    def check(path):
        p = os.path.abspath(os.fspath(path))
        if not (p == root or p.startswith(root + os.sep)):
            raise AssertionError(f"refusing to touch {p} outside {root}")

    def wrap(fn, n=1):
        def guarded(*args, **kw):
            for a in args[:n] if kw.get("dir_fd") is None else ():  # relative to a folder rmtree checked
                check(a)
            return fn(*args, **kw)

        return guarded

    monkeypatch.setattr(shutil, "rmtree", wrap(shutil.rmtree))
    monkeypatch.setattr(shutil, "move", wrap(shutil.move, 2))
    monkeypatch.setattr(os, "remove", wrap(os.remove))
    monkeypatch.setattr(os, "unlink", wrap(os.unlink))
    monkeypatch.setattr(os, "rename", wrap(os.rename, 2))
    monkeypatch.setattr(os, "replace", wrap(os.replace, 2))
    monkeypatch.setattr(os, "rmdir", wrap(os.rmdir))
    original_unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **kw: (check(self), original_unlink(self, *a, **kw))[1])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _tree(root: Path) -> Path:
    (root / "app" / "config").mkdir(parents=True)
    (root / "app" / "custom" / "ünï").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"name": "t", "deploy_map": {"app": ["@ALL"]}}))
    (root / "app" / "config" / "config_fed_client.json").write_text('{"components": []}')
    (root / "app" / "custom" / "empty.py").write_bytes(b"")
    (root / "app" / "custom" / "ünï" / "model.bin").write_bytes(os.urandom(3 * (1 << 20) + 7))
    return root


def test_content_hash_is_nvflares_canonical_hash(tmp_path):
    from nvflare.apis.utils.job_submit_token import canonical_job_content_hash

    job = _tree(tmp_path / "job")
    assert sub.content_hash(job) == canonical_job_content_hash(str(job))
    (job / "app" / "custom" / "ünï" / "model.bin").write_bytes(b"other")
    assert sub.content_hash(job) == canonical_job_content_hash(str(job))


def test_the_limit_is_nvflares_own(monkeypatch, tmp_path):
    import nvflare.apis.utils.job_submit_token as T

    assert jobfiles.token_size_limit() == T._MAX_HASH_ZIP_MEMBER_SIZE
    files = jobfiles.scan(_tree(tmp_path / "job"))
    assert jobfiles.over_limit(files) == []
    monkeypatch.setattr(T, "_MAX_HASH_ZIP_MEMBER_SIZE", 1 << 20)
    assert [f.rel for f in jobfiles.over_limit(files)] == ["app/custom/ünï/model.bin"]


# -- links (issue 9, item 4) --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["folder", "file", "relative"])
def test_a_link_out_of_the_job_is_refused_naming_it(guard, kind):
    kit = guard / "kit" / "startup"
    kit.mkdir(parents=True)
    (kit / "client.key").write_text("SECRET")
    job = _tree(guard / "job")
    link = job / "app" / "custom" / "startup"
    if kind == "folder":
        link.symlink_to(kit)
    elif kind == "file":
        link.symlink_to(kit / "client.key")
    else:
        link.symlink_to(os.path.relpath(kit, link.parent))
    with pytest.raises(FlareError) as e:
        sub.stage(job, guard / "stage" / "job", stream_logs=True, sites=None)
    target = kit if kind != "file" else kit / "client.key"
    assert str(e.value) == (
        f"app/custom/startup in the job folder is a link to {target}, outside the job folder: flarenb does not "
        "ship it. Copy what the job needs into the job folder, or remove the link"
    )
    assert "\n" not in str(e.value)
    assert not (guard / "stage" / "job").exists() or "SECRET" not in _all_text(guard / "stage")
    assert not list((guard / "cache").rglob("client.key"))


def _all_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_broken_links_and_loops_are_refused(guard):
    job = _tree(guard / "job")
    (job / "app" / "custom" / "gone").symlink_to(job / "nothing-here")
    with pytest.raises(FlareError, match=r"^app/custom/gone in the job folder is a broken link\. Fix or remove"):
        jobfiles.scan(job)
    (job / "app" / "custom" / "gone").unlink()
    (job / "app" / "custom" / "loop").symlink_to(job / "app")
    with pytest.raises(FlareError, match=r"^app/custom/loop in the job folder is a link to .*/job/app, which contains"):
        jobfiles.scan(job)


def test_links_inside_the_job_ship_what_they_point_to_and_no_link(guard):
    job = _tree(guard / "job")
    (job / "app" / "custom" / "alias.bin").symlink_to("ünï/model.bin")
    (job / "app" / "shared").symlink_to(job / "app" / "custom" / "ünï")
    staged = sub.stage(job, guard / "stage" / "job", stream_logs=False, sites=None)
    rels = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    assert rels == [
        "app/config/config_fed_client.json",
        "app/custom/alias.bin",
        "app/custom/empty.py",
        "app/custom/ünï/model.bin",
        "app/shared/model.bin",
        "meta.json",
    ]
    assert not [p for p in staged.rglob("*") if p.is_symlink()]
    assert (staged / "app" / "shared" / "model.bin").read_bytes() == (job / "app/custom/ünï/model.bin").read_bytes()


def test_a_special_file_is_refused(guard):
    job = _tree(guard / "job")
    os.mkfifo(job / "app" / "custom" / "pipe")
    with pytest.raises(FlareError, match=r"^app/custom/pipe in the job folder is not a regular file"):
        jobfiles.scan(job)


# -- staging ------------------------------------------------------------------------------------------------
def test_staging_hard_links_big_files_and_never_edits_the_users_files(guard, job_dir):
    model = job_dir / "app" / "custom" / "model.pt"
    model.write_bytes(os.urandom(2 << 20))
    before = {p: p.read_bytes() for p in job_dir.rglob("*") if p.is_file()}
    staged = sub.stage_job(job_dir, guard / "stage" / "job", stream_logs=True, sites=["site-1", "site-2"])
    assert not (staged.root / "app" / "custom" / "model.pt").exists()  # linked in only for an upload
    folder = staged.folder()
    assert (folder / "app" / "custom" / "model.pt").stat().st_ino == model.stat().st_ino  # no copy
    assert (folder / "meta.json").stat().st_ino != (job_dir / "meta.json").stat().st_ino  # edited: a copy
    assert "flarenb_log_streamer" in (folder / "app" / "config" / "config_fed_client.json").read_text()
    assert {p: p.read_bytes() for p in job_dir.rglob("*") if p.is_file()} == before
    from nvflare.apis.utils.job_submit_token import canonical_job_content_hash

    assert staged.content_hash() == canonical_job_content_hash(str(folder))


def test_hash_cache_skips_rereading_and_notices_any_change(guard, monkeypatch):
    job = _tree(guard / "job")
    reads = []
    real = jobfiles.content_hash
    monkeypatch.setattr(jobfiles, "content_hash", lambda files: reads.append(1) or real(files))

    def staged_hash(n):
        return sub.stage_job(job, guard / f"stage{n}" / "job", stream_logs=True, sites=["site-1"]).content_hash()

    first = staged_hash(1)
    assert staged_hash(2) == first and len(reads) == 1  # a rerun reads no file
    model = job / "app" / "custom" / "ünï" / "model.bin"
    data = bytearray(model.read_bytes())
    data[1000] ^= 1
    model.write_bytes(bytes(data))  # same size, one byte changed
    changed = staged_hash(3)
    assert changed != first and len(reads) == 2
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))  # touched only
    assert staged_hash(4) == changed and len(reads) == 3
    (job / "meta.json").write_text((job / "meta.json").read_text().replace('"t"', '"u"'))
    assert staged_hash(5) not in (first, changed)


def test_work_folders_are_removed_even_when_a_submit_was_killed(guard):
    with workarea.work_dir() as work:
        (work / "big").write_bytes(b"x" * 1000)
        assert work.is_dir()
    assert not work.exists()
    stale = workarea.root() / "work" / "12345-deadbeef"  # a kernel killed mid-submit: lock file, no holder
    stale.mkdir()
    (stale / ".lock").touch()
    with workarea.work_dir():
        assert not stale.exists()
    assert list((workarea.root() / "work").iterdir()) == []


def test_kept_jobs_are_a_manifest_and_bounded(guard, job_dir, monkeypatch):
    (job_dir / "app" / "custom" / "model.pt").write_bytes(os.urandom(3 << 20))
    staged = sub.stage_job(job_dir, guard / "stage" / "job", stream_logs=True, sites=["site-1"])
    kept = workarea.remember(staged, "job", staged.content_hash(), submit_token="t", job_id="j")
    manifest = json.loads((kept / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} >= {"meta.json", "app/custom/model.pt", "app/custom/client.py"}
    assert not (kept / "app" / "custom" / "model.pt").exists()  # listed, not copied
    assert (kept / "meta.json").is_file()
    for i in range(5):
        (workarea.jobs_dir() / f"old-{i}").mkdir()
        (workarea.jobs_dir() / f"old-{i}" / "f").write_bytes(b"x" * 4000)
        os.utime(workarea.jobs_dir() / f"old-{i}", (1, 1 + i))
    assert workarea.bound_jobs(max_bytes=10**9) == 5  # older than 30 days
    assert workarea.bound_jobs(max_bytes=0) == 1
    assert list(workarea.jobs_dir().iterdir()) == []
    kept = workarea.remember(staged, "job", staged.content_hash())
    cleaned = workarea.clean()
    assert cleaned.removed >= 2 and not kept.exists() and str(cleaned).startswith("removed ")


def test_cache_clean_is_a_magic_and_a_python_call(guard, ip):
    import flarenb

    assert flarenb.clean_cache is workarea.clean
    (workarea.jobs_dir() / "x").mkdir(parents=True)
    out = ip.run_line_magic("flare", "cache clean")
    assert str(out) == f"removed 1 cached items (0 B) from {guard / 'cache' / 'flarenb'}"
    assert list(workarea.jobs_dir().iterdir()) == []
