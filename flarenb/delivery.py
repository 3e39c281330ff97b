"""Callbacks made outside a state lock, in order, exactly once: the delivery half of :class:`flarenb.receiver.Receiver`.

The owner queues deliveries with :meth:`Outbox.put` while it holds its state lock (so the queue's order is the
order of the state changes) and calls :meth:`Outbox.deliver` after releasing it. Deliveries are made one at a
time under a delivery lock distinct from the state lock: the thread that finds deliveries pending and nobody
delivering makes them all; any other thread (or the delivering thread itself, called again from inside a
callback) only queues and returns, and the delivering thread takes its deliveries after the current one (it
looks at the queue again after releasing the delivery lock, so nothing is left behind). Each subscriber thus
gets every update once, in order, and a callback may call back into its owner or take any lock.

:meth:`Outbox.wait` waits (bounded) until the deliveries queued so far are made. Exceptions raised by callbacks
are logged and swallowed.
"""

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from . import threads

__all__ = ["Outbox", "Subscription"]

log = logging.getLogger(__name__)


class Subscription:
    """One subscriber (the same callable may be subscribed twice); inactive ones get nothing more."""

    __slots__ = ("active", "cb")

    def __init__(self, cb: Callable[[Any], object]) -> None:
        self.cb = cb
        self.active = True


class Outbox:
    """Queued deliveries: ``(subscriptions, update, done)``; ``done()``, if not None, is called after them."""

    def __init__(self) -> None:
        self._items: collections.deque[tuple[tuple[Subscription, ...], Any, Callable[[], object] | None]]
        self._items = collections.deque()
        self.queued = 0  # deliveries ever queued (under the owner's state lock)
        self._made = 0  # deliveries ever made
        self._waiters = 0  # threads in wait() (under _made_cond)
        self._made_cond = threading.Condition(threading.Lock())
        self._lock = threading.Lock()  # the delivery lock
        self._deliverer: int | None = None  # ident of the thread delivering now

    @property
    def made(self) -> int:
        """Deliveries made so far."""
        return self._made

    def put(self, subs: tuple[Subscription, ...], update: Any, done: Callable[[], object] | None = None) -> None:
        """Queue a delivery (the caller holds its state lock)."""
        self._items.append((subs, update, done))
        self.queued += 1

    def deliver(self) -> None:
        """Make the queued deliveries, unless another thread (or this one, further up) is making them."""
        items = self._items
        while items:
            if not self._lock.acquire(blocking=False):
                return  # that thread delivers ours too: it looks at the queue again after releasing
            self._deliverer = threading.get_ident()
            threads.enter_delivery()
            try:
                while items:
                    subs, update, done = items.popleft()  # only the delivery lock's holder pops
                    try:
                        for sub in subs:
                            if sub.active:
                                _call(sub.cb, update)
                        if done is not None:
                            _call(done)
                    finally:
                        self._made += 1  # only the delivery lock's holder writes it
                        if self._waiters:  # read after the write: a waiter counted later sees the new value
                            with self._made_cond:
                                self._made_cond.notify_all()
            finally:
                threads.leave_delivery()
                self._deliverer = None
                self._lock.release()

    def wait(self, upto: int, timeout: float) -> bool:
        """Deliver, or wait at most ``timeout`` s for the thread delivering, until ``upto`` deliveries are made.
        False at once when called from inside one of this outbox's callbacks (they come after it returns)."""
        self.deliver()
        if self._made >= upto:
            return True
        if self._deliverer == threading.get_ident():
            return False
        with self._made_cond:
            self._waiters += 1
            try:
                return self._made_cond.wait_for(lambda: self._made >= upto, max(timeout, 0.0))
            finally:
                self._waiters -= 1


def _call(cb: Callable[..., object], *args: object) -> None:
    try:
        cb(*args)
    except Exception:  # a consumer's bug must not stop the transport
        log.exception("flarenb log callback failed")
