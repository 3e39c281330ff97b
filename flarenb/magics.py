"""``%flare``: the IPython adapter of the sub-command registry (:mod:`flarenb.registry`).

The magic hands its line to :func:`~flarenb.registry.run_line` with the shell and returns the result for the cell
to display. A line that does not parse (:class:`~flarenb.errors.CommandLineError`) becomes IPython's
``UsageError``; errors of the call (:class:`~flarenb.errors.FlareError`) fail the cell with their one line — never
a traceback — so "Run All" stops there. Sub-commands are registered in :mod:`flarenb.registry`, not here
(``command`` and ``COMMANDS`` are re-exported for older imports).
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .errors import CommandLineError
from .registry import COMMANDS, Command, command, load_commands, overview
from .registry import run_line as _run_line

__all__ = ["COMMANDS", "Command", "FlareMagics", "command", "load", "overview", "run_line", "unload"]


def run_line(line: str, shell=None):
    """Run one ``%flare`` line as the magic does: a line that does not parse raises IPython's ``UsageError``."""
    try:
        return _run_line(line, shell)
    except CommandLineError as e:
        raise UsageError(str(e)) from None


@magics_class
class FlareMagics(Magics):
    @line_magic
    def flare(self, line: str = ""):
        return run_line(line, self.shell)


def load(ipython) -> None:
    load_commands()
    FlareMagics.flare.__doc__ = overview()
    ipython.register_magics(FlareMagics)


def unload(ipython) -> None:
    magics = ipython.magics_manager.magics["line"]
    magics.pop("flare", None)
