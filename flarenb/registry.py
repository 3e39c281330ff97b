"""The ``%flare`` sub-command registry: parse one line, run the command, no IPython needed.

``run_line("list -n cifar")`` does what ``%flare list -n cifar`` does in a notebook; the magic
(:mod:`flarenb.magics`) is only the IPython adapter around it. Each sub-command is registered exactly once with
:func:`command`: its one-line summary, its argparse flags (named as in the ``nvflare`` CLI) and the function that
calls the Python API with the parsed namespace. A line that does not parse raises :class:`CommandLineError`, a
failed call its :class:`~flarenb.errors.FlareError` — one line each, never a traceback.

Adding a sub-command — one new file, one line here:

1. Write ``flarenb/<topic>_commands.py``: for each sub-command, a flag function and the call::

       from .registry import command

       def _flags(p) -> None:
           p.add_argument("job_id", metavar="JOB_ID", help="job id")

       @command("pause", "pause a running job", _flags)
       def _pause(ns):
           return jobs.pause(ns.job_id)

   Errors the user can fix are raised as :class:`~flarenb.errors.FlareError` (a bad combination of flags as
   :class:`CommandLineError`). A module that changes commands of an earlier module (as
   :mod:`flarenb.sim_commands` adds ``--sim`` to ``submit``) imports that module and does so when it is imported.
2. Add its module name to :data:`COMMAND_MODULES`. The registry imports them, in that order, the first time a
   command is looked up, so ``%flare help`` and ``run_line`` see every command.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CommandLineError, FlareError

__all__ = [
    "COMMANDS",
    "COMMAND_MODULES",
    "Command",
    "CommandLineError",
    "CommandParser",
    "command",
    "load_commands",
    "overview",
    "run_line",
]

#: the modules that register sub-commands, imported in this order on first use (see the module doc)
COMMAND_MODULES: tuple[str, ...] = (
    "flarenb.commands",
    "flarenb.sim_commands",
    "flarenb.metrics_commands",
)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that raises one-line :class:`CommandLineError` instead of printing usage and exiting."""

    def error(self, message: str):
        raise CommandLineError(f"{self.prog}: {message}. See '%flare help {self.prog.split()[-1]}'")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise CommandLineError(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    pass


@dataclass
class Command:
    name: str
    summary: str
    parser: CommandParser
    run: Callable[[argparse.Namespace], Any]


#: every registered sub-command by name, in registration order (complete once :func:`load_commands` has run)
COMMANDS: dict[str, Command] = {}

_loaded = False
_loading = threading.RLock()


def command(name: str, summary: str, args: Callable[[CommandParser], None] = lambda p: None):
    """Register ``%flare NAME``: ``args`` adds its flags; the decorated function gets the parsed namespace
    (plus ``ns.shell``, the IPython shell or None)."""

    def register(fn: Callable[[argparse.Namespace], Any]):
        if name in COMMANDS:
            raise ValueError(f"%flare {name} is registered twice")
        parser = CommandParser(prog=f"%flare {name}", description=summary, add_help=True)
        args(parser)
        COMMANDS[name] = Command(name, summary, parser, fn)
        return fn

    return register


def load_commands() -> dict[str, Command]:
    """Import every module of :data:`COMMAND_MODULES` (once) and return :data:`COMMANDS`."""
    global _loaded
    if not _loaded:
        with _loading:
            if not _loaded:
                for module in COMMAND_MODULES:
                    importlib.import_module(module)
                _loaded = True
    return COMMANDS


def overview() -> str:
    """``%flare help``: the usage line and one row per command."""
    commands = load_commands()
    width = max((len(n) for n in commands), default=0)
    rows = [f"  {name:<{width}}  {cmd.summary}" for name, cmd in commands.items()]
    return "Usage: %flare COMMAND [flags]   (%flare help COMMAND for its flags)\n\nCommands:\n" + "\n".join(rows)


def run_line(line: str, shell=None) -> Any:
    """Parse and run one ``%flare`` line (what the magic does; ``shell`` is the IPython shell, if any).

    An empty line prints the overview. Raises :class:`CommandLineError` for a line that does not parse and the
    command's :class:`~flarenb.errors.FlareError` for a call that failed — each one line.
    """
    try:
        argv = shlex.split(line or "", comments=False)  # as IPython's arg_split(line, posix=True)
    except ValueError as e:
        raise CommandLineError(f"%flare: cannot parse the line ({e}). Check the quotes") from None
    if not argv or argv[0] in ("help", "-h", "--help"):
        return _help(argv[1:])
    commands = load_commands()
    name, rest = argv[0], argv[1:]
    cmd = commands.get(name)
    if cmd is None:
        close = [n for n in commands if n.startswith(name[:3])]
        hint = f"Did you mean {' or '.join(close)}? " if close else ""
        raise CommandLineError(f"%flare: unknown command '{name}'. {hint}Run '%flare help' to list the commands")
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
    cmd = load_commands().get(args[0])
    if cmd is None:
        raise CommandLineError(f"%flare help: unknown command '{args[0]}'. Run '%flare help' to list the commands")
    print(cmd.parser.format_help().rstrip())
    return None
