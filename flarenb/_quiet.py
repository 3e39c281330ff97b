"""Keep NVFlare's console chatter out of notebook cells, without touching ``sys.stdout``/``sys.stderr``.

When a session connects, NVFlare prints "Connecting to FLARE ..." and logs cell-network INFO lines. Inside
:func:`quiet`:

* NVFlare's loggers (``_NOISY``) are raised to WARNING, and the handlers of the root logger and of those loggers
  drop their records below WARNING (for a child logger with its own lower level); both are undone when the last
  ``quiet()`` block still open in the process exits (blocks nest and overlap across threads: a count under a
  lock). Levels or filters that someone else changed meanwhile are left as they are.
* NVFlare's console messages (everything its admin client prints goes through
  ``nvflare.fuel.hci.client.api._print_hci_message``) written by the thread inside the block go to the block's
  buffer, kept for debugging as :func:`last_output`; a wrapper around that function is installed once and lets
  every other thread's messages through. Nobody's ``print()`` is touched: the process-wide streams are never
  swapped, so what the user prints from another thread meanwhile still reaches the cell.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

_lock = threading.Lock()
_local = threading.local()
_last = ""
_NOISY = ("nvflare", "FederatedClient", "Communicator", "CoreCell", "Cell", "ConnectorManager")
_depth = 0  # quiet() blocks open in the process
_saved_levels: dict[str, int] = {}
_filtered: list[logging.Handler] = []
_hooked = False


def _noisy(name: str) -> bool:
    return any(name == n or name.startswith(n + ".") for n in _NOISY)


class _DropNvflareInfo(logging.Filter):
    """Drops NVFlare's records below WARNING (installed on handlers while a quiet() block is open)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _noisy(record.name)


_FILTER = _DropNvflareInfo()


def _silence() -> None:
    """First block opened: raise NVFlare's loggers to WARNING and filter the handlers (under _lock)."""
    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    for name in _NOISY:
        logger = logging.getLogger(name)
        handlers.extend(logger.handlers)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            _saved_levels[name] = logger.level
            logger.setLevel(logging.WARNING)
    for h in dict.fromkeys(handlers):
        if _FILTER not in h.filters:
            h.addFilter(_FILTER)
            _filtered.append(h)


def _restore() -> None:
    """Last block closed: undo :func:`_silence` where nobody changed it since (under _lock)."""
    for name, level in _saved_levels.items():
        logger = logging.getLogger(name)
        if logger.level == logging.WARNING:
            logger.setLevel(level)
    _saved_levels.clear()
    for h in _filtered:
        h.removeFilter(_FILTER)
    _filtered.clear()


def _buffer() -> io.StringIO | None:
    """The buffer of the innermost quiet() block of the current thread, if any."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


def _hook_nvflare_prints() -> None:
    """Wrap NVFlare's console-message function once (and where it was imported by name)."""
    global _hooked
    with _lock:
        if _hooked:
            return
        _hooked = True
    try:
        from nvflare.fuel.hci.client import api
    except Exception:  # no NVFlare (or it changed): nothing to hook, its messages are printed
        return
    original: Callable[[str], Any] | None = getattr(api, "_print_hci_message", None)
    if original is None or getattr(original, "_flarenb_quiet", False):
        return

    def _print_hci_message(msg: str) -> None:
        buf = _buffer()
        if buf is not None:
            buf.write(f"{msg}\n")
        else:
            original(msg)

    _print_hci_message._flarenb_quiet = True  # type: ignore[attr-defined]
    api._print_hci_message = _print_hci_message
    try:
        from nvflare.fuel.hci.client import file_transfer
    except Exception:
        return
    if getattr(file_transfer, "_print_hci_message", None) is original:
        file_transfer._print_hci_message = _print_hci_message


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Silence NVFlare's INFO logging and the console messages NVFlare writes on this thread for the block."""
    global _depth, _last
    _hook_nvflare_prints()
    buf = io.StringIO()
    with _lock:
        if _depth == 0:
            _silence()
        _depth += 1
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(buf)
    try:
        yield buf
    finally:
        stack.pop()
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()
            _last = buf.getvalue()


def last_output() -> str:
    """What the last quieted block printed (for debugging a failed connect)."""
    return _last
