"""Issue 9 (disk, processes, input, text): nothing deleted, signalled or printed that flarenb should not touch.

Every test that could delete runs under :func:`guard`: ``shutil.rmtree``, ``os.remove``/``unlink``/``rmdir``/
``rename``/``replace``, ``shutil.move`` and the ``Path`` methods fail *before acting* on a path outside the test's
own temporary folders, and every such attempt is recorded and fails the test even if the code swallowed the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from flarenb import downloads, jobs, poc, procs, validate
from flarenb._text import terminal_safe
from flarenb.errors import FlareError
from flarenb.logs import get_logs

JOB = "3b1d5e8c-0f6a-4a51-9c2e-7d0b8a6f4e21"
OTHER_JOB = "0e3c8f59-4d7b-4a36-8b1e-2f9a6c5d7e10"


# -- the guard ---------------------------------------------------------------------------------------------------


def _is_nvflare_temp(path: str) -> bool:
    """A transfer file of NVFlare's own download streaming: ``<system temp>/<uuid>`` (the real-POC test only)."""
    parent, name = os.path.split(path)
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return parent == os.path.realpath(tempfile.gettempdir())


class _Guard:
    def __init__(self) -> None:
        self.roots: list[str] = []
        self.violations: list[str] = []
        self.allow_nvflare_temp = False

    def check(self, op: str, path, dir_fd=None) -> None:
        if dir_fd is not None:  # shutil.rmtree's own recursion (relative names): its top was checked
            return
        raw = os.fspath(path)
        raw = raw.decode() if isinstance(raw, bytes) else raw
        full = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(raw))), os.path.basename(raw))
        if self.allow_nvflare_temp and _is_nvflare_temp(full):
            return
        if not any(full == r or full.startswith(r + os.sep) for r in self.roots) or full in self.roots:
            self.violations.append(f"{op} {full}")
            raise PermissionError(f"test guard: refusing to {op} {full} (outside the test folders)")


@contextlib.contextmanager
def _installed(monkeypatch, roots, allow_nvflare_temp: bool = False):
    g = _Guard()
    g.roots = [os.path.realpath(r) for r in roots]
    g.allow_nvflare_temp = allow_nvflare_temp
    o_rmtree, o_remove, o_unlink, o_rmdir = shutil.rmtree, os.remove, os.unlink, os.rmdir
    o_rename, o_replace, o_move = os.rename, os.replace, shutil.move

    def rmtree(path, *a, **kw):
        g.check("rmtree", path, kw.get("dir_fd"))
        return o_rmtree(path, *a, **kw)

    def one(op, orig):
        def f(path, *a, dir_fd=None, **kw):
            g.check(op, path, dir_fd)
            return orig(path, *a, dir_fd=dir_fd, **kw) if dir_fd is not None else orig(path, *a, **kw)

        return f

    def two(op, orig):
        def f(src, dst, *a, **kw):
            if kw.get("src_dir_fd") is None:
                g.check(op, src)
                g.check(op, dst)
            return orig(src, dst, *a, **kw)

        return f

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    monkeypatch.setattr(os, "remove", one("remove", o_remove))
    monkeypatch.setattr(os, "unlink", one("unlink", o_unlink))
    monkeypatch.setattr(os, "rmdir", one("rmdir", o_rmdir))
    monkeypatch.setattr(os, "rename", two("rename", o_rename))
    monkeypatch.setattr(os, "replace", two("replace", o_replace))
    monkeypatch.setattr(shutil, "move", two("move", o_move))
    for name in ("unlink", "rmdir"):
        orig = getattr(Path, name)
        monkeypatch.setattr(
            Path, name, lambda self, *a, _o=orig, _n=name, **kw: (g.check(_n, self), _o(self, *a, **kw))[1]
        )
    for name in ("rename", "replace"):
        orig = getattr(Path, name)
        monkeypatch.setattr(
            Path, name, lambda self, t, _o=orig, _n=name: (g.check(_n, self), g.check(_n, t), _o(self, t))[2]
        )
    yield g
    assert not g.violations, g.violations


