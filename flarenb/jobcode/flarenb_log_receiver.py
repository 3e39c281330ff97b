"""Shipped by flarenb with a job, as its custom code (only NVFlare is imported).

``FlarenbLogReceiver`` is NVFlare's ``JobLogReceiver`` that also keeps the server job from ending while a
client's live log stream is still open: at the end of a run the server job asks its clients to end, then checks
its components' readiness (``CHECK_END_RUN_READINESS``) for up to ``end_run_readiness_timeout`` seconds before it
fires ``END_RUN`` and exits. Stock, nothing waits for the clients' last log chunks and their end-of-stream, so each
client's streamer logs ``error from target server: TIMEOUT`` and the stored copy of its log loses its end. This
receiver answers "not ready" while a stream it opened has not ended (EOF) and is still sending: a stream silent for
``silence`` seconds since the checks began (its client died, say) is not waited for, so a job whose client was
killed ends at most ``silence`` seconds later than it would have.
"""

import threading
import time

from nvflare.apis.event_type import EventType
from nvflare.apis.fl_constant import FLContextKey
from nvflare.app_common.logging.job_log_receiver import JobLogReceiver
from nvflare.app_common.streamers.log_streamer import LogStreamer

_KEY = "FlarenbLogReceiver.stream"


class FlarenbLogReceiver(JobLogReceiver):
    def __init__(self, dest_dir: str = ".", idle_timeout: float = 30.0, silence: float = 4.0):
        super().__init__(dest_dir=dest_dir, idle_timeout=idle_timeout)
        self._silence = silence
        self._open_streams: dict = {}  # stream -> time of its last chunk
        self._checks_began = None
        self._streams_lock = threading.Lock()
        self.register_event_handler(EventType.CHECK_END_RUN_READINESS, self._check_end_run_readiness)

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

    def _on_stream_done(self, stream_ctx, fl_ctx):
        try:
            super()._on_stream_done(stream_ctx, fl_ctx)
        finally:
            with self._streams_lock:
                self._open_streams.pop(stream_ctx.get(_KEY), None)

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
