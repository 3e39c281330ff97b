"""Shipped by flarenb with a job, as its custom code (only NVFlare is imported).

``FlarenbLogReceiver`` is NVFlare's ``JobLogReceiver`` that also keeps the server job from ending while a
client's live log stream is still open: at the end of a run the server job asks its clients to end, then checks
its components' readiness (``CHECK_END_RUN_READINESS``) for up to ``end_run_readiness_timeout`` seconds before it
fires ``END_RUN`` and exits. Stock, nothing waits for the clients' last log chunks and their end-of-stream, so each
client's streamer logs ``error from target server: TIMEOUT`` and the stored copy of its log loses its end. This
receiver answers "not ready" while a stream it opened has not ended (EOF) and is still sending: a stream silent for
``silence`` seconds since the checks began (its client died, say) is not waited for, so a job whose client was
killed ends at most ``silence`` seconds later than it would have.

It also answers the app command ``flarenb.logs`` (``Session.do_app_command(job_id, "flarenb.logs", request)``), so
a notebook can follow the job's logs by cursor instead of re-downloading whole logs: for each site, the bytes of its
live log after the caller's offset (at most ``max_bytes`` per site per reply), the file's size and identity
(``gen``: a new file or a truncation shows as a new ``gen`` or a size below the offset) and whether its stream has
ended — only for files with news since the caller's cursor (``{"offset", "gen", "ended"}`` per site). ``"server"``
is the server job's own log and, when asked (``"metrics": true``), ``"@metrics"`` NVFlare's ``round_metrics.jsonl``;
``"only": [keys]`` limits a reply to those keys (a reader of the metrics alone gets no log bytes). With
``"compact": true`` a part leaves out what the caller's cursor already says (``gen`` and ``offset`` when unchanged,
``size`` when nothing more is waiting, ``ended`` when false): a part of a few log lines is then mostly log bytes.
Once the command is registered (at ``START_RUN``) the component logs :data:`READY_LINE` in the server job's log: a
notebook waits for that line (``get_job_logs`` reads the log in the server's parent process, never asking the job)
before its first app command, because NVFlare logs an ERROR in the job's log for any command that reaches the server
job before then (an app command before its registration, ``show_stats`` before the run's engine exists).
Only files of this job that this component knows (its own streams' staging files, the run folder's log and metrics)
are read: nothing in a request is used as a path. App commands pass NVFlare's job authorisation (right
``app_command``).
"""

import base64
import os
import threading
import time

from nvflare.apis.event_type import EventType
from nvflare.apis.fl_constant import FLContextKey
from nvflare.app_common.logging.job_log_receiver import JobLogReceiver
from nvflare.app_common.streamers.log_streamer import LogStreamer

_KEY = "FlarenbLogReceiver.stream"
CURSOR_TOPIC = "flarenb.logs"
CURSOR_VERSION = 1
MAX_BYTES = 256 * 1024  # per site per reply
MAX_TOTAL = 1024 * 1024  # per reply (the admin channel's app-command reply stays small)
METRICS_KEY = "@metrics"
READY_LINE = "flarenb log cursor ready: flarenb.logs"  # logged (INFO) once the command is registered


