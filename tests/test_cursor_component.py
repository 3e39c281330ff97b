"""The server side of the log cursor: flarenb's job component answering the ``flarenb.logs`` app command.

Driven the way NVFlare drives it (START_RUN registers the command; stream chunks arrive through the receiver's
callbacks), with a fake engine and context. The real-server path is covered in ``test_cursor_poc.py``.
"""

from __future__ import annotations

import base64
import importlib.util
import os

import pytest

from flarenb import jobconfig

spec = importlib.util.spec_from_file_location("flarenb_log_receiver", jobconfig.CUSTOM_CODE)
assert spec and spec.loader
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

from nvflare.apis.event_type import EventType  # noqa: E402
from nvflare.apis.fl_context import FLContext  # noqa: E402
from nvflare.app_common.streamers.log_streamer import KEY_FILE_NAME  # noqa: E402

JOB = "3b1d5e8c-0f6a-4a51-9c2e-7d0b8a6f4e21"


class Peer(FLContext):
    def __init__(self, site: str):
        super().__init__()
        self.site = site

    def get_identity_name(self, default=None):
        return self.site

    def get_job_id(self, default=None):
        return JOB


class Workspace:
    def __init__(self, root):
        self.root = root

    def get_run_dir(self, job_id):
        return os.path.join(self.root, job_id)


class Engine:
    def __init__(self, root):
        self.commands = {}
        self.workspace = Workspace(root)

    def get_workspace(self):
        return self.workspace

    def register_app_command(self, topic, fn):
        if topic in self.commands:
            raise RuntimeError(f"duplicate app command topic {topic}")
        self.commands[topic] = fn


class Ctx(FLContext):
    def __init__(self, engine, peer=None):
        super().__init__()
        self.engine, self.peer = engine, peer

    def get_engine(self):
        return self.engine

    def get_peer_context(self):
        return self.peer

    def get_job_id(self, default=None):
        return JOB


def start_run(r, ctx):
    """Deliver START_RUN as NVFlare does (the component's event table) — flarenb's handler only: the stock
    receiver's own START_RUN handler needs a real engine's object streamer."""
    handlers = [cb for cb, _ in r.get_event_handlers()[EventType.START_RUN] if cb.__name__ == "_register_cursor"]
    assert handlers, "the cursor is not registered on START_RUN"
    for cb in handlers:
        cb(EventType.START_RUN, ctx)


@pytest.fixture
def served(tmp_path):
    """(receiver, ask) with a started run: the server log exists, site-1 streams."""
    engine = Engine(str(tmp_path / "ws"))
    os.makedirs(tmp_path / "ws" / JOB / "metrics")
    (tmp_path / "ws" / JOB / "log.txt").write_bytes(b"server 1\nserver 2\n")
    r = mod.FlarenbLogReceiver(dest_dir=str(tmp_path / "ws"))
    start_run(r, Ctx(engine))
    start_run(r, Ctx(engine))  # re-delivered: no duplicate registration error
    fn = engine.commands[mod.CURSOR_TOPIC]

    def ask(cursors=None, **kw):
        return fn(mod.CURSOR_TOPIC, {"cursors": cursors or {}, **kw}, Ctx(engine))

    def chunk(site, data, stream_ctx):
        r._on_chunk_received(data, stream_ctx, Ctx(None, Peer(site)))

    return r, ask, chunk, tmp_path / "ws"


def text(part):
    return base64.b64decode(part["data"]) if part.get("enc") == "base64" else part["data"].encode()


def test_the_cursor_returns_only_what_is_new_per_site(served):
    r, ask, chunk, _ = served
    s1 = {KEY_FILE_NAME: "log.txt"}
    chunk("site-1", b"a\nb\n", s1)
    first = ask()
    assert first["v"] == 1 and set(first["sites"]) == {"server", "site-1"}
    assert text(first["sites"]["server"]) == b"server 1\nserver 2\n"
    assert text(first["sites"]["site-1"]) == b"a\nb\n" and first["sites"]["site-1"]["ended"] is False
    cursors = {k: {"offset": p["offset"] + len(text(p)), "gen": p["gen"]} for k, p in first["sites"].items()}
    chunk("site-1", b"c\n", s1)
    second = ask(cursors)
    assert text(second["sites"]["site-1"]) == b"c\n" and second["sites"]["site-1"]["offset"] == 4
    assert text(second["sites"]["server"]) == b"" and second["sites"]["server"]["size"] == 18
    cursors = {k: {**c, "ended": False} for k, c in cursors.items()}
    assert "server" not in ask(cursors)["sites"]  # nothing new: left out of the reply
    r._on_stream_done(s1, Ctx(None, Peer("site-1")))
    assert ask(cursors)["sites"]["site-1"]["ended"] is True


