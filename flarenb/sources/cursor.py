"""Follow a running job's logs by cursor: ask the job for only the bytes each site wrote since the last reply.

NVFlare 2.9's admin API has no offset or follow: ``get_job_logs`` returns each site's whole log (up to 5 MiB) on
every call. But a running job answers app commands, and the job component flarenb ships with the jobs it submits
(``FlarenbLogReceiver``, see ``flarenb/jobcode/``) answers ``flarenb.logs``: per site, the bytes after the caller's
offset (≤ 256 KiB a reply), the file's identity (``gen``) and size, and whether the site's stream has ended.

:class:`CursorPoll` is the kernel side, a transport like :class:`flarenb.sources.adminpoll.AdminPoll`:

* it feeds the receiver exactly the bytes of each file, once: offsets advance only by what was fed; a new ``gen``
  (the file was replaced) or a size below the offset (truncated) restarts at 0 after a ``[flarenb]`` marker line;
  a dropped connection or a slow server only delays the next reply (the cursor does not move);
* its interval adapts: ``min_interval`` while bytes flow (and for ``hold`` seconds after the last), backing off to
  ``max_interval`` while idle; replies are compact (a part of a few lines is mostly those lines);
* app commands reach running jobs only: before the job runs it waits — for a job marked as having the component,
  until the server's log of the job says the command is registered (NVFlare logs an ERROR in the job's log for any
  command that reaches the job before, and lists the job RUNNING seconds before); once the job's status is terminal
  it **hands over** to the finished-job path — an ``AdminPoll`` whose per-site :class:`~flarenb.logcursor.LogCursor`
  is primed with what was already fed, so its final whole-log fetch adds only the lines written after the last
  cursor reply;
* where the channel cannot work — the job has no flarenb component (submitted elsewhere, ``--no-stream-logs``), the
  site's policy refused its custom code, or the user's role lacks the ``app_command`` right — it **falls back** to
  whole-log polling and says so once, in one line (:attr:`fallback_reason`; a marker in the server's lane once
  whole-log polling works — a user refused that as well is told why by the rights-aware wrapper instead).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..jobconfig import CURSOR_READY_LINE, CURSOR_TOPIC
from ..logcursor import LogCursor
from ..receiver import Receiver
from ..vocab import is_terminal, one_line
from .adminpoll import AdminPoll
from .base import (
    STOP_JOIN_TIMEOUT,
    AliveCheck,
    JobLogs,
    LogSource,
    ThreadedSource,
    describe_problem,
    describe_source,
    is_job_not_found,
)

__all__ = [
    "KIND",
    "TOPIC",
    "CursorPoll",
    "SiteCursor",
    "ask_job",
    "read_metrics",
    "server_log_readiness",
    "why_unavailable",
]

log = logging.getLogger(__name__)
TOPIC = CURSOR_TOPIC
METRICS_KEY = "@metrics"
#: the longest interval between two asks while nothing changes (an idle job costs ~15 app commands a minute)
IDLE_INTERVAL = 4.0
#: while the job answers (which proves it runs), its status is asked at most this often; its end shows first as an
#: app command refused ("not running"), then the status is asked at once
STATUS_EVERY = 10.0
#: unchanged sites (left out of replies) are heartbeaten at most this often (each may ask the sites' liveness)
HEARTBEAT_EVERY = 10.0
NO_COMPONENT = "the job has no flarenb log component (submitted elsewhere, or with --no-stream-logs)"
#: seconds a job marked as having the component may answer "no app command func" before its first answer (its
#: server job registers the command when its run starts, a few seconds after NVFlare lists it as RUNNING)
STARTUP_GRACE = 30.0
#: seconds a marked job's server may run (its log says so) without saying its command is registered before it is
#: asked anyway (a component of an older flarenb does not say so)
READY_GRACE = 5.0
#: seconds a marked job is left alone before its first question when its server's log cannot be read (the user lacks
#: ``get_job_log``): its command is registered a few seconds after NVFlare lists the job RUNNING
BLIND_WAIT = 10.0
#: what NVFlare's ServerRunner logs just before START_RUN
RUN_STARTED_LINE = "Server runner starting"
#: seconds a job that answered may say "not running" while its status stays RUNNING before it is taken as lost (its
#: server process is gone: a server restart leaves the job RUNNING in NVFlare's job store for good)
LOST_AFTER = 15.0
LOST_NOTE = (
    "[flarenb] following by whole-log polling: the job's server process stopped answering while NVFlare still"
    " lists the job as RUNNING (was the server restarted?)"
)
GAP_NOTE = "[flarenb] … the job's server process was lost here: lines this site wrote after this point may be missing …"
ALLOW_HINT = (
    "for the fast path an administrator grants the 'app_command' right on the job (authorization.json) and allows"
    " flarenb's job component (custom code, or flarenb_log_receiver.FlarenbLogReceiver on the server's class list)"
)


def ask_job(flare: Any, job_id: str) -> Callable[[dict], dict]:
    """``ask(request) -> reply`` over ``Session.do_app_command`` of this connection."""

    def ask(request: dict) -> dict:
        return flare.call(lambda s: s.do_app_command(job_id, TOPIC, request))

    return ask


def server_log_readiness(flare: Any, job_id: str) -> Callable[[], str]:
    """``ready() -> state``: whether the job's server has registered the cursor command, from its job log — read by
    the server's parent process (``get_job_logs``), so the job itself is never asked before it is ready:
    ``"ready"`` (the component's ready line); ``"started"`` (its run has started without that line: a component of
    an older flarenb, or a log level above INFO); ``"waiting"``; ``"unknown"`` (the log is refused). A job once
    seen ready is not read again in this kernel (its whole server log would come with every look)."""

    def ready() -> str:
        if job_id in _READY_JOBS:
            return "ready"
        try:
            reply = flare.call(lambda s: s.get_job_logs(job_id, target="server"))
        except Exception as e:
            return "unknown" if why_unavailable(e) is not None else "waiting"
        text = str(((reply or {}).get("logs") or {}).get("server") or "")
        if CURSOR_READY_LINE in text:
            _READY_JOBS.add(job_id)
            return "ready"
        return "started" if RUN_STARTED_LINE in text else "waiting"

    return ready


#: ids of jobs whose server log showed the ready line (a job's server registers the command once per run)
_READY_JOBS: set[str] = set()


def read_metrics(ask: Callable[[dict], dict], max_replies: int = 64) -> bytes:
    """The whole ``round_metrics.jsonl`` of a running job, by cursor (``@metrics`` alone, reply after reply)."""
    cursor, out = SiteCursor(), bytearray()
    for _ in range(max_replies):
        request = {"cursors": {METRICS_KEY: cursor.request()}, "metrics": True, "only": [METRICS_KEY], "compact": True}
        part = (ask(request).get("sites") or {}).get(METRICS_KEY)
        if not isinstance(part, dict):
            break
        raw, restarted = cursor.take(part)
        if restarted:
            out.clear()
        if not raw:
            break
        out += raw
    return bytes(out)


def why_unavailable(e: BaseException) -> str | None:
    """Why the cursor channel cannot work for this job (a reason to fall back), or None for a passing problem."""
    text = one_line(e, 300)
    names = {c.__name__ for c in type(e).__mro__}
    if "no app command func" in text or "invalid result" in text:
        return NO_COMPONENT
    if "AuthorizationError" in names or "not authorized" in text.lower() or "NOT_AUTHORIZED" in text:
        return "your role may not send app commands to this job (the 'app_command' right)"
    return None


def _no_reply(e: BaseException) -> bool:
    return "NoReply" in {c.__name__ for c in type(e).__mro__} or "no result" in one_line(e, 300)


def _not_running(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return "JobNotRunning" in names or "is not running" in one_line(e, 300)


class SiteCursor:
    """What was fed of one site's file: its identity, the offset, and the text tail that primes a LogCursor."""

    FP = 65536

    def __init__(self) -> None:
        self.gen: str | None = None
        self.offset = 0
        self.chars = 0  # characters fed (what a LogCursor counts), while the file's start was fed
        self.tail = ""  # the last FP characters fed
        self._pending = b""  # an incomplete UTF-8 sequence at the end of the last reply
        self.ended = False

    def take(self, part: dict) -> tuple[bytes, bool]:
        """The new bytes of one reply part, and whether the file was replaced/truncated (restart at 0)."""
        data = part.get("data") or ""
        raw = base64.b64decode(data) if part.get("enc") == "base64" else str(data).encode("utf-8")
        gen = part.get("gen", self.gen)  # a compact part leaves out what the request said (gen, offset, ended)
        restarted = self.gen is not None and (gen != self.gen or bool(part.get("reset")))
        if restarted or self.gen is None:
            self.chars, self.tail, self._pending = 0, "", b""
        self.gen, self.ended = str(gen), bool(part.get("ended"))
        offset = part.get("offset")
        self.offset = (self.offset if offset is None else int(offset)) + len(raw)
        buf = self._pending + raw
        cut = _utf8_complete(buf)
        text, self._pending = buf[:cut].decode("utf-8", "replace"), buf[cut:]
        self.chars += len(text)
        self.tail = (self.tail + text)[-self.FP :]
        return raw, restarted

    def primed(self) -> LogCursor:
        """A LogCursor that regards everything fed so far as consumed."""
        c = LogCursor()
        c.consumed, c.fp, c.abs_known = self.chars, self.tail, True
        return c

    def request(self) -> dict:
        return {"offset": self.offset, "gen": self.gen, "ended": self.ended}