@pytest.fixture
def guard(monkeypatch, tmp_path):
    """Only ``tmp_path`` (strictly inside it) may lose or move files."""
    with _installed(monkeypatch, [tmp_path]) as g:
        yield g


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None, links as their target), to compare before/after."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = os.readlink(p).encode() if p.is_symlink() else None if p.is_dir() else p.read_bytes()
    return out


# -- a fake connection ---------------------------------------------------------------------------------------------


class FakeSession:
    """``get_job_meta`` / ``download_job_result`` as NVFlare's Session: the result is moved into ``destination``."""

    def __init__(self, known=(JOB, OTHER_JOB)):
        self.known = set(known)
        self.calls: list[tuple] = []

    def get_job_meta(self, job_id):
        from nvflare.fuel.flare_api.api_spec import JobNotFound

        self.calls.append(("meta", job_id))
        if job_id not in self.known:
            raise JobNotFound(f"job {job_id} does not exist")
        return {"job_id": job_id, "status": "FINISHED:COMPLETED", "name": "j"}

    def download_job_result(self, job_id, destination):
        self.calls.append(("download", job_id, destination))
        final = Path(destination, job_id)
        (final / "workspace" / "models").mkdir(parents=True)
        (final / "workspace" / "models" / "server.npy").write_bytes(b"model " + job_id.encode())
        return str(final)


class FakeFlare:
    study = "default"

    def __init__(self, session=None):
        self.s = session or FakeSession()

    def call(self, fn, retry=True):
        return fn(self.s)


def populated(tmp_path: Path) -> Path:
    """An output folder with things a download must never remove, and siblings around it."""
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "keep.txt").write_text("mine")
    (out / "model.pt").write_text("mine")
    (out / JOB.upper()).mkdir()  # a folder named like the job but not a download
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "data.csv").write_text("mine")
    return out


# -- item 1: download ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ".", "..", "../victim", "VICTIM_ABS", "notes", JOB + "/..", " " + JOB])
def test_download_never_removes_outside_its_folder(guard, tmp_path, bad):
    out = populated(tmp_path)
    bad = str(tmp_path / "victim") if bad == "VICTIM_ABS" else bad
    before = tree(tmp_path)
    session = FakeSession()
    with pytest.raises(FlareError) as e:
        jobs.download(bad, output_dir=out, force=True, flare=FakeFlare(session))
    assert "\n" not in str(e.value) and str(e.value).startswith("Invalid job id")
    assert tree(tmp_path) == before
    assert session.calls == []  # refused before the server was asked


def test_download_checks_the_job_exists_before_touching_the_disk(guard, tmp_path):
    out = tmp_path / "new-out"
    missing = str(uuid.uuid4())
    with pytest.raises(FlareError, match=f"Job {missing} not found"):
        jobs.download(missing, output_dir=out, force=True, flare=FakeFlare())
    assert not out.exists()


