"""Keep NVFlare's console chatter out of notebook cells.

NVFlare prints "Connecting to FLARE ..." on stdout and logs cell-network INFO lines when a session connects.
Inside :func:`quiet` those go to a buffer (kept for debugging as ``last_output()``), never to the cell.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading

_lock = threading.Lock()
_last = ""
_NOISY = ("nvflare", "FederatedClient", "Communicator", "CoreCell", "Cell", "ConnectorManager")


def _quiet_loggers() -> None:
    for name in _NOISY:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet():
    """Swallow stdout/stderr writes and INFO logging from NVFlare for the duration of the block."""
    global _last
    _quiet_loggers()
    buf = io.StringIO()
    with _lock, contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            yield buf
        finally:
            _last = buf.getvalue()


def last_output() -> str:
    """What the last quieted block printed (for debugging a failed connect)."""
    return _last
