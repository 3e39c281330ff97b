"""One log follower per job in the kernel, shared by its consumers (reference counted).

    handle = follow(job_id, lambda rx: make_transport(rx, job_id, fetch=..., status=...))
    unsubscribe = handle.subscribe(callback)          # callback(Update) - see flarenb.receiver
    handle.receiver.lines("server")                    # what is in memory now
    handle.source_info                                 # how it follows, one line ("3 local log files, inotify ...")
    handle.release()                                   # the last release stops the follower

``follow(job_id, transport_factory, **receiver_kw)`` returns a :class:`FollowerHandle`. A second
call for the same ``key`` (default: ``job_id``) while the follower is running (or finished
normally, its lines still in memory) shares it and ignores the factory; a follower whose streams
timed out or were stopped is replaced by a new one. ``transport_factory(receiver)`` must return
an unstarted transport (``start()/stop()``); ``receiver_kw`` go to
:class:`flarenb.receiver.Receiver`.

``release()`` is idempotent and unsubscribes the handle's callbacks; when the last handle is
released the transport and the receiver's watchdog are stopped and their threads (daemon, named
``flarenb-...``) joined (each join bounded), and open streams end as "stopped". Rerunning a notebook cell that
releases its old handle and follows again therefore leaves no thread behind.
Calling ``release()`` or ``follow()`` from a subscriber or done callback is safe: callbacks run outside the
receiver's lock, and a stop asked from inside a callback, or from a thread flarenb started (known by identity,
:mod:`flarenb.threads`, not by name), happens on a short-lived ``flarenb-stop-...`` thread.
``handle.wait_done(timeout)`` waits (on a condition, no polling) until every site's stream closed and was
delivered. ``active_followers()`` lists ``{key: refcount}``; ``stop_all()`` stops every follower (kernel
shutdown, tests).
"""

import threading
from collections.abc import Callable, Hashable
from typing import Any

from . import threads
from .receiver import ENDED, Receiver, Update
from .sources.base import describe_source

__all__ = ["Follower", "FollowerHandle", "active_followers", "follow", "stop_all"]

_lock = threading.Lock()
_registry: dict[Hashable, "Follower"] = {}


class Follower:
    """A running receiver + transport for one job (use through :func:`follow`)."""

    def __init__(self, key: Hashable, job_id: str, receiver: Receiver, transport: Any) -> None:
        self.key, self.job_id = key, job_id
        self.receiver, self.transport = receiver, transport
        self.refs = 0
        self.stopped = False

    @property
    def reusable(self) -> bool:
        if self.stopped:
            return False
        if not self.receiver.all_closed:
            return True
        return all(self.receiver.site(s).state == ENDED for s in self.receiver.sites())

    def _start(self) -> None:
        self.receiver.start_watchdog()
        self.transport.start()

    def _stop(self) -> None:
        self.stopped = True
        if threads.in_callback() or threads.is_own() or self._owns(threading.current_thread()):
            # inside a callback, or on a thread of ours (maybe this follower's own, which cannot join itself):
            # do not block it on joins, stop from a helper thread
            threads.start(self._stop_now, f"flarenb-stop-{self.job_id}")
        else:
            self._stop_now()

    def _owns(self, thread: threading.Thread) -> bool:
        """Whether ``thread`` is this follower's transport thread (``_thread``, also of a Composite's parts)."""
        parts = [self.transport, *(getattr(self.transport, "transports", None) or ())]
        return any(getattr(p, "_thread", None) is thread for p in parts)

    def _stop_now(self) -> None:
        self.transport.stop()
        self.receiver.stop()


class FollowerHandle:
    """One consumer's share of a :class:`Follower`."""

    def __init__(self, follower: Follower) -> None:
        self._follower = follower
        self._unsubs: list[Callable[[], None]] = []
        self.released = False

    @property
    def receiver(self) -> Receiver:
        return self._follower.receiver

    @property
    def transport(self) -> Any:
        return self._follower.transport

    @property
    def job_id(self) -> str:
        return self._follower.job_id

    @property
    def source_info(self) -> str:
        """How the job's logs are followed now, in one line (the source's ``describe()``)."""
        return describe_source(self._follower.transport)

    def subscribe(self, cb: Callable[[Update], object], replay: bool = True) -> Callable[[], None]:
        """``receiver.subscribe`` that is undone by ``release()``; returns the unsubscribe function."""
        unsub = self._follower.receiver.subscribe(cb, replay=replay)
        self._unsubs.append(unsub)
        return unsub

    def wait_done(self, timeout: float) -> bool:
        """Wait at most ``timeout`` s until every site's stream closed and was delivered (see the receiver)."""
        return self._follower.receiver.wait_all_done(timeout)

    def release(self) -> None:
        """Drop this consumer; the last one stops the follower (threads joined)."""
        with _lock:
            if self.released:
                return
            self.released = True
            f = self._follower
            f.refs -= 1
            last = f.refs <= 0
            if last and _registry.get(f.key) is f:
                del _registry[f.key]
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if last:
            f._stop()

    def __enter__(self) -> "FollowerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<FollowerHandle job={self.job_id} released={self.released}>"


def follow(
    job_id: str, transport_factory: Callable[[Receiver], Any], key: Hashable | None = None, **receiver_kw: Any
) -> FollowerHandle:
    """Get a handle on the (shared) follower of ``job_id``; see the module docstring."""
    key = job_id if key is None else key
    with _lock:
        f = _registry.get(key)
        if f is not None and f.reusable:
            f.refs += 1
            return FollowerHandle(f)
        receiver_kw.setdefault("name", str(job_id))
        rx = Receiver(**receiver_kw)
        transport = transport_factory(rx)
        f = Follower(key, job_id, rx, transport)
        f.refs = 1
        old = _registry.get(key)
        _registry[key] = f
    if old is not None and old.refs <= 0:
        old._stop()
    f._start()
    return FollowerHandle(f)


def active_followers() -> dict[Hashable, int]:
    """``{key: number of handles}`` of the followers currently registered."""
    with _lock:
        return {k: f.refs for k, f in _registry.items()}


def stop_all() -> None:
    """Stop every follower (their handles become inert)."""
    with _lock:
        fs = list(_registry.values())
        _registry.clear()
    for f in fs:
        f._stop()
