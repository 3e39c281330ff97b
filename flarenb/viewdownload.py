"""A log view's download button, kernel side: the lines the view holds written per site, and the reply it sends.

The view writes the complete logs through its download callback (:meth:`flarenb.widget.LogView.on_download`, e.g.
:func:`flarenb.downloads.write_site_logs`); without one, :func:`write_held_lines` writes what the view holds, one
``<site>.log`` per site (names made safe and distinct), saying at the top how many earlier lines left the view's
history. :func:`download_reply` runs a download for the browser and describes its outcome: the paths (relative to
the working folder where possible) or the error — never an exception lost in a thread.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from .safetext import safe_filename, safe_filenames

__all__ = ["DownloadCallback", "download_reply", "logs_folder", "write_held_lines"]

#: ``callback(directory)`` writes the complete logs there and returns the written paths (``LogView.on_download``)
DownloadCallback = Callable[[pathlib.Path], Iterable["str | os.PathLike[str]"]]

_log = logging.getLogger("flarenb.widget")


class _HasText(Protocol):
    @property
    def text(self) -> str: ...


def logs_folder(job_id: str, directory: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """``directory``, else ``<cwd>/<job_id>_logs`` (the id made a safe file name); created if missing."""
    target = pathlib.Path(directory) if directory is not None else pathlib.Path.cwd() / f"{safe_filename(job_id)}_logs"
    target.mkdir(parents=True, exist_ok=True)
    return target


def write_held_lines(
    target: pathlib.Path, contents: Mapping[str, tuple[Sequence[_HasText], int]]
) -> list[pathlib.Path]:
    """Write ``{site: (lines, dropped)}`` to ``target/<safe site name>.log``, one line's ``text`` per line."""
    paths = []
    names = safe_filenames(contents)
    for site in names:
        lines, dropped = contents[site]
        path = target / f"{names[site]}.log"
        with path.open("w", encoding="utf-8", errors="replace", newline="\n") as fh:
            if dropped:
                fh.write(f"[flarenb: {dropped} earlier lines were dropped from the view's history]\n")
            for line in lines:
                fh.write(line.text + "\n")
        paths.append(path)
    return paths


def download_reply(download: Callable[[], Iterable[str | os.PathLike[str]]]) -> dict[str, Any]:
    """Run ``download()``; ``{"paths": [shown paths], "error": None}``, or ``{"paths": [], "error": "Type: why"}``."""
    cwd = pathlib.Path.cwd()
    try:
        shown = []
        for p in download():
            try:
                shown.append(str(pathlib.Path(p).resolve().relative_to(cwd.resolve())))
            except ValueError:
                shown.append(str(p))
        return {"paths": shown, "error": None}
    except Exception as exc:  # reported in the widget, not lost in a thread
        _log.exception("flarenb LogView download failed")
        return {"paths": [], "error": f"{type(exc).__name__}: {exc}"}