def test_download_replaces_only_its_own_earlier_download(guard, tmp_path):
    out = populated(tmp_path)
    first = jobs.download(JOB, output_dir=out, flare=FakeFlare())
    assert first.path == str(out / JOB) and first.global_model == str(out / JOB / "workspace" / "models" / "server.npy")
    assert json.loads((out / JOB / downloads.MARKER).read_text())["job_id"] == JOB
    (out / JOB / "stale.txt").write_text("from the first download")
    with pytest.raises(FlareError, match=r"already exists\. Pass --force"):
        jobs.download(JOB, output_dir=out, flare=FakeFlare())
    again = jobs.download(JOB.upper(), output_dir=out, force=True, flare=FakeFlare())  # canonical id
    assert again.replaced and not (out / JOB / "stale.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([JOB, JOB.upper(), "notes", "model.pt"])  # no temp left
    # a folder at the target that no download wrote is never replaced, even with force
    (out / OTHER_JOB).mkdir()
    (out / OTHER_JOB / "precious.txt").write_text("mine")
    with pytest.raises(FlareError, match=r"is not a flarenb download of job .* left as it is"):
        jobs.download(OTHER_JOB, output_dir=out, force=True, flare=FakeFlare())
    assert (out / OTHER_JOB / "precious.txt").read_text() == "mine"
    # nor a link to somewhere else (even if that place holds a marker)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / downloads.MARKER).write_text(json.dumps({"job_id": JOB}))
    shutil.rmtree(out / JOB)
    (out / JOB).symlink_to(elsewhere)
    with pytest.raises(FlareError, match="not a flarenb download"):
        jobs.download(JOB, output_dir=out, force=True, flare=FakeFlare())
    assert (elsewhere / downloads.MARKER).exists()


def test_a_result_without_a_client_log_says_so(guard, tmp_path):
    class WithClients(FakeSession):
        def get_job_meta(self, job_id):
            meta = super().get_job_meta(job_id)
            return {**meta, "job_deploy_detail": ["server: OK", "site-1: OK", "site-2: OK"], "job_clients": [{}]}

        def download_job_result(self, job_id, destination):
            final = super().download_job_result(job_id, destination)
            (Path(final) / "workspace" / "site-1").mkdir(parents=True)
            (Path(final) / "workspace" / "site-1" / "log.txt").write_text("site-1 log\n")
            return final

    got = jobs.download(JOB, output_dir=tmp_path / "out", flare=FakeFlare(WithClients()))
    assert sorted(got.client_logs) == ["site-1"] and sorted(got.missing_logs) == ["site-2"]
    assert f"INCOMPLETE: no log of site-2 in the result; see %flare logs {JOB} --site site-2" in str(got)


def test_a_failed_download_keeps_the_earlier_one(guard, tmp_path):
    out = tmp_path / "out"
    jobs.download(JOB, output_dir=out, flare=FakeFlare())
    before = tree(tmp_path)

    class Broken(FakeSession):
        def download_job_result(self, job_id, destination):
            from nvflare.fuel.flare_api.api_spec import InternalError

            Path(destination, job_id).mkdir()  # half a download
            raise InternalError("connection lost")

    with pytest.raises(FlareError, match="could not do it: connection lost"):
        jobs.download(JOB, output_dir=out, force=True, flare=FakeFlare(Broken()))
    assert tree(tmp_path) == before


def test_download_into_a_file_or_unwritable_place_is_one_line(guard, tmp_path):
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(FlareError) as e:
        jobs.download(JOB, output_dir=tmp_path / "a-file", flare=FakeFlare())
    assert (
        str(e.value)
        == f"--output-dir {tmp_path / 'a-file'} is not a folder. Choose a folder (it is created if missing)"
    )
    assert (tmp_path / "a-file").read_text() == "mine"


# -- item 2: poc stop --clean ---------------------------------------------------------------------------------------


def test_poc_stop_clean_refuses_a_folder_that_is_not_a_poc_workspace(guard, tmp_path, ip):
    home = tmp_path / "project"
    (home / "example_project" / "prod_00").mkdir(parents=True)  # looks a bit like one: no project.yml, no kits
    (home / "thesis.tex").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(FlareError) as e:
        poc.stop(workspace=home, clean=True, progress=False)
    assert str(e.value) == (
        f"{home} is not a prepared POC workspace (no project.yml with its server and admin kits); nothing was stopped"
        " or deleted. Check --workspace; %flare poc stop --clean only deletes a folder made by %flare poc start"
    )
    (home / "project.yml").write_text("name: example_project\nparticipants: []\n")  # a project.yml is not enough
    with pytest.raises(FlareError):
        ip.run_line_magic("flare", f"poc stop --clean --workspace {home}")
    (home / "project.yml").unlink()
    assert tree(tmp_path) == before


def test_poc_start_never_prepares_over_a_folder_that_is_not_a_poc_workspace(guard, tmp_path, monkeypatch):
    """``nvflare poc prepare --force`` deletes the workspace first: flarenb must not run it on the user's folder."""

    def no_nvflare(args, p, timeout):
        raise AssertionError(f"nvflare {args} was run")

    monkeypatch.setattr(poc, "_nvflare", no_nvflare)
    project = tmp_path / "project"
    project.mkdir()
    (project / "thesis.tex").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(FlareError) as e:
        poc.start(workspace=project, progress=False, port=_unused_port())
    assert str(e.value) == (
        f"{project} is not empty and not a POC workspace: preparing a local FLARE there would delete what it holds."
        " Choose a new or empty folder with --workspace"
    )
    assert tree(tmp_path) == before


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- item 3: which processes POC shutdown may signal ----------------------------------------------------------------


def _prod(ws: Path) -> Path:
    return ws / poc.PROJECT / "prod_00"


def test_poc_process_signatures_match_whole_path_components(tmp_path):
    prod = str(_prod(tmp_path))
    py = sys.executable
    yes = [
        ["python3", "-u", "-m", "nvflare.private.fed.app.server.server_train", "-m", f"{prod}/server", "-s", "x"],
        [py, "-m", "nvflare.private.fed.app.client.worker_process", "-m", f"{prod}/site-1", "-n", JOB, "-c", "site-1"],
        ["bash", f"{prod}/site-2/startup/sub_start.sh"],
    ]
    no = [
        ["tail", "-f", f"{prod}/server/log.txt"],
        ["less", f"{prod}/server/startup/sub_start.sh"],
        ["python3", "-u", "-m", "nvflare.private.fed.app.server.server_train", "-m", f"{prod}_backup/server"],
        ["bash", f"{prod}_backup/site-2/startup/sub_start.sh"],
        ["bash", f"{prod}/site-2/startup/../../../prod_00_backup/site-2/startup/sub_start.sh"],
        ["python3", "-m", "nvflare.private.fed.app.server.server_train", "-m", f"{prod}"],  # not a kit
        ["python3", "-m", "nvflare.private.fed.app.server.server_train", "-m", f"{prod}/server/deeper"],
        ["python3", "-m", "http.server", "-m", f"{prod}/server"],  # not an NVFlare module
        ["sleep", "-m", "nvflare.private.fed.app.server.server_train", "-m", f"{prod}/server"],  # not python
        ["bash", "-c", f"echo {prod}/server"],
        [],
    ]
    assert [procs.is_poc_process(a, prod) for a in yes] == [True] * len(yes)
    assert [procs.is_poc_process(a, prod) for a in no] == [False] * len(no)


def test_poc_shutdown_does_not_see_decoy_processes(tmp_path):
    """Real processes whose command lines name the prod folder: only NVFlare's own signature is a POC process."""
    ws = tmp_path / "poc"
    prod, backup = _prod(ws), _prod(ws).with_name("prod_00_backup")
    for root in (prod, backup):
        (root / "server").mkdir(parents=True)
        (root / "server" / "log.txt").write_text("log\n")
        (root / "site-1" / "startup").mkdir(parents=True)
        (root / "site-1" / "startup" / "sub_start.sh").write_text("sleep 300; true\n")

    def start(argv, **kw):
        return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, **kw)

    decoys = [
        start(["tail", "-f", str(prod / "server" / "log.txt")], cwd=prod / "server"),
        start(["tail", "-f", str(backup / "server" / "log.txt")]),
        start(["bash", str(backup / "site-1" / "startup" / "sub_start.sh")]),
        start(["sleep", "300"], cwd=prod),
    ]
    control = start(["bash", str(prod / "site-1" / "startup" / "sub_start.sh")])  # NVFlare's watchdog signature
    try:
        deadline = time.monotonic() + 30
        while control.pid not in poc._poc_processes(poc.Poc(ws)):  # the control proves the scan can match
            assert time.monotonic() < deadline, "the kit-script control process was never found"
            time.sleep(0.05)
        while not all(_cmdline(d.pid) for d in decoys):  # every decoy has its command line by now
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # not the decoys, nor the control's sleep (which, between its fork and its exec, still shows the control's
        # command line for a moment: asked again until it has exec'd)
        while (found := set(poc._poc_processes(poc.Poc(ws)))) != {control.pid} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert found == {control.pid}
        assert procs.poc_processes(prod, uid=os.getuid() + 1) == []  # the current user's processes only
    finally:
        for p in [*decoys, control]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # our own sessions: the shells' sleeps go with them
            p.wait(timeout=10)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- smaller items: one-line errors for bad input --------------------------------------------------------------------


