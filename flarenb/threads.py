"""Thread contracts of flarenb: its own threads are known by identity, every join is bounded.

* :func:`start` starts a daemon thread and records it; :func:`is_own` says whether a thread (default: the current
  one) was started that way. Names (``flarenb-...``) are for humans and tests, never for decisions.
* :func:`join` never waits on the current thread and never waits without a timeout; it returns whether the thread
  is gone.
* :class:`Periodic` runs a function every ``period`` s on such a thread until stopped (bounded join).
* :func:`delivering` marks the current thread as running a subscriber/done callback of a receiver (nested use is
  fine); :func:`in_callback` reads the mark. Code that must not block a delivery (e.g. stopping a follower, which
  joins threads) checks it and hands the work to a new thread instead.
"""

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "DEFAULT_JOIN_TIMEOUT",
    "Periodic",
    "delivering",
    "enter_delivery",
    "in_callback",
    "is_own",
    "join",
    "leave_delivery",
    "start",
]

DEFAULT_JOIN_TIMEOUT = 5.0

_own: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
_own_lock = threading.Lock()
_local = threading.local()


def start(
    target: Callable[..., object], name: str, args: tuple[Any, ...] = (), daemon: bool = True
) -> threading.Thread:
    """Start ``target(*args)`` on a new thread known to be flarenb's (see :func:`is_own`)."""
    t = threading.Thread(target=target, args=args, name=name, daemon=daemon)
    with _own_lock:
        _own.add(t)
    t.start()
    return t


def is_own(thread: threading.Thread | None = None) -> bool:
    """Whether ``thread`` (default: the current thread) was started by :func:`start`."""
    t = threading.current_thread() if thread is None else thread
    with _own_lock:
        return t in _own


def join(thread: threading.Thread | None, timeout: float = DEFAULT_JOIN_TIMEOUT) -> bool:
    """Wait at most ``timeout`` s for ``thread`` to end (never for the current thread). True if it is gone."""
    if thread is None:
        return True
    if thread is threading.current_thread():
        return False
    thread.join(timeout)
    return not thread.is_alive()


def enter_delivery() -> None:
    """The current thread starts running receiver callbacks (pair with :func:`leave_delivery`; nests)."""
    _local.depth = getattr(_local, "depth", 0) + 1


def leave_delivery() -> None:
    _local.depth -= 1


@contextlib.contextmanager
def delivering() -> Iterator[None]:
    """Mark the current thread as running receiver callbacks for the duration of the block."""
    enter_delivery()
    try:
        yield
    finally:
        leave_delivery()


def in_callback() -> bool:
    """Whether the current thread is running a receiver's subscriber or done callback."""
    return getattr(_local, "depth", 0) > 0


class Periodic:
    """``fn()`` every ``period`` s on a thread of ours, until :meth:`stop` or until ``until()`` is true after a run."""

    def __init__(
        self, fn: Callable[[], object], period: float, name: str, until: Callable[[], bool] | None = None
    ) -> None:
        self._stop = threading.Event()
        self.thread = start(self._run, name, args=(fn, period, until))

    def _run(self, fn: Callable[[], object], period: float, until: Callable[[], bool] | None) -> None:
        while not self._stop.wait(period):
            fn()
            if until is not None and until():
                return

    def stop(self, timeout: float = DEFAULT_JOIN_TIMEOUT) -> bool:
        """Stop and wait at most ``timeout`` s (not at all from its own thread). True if the thread is gone."""
        self._stop.set()
        return join(self.thread, timeout)
