"""One line of progress that updates in place: a display in a notebook, stderr lines elsewhere."""

from __future__ import annotations

import sys


class StatusLine:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._handle = None
        self._last: str | None = None

    def __call__(self, text: str) -> None:
        if not self.enabled or text == self._last:
            return
        self._last = text
        try:
            from IPython import get_ipython
            from IPython.display import display

            if getattr(get_ipython(), "kernel", None) is not None:
                if self._handle is None:
                    self._handle = display({"text/plain": text}, raw=True, display_id=True)
                else:
                    self._handle.update({"text/plain": text}, raw=True)
                return
        except ImportError:
            pass
        print(text, file=sys.stderr, flush=True)