class ForeverRunning(FakeSession):
    def __init__(self):
        super().__init__()
        self.polls = 0

    def get_job_meta(self, job_id):
        self.polls += 1
        if self.polls > 50:
            raise AssertionError("polled the server 50 times: the input was not refused")
        return {"job_id": job_id, "status": "RUNNING"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"timeout": float("nan")}, "--timeout must be a number of seconds >= 0"),
        ({"timeout": float("inf")}, "--timeout must be a number of seconds >= 0"),
        ({"timeout": -1}, "--timeout must be a number of seconds >= 0"),
        ({"interval": float("inf")}, "--interval must be a number of seconds > 0"),
        ({"interval": float("nan")}, "--interval must be a number of seconds > 0"),
        ({"interval": 0}, "--interval must be a number of seconds > 0"),
        ({"interval": "2"}, "--interval must be a number of seconds > 0"),
    ],
)
def test_wait_refuses_non_finite_times_with_one_line(kwargs, message):
    session = ForeverRunning()
    with pytest.raises(FlareError) as e:
        jobs.wait(JOB, flare=FakeFlare(session), **kwargs)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert session.polls == 0


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-13-01", "\x1b[2J"])
def test_logs_since_out_of_range_is_one_line(since):
    with pytest.raises(FlareError) as e:
        get_logs(lambda target: {"logs": {"server": "x\n"}}, JOB, since=since)
    assert str(e.value).startswith("--since must be a timestamp") and "\n" not in str(e.value)
    assert "\x1b" not in str(e.value)


@pytest.mark.parametrize("tail", [-8, "-8", 2.5, "1e3"])
def test_logs_negative_tail_is_one_line(tail):
    with pytest.raises(FlareError, match="--tail must be a non-negative integer"):
        jobs.Job(id=JOB, flare=FakeFlare()).logs(tail=tail)


@pytest.mark.parametrize("sites", [[".."], ["-i"], ["a", "--force"], ["a/b"], ["server"], [""], ["x" * 64], ["é"]])
def test_poc_site_names_cannot_inject_arguments(monkeypatch, tmp_path, sites):
    def no_nvflare(args, p, timeout):
        raise AssertionError(f"nvflare {args} was run")

    monkeypatch.setattr(poc, "_nvflare", no_nvflare)
    with pytest.raises(FlareError) as e:
        poc.start(sites=sites, workspace=tmp_path / "ws", progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "ws").exists()


def test_magic_job_ids_are_checked_before_connecting(ip, monkeypatch):
    from flarenb import session

    monkeypatch.setattr(session, "_current", None)
    for line in ['download "" --force', "abort -- -i", "wait ..", "logs /etc", "meta '../x'", "delete *"]:
        with pytest.raises(UsageError) as e:
            ip.run_line_magic("flare", line)
        assert "argument JOB_ID: Invalid job id" in str(e.value) and "\n" not in str(e.value)


def test_every_job_id_call_validates():
    for call in (
        lambda j: jobs.get_job(j, flare=FakeFlare()),
        lambda j: jobs.abort(j, flare=FakeFlare()),
        lambda j: jobs.delete(j, flare=FakeFlare()),
        lambda j: jobs.clone(j, flare=FakeFlare()),
        lambda j: jobs.stats(j, flare=FakeFlare()),
        lambda j: jobs.log_config(j, "INFO", flare=FakeFlare()),
        lambda j: jobs.wait(j, flare=FakeFlare()),
        lambda j: jobs.Job(id=j, flare=FakeFlare()),
    ):
        with pytest.raises(validate.InvalidInput):
            call("../x")


# -- smaller items: text outputs and log files ------------------------------------------------------------------------

HOSTILE = (
    "ok \x1b]52;c;ZXZpbA==\x07 \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ \x1b[2J\x1b[H nul\x00 c1\x9b31m bell\x07 end"
)


def test_text_outputs_neutralise_terminal_escapes():
    logs = get_logs(lambda target: {"logs": {"server": HOSTILE + "\n"}}, JOB, tail=5)
    for text in (str(logs), logs.text()):
        assert not any(ch in text for ch in "\x1b\x00\x07\x9b"), repr(text)
        assert "ZXZpbA" not in text and "http://evil" not in text  # the payloads are gone, not just defused
        assert text.startswith("ok ") and "link" in text and "nul␀" in text and text.endswith("end\n")
    row = jobs.JobList([{"job_id": JOB, "job_name": "n\x1b]52;c;eA==\x07", "status": "RUNNING"}])
    assert "\x1b" not in str(row) and "\x1b" not in jobs.Job(id=JOB, name="a\x1b[2Jb").summary()
    assert "\x1b" not in str(FlareError("server said \x1b]0;title\x07", "hint \x1b[31m"))


@given(st.text())
def test_terminal_safe_leaves_no_control_characters(text):
    out = terminal_safe(text)
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in out)
    assert out.count("\n") == text.replace("\r\n", "\n").count("\n")  # never hides the lines after a sequence
    if text.isprintable():
        assert out == text


