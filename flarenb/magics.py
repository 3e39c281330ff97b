"""``%flare``: a thin layer over flarenb's Python API.

Each sub-command is registered exactly once, here, with :func:`command`: its one-line summary, its argparse
flags (named as in the ``nvflare`` CLI) and the function that calls the Python API. Parsing errors become
IPython ``UsageError``; errors of the call (:class:`~flarenb.errors.FlareError`) fail the cell with their one
line — never a traceback — so "Run All" stops there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.utils.process import arg_split

from .errors import FlareError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises one-line UsageErrors instead of printing usage and exiting."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}. See '%flare help {self.prog.split()[-1]}'")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    pass


@dataclass
class Command:
    name: str
    summary: str
    parser: _Parser
    run: Callable[[argparse.Namespace], Any]


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, args: Callable[[_Parser], None] = lambda p: None):
    """Register ``%flare NAME``: ``args`` adds its flags; the decorated function gets the parsed namespace."""

    def register(fn: Callable[[argparse.Namespace], Any]):
        if name in COMMANDS:
            raise ValueError(f"%flare {name} is registered twice")
        parser = _Parser(prog=f"%flare {name}", description=summary, add_help=True)
        args(parser)
        COMMANDS[name] = Command(name, summary, parser, fn)
        return fn

    return register


def overview() -> str:
    width = max(len(n) for n in COMMANDS)
    rows = [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    return "Usage: %flare COMMAND [flags]   (%flare help COMMAND for its flags)\n\nCommands:\n" + "\n".join(rows)


def run_line(line: str, shell=None) -> Any:
    """Parse and run one ``%flare`` line (what the magic does; usable without IPython too)."""
    try:
        argv = arg_split(line, posix=True)
    except ValueError as e:
        raise UsageError(f"%flare: cannot parse the line ({e}). Check the quotes") from None
    if not argv or argv[0] in ("help", "-h", "--help"):
        return _help(argv[1:])
    name, rest = argv[0], argv[1:]
    cmd = COMMANDS.get(name)
    if cmd is None:
        close = [n for n in COMMANDS if n.startswith(name[:3])]
        hint = f"Did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(f"%flare: unknown command '{name}'. {hint}Run '%flare help' to list the commands")
    try:
        ns = cmd.parser.parse_args(rest)
    except _HelpShown:
        return None
    ns.shell = shell
    try:
        return cmd.run(ns)
    except FlareError as e:
        raise e.with_traceback(None) from None  # shown as one line (FlareError._render_traceback_)


def _help(args: list[str]) -> None:
    if not args:
        print(overview())
        return None
    cmd = COMMANDS.get(args[0])
    if cmd is None:
        raise UsageError(f"%flare help: unknown command '{args[0]}'. Run '%flare help' to list the commands")
    print(cmd.parser.format_help().rstrip())
    return None


@magics_class
class FlareMagics(Magics):
    @line_magic
    def flare(self, line: str = ""):
        return run_line(line, self.shell)


def load(ipython) -> None:
    from . import commands  # noqa: F401 - registers the sub-commands

    FlareMagics.flare.__doc__ = overview()
    ipython.register_magics(FlareMagics)


def unload(ipython) -> None:
    magics = ipython.magics_manager.magics["line"]
    magics.pop("flare", None)
