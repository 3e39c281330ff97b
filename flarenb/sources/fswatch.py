"""File-system notifications for the local tail: :func:`open_watcher` ``(paths, wake, name)`` calls ``wake()`` when
one of the files may have changed, through watchdog's native observer for the platform (inotify on Linux, FSEvents on
macOS, kqueue on BSD, ReadDirectoryChangesW on Windows).

It watches folders, not files, so a file that does not exist yet, or is rotated or recreated, is still seen: for
each file, the folder it is in — or, while that folder does not exist yet, its nearest existing ancestor. ``wake()``
is called for a change to one of the files (created, written, truncated, moved, deleted) or to a folder on the way
to one; :meth:`Watcher.refresh` (the tail's thread calls it after such a change and at each safety poll) moves the
watches one level deeper when a folder appeared, or back up when one went away.

:func:`open_watcher` returns ``(None, reason)`` where notifications are unavailable: ``FLARENB_TAIL=polling`` in the
environment, watchdog not installed, only watchdog's own polling observer for this platform, or the platform refused
(``OSError``: e.g. no inotify instance or watch left for this user). The tail then polls.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .. import threads
from ..vocab import one_line

__all__ = ["ENV", "Watcher", "open_watcher"]

#: ``FLARENB_TAIL=polling`` makes every local tail poll (``events``/``auto``: notifications where available)
ENV = "FLARENB_TAIL"

_MECHANISMS = {
    "InotifyObserver": "inotify",
    "FSEventsObserver": "fsevents",
    "FSEventsObserver2": "fsevents",
    "KqueueObserver": "kqueue",
    "WindowsApiObserver": "windows",
}


def _observer_class() -> Any:
    """watchdog's native observer class for this platform (raises ImportError without watchdog)."""
    from watchdog.observers import Observer

    return Observer


class _Handler:
    """watchdog's event handler for one watched folder: wakes the tail for a change to one of ``names`` (the files
    in it, or the next folder on the way to them), and marks the watcher ``dirty`` when the watches may have to
    move."""

    def __init__(self, watcher: Watcher, names: set[str], final: bool) -> None:
        self.watcher, self.names, self.final = watcher, names, final

    def dispatch(self, event: Any) -> None:
        self.watcher.events += 1
        hit = os.path.basename(event.src_path) in self.names or (
            bool(getattr(event, "dest_path", "")) and os.path.basename(event.dest_path) in self.names
        )
        if not hit:
            return
        if event.is_directory or not self.final:
            self.watcher.dirty.set()
        self.watcher.wake()


class Watcher:
    """Watches the folders of ``paths`` with a started watchdog ``observer`` (built by :func:`open_watcher`)."""

    def __init__(self, observer: Any, paths: Iterable[str], wake: Callable[[], None]) -> None:
        self.observer = observer
        self.mechanism = _MECHANISMS.get(type(observer).__name__, type(observer).__name__)
        self.paths = [os.path.abspath(p) for p in paths]
        self.wake = wake
        self.dirty = threading.Event()  # a folder on the way changed: refresh() before the next read
        self.events = 0  # events delivered by the platform (also those for other files in the watched folders)
        self._watches: dict[str, tuple[Any, tuple[int, int]]] = {}  # folder: (watch, (st_dev, st_ino))
        self._lock = threading.Lock()
        self.closed = False

    def _targets(self) -> dict[str, tuple[set[str], bool, tuple[int, int]]]:
        """``{folder: (names, final, identity)}``: what to watch now (see the module docstring)."""
        out: dict[str, tuple[set[str], bool, tuple[int, int]]] = {}
        for path in self.paths:
            child, folder = os.path.basename(path), os.path.dirname(path)
            while True:
                try:
                    st = os.stat(folder)
                except OSError:
                    st = None
                if st is not None or os.path.dirname(folder) == folder:
                    break
                child, folder = os.path.basename(folder), os.path.dirname(folder)
            if st is None:  # not even the root: nothing to watch
                continue
            names, final, _ = out.get(folder, (set(), True, (0, 0)))
            out[folder] = (names | {child}, final and child == os.path.basename(path), (st.st_dev, st.st_ino))
        return out

    def refresh(self) -> None:
        """Watch what :meth:`_targets` says now (raises OSError when the platform refuses a watch)."""
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )

        kinds = [
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileDeletedEvent,
            DirCreatedEvent,
            DirMovedEvent,
            DirDeletedEvent,
        ]
        with self._lock:
            if self.closed:
                return
            self.dirty.clear()
            targets = self._targets()
            for folder, (watch, ident) in list(self._watches.items()):
                if folder not in targets or targets[folder][2] != ident:  # gone, or another folder by that name now
                    del self._watches[folder]
                    try:
                        self.observer.unschedule(watch)
                    except (KeyError, OSError):
                        pass
            for folder, (names, final, ident) in targets.items():
                if folder not in self._watches:
                    handler = _Handler(self, names, final)
                    watch = self.observer.schedule(handler, folder, recursive=False, event_filter=kinds)
                    self._watches[folder] = (watch, ident)

    @property
    def folders(self) -> list[str]:
        return sorted(self._watches)

    def close(self, timeout: float) -> bool:
        """Stop the observer and its threads (joined at most ``timeout`` s); True if they are gone. Idempotent."""
        with self._lock:
            first, self.closed = not self.closed, True
            self._watches.clear()
        if first:  # also when never started: schedule() may have started the platform's reader already
            self.observer.stop()
        return threads.join(self.observer, timeout) if self.observer.is_alive() else True


def open_watcher(
    paths: Iterable[str], wake: Callable[[], None], name: str, mode: str | None = None
) -> tuple[Watcher | None, str | None]:
    """A started :class:`Watcher` of ``paths`` and None, or None and why notifications are unavailable.

    ``mode``: "events" or "auto" (notifications where available), "polling" (none); default: ``$FLARENB_TAIL``.
    """
    mode = (mode or os.environ.get(ENV) or "auto").strip().lower()
    if mode == "polling":
        return None, f"polling requested ({ENV}=polling)" if os.environ.get(ENV) else "polling requested"
    try:
        cls = _observer_class()
    except ImportError as e:
        return None, f"watchdog is not installed ({one_line(e, 200)})"
    observer = None
    try:
        observer = cls()
        if type(observer).__name__ not in _MECHANISMS:
            return None, f"no native file-system notifications here (watchdog's {type(observer).__name__})"
        observer.name = f"flarenb-fswatch-{name}"
        observer.daemon = True
        watcher = Watcher(observer, paths, wake)
        watcher.refresh()
        observer.start()
    except OSError as e:  # e.g. ENOSPC: the user's inotify watches are used up; EMFILE: no inotify instance left
        if observer is not None:
            Watcher(observer, (), wake).close(2.0)
        return None, f"file-system notifications unavailable: {one_line(e, 200)}"
    return watcher, None