def test_site_log_files_are_utf8_and_say_when_incomplete(guard, tmp_path):
    def ask(site):
        if site == "server":
            return {"logs": {"server": "... output truncated to last 5242880 bytes ...ine\nété ✓ \ud800\n"}}
        if site == "site-1":
            return {"logs": {}, "unavailable": {"site-1": "no log stored"}}
        raise ConnectionError("server gone")

    local = tmp_path / "site-3.txt"
    local.write_bytes("own file é\n".encode())
    files = downloads.write_site_logs(
        tmp_path,
        ["server", "site-1", "site-2", "site-3"],
        file_name=lambda s: f"{s}.log",
        local_file=lambda s: local if s == "site-3" else None,
        ask_server=ask,
        held_lines=lambda s: [f"{s} line é"],
    )
    assert files == [str(tmp_path / f"{s}.log") for s in ["server", "site-1", "site-2", "site-3"]]
    assert sorted(files.incomplete) == ["server", "site-1", "site-2"]
    server = (tmp_path / "server.log").read_bytes().decode("utf-8")  # strict UTF-8 (the surrogate replaced)
    assert server.startswith("[flarenb: INCOMPLETE — the server returned only the end of the log")
    assert "été ✓" in server
    assert (tmp_path / "site-1.log").read_text(encoding="utf-8") == (
        "[flarenb: INCOMPLETE — the server has no log for it (no log stored); these are the 1 lines this view"
        " kept]\nsite-1 line é\n"
    )
    assert "the server could not be asked (server gone)" in (tmp_path / "site-2.log").read_text(encoding="utf-8")
    assert (tmp_path / "site-3.log").read_bytes() == local.read_bytes()
    assert "INCOMPLETE" in str(files) and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["server.log", "site-1.log", "site-2.log", "site-3.log", "site-3.txt"]
    )