class FlarenbLogReceiver(JobLogReceiver):
    def __init__(self, dest_dir: str = ".", idle_timeout: float = 30.0, silence: float = 4.0):
        super().__init__(dest_dir=dest_dir, idle_timeout=idle_timeout)
        self._silence = silence
        self._open_streams: dict = {}  # stream -> time of its last chunk
        self._checks_began = None
        self._streams_lock = threading.Lock()
        self._files: dict = {}  # (site, file name) -> staging path of a stream this receiver opened
        self._ended: set = set()  # (site, file name) of streams that ended
        self._run_dir = None
        self.register_event_handler(EventType.CHECK_END_RUN_READINESS, self._check_end_run_readiness)
        self.register_event_handler(EventType.START_RUN, self._register_cursor)

    @staticmethod
    def _stream_key(stream_ctx, fl_ctx):
        peer = fl_ctx.get_peer_context()
        client = peer.get_identity_name(default="unknown") if peer is not None else "unknown"
        return client, LogStreamer.get_file_name(stream_ctx) or "log.txt"

    def _on_chunk_received(self, data, stream_ctx, fl_ctx):
        if _KEY not in stream_ctx:
            stream_ctx[_KEY] = self._stream_key(stream_ctx, fl_ctx)
        with self._streams_lock:
            self._open_streams[stream_ctx[_KEY]] = time.monotonic()
        super()._on_chunk_received(data, stream_ctx, fl_ctx)
        path = stream_ctx.get("JobLogReceiver.recv_path")
        if path and stream_ctx[_KEY] not in self._files:
            with self._streams_lock:
                self._files[stream_ctx[_KEY]] = path

    def _on_stream_done(self, stream_ctx, fl_ctx):
        try:
            super()._on_stream_done(stream_ctx, fl_ctx)
        finally:
            with self._streams_lock:
                self._open_streams.pop(stream_ctx.get(_KEY), None)
                self._ended.add(stream_ctx.get(_KEY))

    def _check_end_run_readiness(self, event_type, fl_ctx):
        now = time.monotonic()
        with self._streams_lock:
            if self._checks_began is None:
                self._checks_began = now
            waiting = sorted(
                key for key, last in self._open_streams.items() if now - max(last, self._checks_began) < self._silence
            )
        if waiting:
            self.log_debug(fl_ctx, f"waiting for the end of live log streams {waiting}")
            fl_ctx.set_prop(FLContextKey.NOT_READY_TO_END_RUN, value=True, private=True, sticky=False)

    # -- the log cursor (app command) ------------------------------------------------------------------------
    def _register_cursor(self, event_type, fl_ctx):
        engine = fl_ctx.get_engine()
        try:
            self._run_dir = engine.get_workspace().get_run_dir(fl_ctx.get_job_id())
        except Exception:
            self._run_dir = None
        register = getattr(engine, "register_app_command", None)
        if register is None:
            return
        try:
            register(CURSOR_TOPIC, self._answer_cursor)
        except RuntimeError:  # already registered in this process (a re-delivered START_RUN)
            pass
        self.log_info(fl_ctx, READY_LINE)

    def _sources(self, log_file_name):
        """``{key: path}`` of every file the cursor may read: nothing else is ever opened."""
        out = {}
        if self._run_dir:
            out["server"] = os.path.join(self._run_dir, log_file_name)
            out[METRICS_KEY] = os.path.join(self._run_dir, "metrics", "round_metrics.jsonl")
        with self._streams_lock:
            for (site, name), path in self._files.items():
                if name == log_file_name and site != "server":
                    out[site] = path
        return out

    def _answer_cursor(self, topic, data, fl_ctx):
        request = data if isinstance(data, dict) else {}
        log_file_name = request.get("file") if request.get("file") in ("log.txt", "log.json") else "log.txt"
        cursors = request.get("cursors") if isinstance(request.get("cursors"), dict) else {}
        cap = request.get("max_bytes")
        cap = min(cap, MAX_BYTES) if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else MAX_BYTES
        budget = MAX_TOTAL
        with self._streams_lock:
            ended = {site for (site, name) in self._ended if name == log_file_name}
        only = request.get("only") if isinstance(request.get("only"), list) else None
        sites = {}
        for key, path in sorted(self._sources(log_file_name).items()):
            if key == METRICS_KEY and not request.get("metrics"):
                continue
            if only is not None and key not in only:
                continue
            cursor = cursors.get(key) if isinstance(cursors.get(key), dict) else {}
            part = _read_part(path, cursor, min(cap, budget))
            if part is None:
                continue
            part["ended"] = key in ended
            n = part.pop("n")
            budget -= n
            if (
                part["data"]
                or part.get("reset")
                or cursor.get("gen") != part["gen"]
                or cursor.get("ended") != part["ended"]
            ):
                sites[key] = _compact(part, cursor, n) if request.get("compact") is True else part
                # unchanged files are left out: an idle job's reply stays a few bytes
        return {"v": CURSOR_VERSION, "sites": sites}


def _compact(part, cursor, n):
    """``part`` without what the caller's ``cursor`` already says (see the module docstring)."""
    out = {"data": part["data"]}
    for key in ("enc", "reset"):
        if key in part:
            out[key] = part[key]
    if part["gen"] != cursor.get("gen"):
        out["gen"] = part["gen"]
    if part["offset"] != cursor.get("offset") or "gen" in out:
        out["offset"] = part["offset"]
    if part["size"] != part["offset"] + n:
        out["size"] = part["size"]
    if part["ended"]:
        out["ended"] = True
    return out


def _read_part(path, cursor, cap):
    """The bytes of ``path`` after the caller's cursor (``{"offset", "gen"}``), at most ``cap``; None: no file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        gen = f"{st.st_dev}:{st.st_ino}"
        offset = cursor.get("offset")
        offset = offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else 0
        reset = cursor.get("gen") != gen or offset > st.st_size
        if reset:
            offset = 0
        raw = os.pread(fd, max(0, min(cap, st.st_size - offset)), offset) if cap > 0 else b""
    finally:
        os.close(fd)
    if len(raw) == cap and cap > 0:  # cut after the last complete line, when there is one
        cut = raw.rfind(b"\n")
        if cut >= 0:
            raw = raw[: cut + 1]
    try:
        text, enc = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, enc = base64.b64encode(raw).decode("ascii"), "base64"
    part = {"gen": gen, "size": st.st_size, "offset": offset, "data": text, "n": len(raw)}
    if enc != "utf-8":
        part["enc"] = enc
    if reset and cursor.get("gen") is not None:
        part["reset"] = True
    return part
