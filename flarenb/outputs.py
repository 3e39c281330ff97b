"""The notebook outputs that show one object, kept so that a later bundle can replace what a saved notebook keeps.

A :class:`flarenb.widget.LogView` is displayed with a display id (:meth:`Outputs.show`); once following ended,
:meth:`Outputs.refresh` re-sends its bundle — now the final static snapshot (:mod:`flarenb.snapshot`) — to every
output showing it. JupyterLab applies the update to the saved output; the live view itself is unaffected.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Outputs"]

_log = logging.getLogger("flarenb.widget")


class Outputs:
    """The display handles of one object's outputs. ``label`` names it in the log."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.handles: list[Any] = []

    def __len__(self) -> int:
        return len(self.handles)

    def show(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Display ``data`` (a raw mimebundle) as a new output with a display id, and keep its handle."""
        from IPython.display import display

        handle = display(data, raw=True, metadata=metadata, display_id=True)
        if handle is not None:
            self.handles.append(handle)

    def refresh(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Put ``data`` in every output shown so far (a failure is logged, not raised)."""
        for handle in self.handles:
            try:
                handle.update(data, raw=True, metadata=metadata)
            except Exception as exc:  # the live view is fine; only the saved notebook misses the final snapshot
                _log.warning("flarenb LogView %s: could not update its saved snapshot: %s", self.label, exc)