def _utf8_complete(data: bytes) -> int:
    """The length of ``data`` without an incomplete UTF-8 sequence at its end."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b < 0x80:
            return n
        if b >= 0xC0:  # a lead byte: complete if its sequence fits
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n if back >= need else n - back
    return n


class CursorPoll(ThreadedSource):
    """Follow a running job through the ``flarenb.logs`` app command (see the module docstring)."""

    kind = "cursor"

    def __init__(
        self,
        receiver: Receiver,
        ask: Callable[[dict], dict],
        status: Callable[[], str | None] | None = None,
        then: Callable[[dict[str, LogCursor] | None, frozenset[str]], ThreadedSource] | None = None,
        min_interval: float = 0.1,
        max_interval: float = IDLE_INTERVAL,
        backoff: float = 1.5,
        hold: float = 1.0,
        lost_after: float = LOST_AFTER,
        expected: bool = False,
        ready: Callable[[], str] | None = None,
        max_bytes: int = 256 * 1024,
        on_metrics: Callable[[bytes], object] | None = None,
        name: str = "",
        alive: AliveCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(receiver, name, alive=alive)
        self.ask, self.status, self.then = ask, status, then
        self.min_interval, self.max_interval, self.backoff = min_interval, max_interval, backoff
        self.interval = min_interval
        self.hold = hold  # seconds at min_interval after the last bytes, before backing off
        self._last_data = float("-inf")
        self.lost_after = lost_after
        self.expected = expected  # the job's meta says it has the component (see JobLogs.ask_expected)
        self.ready = ready  # see server_log_readiness: a marked job is asked once its server is ready
        self._waiting = expected  # a marked job is not asked yet (see _before_ready)
        self._waiting_since: float | None = None  # since when its readiness is waited for
        self._started_since: float | None = None  # since when its server runs without saying it is ready
        self._blind_since: float | None = None  # since when its readiness cannot be read
        self._gone_since: float | None = None  # since when a job that answered says it is not running
        self._gaps: list[str] = []  # sites to mark once the hand-over has fed what the server still holds
        self._answered_at: float | None = None  # the last reply (the job ran then)
        self._status_at = float("-inf")  # the last status check
        self._beat_at = float("-inf")  # the last heartbeat of the unchanged sites
        self.max_bytes = max_bytes
        self._metrics_lock = threading.Lock()
        self._metrics_subs: list[Callable[[bytes], object]] = [on_metrics] if on_metrics is not None else []
        self._metrics_seen = bytearray()  # every @metrics byte so far, replayed to a later subscriber
        self.cursors: dict[str, SiteCursor] = {}
        self.polls = 0
        self.fallback_reason: str | None = None
        self.lost = False  # the job's server process was lost (see _lost)
        self._notice: str | None = None  # the one-line fallback notice, not shown yet
        self._no_replies = 0  # app commands in a row that got no reply (a job process ending, or a stuck one)
        self.next: ThreadedSource | None = None  # the transport handed over to (finished job, or fallback)
        self._clock = clock

    def describe(self) -> str:
        """One line: the cursor's state (waiting for the job's server, asking every ... s), or what it handed over
        to and why."""
        own = f"log cursor (the job's {TOPIC} app command)"
        if self.next is not None:
            then = describe_source(self.next)
            if self.lost:
                return f"{then} (after the log cursor: the job's server process stopped answering)"
            if self.fallback_reason is not None:
                return f"{then} (no log cursor: {self.fallback_reason})"
            return f"{own} until the job ended, then {then}"
        if self.finished:
            return f"{own}, ended"
        if self._waiting:
            return f"{own}, waiting for the job's server to register it"
        if self._clients_ended():
            return f"{own}, every client's log ended: waiting for the job to end"
        return f"{own}, every {self.min_interval:g} to {self.max_interval:g} s"

    # -- the thread's step ------------------------------------------------------------------------------------
    def _interval(self) -> float:
        return self.next._interval() if self.next is not None else self.interval

    def poll_once(self) -> int:
        if self.finished:
            return 0
        if self.next is not None:
            return self._poll_next()
        if self._finish_requested or (self.status is not None and self._status_due() and is_terminal(self._status())):
            return self._hand_over(None)
        if self._before_ready():
            self.interval = min(self.max_interval, max(self.interval, 0.5))
            return 0
        if self._clients_ended():
            # every client's stream has ended: the job is finishing. Its server process is not asked any more (an
            # app command racing its shutdown makes NVFlare log an ERROR in the job's log); the server's last lines
            # come with the hand-over once the status is terminal
            self.interval = min(self.max_interval, max(self.interval, 0.5))
            return 0
        request: dict[str, Any] = {
            "cursors": {site: c.request() for site, c in self.cursors.items()},
            "max_bytes": self.max_bytes,
            "compact": True,
        }
        if self._metrics_subs:
            request["metrics"] = True
        try:
            reply = self.ask(request)
        except Exception as e:
            if is_job_not_found(e):
                self._end(describe_problem(e))
                return 0
            if _not_running(e) or (_no_reply(e) and self._no_replies < 3):
                # not yet (scheduled, deploying) or no more (ending; the job process may not answer while it exits):
                # the status decides
                self._no_replies += _no_reply(e)
                if self.status is None or is_terminal(self._status()):
                    return self._hand_over(None)
                if self.polls and _not_running(e) and self._gone_for() >= self.lost_after:
                    return self._lost()
                self.interval = min(self.max_interval, max(self.interval, 0.5))
                return 0
            reason = why_unavailable(e)
            if reason == NO_COMPONENT and self.expected and not self.polls and self._gone_for() < STARTUP_GRACE:
                self.interval = min(self.max_interval, max(self.interval, 0.5))  # its component registers soon
                return 0
            if reason is not None:
                return self._hand_over(reason)
            self.interval = min(self.max_interval, self.interval * self.backoff)
            raise
        self._no_replies = 0
        self._gone_since = None
        self._answered_at = self._clock()
        return self._feed(reply)

    def _before_ready(self) -> bool:
        """Whether a marked job is still to be left alone: its server has not said (in its log) that the command is
        registered — anything that reaches the job before makes NVFlare log an ERROR in the job's log. It is asked
        anyway READY_GRACE seconds after its run started without saying so (an older flarenb component), BLIND_WAIT
        seconds after the first look when the log cannot be read, and STARTUP_GRACE seconds after the first look."""
        if not self._waiting:
            return False
        state = self.ready() if self.ready is not None else "unknown"
        now = self._clock()
        self._waiting_since = now if self._waiting_since is None else self._waiting_since
        if state == "started" and self._started_since is None:
            self._started_since = now
        if state == "unknown" and self._blind_since is None:
            self._blind_since = now
        since = {"started": self._started_since, "unknown": self._blind_since}
        if (
            state == "ready"
            or (since["started"] is not None and now - since["started"] >= READY_GRACE)
            or (since["unknown"] is not None and now - since["unknown"] >= BLIND_WAIT)
            or now - self._waiting_since >= STARTUP_GRACE
        ):
            self._waiting = False  # from now on the job is asked
            return False
        return True

    def _feed(self, reply: dict) -> int:
        self.polls += 1
        self.bytes_read += len(json.dumps(reply, separators=(",", ":")))
        sites = reply.get("sites") if isinstance(reply, dict) else None
        if not isinstance(sites, dict):
            raise ValueError(f"unexpected reply to {TOPIC}: {one_line(reply, 200)}")
        rx, fed = self.receiver, 0
        for site, part in sites.items():
            if not isinstance(part, dict):
                continue
            cursor = self.cursors.setdefault(site, SiteCursor())
            raw, restarted = cursor.take(part)
            if site == METRICS_KEY:
                self._deliver_metrics(raw, restarted)
                continue
            if restarted:
                rx.marker(site, "[flarenb] … log file truncated or replaced; reading it again from the start …")
            if raw:
                rx.feed(site, raw)
                fed += len(raw)
            else:
                rx.site(site)
            self._heartbeat(site)
        now = self._clock()
        if now - self._beat_at >= HEARTBEAT_EVERY:  # a reply is the job's heartbeat: a quiet site is quiet, not gone
            self._beat_at = now
            for site in self.cursors:
                if site != METRICS_KEY and site not in sites:
                    self._heartbeat(site)
        if fed:
            self._last_data = now
        flowing = now - self._last_data < self.hold
        self.interval = self.min_interval if flowing else min(self.max_interval, self.interval * self.backoff)
        return fed

    # -- the job's round metrics (a second cursor on the same command) ------------------------------------------
    def subscribe_metrics(self, fn: Callable[[bytes], object]) -> Callable[[], None]:
        """Call ``fn(bytes)`` with the job's ``round_metrics.jsonl`` as it grows, from its start (what arrived
        before is replayed now); returns the unsubscribe call. The first subscriber makes the polls ask for it."""
        with self._metrics_lock:
            self._metrics_subs.append(fn)
            if self._metrics_seen:
                fn(bytes(self._metrics_seen))

        def unsubscribe() -> None:
            with self._metrics_lock:
                if fn in self._metrics_subs:
                    self._metrics_subs.remove(fn)

        return unsubscribe

    def _deliver_metrics(self, raw: bytes, restarted: bool) -> None:
        with self._metrics_lock:
            if restarted:  # the file was replaced: its lines come again from the start (records dedupe by round)
                self._metrics_seen.clear()
            self._metrics_seen += raw
            for fn in list(self._metrics_subs) if raw else []:
                try:
                    fn(raw)
                except Exception as e:  # a subscriber's failure never stops the logs
                    log.debug("flarenb: metrics subscriber of job %s: %s", self.name, e)

    def _clients_ended(self) -> bool:
        clients = [c for s, c in self.cursors.items() if s not in ("server", METRICS_KEY)]
        return bool(clients) and all(c.ended for c in clients)

    # -- after the job, or without the channel ----------------------------------------------------------------
    def _hand_over(self, reason: str | None) -> int:
        primed = {s: c.primed() for s, c in self.cursors.items() if s != METRICS_KEY}
        if reason is not None:
            self.fallback_reason = reason
            line = f"[flarenb] following by whole-log polling: {reason}; {ALLOW_HINT}"
            log.info("flarenb: job %s: %s", self.name, line)
            self._notice = line  # shown once whole-log polling works (a user refused that too sees why elsewhere)
        if self.then is None:
            self._end(None)
            return 0
        # a site whose stream has ended was fed to its end: after the job only the others are fetched again
        done = frozenset(s for s, c in self.cursors.items() if c.ended) if reason is None else frozenset()
        self.next = self.then(primed or None, done)
        if reason is None:
            self.next.finish()
        return self._poll_next()

    def _status_due(self) -> bool:
        """Ask the status now? Always until the job has answered and once it is finishing (every client's stream
        ended); in between at most every STATUS_EVERY seconds."""
        now = self._clock()
        if self._answered_at is not None and now - self._status_at < STATUS_EVERY and not self._clients_ended():
            return False
        self._status_at = now
        return True

    def _gone_for(self) -> float:
        now = self._clock()
        if self._gone_since is None:
            self._gone_since = now
        return now - self._gone_since

    def _lost(self) -> int:
        """The job answered, and now its server process is gone while its status stays RUNNING: follow what the
        server still holds by whole-log polling (nothing fed again), and mark where each open client stream broke."""
        self.lost = True
        log.info("flarenb: job %s: %s", self.name, LOST_NOTE)
        self._notice = LOST_NOTE
        self._gaps = [s for s, c in self.cursors.items() if s not in ("server", METRICS_KEY) and not c.ended]
        if self.then is None:
            self._end("the job's server process stopped answering")
            return 0
        self.next = self.then({s: c.primed() for s, c in self.cursors.items() if s != METRICS_KEY} or None, frozenset())
        return self._poll_next()

    def _poll_next(self) -> int:
        assert self.next is not None
        n = self.next.poll_once()
        if self._notice is not None and self.next.follows_live:  # "following by whole-log polling": only if so
            self.receiver.marker("server", self._notice)
            self._notice = None
        for site in self._gaps:  # after what the server still held of the site: the gap starts there
            self.receiver.marker(site, GAP_NOTE)
        self._gaps = []
        if self.next.finished:
            self.finished = True
        return n

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        super().stop(timeout)
        if self.next is not None:
            self.next.stop(timeout)

    def _status(self) -> str | None:
        try:
            return self.status() if self.status is not None else None
        except Exception as e:
            if is_job_not_found(e):
                self._end(describe_problem(e))
            self.errors += 1
            self.last_error = e
            return None

    def _end(self, reason: str | None) -> None:
        self.receiver.end_all(reason)
        self.finished = True


def _rest(fetch: Callable[..., dict], fed: dict[str, LogCursor], done: frozenset[str]) -> Callable[..., dict]:
    """``fetch`` for the hand-over: "all" asks each site that is not ``done`` by name (a whole log is the only
    thing the admin API returns, so a finished site is not fetched again)."""
    if not done:
        return fetch

    def fetch_rest(target: str, log_file_name: str | None = None) -> dict:
        if target != "all":
            return fetch(target, log_file_name)
        merged: dict = {"logs": {}, "unavailable": {}}
        for site in [s for s in fed if s not in done]:
            reply = fetch(site, log_file_name)
            merged["logs"].update(reply.get("logs") or {})
            merged["unavailable"].update(reply.get("unavailable") or {})
        return merged

    return fetch_rest


class _Kind:
    """Registry entry: a running job reached through the admin API whose connection can send app commands."""

    name = "cursor"

    def fits(self, spec: JobLogs) -> bool:
        return spec.ask is not None and spec.fetch is not None and not spec.paths and not spec.ended

    def open(self, receiver: Receiver, spec: JobLogs) -> LogSource:
        assert spec.ask is not None and spec.fetch is not None
        fetch = spec.fetch

        def then(primed: dict[str, LogCursor] | None, done: frozenset[str] = frozenset()) -> ThreadedSource:
            rest = _rest(fetch, primed or {}, done)
            poll = AdminPoll(receiver, rest, status=spec.status, name=spec.name, alive=spec.alive)
            poll.prime(primed or {})
            return poll

        # wrapped as the admin source would be (the live view: failures shown per site, and a user without the
        # get_job_log right served from the job's download once the hand-over's whole-log fetch is refused)
        src = CursorPoll(
            receiver,
            spec.ask,
            status=spec.status,
            then=then,
            name=spec.name,
            alive=spec.alive,
            expected=spec.ask_expected,
            ready=spec.ready,
        )
        return src if spec.wrap_admin is None else spec.wrap_admin(receiver, src)


KIND = _Kind()
