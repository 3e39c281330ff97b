"""File-system notifications for the local tail: :func:`open_watcher` ``(paths, wake, name)`` calls ``wake()`` when
one of the files may have changed, through watchdog's native observer for the platform (inotify on Linux, FSEvents on
macOS, kqueue on BSD, ReadDirectoryChangesW on Windows).

It watches folders, not files, so a file that does not exist yet, or is rotated or recreated, is still seen: for
each file, the folder it is in and that folder's parent (for the folder itself moving away or coming back; only
folder events there, not the writes to other files) — or, while the folder does not exist yet, its nearest existing
ancestor. ``wake()`` is called for a change to one of the files (created, written, truncated, moved, deleted) or to
a folder on the way to one; :meth:`Watcher.refresh` (the tail's thread calls it after such a change and at each
safety poll) moves the watches one level deeper when a folder appeared, or back up when one went away.

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


def _mechanism(observer: Any) -> str | None:
    """The mechanism of a watchdog observer: "inotify", "fsevents", "kqueue", "windows"; None for its polling one."""
    return next((_MECHANISMS[c.__name__] for c in type(observer).__mro__ if c.__name__ in _MECHANISMS), None)


def _observer_class() -> Any:
    """watchdog's native observer class for this platform (raises ImportError without watchdog)."""
    from watchdog.observers import Observer

    return Observer


class _Handler:
    """watchdog's event handler for one watched folder: wakes the tail for a change to one of ``files`` (in that
    folder) or ``dirs`` (the next folder on the way to a file), and marks the watcher ``dirty`` for the latter
    (the watches may have to move)."""

    def __init__(self, watcher: Watcher, files: set[str], dirs: set[str]) -> None:
        self.watcher, self.files, self.dirs = watcher, files, dirs

    def dispatch(self, event: Any) -> None:
        self.watcher.events += 1
        names = {os.path.basename(event.src_path), os.path.basename(getattr(event, "dest_path", "") or "")}
        if names & self.dirs:
            self.watcher.dirty.set()
        elif not names & self.files:
            return
        self.watcher.wake()


_Target = tuple[set[str], set[str], tuple[int, int]]  # (file names, folder names, (st_dev, st_ino)) of a folder


def _event_kinds(files: bool) -> list[Any]:
    """The watchdog events asked for a folder holding watched files (``files``), or only on the way to some."""
    from watchdog import events as ev

    dirs = [ev.DirCreatedEvent, ev.DirMovedEvent, ev.DirDeletedEvent]
    if not files:  # e.g. a site's folder: the job's run folder appearing or moving, not the site's own log
        return dirs
    return [ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileMovedEvent, ev.FileDeletedEvent, *dirs]


class Watcher:
    """Watches the folders of ``paths`` with a started watchdog ``observer`` (built by :func:`open_watcher`)."""

    def __init__(self, observer: Any, paths: Iterable[str], wake: Callable[[], None]) -> None:
        self.observer = observer
        self.mechanism = _mechanism(observer) or type(observer).__name__
        self.paths = [os.path.abspath(p) for p in paths]
        self.wake = wake
        self.dirty = threading.Event()  # a folder on the way changed: refresh() before the next read
        self.events = 0  # events delivered by the platform (also those for other files in the watched folders)
        self._watches: dict[
            str, tuple[Any, _Handler, tuple[int, int], bool]
        ] = {}  # folder: (watch, handler, id, files)
        self._lock = threading.Lock()
        self.closed = False

    def _targets(self) -> dict[str, _Target]:
        """What to watch now: each file's folder and that folder's parent (it moving away, or coming back, is seen);
        while the folder does not exist, its nearest existing ancestor."""
        out: dict[str, _Target] = {}

        def add(folder: str, name: str, is_file: bool) -> bool:
            try:
                st = os.stat(folder)
            except OSError:
                return False
            files, dirs, _ = out.setdefault(folder, (set(), set(), (st.st_dev, st.st_ino)))
            (files if is_file else dirs).add(name)
            return True

        for path in self.paths:
            folder = os.path.dirname(path)
            if add(folder, os.path.basename(path), True):
                if os.path.dirname(folder) != folder:
                    add(os.path.dirname(folder), os.path.basename(folder), False)
                continue
            while os.path.dirname(folder) != folder and not add(
                os.path.dirname(folder), os.path.basename(folder), False
            ):
                folder = os.path.dirname(folder)
        return out

    def refresh(self) -> None:
        """Watch what :meth:`_targets` says now (raises OSError when the platform refuses a watch)."""
        with self._lock:
            if self.closed:
                return
            self.dirty.clear()
            targets = self._targets()
            for folder, (watch, handler, ident, has_files) in list(self._watches.items()):
                want = targets.get(folder)
                # gone, another folder by that name now, or files to watch in it now (or no more)
                if want is None or want[2] != ident or bool(want[0]) != has_files:
                    del self._watches[folder]
                    try:
                        self.observer.unschedule(watch)
                    except (KeyError, OSError):
                        pass
                else:
                    handler.files, handler.dirs = want[0], want[1]
            for folder, (files, dirs, ident) in targets.items():
                if folder not in self._watches:
                    handler = _Handler(self, files, dirs)
                    kinds = _event_kinds(bool(files))
                    watch = self.observer.schedule(handler, folder, recursive=False, event_filter=kinds)
                    self._watches[folder] = (watch, handler, ident, bool(files))

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
    by_env = not mode and bool(os.environ.get(ENV))
    mode = (mode or os.environ.get(ENV) or "auto").strip().lower()
    if mode == "polling":
        return None, f"{ENV}=polling" if by_env else "polling requested (mechanism='polling')"
    try:
        cls = _observer_class()
    except ImportError as e:
        return None, f"watchdog is not installed ({one_line(e, 200)})"
    observer = None
    try:
        observer = cls()
        if _mechanism(observer) is None:
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
