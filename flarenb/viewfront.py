"""What a live view shows through the widget it holds: :class:`WidgetFront`.

A view (:class:`flarenb.live.LogView`, :class:`flarenb.simview.SimView`) *uses* a
:class:`flarenb.widget.LogView` (its ``widget``) rather than being one: it drives the widget through its public
methods, and reads back what the widget shows through the read-only attributes below. Displaying the view
displays its widget (the live widget where a front end renders widgets, its static snapshot elsewhere).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from .widget import LogLine
from .widget import LogView as _Widget

__all__ = ["WidgetFront"]


def _shown(name: str) -> property:
    return property(lambda self: getattr(self.widget, name), doc=f"The widget's ``{name}`` (read-only).")


class WidgetFront:
    """The part of a view that is its widget's: display, what it shows, its download and snapshot."""

    widget: _Widget

    # what the widget shows (its synced state), read-only here: the view changes it through the widget's methods
    job_id = _shown("job_id")
    job_name = _shown("job_name")
    sites = _shown("sites")
    status = _shown("status")
    submit_time = _shown("submit_time")
    start_ts = _shown("start_ts")
    end_ts = _shown("end_ts")
    duration = _shown("duration")
    site_states = _shown("site_states")
    line_counts = _shown("line_counts")
    skipped = _shown("skipped")
    live = _shown("live")
    problem = _shown("problem")
    downloads = _shown("downloads")
    progress = _shown("progress")
    metrics = _shown("metrics")
    source_info = _shown("source_info")  # how the job's logs are followed (one line of debug info)

    def lines(self, site: str) -> list[LogLine]:
        """The lines of ``site`` the widget holds."""
        return self.widget.lines(site)

    def history_dropped(self, site: str) -> int:
        """How many of ``site``'s lines left the widget's history."""
        return self.widget.history_dropped(site)

    def download(self, directory: str | os.PathLike[str] | None = None) -> list[pathlib.Path]:
        """Write each site's complete log (see :meth:`flarenb.widget.LogView.download`)."""
        return self.widget.download(directory)

    def snapshot_text(self, tail: int = 20) -> str:
        """The widget's static snapshot as text."""
        return self.widget.snapshot_text(tail)

    def refresh_displays(self) -> None:
        """Re-send the widget's bundle to every output showing it."""
        self.widget.refresh_displays()

    # -- display: the widget ----------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        self.widget._ipython_display_()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.widget.job_id}: {self.widget.status}>"
