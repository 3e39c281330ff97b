"""The log source of a job (flarenb.logsource), the source registry (flarenb.sources) and process discovery
(flarenb.procs): fakes and real local processes only, no FLARE."""

import subprocess
import sys
import time
import weakref
from types import SimpleNamespace

import pytest

from flarenb import follower, live, logsource, procs, sources
from flarenb.jobs import Job
from flarenb.receiver import Receiver
from flarenb.sources import AdminPoll, Composite, JobLogs, LocalTail, LogSource

JOB = "2c9e1f3a-0b4d-4e6f-8a1b-3c5d7e9f0a1b"


def fetch(target, log_file_name=None):
    return {"logs": {"server": "a line\n"}, "unavailable": {}}


@pytest.mark.parametrize(
    "spec, kind",
    [
        (JobLogs(JOB, paths={"server": "/nonexistent/log.txt"}), LocalTail),
        (JobLogs(JOB, paths={"server": "/nonexistent/log.txt"}, fetch=fetch), LocalTail),
        (JobLogs(JOB, paths={"server": "/nonexistent/log.txt"}, fetch=fetch, ended=True), Composite),
        (JobLogs(JOB, fetch=fetch), AdminPoll),
    ],
)
def test_the_registry_picks_one_source_per_kind_of_job(spec, kind):
    source = sources.open_source(Receiver(name=JOB), spec)
    assert type(source) is kind
    assert isinstance(source, LogSource)  # every source speaks the one protocol


def test_liveness_is_given_at_construction_and_reaches_every_part():
    def alive(site):
        return None

    spec = JobLogs(JOB, paths={"server": "/nonexistent/log.txt"}, fetch=fetch, ended=True, alive=alive)
    source = sources.open_source(Receiver(name=JOB), spec)
    assert source.alive is alive and all(t.alive is alive for t in source.transports)
    wrapped = sources.open_source(Receiver(name=JOB), JobLogs(JOB, fetch=fetch, alive=alive, wrap_admin=lambda r, s: s))
    assert wrapped.alive is alive


def test_nothing_to_follow_says_so():
    with pytest.raises(ValueError, match="cannot follow"):
        sources.open_source(Receiver(name=JOB), JobLogs(JOB))


def test_a_new_source_joins_through_one_registry_entry(monkeypatch):
    made = []

    class Kind:
        name = "cursor"

        def fits(self, spec):
            return spec.name == "special"

        def open(self, receiver, spec):
            made.append(spec.name)
            return LocalTail(receiver, {}, name=spec.name)

    monkeypatch.setattr(sources, "SOURCES", [Kind(), *sources.SOURCES])
    sources.open_source(Receiver(name="special"), JobLogs("special"))
    assert made == ["special"]


def fake_flare(path="/kits/admin", study="default"):
    return SimpleNamespace(kit=SimpleNamespace(path=path), study=study, poc=None, call=lambda fn: None)


def test_a_job_has_a_public_key_and_connection():
    flare = fake_flare()
    job = Job(id=JOB, flare=flare)
    assert job.connection is flare
    assert job.key == ("/kits/admin", "default", JOB)


def test_the_statuses_of_ended_jobs_are_pruned():
    class Finished(Job):
        def meta(self):
            return {"status": "FINISHED:COMPLETED"}

    logsource._statuses.clear()
    ended = Finished(id=JOB, flare=fake_flare())
    logsource.job_status(ended)()
    assert ended.key in logsource._statuses
    other = Job(id="5e7a9c1b-3d4f-4a6b-8c0d-2e4f6a8b0c1d", flare=fake_flare())
    logsource.job_status(other)
    assert list(logsource._statuses) == [other.key]
    logsource._statuses.clear()


def test_a_detached_view_leaves_the_views_registry():
    class View:
        pass

    view, key = View(), ("kit", "study", JOB, "cell:a")
    live._live_views[key] = weakref.ref(view)
    view._view_slot = (live._live_views, key)
    live._forget(view)
    assert key not in live._live_views


def test_a_jobs_processes_are_found_by_their_signature_and_turn_dead_when_gone(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text("import time\ntime.sleep(60)\n")
    child = subprocess.Popen([sys.executable, str(script), "-m", procs.CLIENT_JOB_MODULE, "-c", "site-7", JOB])
    try:
        deadline = time.monotonic() + 10
        while procs.job_processes(JOB) != {"site-7": child.pid} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert procs.job_processes(JOB) == {"site-7": child.pid}
        assert procs.job_processes("0" * 8) == {}
        alive = logsource._LocalLiveness(JOB)
        assert alive("site-7") is True and alive("site-8") is None
    finally:
        child.kill()
        child.wait()
    assert not procs.alive(child.pid)
    follower.stop_all()


class _Meta:
    def __init__(self, meta):
        self.meta = meta


@pytest.mark.parametrize(
    "meta, forced, app_command, expected",
    [
        ({"flarenb": {"log_cursor": "flarenb.logs"}}, None, None, True),  # flarenb's job, rights not known yet
        ({"flarenb": {"log_cursor": "flarenb.logs"}}, None, True, True),
        ({"flarenb": {"log_cursor": "flarenb.logs"}}, None, False, False),  # the role may not: never asked
        ({"status": "RUNNING"}, None, None, False),  # a job without the component is never asked
        ({}, None, True, False),
        ({"status": "RUNNING"}, True, None, True),  # forced on
        ({"flarenb": {"log_cursor": "flarenb.logs"}}, False, True, False),  # forced off
    ],
)
def test_a_remote_job_is_followed_by_cursor_only_when_its_meta_says_it_answers(
    meta, forced, app_command, expected, monkeypatch
):
    from flarenb import rights

    monkeypatch.setattr(logsource, "CURSOR", None)  # the automatic mode

    class Flare:  # weak-referenceable, as the rights cache needs
        kit = SimpleNamespace(path="/kits/admin", username="admin@nvidia.com", startup_kit_dir="/nonexistent")
        study, poc = "default", None

    flare = Flare()
    r = rights.rights_of(flare)
    if app_command is not None:
        r.note("app_command", app_command, "test")
    assert logsource.use_cursor(Job(id=JOB, flare=flare), _Meta(meta), cursor=forced) is expected