def test_site_log_files_replace_a_link_instead_of_writing_through_it(guard, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "server.log").symlink_to(outside)
    downloads.write_site_logs(
        folder, ["server"], lambda s: f"{s}.log", lambda s: None, lambda s: {"logs": {"server": "x\n"}}, lambda s: []
    )
    assert outside.read_text() == "mine" and not (folder / "server.log").is_symlink()


# -- property tests ---------------------------------------------------------------------------------------------------

_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_job_ids = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", ".", "..", "/", "~", "*", "-i", "--force", JOB, JOB.upper(), JOB + "/..", "../" + JOB]),
    st.uuids().map(str),
    st.uuids(version=4).map(lambda u: u.hex),
)


@_settings
@given(jid=_job_ids, force=st.booleans())
def test_any_job_id_downloads_inside_its_folder_or_is_refused(monkeypatch, jid, force):
    with tempfile.TemporaryDirectory(prefix="flarenb-prop-") as tmp:
        root = Path(tmp)
        out = populated(root)
        session = FakeSession(known={str(uuid.UUID(jid)) for _ in [0] if _is_uuid4(jid)} | {JOB})
        before = tree(root)
        with _installed(monkeypatch, [root]):
            try:
                got = jobs.download(jid, output_dir=out, force=force, flare=FakeFlare(session))
            except FlareError as e:
                assert "\n" not in str(e)
                assert tree(root) == before
                return
            finally:
                monkeypatch.undo()
        canonical = str(uuid.UUID(jid))
        assert got.path == str(out / canonical)
        after = tree(root)
        changed = {k for k in set(before) | set(after) if before.get(k, 0) != after.get(k, 0)}
        assert all(k == f"out/{canonical}" or k.startswith(f"out/{canonical}/") for k in changed), changed


