"""flarenb: NVIDIA FLARE, native in Jupyter.

``%load_ext flarenb`` registers the ``%flare`` magic; everything it does is also a Python call here.
"""

from __future__ import annotations

from . import poc
from .errors import FlareError
from .session import Flare, connect, current

__all__ = ["Flare", "FlareError", "connect", "current", "poc", "load_ipython_extension", "unload_ipython_extension"]
__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload

    unload(ipython)
