"""The %flare registry on its own (``flarenb.registry.run_line``): no IPython, one-line errors, every command module
joined; and the IPython magic that turns its usage errors into ``UsageError``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flarenb import registry
from flarenb.errors import CommandLineError, FlareError, NotConnected
from flarenb.registry import COMMANDS, run_line

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_connection(monkeypatch, tmp_path):
    from flarenb import session

    monkeypatch.setattr(session, "_current", None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no local simulations listed
    # nothing to connect to (else the first command connects as the nvflare CLI does, e.g. to the session's POC)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NVFLARE_POC_WORKSPACE", str(tmp_path / "poc"))
    monkeypatch.delenv("NVFLARE_STARTUP_KIT_DIR", raising=False)


def error(line: str, kind=CommandLineError) -> str:
    with pytest.raises(kind) as info:
        run_line(line)
    return str(info.value)


def test_without_ipython_every_command_is_there_and_ipython_is_never_imported(tmp_path):
    """A fresh interpreter: run_line works before any magic is loaded, and never imports IPython."""
    script = textwrap.dedent(
        """
        import sys
        from flarenb.errors import NotConnected
        from flarenb.registry import run_line
        run_line("help")
        try:
            run_line("list")
        except NotConnected as e:
            print("ERROR", e)
        print("IPYTHON", sorted(m for m in sys.modules if m.split(".")[0] == "IPython"))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # HOME, the POC workspace and XDG_DATA_HOME: the fixture's
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=True
    ).stdout
    assert out.startswith("Usage: %flare COMMAND [flags]")
    assert "  list  " in out and "  sim  " in out
    assert "ERROR Not connected to FLARE." in out and "unknown command" not in out
    assert "IPYTHON []" in out


def test_every_command_module_is_joined():
    registry.load_commands()
    assert {"connect", "use", "info", "poc", "submit", "list", "logs", "sim"} <= set(COMMANDS)
    assert registry.COMMAND_MODULES[:2] == ("flarenb.commands", "flarenb.sim_commands")
    assert all(m in sys.modules for m in registry.COMMAND_MODULES)
    assert any(a.dest == "sim" for a in COMMANDS["submit"].parser._actions)  # the simulator's flags joined submit


@pytest.mark.parametrize("line", ["", "   ", "help", "-h", "--help"])
def test_an_empty_line_or_help_prints_the_overview(line, capsys):
    assert run_line(line) is None
    out = capsys.readouterr().out
    assert out.startswith("Usage: %flare COMMAND [flags]")
    for name, cmd in COMMANDS.items():
        assert f"  {name}" in out and cmd.summary in out


def test_help_for_a_command_and_its_help_flag(capsys):
    assert run_line("help logs") is None
    assert capsys.readouterr().out.startswith("usage: %flare logs")
    assert run_line("sim --help") is None
    assert "--older-than" in capsys.readouterr().out


def test_unknown_command_is_one_line_naming_help():
    assert error("bogus") == "%flare: unknown command 'bogus'. Run '%flare help' to list the commands"
    assert error("lst") == "%flare: unknown command 'lst'. Run '%flare help' to list the commands"
    assert error("lis") == "%flare: unknown command 'lis'. Did you mean list? Run '%flare help' to list the commands"
    assert error("help bogus") == "%flare help: unknown command 'bogus'. Run '%flare help' to list the commands"


def test_bad_flags_are_one_line_usage_errors():
    assert error("list --bogus") == "%flare list: unrecognized arguments: --bogus. See '%flare help list'"
    assert error("list -m x") == "%flare list: argument -m/--max: invalid int value: 'x'. See '%flare help list'"
    assert error("sim list --older-than 3") == "%flare sim: --older-than only with clean"
    assert error("submit x --clients 3") == "%flare submit: --clients only with --sim. See '%flare help submit'"
    assert error('connect --startup-kit "unclosed') == (
        "%flare: cannot parse the line (No closing quotation). Check the quotes"
    )
    for line in ("list --bogus", "bogus", "sim list --older-than 3"):
        with pytest.raises(CommandLineError) as info:
            run_line(line)
        assert isinstance(info.value, FlareError) and "\n" not in str(info.value)
        assert info.value.__traceback__ is not None and info.value.__cause__ is None


def test_a_failed_call_raises_its_flare_error():
    assert isinstance(error("info", NotConnected), str)


def test_the_magic_turns_usage_errors_into_ipython_usage_errors(ip):
    from IPython.core.error import UsageError

    from flarenb import magics

    with pytest.raises(UsageError) as info:
        ip.run_line_magic("flare", "list --bogus")
    assert str(info.value) == "%flare list: unrecognized arguments: --bogus. See '%flare help list'"
    assert not isinstance(info.value, CommandLineError)
    with pytest.raises(UsageError, match="only with clean"):  # raised by the command, not its parser
        ip.run_line_magic("flare", "sim list --older-than 3")
    with pytest.raises(NotConnected):  # a failed call stays its FlareError
        ip.run_line_magic("flare", "info")
    with pytest.raises(UsageError, match="unknown command 'bogus'"):
        magics.run_line("bogus")


def test_old_imports_still_work():
    from flarenb.magics import COMMANDS as old_commands
    from flarenb.magics import command as old_command

    assert old_commands is COMMANDS and old_command is registry.command
