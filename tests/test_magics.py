"""%flare parsing and errors, through a real IPython shell, with the exact one-line messages."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from flarenb.errors import FlareError


@pytest.fixture(autouse=True)
def no_connection(monkeypatch, tmp_path_factory):
    """Nothing to connect to: no connection kept, no kit configured, no local FLARE in this HOME (otherwise the
    first command would connect as the nvflare CLI does — to the test session's POC, say)."""
    from flarenb import session

    monkeypatch.setattr(session, "_current", None)
    home = tmp_path_factory.mktemp("no-flare-home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NVFLARE_POC_WORKSPACE", str(home / "poc"))
    monkeypatch.delenv("NVFLARE_STARTUP_KIT_DIR", raising=False)


def flare(ip, line):
    return ip.run_line_magic("flare", line)


def error(ip, line, kind=UsageError) -> str:
    """The one-line message: UsageError for a bad command line, FlareError for a call that failed."""
    with pytest.raises(kind) as info:
        flare(ip, line)
    return str(info.value)


def test_overview_lists_every_command_once(ip, capsys):
    from flarenb.registry import COMMANDS

    for line in ["", "help"]:
        flare(ip, line)
        out = capsys.readouterr().out
        assert out.startswith("Usage: %flare COMMAND [flags]")
        for name, cmd in COMMANDS.items():
            assert f"  {name}" in out and cmd.summary in out
    assert {"connect", "use", "info", "poc"} <= set(COMMANDS)


def test_question_mark_shows_the_overview(ip):
    doc = ip.find_line_magic("flare").__doc__
    assert doc.startswith("Usage: %flare COMMAND [flags]")
    assert "poc" in doc and "connect" in doc


def test_help_for_a_command_shows_its_flags(ip, capsys):
    flare(ip, "help connect")
    out = capsys.readouterr().out
    assert out.startswith("usage: %flare connect")
    for flag in ("--kit-id", "--startup-kit", "--study", "--timeout"):
        assert flag in out
    flare(ip, "connect --help")
    assert "--startup-kit" in capsys.readouterr().out


def test_unknown_command(ip):
    assert error(ip, "bogus") == "%flare: unknown command 'bogus'. Run '%flare help' to list the commands"
    assert error(ip, "help bogus") == "%flare help: unknown command 'bogus'. Run '%flare help' to list the commands"
    assert error(ip, "conect") == (
        "%flare: unknown command 'conect'. Did you mean connect? Run '%flare help' to list the commands"
    )


def test_bad_flags(ip):
    assert error(ip, "poc restart") == (
        "%flare poc: argument action: invalid choice: 'restart' (choose from 'start', 'status', 'stop')."
        " See '%flare help poc'"
    )
    assert error(ip, "poc start --clients x") == (
        "%flare poc: argument --clients/-n: invalid int value: 'x'. See '%flare help poc'"
    )
    assert error(ip, "connect --bogus") == "%flare connect: unrecognized arguments: --bogus. See '%flare help connect'"
    assert error(ip, "connect --kit-id a --startup-kit b") == (
        "%flare connect: argument --startup-kit: not allowed with argument --kit-id. See '%flare help connect'"
    )
    assert error(ip, 'connect --startup-kit "unclosed') == (
        "%flare: cannot parse the line (No closing quotation). Check the quotes"
    )


def test_commands_need_a_connection(ip):
    assert error(ip, "info", FlareError) == (
        "Not connected to FLARE. Run %flare poc start for a local FLARE,"
        " or %flare connect --startup-kit DIR for a deployment"
    )


def test_poc_start_rejects_bad_counts_before_doing_anything(ip, tmp_path):
    ws = tmp_path / "poc"
    assert error(ip, f"poc start --clients 0 --workspace {ws}", FlareError) == (
        "--clients must be at least 1, got 0. Example: %flare poc start --clients 2"
    )
    assert error(ip, f"poc start --sites a,a --workspace {ws}", FlareError) == (
        "Duplicate site names: a. Use distinct names, e.g. --sites hospital-a,hospital-b"
    )
    assert not ws.exists()


def test_poc_status_of_an_empty_workspace(ip, tmp_path):
    st = flare(ip, f"poc status --workspace {tmp_path / 'none'}")
    assert str(st) == f"No local FLARE in {tmp_path / 'none'}. Start one with %flare poc start"
    assert st.prepared is False and st.running is False


def test_in_a_real_kernel_errors_fail_the_cell_with_one_line_and_no_traceback(tmp_path):
    """What a notebook user sees: the cell fails (so Run All stops) with one line, never a traceback."""
    from kernel import Kernel

    # nothing to connect to: no kit configured and no local FLARE in this HOME (a new kernel would otherwise
    # connect as the nvflare CLI does)
    (tmp_path / "home").mkdir()
    env = {"HOME": str(tmp_path / "home"), "NVFLARE_POC_WORKSPACE": str(tmp_path / "poc")}
    env["NVFLARE_STARTUP_KIT_DIR"] = ""
    k = Kernel(cwd=str(tmp_path), env=env)
    try:
        assert k.run("%load_ext flarenb")["status"] == "ok"
        bad_flag = k.run("%flare connect --bogus")
        assert bad_flag["status"] == "error"
        assert Kernel.text(bad_flag).strip() == (
            "UsageError: %flare connect: unrecognized arguments: --bogus. See '%flare help connect'"
        )
        failed = k.run("%flare info")
        assert failed["status"] == "error"
        errors = [m["content"] for m in failed["outputs"] if m["msg_type"] == "error"]
        assert len(errors) == 1 and errors[0]["ename"] == "NotConnected"
        assert errors[0]["traceback"] == [
            "\x1b[0;31mNotConnected\x1b[0m: Not connected to FLARE. Run %flare poc start for a local FLARE,"
            " or %flare connect --startup-kit DIR for a deployment"
        ]
        assert "Traceback" not in Kernel.text(failed)
    finally:
        k.shutdown()
