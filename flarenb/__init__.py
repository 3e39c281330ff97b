"""flarenb: NVIDIA FLARE, native in Jupyter.

``%load_ext flarenb`` registers the ``%flare`` magic; everything it does is also a Python call here.
"""

from __future__ import annotations

from . import poc, sim
from .compare import Comparison, compare_metrics
from .errors import FlareError
from .jobs import Job, get_job, list_jobs, wait
from .metrics import MetricRecord, Metrics
from .session import Flare, connect, current
from .submission import submit
from .workarea import clean as clean_cache

__all__ = [
    "Comparison",
    "Flare",
    "FlareError",
    "Job",
    "LogView",
    "MetricRecord",
    "Metrics",
    "clean_cache",
    "compare_metrics",
    "connect",
    "current",
    "get_job",
    "list_jobs",
    "load_ipython_extension",
    "poc",
    "sim",
    "submit",
    "unload_ipython_extension",
    "wait",
]


def __getattr__(name: str):
    if name == "LogView":  # imports the widget stack only when it is used
        from .live import LogView

        return LogView
    raise AttributeError(f"module 'flarenb' has no attribute {name!r}")


__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload

    unload(ipython)