def _is_uuid4(text: str) -> bool:
    from nvflare.apis.job_def import is_valid_job_id

    return isinstance(text, str) and is_valid_job_id(text.lower())


@_settings
@given(jid=_job_ids)
def test_any_job_id_on_the_magic_line_is_one_line(ip, jid):
    from flarenb import session

    saved, session._current = session._current, None
    try:
        with pytest.raises((UsageError, FlareError)) as e:
            ip.run_line_magic("flare", f"download {shlex.quote(jid)} --force -o /nonexistent-flarenb-test")
    finally:
        session._current = saved
    assert "\n" not in str(e.value)
    assert not os.path.exists("/nonexistent-flarenb-test")


@_settings
@given(names=st.lists(st.text(max_size=12), min_size=1, max_size=4))
def test_any_site_names_are_valid_client_names_or_one_line_errors(names):
    try:
        got = poc._site_names(None, names)
    except FlareError as e:
        assert "\n" not in str(e)
        return
    for name in got:
        assert validate.site_name(name) == name and not name.startswith("-") and "/" not in name and "." not in name


@_settings
@given(parts=st.lists(st.sampled_from(["project.yml", "example_project", "prod_00", "server", "x"]), max_size=4))
def test_poc_stop_clean_removes_nothing_but_a_poc_workspace(monkeypatch, parts):
    with tempfile.TemporaryDirectory(prefix="flarenb-prop-") as tmp:
        ws = Path(tmp, "ws")
        path = ws
        for p in parts:
            path = path / p
        path.mkdir(parents=True)
        (Path(tmp) / "sibling.txt").write_text("mine")
        before = tree(Path(tmp))
        with _installed(monkeypatch, [ws]):
            try:
                poc.stop(workspace=ws, clean=True, progress=False, timeout=5)
            except FlareError as e:
                assert "\n" not in str(e)
            finally:
                monkeypatch.undo()
        assert tree(Path(tmp)) == before  # none of these is a prepared POC workspace


# -- the real local FLARE ----------------------------------------------------------------------------------------------


@pytest.mark.poc
def test_real_download_twice_with_force_and_clean_refusal(flarenb_poc, tmp_path, ip, monkeypatch):
    from conftest import export_job

    import flarenb

    job = flarenb.submit(
        str(export_job(tmp_path / "src", name="safety-download", rounds=1)), new=True, flare=flarenb_poc
    )
    job.wait(timeout=240, interval=1)
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "keep.txt").write_text("mine")
    # NVFlare's own download works in the admin kit's transfer folder and in <system temp>/<uuid> files
    with _installed(monkeypatch, [out, poc.default_workspace()], allow_nvflare_temp=True):
        first = ip.run_line_magic("flare", f"download {job.id} -o {out}")
        assert Path(first.path, downloads.MARKER).is_file() and first.global_model
        marker_file = Path(first.path, "mine.txt")
        marker_file.write_text("added after the first download")
        second = ip.run_line_magic("flare", f"download {job.id} -o {out} --force")
        assert second.replaced and second.path == first.path and not marker_file.exists()
        assert Path(second.global_model).is_file()
        # every client the job ran on (from its stored meta) has its log in the result, or the result says so
        assert sorted(downloads.job_sites(flarenb_poc.call(lambda s: s.get_job_meta(job.id)))) == ["site-1", "site-2"]
        assert set(second.client_logs) | set(second.missing_logs) == {"site-1", "site-2"}, str(second)
        assert sorted(p.name for p in out.iterdir()) == sorted([job.id, "notes"])  # no temp folder left
        # the real POC's workspace is a POC workspace; a folder that is not one is refused, and nothing stopped
        assert poc.is_poc_workspace(poc.default_workspace())
        with pytest.raises(FlareError, match="is not a prepared POC workspace"):
            ip.run_line_magic("flare", f"poc stop --clean --workspace {out}")
    assert (out / "notes" / "keep.txt").read_text() == "mine"
    assert poc.Poc(poc.default_workspace()).running
    assert flarenb_poc.system_info().client_names == ["site-1", "site-2"]
    # every process of the running POC is found by its NVFlare signature
    p = poc.Poc(poc.default_workspace())
    assert {pid for pid in p.pids().values() if pid} <= set(poc._poc_processes(p))