def test_truncation_and_a_new_file_reset_the_cursor(served):
    _, ask, _, ws = served
    part = ask()["sites"]["server"]
    cursor = {"server": {"offset": part["size"], "gen": part["gen"]}}
    (ws / JOB / "log.txt").write_bytes(b"x\n")  # truncated in place: size below the offset
    again = ask(cursor)["sites"]["server"]
    assert again["reset"] is True and again["offset"] == 0 and text(again) == b"x\n"
    os.replace(ws / JOB / "log.txt", ws / JOB / "old.txt")
    (ws / JOB / "log.txt").write_bytes(b"new file, longer than before\n")  # rotated: another inode
    rotated = ask({"server": {"offset": 2, "gen": again["gen"]}})["sites"]["server"]
    assert rotated["reset"] is True and text(rotated) == b"new file, longer than before\n"


def test_replies_are_capped_at_line_ends_and_bytes_stay_exact(served):
    _, ask, chunk, _ = served
    data = "".join(f"line {i} é\n" for i in range(100)).encode() + b"\xff\xfe broken utf-8\n"
    chunk("site-1", data, {KEY_FILE_NAME: "log.txt"})
    got, cursor = b"", {}
    for _ in range(100):
        part = ask(cursor, max_bytes=100)["sites"]["site-1"]
        assert len(text(part)) <= 100
        got += text(part)
        cursor = {"site-1": {"offset": part["offset"] + len(text(part)), "gen": part["gen"]}}
        if len(got) == len(data):
            break
    assert got == data


def test_nothing_in_the_request_is_a_path(served, tmp_path):
    _, ask, _, _ = served
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read\n")
    reply = ask({str(secret): {"offset": 0}, "../secret.txt": {}}, file="../../secret.txt", max_bytes="all")
    assert set(reply["sites"]) == {"server"}
    assert "do not read" not in str(reply)


@pytest.mark.parametrize("bad", [None, "x", [], {"cursors": "x"}, {"cursors": {"server": {"offset": -5, "gen": 3}}}])
def test_a_malformed_request_reads_from_the_start(served, bad):
    r = served[0]
    fn = r._answer_cursor
    reply = fn(mod.CURSOR_TOPIC, bad, type("C", (), {"get_job_id": lambda self: JOB})())
    assert text(reply["sites"]["server"]) == b"server 1\nserver 2\n"


def test_metrics_are_a_second_cursor(served):
    _, ask, _, ws = served
    (ws / JOB / "metrics" / "round_metrics.jsonl").write_text('{"round": 0}\n')
    assert "@metrics" not in ask()["sites"]
    reply = ask(metrics=True)
    assert text(reply["sites"]["@metrics"]) == b'{"round": 0}\n'
    alone = ask(metrics=True, only=["@metrics"])  # a reader of the metrics alone gets no log bytes
    assert set(alone["sites"]) == {"@metrics"}


def test_a_symlinked_log_is_not_followed(served, tmp_path):
    _, ask, _, ws = served
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read\n")
    os.remove(ws / JOB / "log.txt")
    os.symlink(secret, ws / JOB / "log.txt")
    assert "server" not in ask()["sites"]


def test_a_compact_part_leaves_out_what_the_cursor_already_says(served):
    _, ask, chunk, _ = served
    s1 = {KEY_FILE_NAME: "log.txt"}
    chunk("site-1", b"a\n", s1)
    first = ask(compact=True)["sites"]["site-1"]
    assert first == {"data": "a\n", "gen": first["gen"], "offset": 0}  # first contact: its identity, its start
    cursor = {"site-1": {"offset": 2, "gen": first["gen"], "ended": False}}
    chunk("site-1", b"b\n", s1)
    assert ask(cursor, compact=True)["sites"]["site-1"] == {"data": "b\n"}  # the usual part: only the new bytes
    chunk("site-1", b"c\n" * 10, s1)
    capped = ask({"site-1": {**cursor["site-1"], "offset": 4}}, compact=True, max_bytes=4)["sites"]["site-1"]
    assert capped == {"data": "c\nc\n", "size": 24}  # more is waiting: the size says so


def test_the_component_logs_its_ready_line_once_the_command_is_registered(tmp_path, caplog):
    """A notebook waits for this line in the server's job log before its first app command (NVFlare logs an ERROR in
    the job's log for a command that reaches the job earlier)."""
    import logging

    engine = Engine(str(tmp_path / "ws"))
    r = mod.FlarenbLogReceiver(dest_dir=str(tmp_path / "ws"))
    with caplog.at_level(logging.INFO):
        assert mod.READY_LINE not in caplog.text
        start_run(r, Ctx(engine))
    assert mod.CURSOR_TOPIC in engine.commands
    assert mod.READY_LINE in caplog.text and mod.READY_LINE == jobconfig.CURSOR_READY_LINE
